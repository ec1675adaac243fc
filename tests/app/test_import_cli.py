"""`loci import`: ChatGPT/Claude exports (.zip) under the user asked for, re-import adds 0, progress text."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from app.cli import main
from app.import_cli import ProgressMeter

DATA = Path(__file__).resolve().parents[1] / "data"


def _zip(tmp_path: Path, source: str) -> Path:
    out = tmp_path / f"{source}.zip"
    with zipfile.ZipFile(out, "w") as z:
        z.write(DATA / source, "conversations.json")
    return out


def test_cli_imports_a_chatgpt_zip_for_the_user_and_a_second_run_adds_nothing(tmp_path, capsys, embedder,
                                                                            monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    d = ["--data-dir", str(tmp_path / "store")]
    archive = _zip(tmp_path, "chatgpt_conversations.json")
    assert main([*d, "--json", "import", str(archive), "--user", "maya", "--name", "Maya"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["added"], out["messages"], out["sessions"], out["user_id"]) == (5, 5, 2, "maya")
    assert "2 conversations, 5 messages, 2024-04-13 to 2024-04-24" in captured.err
    assert "5 / 5 messages (100%)" in captured.err
    assert main([*d, "--json", "list", "--user", "maya", "-k", "20"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert {r["run_id"] for r in rows} == {"chatgpt-c-oslo", "chatgpt-c-untitled"}
    users = [r for r in rows if r["role"] == "user"]
    assert len(users) == 3 and {r["actor_id"] for r in users} == {"Maya"}  # the user's name on their episodes
    assert all(r["metadata"]["source"] == "chatgpt" for r in rows)
    assert main([*d, "import", str(archive), "--user", "maya"]) == 0
    out_text = capsys.readouterr().out
    assert "Imported 0 memories" in out_text and "5 messages were already imported" in out_text
    assert main([*d, "--json", "import", str(archive), "--user", "ingrid"]) == 0  # another person's copy
    assert json.loads(capsys.readouterr().out)["added"] == 5


def test_cli_imports_a_claude_export_and_refuses_other_json_with_what_it_expected(tmp_path, capsys, embedder,
                                                                                monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    d = ["--data-dir", str(tmp_path / "store")]
    assert main([*d, "--json", "import", str(DATA / "claude_conversations.json")]) == 0
    assert json.loads(capsys.readouterr().out)["user_id"] == "default"
    other = tmp_path / "weird.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    assert main([*d, "import", str(other)]) == 1
    err = capsys.readouterr().err
    assert "weird.json is not a file Loci can import: expected a ChatGPT export" in err and "'chat_messages'" in err


def test_progress_tells_rate_and_time_left_counting_only_new_messages() -> None:
    out = io.StringIO()
    now = [100.0]
    meter = ProgressMeter(out, clock=lambda: now[0])
    meter(2000, 12000)  # 2,000 already imported: the rate starts from here
    now[0] = 110.0
    assert meter.rate.describe(4000, 12000, now[0]) == "4,000 / 12,000 messages (33%), 200 messages/s, 0:40 left"
    meter(12000, 12000)
    assert out.getvalue().splitlines()[-1].startswith("12,000 / 12,000 messages (100%), 1,000 messages/s")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fed(out: io.StringIO, steps: list[tuple[float, int, int]]) -> ProgressMeter:
    """A ProgressMeter on a fake clock, given its (time, done, total) steps in order."""
    now = [0.0]
    meter = ProgressMeter(out, clock=lambda: now[0])
    for when, done, total in steps:
        now[0] = when
        meter(done, total)
    return meter


def test_on_a_terminal_a_shorter_line_blanks_what_the_longer_one_before_it_left() -> None:
    out = Terminal()
    fed(out, [(100.0, 0, 1500), (110.0, 968, 1500),  # "..., 0:05 left"
              (111.0, 1500, 1500)])  # no time left: a shorter line
    lines = out.getvalue().split("\r")
    assert lines[-1].startswith("1,500 / 1,500 messages (100%)") and "left" not in lines[-1]
    assert len(lines[-1]) >= len(lines[-2])  # written over the whole of the line before


def test_a_stopped_import_ends_on_the_count_it_reached_without_a_time_left() -> None:
    out = Terminal()
    meter = fed(out, [(100.0, 0, 10000), (110.0, 4192, 10000),  # printed: "..., 0:13 left"
                      (110.2, 4236, 10000)])  # the add beside it finished within half a second: not printed yet
    assert "4,236" not in out.getvalue()
    meter.close(stopped=True)
    last = out.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("4,236 / 10,000 messages (42%)") and "left" not in last


def test_a_finished_import_prints_its_last_line_once() -> None:
    out = io.StringIO()
    fed(out, [(100.0, 0, 50), (101.0, 50, 50)]).close()
    assert [line.split(" ")[0] for line in out.getvalue().splitlines()] == ["0", "50"]
