"""build.py: the ELF alignment check that guards strip, the menu entry, the staged ONNX embedder."""
from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

from packaging_scripts import load

from engine.config import EmbedderConfig
from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir
from engine.inference.onnx_embedder import default_embedder, onnx_path

build = load("build")
desktop_entry, load_segments_aligned = build.desktop_entry, build.load_segments_aligned


def _elf(segments: list[tuple[int, int, int]]) -> bytes:
    """A minimal ELF64 LE header with PT_LOAD program headers (offset, vaddr, align)."""
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x20, 64)
    struct.pack_into("<HH", head, 0x36, 56, len(segments))
    for offset, vaddr, align in segments:
        head += struct.pack("<IIQQQQQQ", 1, 5, offset, vaddr, vaddr, 100, 100, align)
    return bytes(head)


def test_page_aligned_segments_pass_and_a_shifted_one_fails():
    assert load_segments_aligned(_elf([(0, 0, 0x1000), (0x2000, 0x3000, 0x1000)]))
    assert not load_segments_aligned(_elf([(0, 0, 0x1000), (0x2010, 0x3000, 0x1000)]))


def test_a_real_system_library_passes():
    lib = next(p for p in (Path("/bin/ls"), Path(sys.executable).resolve()) if p.exists())
    assert load_segments_aligned(lib.read_bytes()[:65536])


def test_non_elf_files_are_not_judged():
    assert load_segments_aligned(b"#!/bin/sh\necho hi\n")


def test_menu_entry_starts_the_gui():
    entry = desktop_entry("/usr/bin/loci-gui", "loci")
    assert entry.startswith("[Desktop Entry]\n")
    assert "Exec=/usr/bin/loci-gui %U\n" in entry and "Icon=loci\n" in entry and "Type=Application\n" in entry


def test_the_staged_embedder_ships_onnx_instead_of_torch_weights_and_gives_the_same_vectors(tmp_path):
    default_embedder(EmbedderConfig(precision="fp32")).load()  # the venv's export of the packaged model
    exported = onnx_path(packaged_model_dir(DEFAULT_EMBEDDER))
    calls = []

    def export(source: Path, target: Path) -> None:  # the torch export is what the venv already made
        calls.append(source)
        shutil.copy(exported, target)

    staged = build.stage_embedder(tmp_path, export=export)
    assert calls == [packaged_model_dir(DEFAULT_EMBEDDER)]
    names = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"onnx/model.onnx", "onnx/model_int8.onnx", "tokenizer.json", "modules.json", "1_Pooling/config.json",
            "config.json"} <= names
    # an installed app runs the shipped int8 file: no quantizer in the bundle
    # (int8 weight matrices; the word embedding tables stay fp32)
    assert (staged / "onnx" / "model_int8.onnx").stat().st_size < (staged / "onnx" / "model.onnx").stat().st_size * 0.7
    assert not [n for n in names if n.endswith((".safetensors", ".bin"))]
    assert build.check_embedder(staged) < 1e-5
