"""Architectural rules checked, not just written down."""
from __future__ import annotations

import ast
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_qt_or_app():
    offenders = {str(p.relative_to(ENGINE)): bad for p in ENGINE.rglob("*.py")
                 if (bad := _imports(p) & {"PySide6", "PyQt5", "PyQt6", "app"})}
    assert offenders == {}


def test_every_engine_module_says_what_it_does():
    missing = [p.name for p in ENGINE.rglob("*.py") if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_import_engine_stays_light():
    code = ("import sys, engine; heavy = [m for m in ('torch', 'sentence_transformers', 'chromadb', "
            "'llama_cpp', 'spacy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_network_guard_blocks_outside_connections():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(AssertionError, match="network connection"):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()
    with pytest.raises(AssertionError, match="resolve"):
        socket.getaddrinfo("example.com", 443)
