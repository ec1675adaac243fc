"""Reading the main window's table in tests: the rows' texts, and selecting a row until its details show."""
from __future__ import annotations

from app.gui.models.memory_table import COL_MEMORY, RecordRole


def row_texts(window):
    return [window.proxy.data(window.proxy.index(r, COL_MEMORY)) for r in range(window.proxy.rowCount())]


def select_row(qtbot, window, row, timeout: int = 3000):
    index = window.proxy.index(row, COL_MEMORY)
    with qtbot.waitSignal(window.detail_updated, timeout=timeout):
        window.table.selectionModel().setCurrentIndex(
            index, window.table.selectionModel().SelectionFlag.ClearAndSelect
            | window.table.selectionModel().SelectionFlag.Rows)
    return window.proxy.data(index, RecordRole)
