"""engine/assistant/legacy.py: the replies and questions an earlier assistant stored are found, statements kept."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import Memory
from engine.assistant.chat import CHAT_PREFIX
from engine.assistant.legacy import chat_leftovers


def test_replies_and_questions_of_old_chats_are_listed_and_statements_are_not(tmp_path: Path,
                                                                               embedder: Any) -> None:
    with Memory(tmp_path / "s", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        run = CHAT_PREFIX + "20240101-000000-abcdef"
        mem.add([{"role": "user", "content": "What do you know about Caroline?"},
                 {"role": "assistant", "content": "Caroline is a 2019-2024 employee of the company in Oslo."}],
                user_id="u", run_id=run, timestamp="2024-01-01T10:00:00Z", infer=True)
        mem.add([{"role": "user", "content": "My dog is called Pixel"}], user_id="u", run_id=run,
                timestamp="2024-01-01T10:05:00Z", infer=True)
        mem.add("Caroline: I went to a support group yesterday", user_id="u", infer=False)  # not a chat
        found = chat_leftovers(mem)
        texts = [r.memory for r in found]
        assert any(t.startswith("What do you know about Caroline") for t in texts)
        assert any("2019-2024 employee" in t for t in texts)
        assert not any("Pixel" in t or "support group" in t for t in texts)
        assert mem.delete_records([r.id for r in found]) == len(found)
        assert chat_leftovers(mem) == [] and any("Pixel" in r.memory for r in mem.list_records())
