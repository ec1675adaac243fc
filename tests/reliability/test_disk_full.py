"""A full disk: every call completes or raises a LociError, none hangs, nothing acknowledged is lost.

Two ways to run out of space: a small tmpfs filled up (needs root to mount), and, anywhere, a
cap on file size (RLIMIT_FSIZE) so every write that grows a file fails as on a full disk.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import open_and_report, read_log, record, spawn

SIZE_MB = 48
HANG_S = 150  # the worker's own write timeout is 15 s per call; far beyond this is a hang


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB tmpfs (needs root); None where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    filler = mount / "filler"
    size = shutil.disk_usage(mount).free - leave
    with open(filler, "wb") as fh:
        if size > 0:
            os.posix_fallocate(fh.fileno(), 0, size)
    return filler


def _largest_file(folder: Path) -> int:
    return max(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _run(tmp_path: Path, mount: Path, leave: int, space_check: bool, seed: int,
         cap_files: bool = False) -> None:
    store = mount / "store"
    log = tmp_path / f"calls-{seed}.log"
    extra = () if space_check else ("no-space-check",)
    first = spawn("diskfull", store, log, seed)  # plenty of space: a store with a few memories
    assert first.wait(timeout=HANG_S) == 0, first.stderr.read()[-2000:]
    first.stderr.close()
    filler = _fill(mount, leave) if not cap_files else None
    cap = _largest_file(store) + leave if cap_files else None
    starved = spawn("diskfull", store, log, seed + 1, *extra, max_file_bytes=cap)
    try:
        starved.wait(timeout=HANG_S)
        hung = 0
    except subprocess.TimeoutExpired:
        starved.kill()
        starved.wait()
        hung = 1
    starved.stderr.close()
    entries = read_log(log)
    raw = [e for e in entries if e[0] == "RAW"]
    record("disk-full runs")
    record("disk-full runs that hung", hung)
    record("disk-full raw errors leaked", len(raw))
    if filler is not None:
        filler.unlink()
    report = open_and_report(store, tmp_path / f"check-{seed}.log")
    assert report[0] == "OPEN", report
    rows_now = [e for e in read_log(tmp_path / f"check-{seed}.log") if e[0] == "ROWS"][-1][1]
    expected: dict[str, str | None] = {}
    for e in entries:
        if e[0] == "ACK" and e[1] == "add":
            expected[e[2]] = None
        elif e[0] == "ACK" and e[1] == "update":
            expected[e[2]] = e[3]
        elif e[0] == "ACK" and e[1] == "delete":
            expected.pop(e[2], None)
            expected[e[2]] = "<deleted>"
    lost = [mid for mid, text in expected.items()
            if (text == "<deleted>" and mid in rows_now)
            or (text != "<deleted>" and (mid not in rows_now or text not in (None, rows_now[mid])))]
    record("disk-full acknowledged writes lost", len(lost))
    assert not hung and not raw and not lost, (hung, raw, lost)
    assert report[1] == report[2] == len(rows_now)  # rows == vectors after the disk has room again
    if (space_check or leave < 1024 * 1024) and not (cap_files and leave):
        assert any(e[0] == "LOCI" for e in entries), "the disk was never full enough to refuse a write"


def test_full_disk_gives_store_errors_and_loses_nothing(tmp_path, small_disk):
    """A full tmpfs where root may mount one, else files that cannot grow."""
    if small_disk is None:
        _run(tmp_path, tmp_path, leave=0, space_check=False, seed=150, cap_files=True)
    else:
        _run(tmp_path, small_disk, leave=0, space_check=False, seed=100)


@pytest.mark.reliability
@pytest.mark.parametrize("leave", [0, 4096, 65536])
def test_files_that_cannot_grow_at_many_levels(tmp_path, leave):
    _run(tmp_path, tmp_path, leave=leave, space_check=False, seed=300 + leave % 991, cap_files=True)


@pytest.mark.reliability
@pytest.mark.parametrize("leave", [0, 64 * 1024, 1024 * 1024, 6 * 1024 * 1024])
@pytest.mark.parametrize("space_check", [True, False])
def test_full_disk_at_many_levels(tmp_path, small_disk, leave, space_check):
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here (needs root); the file-size cap runs instead")
    _run(tmp_path, small_disk, leave=leave, space_check=space_check, seed=200 + leave % 997)


def test_delete_frees_space_on_a_full_disk(small_disk, hash_embedder):
    """Below the free-space floor, adds are refused but deletes work: a person can make room."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    from engine import Memory, StoreError

    store = small_disk / "store"
    with Memory(store, embedder=hash_embedder) as mem:
        mem.add([{"role": "user", "content": f"memory {i} about tea"} for i in range(60)], user_id="u1",
                infer=False)
        mem.add("Bob's note", user_id="bob", infer=False)
        ids = [r.id for r in mem.list_records(filters={"user_id": "u1"}, top_k=100)]
    filler = _fill(small_disk, 1024 * 1024)  # 1 MB left: far below the 32 MB Loci keeps free
    try:
        with Memory(store, embedder=hash_embedder) as mem:
            with pytest.raises(StoreError, match="Not enough free disk space"):
                mem.add("one more", user_id="u1", infer=False)
            assert mem.delete(ids[0]) == {"message": "Memory deleted successfully!"}
            assert mem.delete_records(ids[1:30]) == 29
            mem.delete_all(user_id="u1")
            assert mem.count({"user_id": "u1"}) == 0 and mem.get(ids[0]) is None
        with Memory(store, embedder=hash_embedder) as mem:  # the deletes were durable
            assert mem.count({"user_id": "u1"}) == 0 and mem.count({"user_id": "bob"}) == 1
            report = mem.check_integrity(full=True)
            assert report.rows == report.vectors == 1
    finally:
        filler.unlink()
