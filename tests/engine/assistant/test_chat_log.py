"""engine/assistant/chat_log.py: chats are kept per file, readable by their owner, and survive a cut line."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine import StoreError
from engine.assistant.chat_log import ChatLog, LoggedTurn

T = datetime(2024, 5, 10, 9, 0, tzinfo=timezone.utc)


def test_turns_come_back_in_order_per_user(tmp_path: Path) -> None:
    log = ChatLog(tmp_path)
    log.append("assistant-1", "maya", [LoggedTurn("user", "Hi there, Miso is my cat", T),
                                       LoggedTurn("assistant", "Nice! [1]", T, ("m1",))])
    log.append("assistant-1", "maya", [LoggedTurn("user", "Bye", T)])
    log.append("assistant-2", "tom", [LoggedTurn("user", "Hello", T)])
    turns = log.read("assistant-1", "maya")
    assert [(t.role, t.content) for t in turns] == [("user", "Hi there, Miso is my cat"),
                                                    ("assistant", "Nice! [1]"), ("user", "Bye")]
    assert turns[1].memory_ids == ("m1",) and turns[0].timestamp == T
    assert log.read("assistant-2", "maya") == [] and log.read("nothing-here") == []
    assert log.chat_ids() == ["assistant-1", "assistant-2"]
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "chats" / "assistant-1.jsonl").stat().st_mode) == 0o600
    assert log.delete("assistant-2") and not log.delete("assistant-2")


def test_a_damaged_line_is_skipped_and_a_bad_id_refused(tmp_path: Path) -> None:
    log = ChatLog(tmp_path)
    log.append("c", "maya", [LoggedTurn("user", "one", T)])
    with open(tmp_path / "chats" / "c.jsonl", "a", encoding="utf-8") as f:
        f.write('{"user_id": "maya", "role": "assis')  # a crash cut the last write
    assert [t.content for t in log.read("c")] == ["one"]
    assert log.read("../escape") == []
    with pytest.raises(StoreError, match="chat id"):
        log.append("../escape", "maya", [])
