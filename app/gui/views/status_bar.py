"""Status bar: messages, store size, model state, background jobs with progress and Cancel."""
from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from ...import_rate import ImportRate
from ..messages import plural


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class StatusBar(QStatusBar):
    """Permanent widgets on the right; transient messages on the left."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.store_label = QLabel("Opening the store…")
        self.model_label = QLabel("Model: not loaded")
        self.jobs_label = QLabel("")
        self.reembed_label = QLabel("")  # the store moving its vectors to the faster embedding model
        self.reembed_label.hide()
        self.progress = QProgressBar(maximumWidth=200, textVisible=True)
        self.import_rate: ImportRate | None = None
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running import after the current step")
        self.cancel_button.hide()
        for w in (self.progress, self.cancel_button, self.reembed_label, self.jobs_label, self.model_label,
                  self.store_label):
            self.addPermanentWidget(w)

    def set_store_size(self, memories: int, size: int) -> None:
        self.store_label.setText(f"{plural(memories, 'memory')} · {human_bytes(size)}")

    def set_reembed(self, state: str, done: int, total: int, error: str = "") -> None:
        """The background move of the store's vectors to the faster (int8) embedding model."""
        if state in ("waiting", "running") and total:
            self.reembed_label.setText(f"Speeding up search: {done:,} of {total:,} memories")
            self.reembed_label.setToolTip("Loci is re-embedding your memories with its faster int8 model. "
                                          "Search keeps working on the old vectors until it is done.")
            self.reembed_label.show()
            return
        self.reembed_label.hide()
        if state == "done" and total:
            self.showMessage(f"Search is faster now: {plural(total, 'memory')} re-embedded.", 8000)
        elif state == "failed":
            self.showMessage(f"Could not re-embed the memories ({error}); search keeps the old vectors "
                             "and Loci tries again next time.", 15000)

    def set_model_state(self, state: str, detail: str = "") -> None:
        self.model_label.setText(f"Model: {state}")
        self.model_label.setToolTip(detail or "The embedding model used for search and for new memories")

    def set_jobs(self, n: int, names: Sequence[str] = ()) -> None:
        """How many jobs run, and what they do when that is short enough to read ("Opening store…")."""
        shown = list(dict.fromkeys(names))
        if n and shown and len(shown) <= 2:
            self.jobs_label.setText(" · ".join(name[:1].upper() + name[1:] for name in shown) + "…")
        else:
            self.jobs_label.setText(f"{n} job{'s' if n != 1 else ''} running" if n else "")

    def set_import_progress(self, done: int, total: int) -> None:
        """The bar shows the percentage and the time left; its tooltip messages and messages/s."""
        if self.import_rate is None or not self.progress.isVisible():
            self.import_rate = ImportRate()
        now = self.import_rate.step(done)
        left = self.import_rate.left(done, total, now)
        self.progress.setFormat(f"%p% · {left}" if left else "%p%")
        self.progress.setToolTip(self.import_rate.describe(done, total, now))
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        self.progress.show()
        self.cancel_button.show()

    def end_import(self) -> None:
        self.import_rate = None
        self.progress.hide()
        self.cancel_button.hide()
