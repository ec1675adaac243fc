"""build.py's pure parts: the ELF alignment check that guards strip, the menu entry."""
from __future__ import annotations

import struct
import sys
from pathlib import Path

from packaging_scripts import load

desktop_entry, load_segments_aligned = load("build").desktop_entry, load("build").load_segments_aligned


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
