"""smoke_clients.py against the source checkout's `loci`: the REST API and MCP checks pass, a broken command fails."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging_scripts import load

clients = load("smoke_clients")
ROOT = Path(__file__).resolve().parents[2]
LOCI = [sys.executable, "-m", "app.cli"]


def test_serve_adds_and_finds_a_memory_over_http(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert clients.serve(LOCI) == 0
    printed = capsys.readouterr().out
    assert "FAIL" not in printed and "POST /search finds it first (200): My neighbour Ottilie" in printed


def test_mcp_lists_the_tools_and_searches_the_store(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    subprocess.run([*LOCI, "add", clients.FACT, "--user", "smoke"], check=True, capture_output=True, timeout=120)
    assert clients.mcp(LOCI) == 0
    printed = capsys.readouterr().out
    assert "FAIL" not in printed and "add_memory, search_memories" in printed


def test_a_command_that_is_not_loci_fails_the_check(capsys):
    assert clients.serve([sys.executable, "-c", "import sys; sys.exit(3)"]) == 1
    assert "FAIL  loci api-key" in capsys.readouterr().out
