"""Integrity checks: the cheap check on open, full reconciliation, doctor's repairs."""
from __future__ import annotations

import random
import shutil

import pytest

from engine import Memory, StoreError
from engine.memory import doctor
from engine.store.integrity import ledger_is_missing, sqlite_problems


def _store(path, embedder, n=30):
    with Memory(path, embedder=embedder) as mem:
        mem.add([{"role": "user", "content": f"fact {i}: I visited city number {i} " + "word " * 40}
                 for i in range(n)], user_id="u", infer=False)
        return [r.id for r in mem.list_records(top_k=1000)]


def test_full_check_finds_missing_and_orphan_vectors_and_repairs_them(tmp_path, embedder):
    ids = _store(tmp_path / "s", embedder)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mem._vectors.delete(ids[:3])
        mem._vectors.upsert(["ghost"], embedder.embed_batch(["ghost"]), [{"user_id": "u"}])
        report = mem.check_integrity(full=True)
        assert (report.rebuilt, report.removed) == (3, 1)
        assert report.rows == report.vectors == 30 and report.is_sound
        assert mem.check_integrity(full=True).problems == ()


def test_cheap_check_is_quiet_on_a_sound_store(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=5)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        assert mem.open_report.problems == () and mem.open_report.rows == 5


def test_wrong_vectors_are_found_by_the_sample_and_re_embedded(tmp_path, embedder):
    ids = _store(tmp_path / "s", embedder, n=5)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mem._vectors.upsert([ids[0]], embedder.embed_batch(["something else entirely"]), [{"user_id": "u"}])
        report = mem.check_integrity(full=True)
        assert "did not match" in report.problems[0] and report.repairs
        assert mem.check_integrity(full=True).problems == ()


def test_doctor_salvages_a_database_with_damaged_pages(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=120)
    db = tmp_path / "s" / "loci.sqlite3"
    with open(db, "r+b") as fh:
        fh.seek(4096 * 4)
        fh.write(random.Random(1).randbytes(4096 * 6))
    assert sqlite_problems(db)
    report = doctor(tmp_path / "s", embedder=embedder)
    assert report.problems and report.repairs and not report.unrepaired
    assert "fresh database" in report.repairs[0]
    assert not sqlite_problems(db)
    assert list((tmp_path / "s" / "backups").glob("damaged-*/loci.sqlite3"))
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        assert 0 < mem.count() <= 120
        assert mem.check_integrity(full=True).rows == mem.count()


def test_doctor_moves_an_unreadable_vector_database_aside_and_rebuilds(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=10)
    (tmp_path / "s" / "chroma" / "chroma.sqlite3").write_bytes(b"\0garbage" * 4096)
    report = doctor(tmp_path / "s", embedder=embedder)
    assert any("moved the damaged vector database" in r for r in report.repairs)
    assert report.rows == report.vectors == 10


def test_doctor_refuses_a_lost_database_and_names_the_backup(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=3)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        snap = mem.backup()
    (tmp_path / "s" / "loci.sqlite3").write_bytes(b"")
    assert ledger_is_missing(tmp_path / "s" / "loci.sqlite3")
    with pytest.raises(StoreError, match=f"loci restore {snap.name}"):
        doctor(tmp_path / "s", embedder=embedder)


def test_doctor_on_a_sound_store_reports_nothing(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=3)
    shutil.rmtree(tmp_path / "s" / "backups", ignore_errors=True)
    report = doctor(tmp_path / "s", embedder=embedder)
    assert report.problems == () and report.rows == report.vectors == 3


def test_quick_check_finds_a_garbled_page_and_stays_within_its_budget(tmp_path):
    import os
    import sqlite3

    from engine.store.integrity import damaged_ledger_error, quick_problems

    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT)")
    db.executemany("INSERT INTO t (text) VALUES (?)", [(f"row {i} " * 20,) for i in range(20_000)])
    db.commit()
    db.close()
    assert quick_problems(path) == []
    middle = (path.stat().st_size // 2) // 4096 * 4096
    with open(path, "r+b") as fh:
        fh.seek(middle)
        fh.write(os.urandom(4096))
    found = quick_problems(path)
    assert found and "loci doctor" in str(damaged_ledger_error(path, found))
    assert quick_problems(path, budget_s=0.0) == []  # stopped at once: left to loci doctor


def test_an_unreadable_chroma_is_moved_under_backups(tmp_path):
    from engine.store.integrity import move_vectors_aside

    (tmp_path / "chroma").write_text("not a folder")
    aside = move_vectors_aside(tmp_path, "File exists")
    assert not (tmp_path / "chroma").exists() and aside.read_text() == "not a folder"
    assert aside.parent.parent.name == "backups" and aside.parent.name.startswith("damaged-")


def test_open_moves_an_unreadable_vector_database_aside_and_rebuilds_it(tmp_path, embedder):
    _store(tmp_path / "s", embedder, n=10)
    (tmp_path / "s" / "chroma" / "chroma.sqlite3").write_bytes(b"\0garbage" * 4096)
    seen = []
    with Memory(tmp_path / "s", embedder=embedder, progress=lambda done, total: seen.append((done, total))) as mem:
        assert mem.open_report.rebuilt == 10 and mem.count() == 10
        assert mem.search("city number 3", user_id="u", top_k=1)["results"]
    assert seen and seen[-1] == (10, 10)  # the rebuild reported its progress
    assert list((tmp_path / "s" / "backups").glob("damaged-*/chroma/chroma.sqlite3"))
