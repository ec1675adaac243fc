"""The main window: scope sidebar, memory table with search and filters, detail pane, menus."""
from __future__ import annotations

import html
import importlib.metadata
import logging
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QModelIndex, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QMainWindow, QMessageBox, QSplitter,
                               QStackedWidget, QTableView, QTabWidget, QVBoxLayout, QWidget)

from engine import LociError, MemoryRecord, Scope
from engine.inference.models import model_file_problem
from engine.store import export
from engine.store.reembed import ReembedStatus

from ..importers import load_conversation, without_small_talk
from .commands import DeleteMemoriesCommand, EditMemoryCommand
from .browser_reads import Details, Overview
from .engine_bridge import EngineBridge
from .messages import Messages, memories, plural
from .models import MemoryTableModel
from .models.memory_table import (MemorySortProxy, COL_AGENT, COL_CREATED, COL_ENTITIES, COL_EVENT_DATE, COL_MEMORY,
                                  COL_SAID, COL_SAID_BY,
                                  COL_SCORE, COL_SESSION, COL_TYPE, COL_UPDATED, COL_USER, HEADERS,
                                  RecordRole, SortRole)
from .views.add_note_dialog import AddNoteDialog
from .views.assistant_view import AssistantView
from .views.detail_pane import DetailPane
from .views.empty_state import EmptyState
from .views.entities_view import EntitiesView
from .views.error_banner import ErrorBanner
from .views.import_dialog import ImportDialog
from .views.scope_sidebar import ScopeSidebar
from .views.search_bar import SearchBar
from .views.settings_dialog import SettingsDialog
from .views.status_bar import StatusBar
from .views.timeline_view import TimelineView

log = logging.getLogger(__name__)

SAMPLE_FILE = Path(__file__).resolve().parents[1] / "data" / "sample_conversation.json"
SORT_LIMIT = 5_000  # paged lists longer than this are not sorted client-side
FILTER_LIMIT = 10_000
SEARCH_TOP_K = 100
TAB_MEMORIES, TAB_ENTITIES, TAB_TIMELINE, TAB_ASSISTANT = range(4)
_DEFAULT_HIDDEN = (COL_AGENT, COL_UPDATED, COL_CREATED, COL_TYPE)  # "Said" shows when, not the import's time
_WIDTHS = {COL_MEMORY: 380, COL_SCORE: 56, COL_TYPE: 64, COL_USER: 64, COL_AGENT: 72, COL_SESSION: 104,
           COL_EVENT_DATE: 82, COL_CREATED: 112, COL_UPDATED: 112, COL_ENTITIES: 110, COL_SAID_BY: 80,
           COL_SAID: 84}


