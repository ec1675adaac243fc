"""Architectural rules checked, not just written down."""
from __future__ import annotations

import ast
import shutil
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


ROOT = ENGINE.parent
ROOMS = [p.parent for p in ENGINE.glob("*/__init__.py")]


def test_the_top_of_engine_holds_only_the_public_surface():
    assert len(list(ENGINE.glob("*.py"))) <= 8


def test_every_room_says_in_one_line_what_it_does_and_may_import():
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((room / "__init__.py").read_text())) or ""
        assert "\n" not in doc.strip() and "import" in doc.lower(), room.name


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    linter = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(linter), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_import_contracts_hold():
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.parametrize("module, line, broken", [
    ("store/ledger.py", "from ..search import bm25", "Engine rooms"),  # a room importing a higher one
    ("errors.py", "from . import memory", "Engine rooms"),
    ("search/fusion.py", "import PySide6", "never imports Qt"),
    ("search/fusion.py", "from . import retrieval", "No import circles"),  # retrieval imports fusion
])
def test_a_change_that_breaks_the_layout_is_caught(tmp_path, module, line, broken):
    for part in ("engine", "app"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "engine" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    out = _lint_imports(tmp_path)
    assert out.returncode != 0
    summary = " ".join(out.stdout.split()).split("Contracts", 1)[-1]  # "<name> KEPT <name> BROKEN ..."
    after = summary[summary.index(broken):]
    assert min(after.find(w) for w in ("KEPT", "BROKEN") if w in after) == after.find("BROKEN"), out.stdout[-3000:]
