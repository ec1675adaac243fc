"""`loci chat` driven through stdin with the real packaged model, and `loci models`."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.cli import main
from engine import Memory
from engine.inference.llm import loaded_model
from engine.inference.models import default_llm_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_embedder(embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    return embedder


def chat(tmp_path: Path, lines: list[str], *extra: str) -> str:
    out = io.StringIO()
    stdin = io.StringIO("".join(line + "\n" for line in lines))
    from app import chat_cli

    args = ["--data-dir", str(tmp_path / "store"), "chat", "--user", "maya", *extra]
    parsed = __import__("app.cli", fromlist=["_parser"])._parser().parse_args(args)
    assert chat_cli.run_chat(parsed, stdin=stdin, out=out) == 0
    return out.getvalue()


def test_chat_streams_remembers_lists_and_forgets(tmp_path: Path, cli_embedder) -> None:
    copy = tmp_path / "second-model.gguf"
    shutil.copy(default_llm_path(), copy)
    text = chat(tmp_path, ["I have a dog called Rex and I live in Oslo.", "I have a cat called Miso.",
                           "/memories", "/forget 1",
                           "What is my dog called?", "/memories", "/model nowhere-model", f"/model {copy}",
                           "/new", "My sister Ingrid lives in Bergen.", "/help", "/quit"])
    assert text.startswith("Loci chat as 'maya' with SmolLM2-135M-Instruct.Q4_1.gguf on CPU.")
    assert text.count("you> ") >= 4 and text.count("loci> ") >= 4  # four replies streamed (a statement's
    # unchecked reply is followed by "loci> Noted.")
    assert text.count("forget that: /forget") == 3  # every stated fact announced, the question never
    remembered = text.split("Remembered from this chat:")[1].split("you>")[0]
    assert "Miso" in remembered
    forgot = text.split("Forgot: ")[1].split("\n")[0]
    assert "No model file or known model named 'nowhere-model'" in text
    assert "Switched to second-model.gguf on CPU." in text
    assert loaded_model().key.path == copy.resolve()  # the next reply ran on the model picked
    assert "/forget N" in text and "Ctrl-C stops a reply" in text  # /help
    with Memory(tmp_path / "store", embedder=cli_embedder) as mem:
        texts = [r.memory for r in mem.list_records(filters={"user_id": "maya"})]
        assert forgot not in texts and texts  # forgotten, while the rest was kept
        runs = {r.scope.run_id for r in mem.list_records(filters={"user_id": "maya"})}
        assert len(runs) == 2 and all(r.startswith("assistant-") for r in runs)  # /new began a new session
        assert not any("dog called?" in t for t in texts)  # the question stays in the chat log
        assert mem.list_records(filters={"user_id": "maya", "role": "assistant"}) == []


def test_no_remember_stores_nothing(tmp_path: Path, cli_embedder) -> None:
    text = chat(tmp_path, ["My PIN is 4711 and my dog is Rex.", "/memories"], "--no-remember")
    assert "Incognito: nothing of this chat is stored." in text
    with Memory(tmp_path / "store", embedder=cli_embedder) as mem:
        assert mem.count() == 0 and mem.messages() == []


def test_models_lists_the_packaged_model(capsys) -> None:
    assert main(["--json", "models"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["name"] == "SmolLM2-135M-Instruct.Q4_1" and found[0]["quantization"] == "Q4_1"
    assert found[0]["context_length"] == 8192 and found[0]["has_chat_template"]
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct.Q4_1" in table
    assert table.rstrip().splitlines()[-1].startswith(("Better answers: ", "For better answers, add"))


def test_ctrl_c_stops_a_reply_without_leaving(tmp_path: Path) -> None:
    env = {**os.environ, "LOCI_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "chat", "--no-remember"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    buf: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        while ch := proc.stdout.read(1):
            buf.append(ch)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(pattern: str, after: int = 0, timeout: float = 120) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            at = "".join(buf).find(pattern, after)
            if at >= 0:
                return at
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} never came; output: {''.join(buf)!r}")

    try:
        assert proc.stdin is not None
        wait_for("you> ")
        proc.stdin.write("Write a very long story about a dragon who loves the sea.\n")
        proc.stdin.flush()
        start = wait_for("loci> ")
        end = time.monotonic() + 60
        while len("".join(buf)) < start + 12 and time.monotonic() < end:  # a few words streamed
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        wait_for("[stopped]", start)
        stopped = wait_for("you> ", start)
        proc.stdin.write("/help\n/quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0  # still alive after Ctrl-C: it read /help and /quit
        reader.join(timeout=5)
        assert "Ctrl-C stops a reply" in "".join(buf)[stopped:]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_retold_reply_is_printed_as_shown() -> None:
    from app.chat_cli import _show_grounding
    from engine.assistant.chat import ChatReply

    def reply(text: str, streamed: str) -> list[str]:
        said: list[str] = []
        _show_grounding(ChatReply(text, (), (), False, 0, 0, 1, 0.1, 0.2, None, streamed=streamed), said.append)
        return said

    # the stream said "Melanie: My daughter's birthday."; what answer() shows is printed after it
    assert reply("Melanie's daughter's birthday. [1]", "Melanie: My daughter's birthday.") == [
        "loci> Melanie's daughter's birthday. [1]"]
    assert reply("Bergen [1]", "Bergen") == []  # only the citation added: nothing to print again


def test_a_stated_fact_is_announced_under_its_own_reply(tmp_path: Path, cli_embedder) -> None:
    # seen in tmux: "(remembered: ...cat is called Miso...)" printed under the next question's reply
    text = chat(tmp_path, ["My cat is called Miso.", "My dog is called Pixel.", "/quit"])
    turns = text.split("you> ")
    assert "Miso" in turns[1].split("forget that")[0] and "/forget 1" in turns[1]
    assert "Pixel" in turns[2].split("forget that")[0] and "/forget 2" in turns[2]