class MainWindow(QMainWindow):
    """table_updated fires whenever the table shows a new result (browse, search or filter)."""

    table_updated = Signal()
    detail_updated = Signal()

    def __init__(self, bridge: EngineBridge, messages: Messages, settings: QSettings | None = None) -> None:
        super().__init__()
        self.bridge, self.messages = bridge, messages
        self.settings = settings
        self.scope: dict[str, str] = {}
        self.mode = "browse"  # browse, search, filter
        self._generation = 0
        self._detail_generation = 0
        self._store_total = -1  # memories in the store, as last read (-1: not read yet)
        self._overview_in_flight = False
        self._overview_wanted: int | None = None
        self.undo_stack = QUndoStack(self)
        self.setWindowTitle("Loci — memory browser")
        self.setAcceptDrops(True)  # a dropped ChatGPT/Claude export (.zip) or conversation file imports it
        self.resize(1280, 780)
        messages.set_dialog_parent(self)
        self._build_widgets()
        self._build_actions()
        self._connect()
        self._restore_settings()

    # -- construction --------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.banner = ErrorBanner()
        self.sidebar = ScopeSidebar()
        self.search_bar = SearchBar()
        self.model = MemoryTableModel(self)
        self.proxy = MemorySortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SortRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setAccessibleName("Memories")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(True)  # two lines of each memory, the rest elided; all of it in the details
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(2 * self.fontMetrics().lineSpacing() + 8)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.table.horizontalHeader()
        header.setSortIndicatorShown(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        for col, width in _WIDTHS.items():
            self.table.setColumnWidth(col, width)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_MEMORY, header.ResizeMode.Stretch)
        header.moveSection(header.visualIndex(COL_SAID_BY), 1)  # who said it and when, next to what was said
        header.moveSection(header.visualIndex(COL_SAID), 2)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # the whole text is in the details
        self.empty_state = EmptyState()
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.table)
        self.table_stack.addWidget(self.empty_state)
        memories_page = QWidget()
        mv = QVBoxLayout(memories_page)
        mv.setContentsMargins(0, 0, 0, 0)
        mv.addWidget(self.search_bar)
        mv.addWidget(self.table_stack, 1)
        self.entities_view = EntitiesView(self.bridge)
        self.timeline_view = TimelineView(self.bridge)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(memories_page, "&Memories")
        self.tabs.addTab(self.entities_view, "&Entities")
        self.tabs.addTab(self.timeline_view, "&Timeline")
        self.assistant_view = AssistantView(self.bridge)
        self.tabs.addTab(self.assistant_view, "&Assistant")
        self.detail = DetailPane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 3)  # the table gains and gives most when the window resizes
        self.splitter.setStretchFactor(2, 1)
        self.splitter.setChildrenCollapsible(False)
        self.sidebar.setMinimumWidth(150)
        self.detail.setMinimumWidth(230)
        # the Assistant tab would otherwise ask ~440 px and push an 800 px window wider
        self.tabs.setMinimumWidth(380)
        self.splitter.setSizes([190, 800, 330])
        self._detail_width = 330
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.setTabOrder(self.sidebar, self.search_bar.box)
        self.setTabOrder(self.search_bar.box, self.table)
        self.setTabOrder(self.table, self.detail.editor)
        self.setTabOrder(self.detail.editor, self.detail.save_button)

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.add_note_action = self._action("&Add Note…", self.add_note, K.New, "Write a memory by hand")
        self.import_action = self._action("&Import Conversations…", self.import_conversation, "Ctrl+I",
                                          "Import a ChatGPT or Claude export (.zip) or a conversation file "
                                          "(JSON, JSONL, transcript, LoCoMo); you can also drop it on the window")
        self.sample_action = self._action("Import &Sample Conversation", self.import_sample, None)
        self.export_all_action = self._action("&Export All…", self.export_all, "Ctrl+E",
                                              "Save every memory to a JSON file")
        self.export_selection_action = self._action("Export &Selection…", self.export_selection, "Ctrl+Shift+E")
        self.restore_action = self._action("&Restore From Export…", self.import_export, "Ctrl+Shift+I",
                                           "Put back memories from a Loci export file")
        self.settings_action = self._action("Se&ttings…", self.open_settings, K.Preferences)
        if self.settings_action.shortcut().isEmpty():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.quit_action = self._action("&Quit", self.close, K.Quit)
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.save_action = self._action("&Save Memory", self.detail.save, K.Save, "Save the edited memory")
        self.delete_action = self._action("&Delete", self.delete_selected, K.Delete,
                                          "Delete the selected memories (undoable)")
        self.find_action = self._action("&Find", self.search_bar.focus_search, K.Find)
        self.clear_search_action = self._action("&Clear Search", self.clear_search, "Esc")
        self.filters_action = self._action("Show &Filters", self.search_bar.filter_button.toggle, "Ctrl+Shift+F")
        self.refresh_action = self._action("&Refresh", self.refresh, K.Refresh)
        if self.refresh_action.shortcut().isEmpty():
            self.refresh_action.setShortcut(QKeySequence("F5"))
        self.tab_actions = [self._action(name, lambda i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
                            for i, name in enumerate(("&Memories", "&Entities", "&Timeline"))]
        self.about_action = self._action("&About Loci", self.about)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for a in (self.add_note_action, self.import_action, self.sample_action, None, self.export_all_action,
                  self.export_selection_action, self.restore_action, None, self.settings_action, None,
                  self.quit_action):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        edit_menu = bar.addMenu("&Edit")
        for a in (self.undo_action, self.redo_action, None, self.save_action, self.delete_action, None,
                  self.find_action, self.clear_search_action, self.filters_action):
            edit_menu.addSeparator() if a is None else edit_menu.addAction(a)
        view_menu = bar.addMenu("&View")
        for a in self.tab_actions:
            view_menu.addAction(a)
        view_menu.addSeparator()
        view_menu.addAction(self.refresh_action)
        self.columns_menu = view_menu.addMenu("&Columns")
        self.column_actions: dict[int, QAction] = {}
        for col, title in HEADERS.items():
            if col in (COL_MEMORY, COL_SCORE):
                continue
            a = QAction(title, self, checkable=True, checked=True)
            a.toggled.connect(lambda on, c=col: self._set_column_visible(c, on))
            self.columns_menu.addAction(a)
            self.column_actions[col] = a
        bar.addMenu("&Help").addAction(self.about_action)

    def _model_state_changed(self, state: str) -> None:
        self.status.set_model_state(state, self.bridge.model_error)

    def _jobs_changed(self, n: int) -> None:
        self.status.set_jobs(n, self.bridge.running())

    def _store_failed(self, _text: str) -> None:
        self.status.store_label.setText("No store")

    def _reembed_progressed(self, status: ReembedStatus) -> None:
        self.status.set_reembed(status.state, status.done, status.total, status.error or "")

    def _import_finished(self, _summary: object) -> None:
        self.status.end_import()

    def _connect(self) -> None:
        b = self.bridge
        b.store_opened.connect(self._store_opened)
        b.store_changed.connect(self._store_changed)
        # The bridge outlives a window: its signals reach the window only through bound
        # methods, which Qt disconnects when the window is destroyed (a lambda would not).
        b.model_state_changed.connect(self._model_state_changed)
        b.jobs_changed.connect(self._jobs_changed)
        b.store_failed.connect(self._store_failed)
        b.import_progressed.connect(self.status.set_import_progress)
        b.import_finished.connect(self._import_finished)
        b.reembed_progressed.connect(self._reembed_progressed)
        b.store_size_known.connect(self.status.set_store_size)
        self.status.cancel_button.clicked.connect(b.cancel_import)
        self.messages.shown.connect(self._show_message)
        self.sidebar.scope_selected.connect(self._scope_selected)
        self.search_bar.query_changed.connect(lambda _q: self.refresh_table())
        self.search_bar.filters_changed.connect(self.refresh_table)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.horizontalHeader().sectionClicked.connect(self._sort_clicked)
        self.detail.save_requested.connect(self.save_edit)
        self.detail.entity_clicked.connect(self.filter_by_entity)
        self.entities_view.record_activated.connect(self.show_detail)
        self.timeline_view.record_activated.connect(self.show_detail)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.empty_state.sample_requested.connect(self.import_sample)
        self.empty_state.import_requested.connect(self.import_conversation)
        self.empty_state.add_requested.connect(self.add_note)
        self.assistant_view.memory_activated.connect(self.open_memory)
        self.sidebar.scope_selected.connect(self._chat_as_scope_user)

    # -- settings persistence ----------------------------------------------------------
    def _restore_settings(self) -> None:
        hidden = set(_DEFAULT_HIDDEN)
        if self.settings is not None:
            geometry = self.settings.value("window/geometry")
            if geometry is not None:
                self.restoreGeometry(geometry)
            stored = self.settings.value("table/hidden_columns")
            if stored is not None:
                hidden = {int(c) for c in (stored if isinstance(stored, list) else [stored]) if str(c).isdigit()}
        for col, action in self.column_actions.items():
            action.setChecked(col not in hidden)
            self.table.setColumnHidden(col, col in hidden)
        self.table.setColumnHidden(COL_SCORE, True)

    def _set_column_visible(self, col: int, visible: bool) -> None:
        self.table.setColumnHidden(col, not visible)
        if self.settings is not None:
            hidden = [c for c, a in self.column_actions.items() if not a.isChecked()]
            self.settings.setValue("table/hidden_columns", [str(c) for c in hidden])

    def closeEvent(self, event: QCloseEvent) -> None:
        self.assistant_view.close_chat()  # finish storing the last exchange before the store closes
        if self.settings is not None:
            self.settings.setValue("window/geometry", self.saveGeometry())
            self.settings.sync()
        super().closeEvent(event)

    # -- messages ----------------------------------------------------------------------
    def _show_message(self, level: str, text: str) -> None:
        if level == "info":
            self.status.showMessage(text, 8000)
        else:
            self.banner.show_message(text)
            self.status.showMessage(text.splitlines()[0] if text else "", 8000)

    # -- store events ------------------------------------------------------------------
    def _store_opened(self) -> None:
        self.banner.hide()
        self.refresh()
        self.bridge.measure_store()

    def _store_changed(self) -> None:
        self.refresh()
        self.bridge.measure_store()

    def refresh(self) -> None:
        """Reload sidebar counts, the table and the visible secondary view (read in a worker)."""
        self._generation += 1
        self._read_overview(self._generation)
        if self.tabs.currentIndex() != TAB_MEMORIES:
            self._tab_changed(self.tabs.currentIndex())

    def _read_overview(self, generation: int) -> None:
        """Counts, scopes and the browsed rows in one worker; shown by _overview_read. While one is
        on its way, a newer request waits for it (one read in flight, the last one wins)."""
        if not self.bridge.is_open:
            self.model.clear()
            self.table_updated.emit()
            return
        if self._overview_in_flight:
            self._overview_wanted = generation
            return
        first = self.table.rowAt(0) if self.model.is_paged else 0
        self._overview_in_flight = True

        def read(ov: Overview) -> None:
            self._overview_done()
            self._overview_read(generation, ov)

        def failed(text: str) -> None:
            self._overview_done()
            self.messages.error(text)
        if self.bridge.overview(self.scope, max(0, first), read, failed) is None:
            self._overview_in_flight = False

    def _overview_done(self) -> None:
        """The read in flight is back: start the one asked for meanwhile, if still wanted."""
        self._overview_in_flight = False
        wanted, self._overview_wanted = self._overview_wanted, None
        if wanted is not None and wanted == self._generation:
            self._read_overview(wanted)

    def _overview_read(self, generation: int, ov: Overview) -> None:
        self._store_total = ov.total
        self.sidebar.populate(ov.scopes, ov.total)
        if self.sidebar.current_scope != self.scope:  # the browsed scope is gone: show all memories
            self._scope_selected(self.sidebar.current_scope)
            return
        if generation != self._generation or self._overview_in_flight:
            return  # a newer query, filter or scope replaced this one (its read is on its way)
        query = self.search_bar.query
        self.table_stack.setCurrentWidget(self.empty_state if ov.total == 0 and not query else self.table)
        if query or self.search_bar.filters():
            self.refresh_table()  # search and filter results are read by refresh_table's own worker
            return
        self.mode = "browse"
        if ov.scope_total > SORT_LIMIT:
            self._unsort()
        keep = self._current_id()
        scope = dict(ov.scope)
        self.model.set_source(lambda offset, limit, deliver: self.bridge.page(scope, offset, limit, deliver),
                              ov.scope_total, ov.rows)
        self._after_reset(keep)

    def _scope_selected(self, scope: dict[str, str]) -> None:
        self.scope = scope
        self.refresh_table()
        if self.tabs.currentIndex() != TAB_MEMORIES:
            self._tab_changed(self.tabs.currentIndex())

    def _tab_changed(self, index: int) -> None:
        self._show_detail_pane(index != TAB_ASSISTANT)
        if index == TAB_ENTITIES:
            self.entities_view.refresh(self.scope)
        elif index == TAB_TIMELINE:
            self.timeline_view.refresh(self.scope)

    def _show_detail_pane(self, shown: bool) -> None:
        """The details belong to the memory table: the Assistant tab takes their room (a citation
        opens its memory in the Memories tab, where they come back at the width they had)."""
        if shown == self.detail.isVisibleTo(self):
            return
        if not shown:
            self._detail_width = self.splitter.sizes()[2]
            self.detail.hide()
            return
        self.detail.show()
        sizes = self.splitter.sizes()
        room = sum(sizes) - sizes[0]  # the tabs' and the details' share; the sidebar keeps its width
        width = max(self.detail.minimumWidth(), min(self._detail_width, room // 2))
        self.splitter.setSizes([sizes[0], room - width, width])

    # -- table -------------------------------------------------------------------------
    def refresh_table(self) -> None:
        """Browse (pages read in a worker), search (hybrid, scored) or filter (engine scan) the current scope."""
        self._generation += 1
        generation = self._generation
        query = self.search_bar.query
        extra = self.search_bar.filters()
        filters = {**self.scope, **extra}
        if not self.bridge.is_open:
            self.table_stack.setCurrentWidget(self.table)
            self.model.clear()
            self.table_updated.emit()
            return
        self.table_stack.setCurrentWidget(self.empty_state if self._store_total == 0 and not query else self.table)
        if query:
            self.mode = "search"
            self.status.showMessage("Searching…", 3000)
            self.bridge.search(query, filters, lambda hits: self._rows_loaded(generation, hits),
                               top_k=SEARCH_TOP_K, on_failed=lambda t: self._load_failed(generation, t))
        elif extra:
            self.mode = "filter"
            self.bridge.list_filtered(filters, lambda rows: self._rows_loaded(generation, rows), FILTER_LIMIT)
        else:
            self._read_overview(generation)

    def _rows_loaded(self, generation: int, rows: Sequence[Any]) -> None:
        if generation != self._generation:
            return  # a newer query or scope replaced this one
        keep = self._current_id()
        if self.mode == "search":
            self._unsort()  # hits arrive best first; a new search always opens that way
        self.model.set_rows(rows)
        if self.mode == "filter" and len(rows) >= FILTER_LIMIT:
            self.messages.info(f"Showing the first {FILTER_LIMIT:,} matches; narrow the filters to see the rest.")
        self._after_reset(keep)

    def _load_failed(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self.messages.error(text)
            self.model.clear()
            self.table_updated.emit()

    def _after_reset(self, keep: str | None) -> None:
        self.table.setColumnHidden(COL_SCORE, self.mode != "search")
        if keep:
            self.select_id(keep, scroll=False)
            # the shown memory's score is this list's (none outside a search), even when its row is
            # not loaded here and so not selected again
            self.detail.show_score(self._score_html(keep))
        if self.mode == "search":
            self.table.scrollToTop()  # the best hits, even when the kept selection is further down
        n = self.model.rowCount()
        what = {"browse": "memory", "search": "result", "filter": "match"}[self.mode]
        if self.mode == "search" and n >= SEARCH_TOP_K:  # a cut-off, not how many memories match
            self.status.showMessage(f"The best {n} results, best first", 4000)
        else:
            self.status.showMessage(plural(n, what), 4000)
        self.table_updated.emit()

    def _unsort(self) -> None:
        self.proxy.sort(-1)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)

    def _sort_clicked(self, col: int) -> None:
        header = self.table.horizontalHeader()
        if self.model.is_paged and self.model.rowCount() > SORT_LIMIT:
            self._unsort()
            self.messages.info(f"Sorting works on up to {SORT_LIMIT:,} memories; pick a user or session, "
                               "search or filter first. The list is newest first.")
            return
        if self.proxy.sortColumn() == col:
            order = Qt.SortOrder.DescendingOrder if self.proxy.sortOrder() == Qt.SortOrder.AscendingOrder \
                else Qt.SortOrder.AscendingOrder
        else:
            order = Qt.SortOrder.DescendingOrder if col in (COL_SCORE, COL_CREATED, COL_UPDATED) \
                else Qt.SortOrder.AscendingOrder
        self.proxy.sort(col, order)
        header.setSortIndicator(col, order)

    def _current_id(self) -> str | None:
        return self.detail.record.id if self.detail.record is not None else None

    def select_id(self, memory_id: str, scroll: bool = True) -> bool:
        """Select a memory's row when it is among the rows loaded (a long list reads its pages later)."""
        row = self.model.row_of(memory_id)
        if row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, COL_MEMORY))
        self.table.setAutoScroll(scroll)  # scroll=False: the list stays where it is (a refresh, a cleared search)
        try:
            self.table.selectionModel().setCurrentIndex(
                index, self.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.table.selectionModel().SelectionFlag.Rows)
        finally:
            self.table.setAutoScroll(True)
        if scroll:
            self.table.scrollTo(index)
        return True

    def selected_records(self) -> list[MemoryRecord]:
        rows = self.table.selectionModel().selectedRows(COL_MEMORY)
        records = [self.proxy.data(i, RecordRole) for i in rows]
        return [r for r in records if r is not None]

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        rec = self.proxy.data(current, RecordRole) if current.isValid() else None
        if rec is not None:
            self.show_detail(rec)

    def _chat_as_scope_user(self, scope: dict[str, str]) -> None:
        if scope.get("user_id"):
            self.assistant_view.set_user(scope["user_id"])

    def open_memory(self, memory_id: str) -> None:
        """Show one memory in the browser (from the assistant's "memories used" strip)."""
        def found(details: Details) -> None:
            self.tabs.setCurrentIndex(TAB_MEMORIES)
            self.select_id(memory_id)
            self.show_detail(details.record)

        def missing(text: str) -> None:
            self.messages.error(f"{text} It may have been forgotten since.")
        self.bridge.details(memory_id, found, missing)

    # -- detail ------------------------------------------------------------------------
    def show_detail(self, record: MemoryRecord | None, force: bool = False) -> None:
        """Show a memory at once as listed; its history, sources and fresh fields follow from a worker."""
        self._detail_generation += 1
        if record is None:
            self.detail.show_record(None)
            self.detail_updated.emit()
            return
        same = self.detail.record is not None and self.detail.record.id == record.id
        if same and self.detail.is_dirty and not force:
            return
        if not same or force:
            self.detail.show_record(record, None, None)  # history and sources: "Loading…"
        self.detail.show_score(self._score_html(record.id))
        generation = self._detail_generation
        self.bridge.details(record.id, lambda d: self._details_read(generation, d),
                            lambda _text: self._details_failed(generation))

    def _details_read(self, generation: int, details: Details) -> None:
        shown = self.detail.record
        if generation != self._detail_generation or shown is None or shown.id != details.record.id:
            return  # another memory was picked meanwhile
        fresh = details.record
        if self.detail.is_dirty:  # the person is typing: keep their text, show the rest
            self.detail.show_past(details.history, details.sources)
        else:
            self.detail.show_record(fresh, details.history, details.sources)
        self.detail.show_score(self._score_html(fresh.id))
        if not fresh.entities:  # maybe not linked yet: the linker's answer fills them in
            self.bridge.linked_record(fresh.id, self._entities_found)
        self.detail_updated.emit()

    def _details_failed(self, generation: int) -> None:
        if generation == self._detail_generation:  # deleted meanwhile
            self.detail.show_record(None)
            self.detail_updated.emit()

    def _entities_found(self, record: MemoryRecord) -> None:
        if self.detail.record is not None and self.detail.record.id == record.id and record.entities:
            self.detail.show_entities(record.entities)
            self.detail_updated.emit()

    def _score_html(self, memory_id: str) -> str:
        """Why a search hit ranks where it does (empty outside a search)."""
        row = self.model.row_of(memory_id) if self.mode == "search" else None
        if row is None:
            return ""
        return self.model.score_details(row)

    def save_edit(self, record: MemoryRecord, text: str) -> None:
        self.undo_stack.push(EditMemoryCommand(self.bridge, record, text, self._edit_saved, show=self._show_text,
                                               refused=self._edit_refused))

    def _show_text(self, memory_id: str, text: str) -> None:
        """An edit or its undo, shown before the store has it (the store's answer follows)."""
        row = self.model.row_of(memory_id)
        rec = self.model.record(row) if row is not None else None
        if rec is not None:
            self.model.update_record(dc_replace(rec, memory=text))
        if self.detail.record is not None and self.detail.record.id == memory_id:
            self.detail.show_text(text)

    def _edit_refused(self, memory_id: str, previous: str, message: str) -> None:
        self._show_text(memory_id, previous)
        self.messages.error(f"The edit was not saved: {message}")

    def _edit_saved(self, record: MemoryRecord) -> None:
        self.model.update_record(record)
        if self.detail.record is not None and self.detail.record.id == record.id:
            self.show_detail(record, force=True)
        self.messages.info("Memory saved.")

    # -- delete ------------------------------------------------------------------------
    def delete_selected(self) -> None:
        records = self.selected_records()
        if not records and self.detail.record is not None:
            records = [self.detail.record]
        if not records:
            self.messages.info("Select the memories to delete first.")
            return
        if len(records) == 1:
            preview = " ".join(records[0].memory.split())
            preview = preview if len(preview) <= 80 else preview[:79] + "…"
            question = f"Delete this memory?\n\n“{preview}”\n\nYou can undo this with Ctrl+Z while Loci is open."
        else:
            question = f"Delete {len(records)} memories? You can undo this with Ctrl+Z while Loci is open."
        answer = QMessageBox.question(
            self, "Delete memory" if len(records) == 1 else "Delete memories", question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self.detail.record is not None and self.detail.record.id in {r.id for r in records}:
            self.detail.show_record(None)
        self.undo_stack.push(DeleteMemoriesCommand(self.bridge, records, self._deleted, hide=self.model.hide_ids,
                                                   put_back=self.model.show_again, refused=self._delete_refused))

    def _delete_refused(self, message: str) -> None:
        self.messages.error(f"Not done: {message}")

    def _deleted(self, n: int) -> None:
        self.messages.info(f"{plural(n, 'memory')} changed. Ctrl+Z undoes, Ctrl+Shift+Z redoes.")

    # -- search and filters ------------------------------------------------------------
    def clear_search(self) -> None:
        if self.search_bar.query:
            self.search_bar.clear_search()
        elif self.search_bar.filters():
            self.search_bar.clear_filters()

    def filter_by_entity(self, name: str) -> None:
        self.tabs.setCurrentIndex(TAB_MEMORIES)
        self.search_bar.set_entity(name)

    # -- add, import, export -------------------------------------------------------------
    def _current_scope(self) -> Scope:
        return Scope(self.scope.get("user_id"), self.scope.get("agent_id"), self.scope.get("run_id"))

    def add_note(self) -> None:
        dialog = AddNoteDialog(self._current_scope() if self.scope else None, self)
        if dialog.exec():
            text, scope, infer = dialog.values()
            self.bridge.add_note(text, scope, infer)

    def import_conversation(self, path: str = "") -> None:
        dialog = ImportDialog(self._current_scope() if self.scope else None, self, path=path,
                              app_user=self.assistant_view.conversation.user_id)
        if not dialog.exec():
            return
        choice = dialog.chat_export()
        if choice is None:
            conv, scope, infer = dialog.values()
            self.start_import(conv, scope, infer)
        elif self.bridge.import_token is not None:
            self.messages.error("An import is already running; wait for it or cancel it first.")
        else:
            self.status.set_import_progress(0, choice.messages)
            self.bridge.import_chat_export(choice.path, choice.ids, choice.messages, dialog.scope(),
                                           dialog.infer.isChecked())

    def dragEnterEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        """A dropped export or conversation file opens the import dialog with it."""
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.import_conversation(files[0])

    def start_import(self, conv: Any, scope: Scope, infer: bool) -> None:
        if self.bridge.import_token is not None:
            self.messages.error("An import is already running; wait for it or cancel it first.")
            return
        self.status.set_import_progress(0, conv.message_count)
        self.bridge.import_conversation(conv, scope, infer)

    def import_sample(self) -> None:
        try:
            conv = load_conversation(SAMPLE_FILE)
        except LociError as exc:
            self.messages.error(exc.user_message)
            return
        self.start_import(without_small_talk(conv)[0], Scope(conv.user_id, conv.agent_id), infer=False)

    def export_all(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export all memories", "loci-memories.json", "JSON (*.json)")
        if path:
            self.bridge.export_json(path)

    def export_selection(self) -> None:
        records = self.selected_records()
        if not records:
            self.messages.info("Select the memories to export first (or use Export All).")
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Export {plural(len(records), 'memory')}", "loci-selection.json",
                                              "JSON (*.json)")
        if path:
            self.bridge.export_json(path, records)

    def import_export(self, path: str = "") -> None:
        """Pick an export file, ask merge or replace, then restore it with progress and Cancel."""
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Restore memories from an export", "", "JSON (*.json)")
        if not path:
            return
        if self.bridge.import_token is not None:
            self.messages.error("An import is already running; wait for it or cancel it first.")
            return
        try:
            exported = export.read_export(path)
        except LociError as exc:
            self.messages.error(exc.user_message)
            return
        memory = self.bridge.memory
        if memory is None:
            return

        def counted(counts: tuple[int, int]) -> None:  # how many are here, how many would be new
            mode = self.ask_restore_mode(exported, Path(path).name, counts)
            if mode is None:
                return
            self.status.set_import_progress(0, len(exported.memories))
            self.bridge.import_json(exported, mode)
        self.bridge.submit(lambda: (memory.count(), export.count_new(memory, exported.memories)), on_result=counted,
                           name="compare with the store")

    def ask_restore_mode(self, exported: export.ExportFile, name: str, counts: tuple[int, int]) -> export.Mode | None:
        """Merge (keep what is here, add what is missing) or replace (empty the store first);
        counts: memories in this store, and how many of the file's are not in it."""
        total = len(exported.memories)
        here, new = counts
        missing = "all of them are already here" if new == 0 and total else \
            f"{new:,} of them {'is' if new == 1 else 'are'} not in this store yet"
        box = QMessageBox(QMessageBox.Icon.Question, "Restore memories",
                          f"{name} holds {memories(total)}; {missing}. This store holds {memories(here)}.",
                          parent=self)
        box.setInformativeText("Merge adds the missing memories and keeps everything here. Replace "
                               f"deletes the {memories(here)} here first (this cannot be undone).")
        merge = box.addButton("&Merge", QMessageBox.ButtonRole.AcceptRole)
        replace = box.addButton("&Replace…", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(merge)
        box.exec()
        if box.clickedButton() is merge:
            return "merge"
        if box.clickedButton() is replace:
            sure = QMessageBox.warning(
                self, "Replace all memories",
                f"Delete all {memories(here)} in this store, with their history, and restore the "
                f"{memories(total)} of {name} instead?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            return "replace" if sure == QMessageBox.StandardButton.Yes else None
        return None

    # -- settings and about --------------------------------------------------------------
    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.bridge.config, self.bridge.data_dir, model_file_problem, self)
        dialog.accepted.connect(lambda: self.bridge.apply_settings(*dialog.values()))
        from engine.inference.model_catalog import discover_models

        self.bridge.submit(discover_models, on_result=dialog.set_models, name="find models")
        dialog.open()
        return dialog

    def about_text(self) -> str:
        """Version, data folder and the promise, as rich text for the About box."""
        try:
            version = importlib.metadata.version("loci")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown (not installed as a package)"
        folder = html.escape(str(self.bridge.data_dir or "none open"))
        return (f"<b>Loci</b> {html.escape(version)}<br>A private, local-first memory layer for AI agents."
                f"<br>Everything stays on this computer.<br><br>Data folder:<br><tt>{folder}</tt>")

    def about(self) -> None:
        QMessageBox.about(self, "About Loci", self.about_text())

