"""Model-file checks as the settings show them: a message naming the file, or None when it loads."""
from __future__ import annotations

from pathlib import Path

from engine.inference.models import default_llm_path, model_file_problem


def test_no_file_chosen_means_the_packaged_default_and_no_problem() -> None:
    assert model_file_problem("") is None
    assert model_file_problem(None) is None


def test_the_packaged_model_has_no_problem() -> None:
    assert model_file_problem(str(default_llm_path())) is None


def test_a_missing_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    problem = model_file_problem(str(tmp_path / "missing.gguf"))
    assert problem is not None
    assert "missing.gguf does not exist" in problem and "leave llm.model_path empty" in problem


def test_a_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    notes = tmp_path / "broken.gguf"
    notes.write_bytes(b"not a model")
    problem = model_file_problem(str(notes))
    assert problem is not None and "broken.gguf is not a GGUF model file" in problem


def test_a_folder_and_a_cut_file_are_refused(tmp_path: Path) -> None:
    assert "is a folder" in (model_file_problem(str(tmp_path)) or "")
    cut = tmp_path / "cut.gguf"
    with default_llm_path().open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(2_000_000))
    assert "cut.gguf" in (model_file_problem(cut) or "")


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mine.gguf").write_bytes(default_llm_path().read_bytes())
    assert model_file_problem("~/mine.gguf") is None
    assert "does not exist" in (model_file_problem("~/other.gguf") or "")
