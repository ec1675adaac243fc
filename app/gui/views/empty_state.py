"""What a first run shows: a friendly note and a one-click sample conversation."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """Shown instead of the table when the store holds no memories."""

    sample_requested = Signal()
    import_requested = Signal()
    add_requested = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        title = QLabel("<h2>No memories yet</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel("Loci keeps what your AI agents remember about you, on this computer only.<br>"
                      "Try it with a short sample conversation, import one of your own, or write a note.")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        self.sample_button = QPushButton("Import the sample conversation")
        self.sample_button.setDefault(True)
        self.import_button = QPushButton("Import a conversation…")
        self.add_button = QPushButton("Add a note…")
        self.sample_button.clicked.connect(self.sample_requested)
        self.import_button.clicked.connect(self.import_requested)
        self.add_button.clicked.connect(self.add_requested)
        column = QVBoxLayout()
        for b in (self.sample_button, self.import_button, self.add_button):
            column.addWidget(b)
        buttons = QHBoxLayout()  # one centred column: fits a narrow window too
        buttons.addStretch(1)
        buttons.addLayout(column)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch(2)
