"""The Settings panel for scoped API keys: create (shown once, works), list, revoke (stops working)."""
from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui.views.api_keys_panel import ApiKeysPanel
from engine.service.keys import KeyRing, KeyScope, list_scoped_keys


def test_create_list_and_revoke_a_key(qtbot, tmp_path):
    panel = ApiKeysPanel(tmp_path)
    qtbot.addWidget(panel)
    assert panel.keys.count() == 0 and not panel.revoke_button.isEnabled()
    qtbot.mouseClick(panel.create_button, Qt.MouseButton.LeftButton)
    assert "Type the user" in panel.message.text() and not list_scoped_keys(tmp_path)
    panel.user.setText("alice")
    panel.read_only.setChecked(True)
    qtbot.mouseClick(panel.create_button, Qt.MouseButton.LeftButton)
    token = panel.message.text().splitlines()[-1]
    assert token.startswith("loci-s-") and "shown only now" in panel.message.text()
    assert KeyRing(tmp_path).identify(token) == (True, KeyScope("alice", None, True))
    assert panel.keys.count() == 1 and "user 'alice' (read-only)" in panel.keys.item(0).text()
    panel.keys.setCurrentRow(0)
    qtbot.mouseClick(panel.revoke_button, Qt.MouseButton.LeftButton)
    assert panel.keys.count() == 0 and "Revoked" in panel.message.text()
    assert KeyRing(tmp_path).identify(token) == (False, None)
