"""The GUI's chat controller: one reply at a time, stoppable, model state reported, closes cleanly."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from app.gui.assistant_controller import LLM_ERROR, LLM_READY, AssistantController
from app.gui.engine_bridge import EngineBridge
from app.gui.messages import Messages
from engine import Memory
from engine.assistant.chat import Conversation
from engine.inference.llm import LoadedModel, ModelKey


class TickingLLM:
    """Yields a word every 20 ms until stopped (a reply that never ends by itself)."""

    context_length = 2048
    info = LoadedModel(ModelKey(Path("/m/ticking.gguf"), 2048, 1, 0), "ticking", "CPU", None, 1, 0)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, cancel: Any = None) -> Iterator[str]:
        for i in range(max_tokens):
            if cancel is not None and cancel.is_cancelled:
                return
            time.sleep(0.02)
            yield f" w{i}"

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        return '{"keep": []}'


@pytest.fixture
def bridge(qtbot, tmp_path: Path, embedder: Any):
    mem = Memory(tmp_path / "s", embedder=embedder, llm=TickingLLM())
    b = EngineBridge(Messages(), mem)
    yield b
    b.close()
    mem.close()


def test_one_reply_at_a_time_and_stop_ends_it(qtbot, bridge) -> None:
    c = AssistantController(bridge)
    conv = Conversation(user_id="u", remember=False)
    pieces: list[str] = []
    c.token_received.connect(pieces.append)
    assert c.send(conv, "Count for me")
    assert c.is_streaming and not c.send(conv, "And again")  # refused while a reply runs
    qtbot.waitUntil(lambda: len(pieces) >= 3, timeout=60_000)
    with qtbot.waitSignal(c.reply_finished, timeout=30_000) as finished:
        c.stop()
    _conv, reply = finished.args
    assert reply.cancelled and 3 <= reply.completion_pieces < 256
    assert not c.is_streaming and c.model_state == LLM_READY and "ticking" in c.model_detail
    c.close()


def test_a_broken_model_file_is_reported_as_an_error_state(qtbot, tmp_path: Path, embedder: Any) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_text("not a model")
    mem = Memory(tmp_path / "s2", {"llm": {"model_path": str(bad)}}, embedder=embedder)
    messages = Messages()
    b = EngineBridge(messages, mem)
    c = AssistantController(b)
    with qtbot.waitSignal(c.model_state_changed, timeout=30_000,
                          check_params_cb=lambda state, _detail: state == LLM_ERROR) as got:
        c.load_model()
    assert "broken.gguf is not a GGUF model file" in got.args[1]
    with qtbot.waitSignal(c.reply_failed, timeout=30_000) as failed:
        assert c.send(Conversation(user_id="u", remember=False), "Hello?")
    assert "broken.gguf" in failed.args[0] and not c.is_streaming
    c.close()
    b.close()
    mem.close()
