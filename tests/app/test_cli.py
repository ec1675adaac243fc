"""The loci command line against a real store."""
from __future__ import annotations

import json

from app.cli import main


def test_add_search_list_get_history_delete(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    d = ["--data-dir", str(tmp_path)]
    assert main([*d, "--json", "add", "My brother Tom lives in Leeds", "--user", "ana"]) == 0
    mid = json.loads(capsys.readouterr().out)["results"][0]["id"]
    assert main([*d, "search", "where does Tom live", "--user", "ana", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "My brother Tom lives in Leeds" in out and "semantic=" in out
    assert main([*d, "list", "--user", "ana"]) == 0 and mid in capsys.readouterr().out
    assert main([*d, "get", mid]) == 0 and "Leeds" in capsys.readouterr().out
    assert main([*d, "delete", mid]) == 0
    assert main([*d, "history", mid]) == 0
    hist = capsys.readouterr().out
    assert "ADD" in hist and "DELETE" in hist


def test_errors_go_to_stderr_with_exit_code_1(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    assert main(["--data-dir", str(tmp_path), "get", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("loci: No memory with id 'nope'")


def test_demo_answers_its_questions(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    assert main(["--data-dir", str(tmp_path), "--json", "demo"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stored"] >= 14
    assert main(["--data-dir", str(tmp_path), "--json", "list", "--user", "maya", "-k", "100"]) == 0
    stored = {r["memory"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert "Thanks, good night!" not in stored  # pure small talk is not a memory
    top = {q["query"]: q["results"][0]["memory"] for q in out["queries"]}
    assert "Bergen" in top["Where does Maya's sister live?"]
    assert "Nordlys" in top["Where does Maya work?"]


def test_version_prints_the_installed_version_and_the_data_folder(tmp_path, capsys):
    import importlib.metadata

    import pytest

    with pytest.raises(SystemExit) as done:
        main(["--data-dir", str(tmp_path), "--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [f"loci {importlib.metadata.version('loci')}", f"data folder: {tmp_path}"]


def test_export_then_import_into_a_new_store_and_again(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    src, dst, file = ["--data-dir", str(tmp_path / "a")], ["--data-dir", str(tmp_path / "b")], tmp_path / "x.json"
    assert main([*src, "add", "My brother Tom lives in Leeds", "--user", "ana"]) == 0
    assert main([*src, "add", "I play the cello", "--user", "ana"]) == 0
    capsys.readouterr()
    assert main([*src, "export", str(file)]) == 0
    assert capsys.readouterr().out.strip() == f"Exported 2 memories to {file}."
    assert main([*dst, "import", str(file)]) == 0
    assert capsys.readouterr().out.strip() == f"Restored 2 memories from {file}."
    assert main([*dst, "import", str(file)]) == 0
    assert "Restored 0 memories" in capsys.readouterr().out
    assert main([*dst, "--json", "import", "--replace", str(file)]) == 0
    assert json.loads(capsys.readouterr().out) == {"added": 2, "skipped": 0, "removed": 2, "file": str(file)}
    assert main([*dst, "--json", "list", "--user", "ana"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 2


def test_import_of_a_missing_file_fails_with_a_message(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    assert main(["--data-dir", str(tmp_path), "import", str(tmp_path / "nope.json")]) == 1
    assert "nope.json does not exist" in capsys.readouterr().err


def test_list_without_a_scope_shows_every_user(tmp_path, capsys, embedder, monkeypatch):
    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    d = ["--data-dir", str(tmp_path)]
    assert main([*d, "add", "Ana likes tea", "--user", "ana"]) == 0
    assert main([*d, "add", "Bo likes coffee", "--user", "bo"]) == 0
    capsys.readouterr()
    assert main([*d, "list"]) == 0
    out = capsys.readouterr().out
    assert "Ana likes tea" in out and "Bo likes coffee" in out
    assert main([*d, "search", "likes"]) == 0 and "Bo likes coffee" in capsys.readouterr().out


def test_backup_doctor_restore(tmp_path, capsys, embedder, monkeypatch):
    import shutil

    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    d = ["--data-dir", str(tmp_path)]
    assert main([*d, "add", "Ana likes tea", "--user", "ana"]) == 0
    assert main([*d, "backup"]) == 0 and "Backed up 1 memories" in capsys.readouterr().out
    assert main([*d, "--json", "backup", "--list"]) == 0
    name = json.loads(capsys.readouterr().out)["backups"][0]["name"]
    shutil.rmtree(tmp_path / "chroma")
    assert main([*d, "doctor"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt 1 vectors" in out and "healthy: 1 memories, 1 vectors" in out
    (tmp_path / "loci.sqlite3").unlink()
    assert main([*d, "list"]) == 1 and f"loci restore {name}" in capsys.readouterr().err
    assert main([*d, "doctor"]) == 1
    assert main([*d, "restore", name]) == 0 and "Restored" in capsys.readouterr().out
    assert main([*d, "list"]) == 0 and "Ana likes tea" in capsys.readouterr().out


def test_commands_exit_0_without_a_native_crash_at_exit(tmp_path, embedder):
    # `loci list` and `loci export` used to print their output and then abort (exit 134,
    # "terminate called without an active exception") while models loaded in the background.
    import os
    import subprocess
    import sys
    from pathlib import Path

    from engine import Memory

    with Memory(tmp_path / "store", embedder=embedder) as m:
        m.add("My brother Tom lives in Leeds", user_id="ana", infer=False)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), HF_HUB_OFFLINE="1")
    for args in (["list"], ["export", str(tmp_path / "out.json")], ["list"], ["export", str(tmp_path / "out.json")]):
        out = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(tmp_path / "store"), *args],
                             env=env, capture_output=True, text=True, timeout=240)
        assert (out.returncode, out.stderr) == (0, ""), args
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))


def test_doctor_lists_and_deletes_what_an_old_assistant_stored_from_its_replies(tmp_path, capsys, embedder,
                                                                                 monkeypatch):
    from engine import Memory

    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    with Memory(tmp_path, embedder=embedder) as mem:  # as an earlier version stored a chat exchange
        mem.add([{"role": "user", "content": "What do you know about Caroline?"},
                 {"role": "assistant", "content": "Caroline is a 2019-2024 employee of the company."}],
                user_id="u", run_id="assistant-20240101-000000-abcdef", infer=False)
        mem.add("My dog is called Pixel", user_id="u", run_id="assistant-20240101-000000-abcdef", infer=False)
    d = ["--data-dir", str(tmp_path)]
    assert main([*d, "doctor", "--chat-leftovers"]) == 0
    out = capsys.readouterr().out
    assert "2019-2024 employee" in out and "What do you know about Caroline" in out and "Pixel" not in out
    assert "2 memories were stored from assistant replies" in out
    assert main([*d, "doctor", "--chat-leftovers", "--delete"]) == 0
    assert "Deleted 2 memories" in capsys.readouterr().out
    assert main([*d, "list", "--user", "u"]) == 0 and "Pixel" in capsys.readouterr().out


def test_doctor_finishes_moving_an_fp32_store_to_int8_with_progress(tmp_path, capsys, embedder):
    from engine import Memory

    with Memory(tmp_path, embedder=embedder) as mem:  # an fp32 store, as made before int8 was the default
        mem.add([{"role": "user", "content": f"note {i}: the dog ran to park number {i}"} for i in range(40)],
                user_id="ana", infer=False)
    assert main(["--data-dir", str(tmp_path), "doctor"]) == 0
    captured = capsys.readouterr()
    assert "re-embedded with the int8 embedding model (40 memories)" in captured.out
    assert "re-embedding: 40/40" in captured.err
    assert json.loads((tmp_path / "manifest.json").read_text())["embedder"].endswith("@int8")
    assert main(["--data-dir", str(tmp_path), "doctor"]) == 0
    assert "The vectors match the embedder settings (int8)." in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "search", "park number 7", "--user", "ana"]) == 0
    assert "note 7: the dog ran to park number 7" in capsys.readouterr().out.splitlines()[0]
