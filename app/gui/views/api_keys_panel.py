"""Settings' API keys: keys limited to one user, listed, created (shown once) and revoked."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QCheckBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout)

from engine import LociError
from engine.service.keys import create_scoped_key, list_scoped_keys, revoke_scoped_key


class ApiKeysPanel(QGroupBox):
    """The data folder's scoped keys (engine/service/keys.py); the owner key is not shown here."""

    def __init__(self, data_dir: Path, parent: Any = None) -> None:
        super().__init__("API keys for one user (REST API and MCP)", parent)
        self.data_dir = Path(data_dir)
        self.keys = QListWidget()
        self.keys.setAccessibleName("Scoped API keys")
        self.keys.setMaximumHeight(90)
        self.user = QLineEdit(placeholderText="user, e.g. alice")
        self.user.setAccessibleName("User the new key is limited to")
        self.read_only = QCheckBox("Read-only")
        self.create_button = QPushButton("Create key")
        self.create_button.clicked.connect(self.create)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.clicked.connect(self.revoke)
        self.message = QLabel(wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.user, 1)
        row.addWidget(self.read_only)
        row.addWidget(self.create_button)
        row.addWidget(self.revoke_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.keys)
        layout.addLayout(row)
        layout.addWidget(self.message)
        self.refresh()

    def refresh(self) -> None:
        self.keys.clear()
        try:
            found = list_scoped_keys(self.data_dir)
        except LociError as exc:
            self.message.setText(exc.user_message)
            return
        for key in found:
            item = QListWidgetItem(f"{key.scope.describe()} · created {key.created_at[:10]} · id {key.id}")
            item.setData(Qt.ItemDataRole.UserRole, key.id)
            self.keys.addItem(item)
        self.revoke_button.setEnabled(bool(found))

    def create(self) -> None:
        user = self.user.text().strip()
        if not user:
            self.message.setText("Type the user the key may reach, then Create key.")
            return
        try:
            key, token = create_scoped_key(self.data_dir, user, read_only=self.read_only.isChecked())
        except LociError as exc:
            self.message.setText(exc.user_message)
            return
        QApplication.clipboard().setText(token)
        self.message.setText(f"New key for {key.scope.describe()} (copied; shown only now):\n{token}")
        self.user.clear()
        self.refresh()

    def revoke(self) -> None:
        item = self.keys.currentItem() or self.keys.item(0)
        if item is None:
            return
        try:
            gone = revoke_scoped_key(self.data_dir, item.data(Qt.ItemDataRole.UserRole))
        except LociError as exc:
            self.message.setText(exc.user_message)
            return
        self.message.setText(f"Revoked the key for {gone.scope.describe()}: it stops working at once.")
        self.refresh()
