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
    assert out["stored"] >= 15
    top = {q["query"]: q["results"][0]["memory"] for q in out["queries"]}
    assert "Bergen" in top["Where does Maya's sister live?"]
    assert "Nordlys" in top["Where does Maya work?"]
