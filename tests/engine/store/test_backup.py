"""Snapshots: consistent copies, kept N deep, restored (after a pre-restore snapshot)."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from engine import Memory, StoreError
from engine.store.backup import (create_snapshot, find_snapshot, is_due, list_snapshots, restore_snapshot,
                           schema_version)


def test_snapshot_restore_round_trip(tmp_path, embedder):
    store = tmp_path / "s"
    with Memory(store, embedder=embedder) as mem:
        keep = mem.add("I like tea", user_id="u", infer=False)["results"][0]["id"]
        snap = mem.backup()
        mem.add("I like coffee", user_id="u", infer=False)
        mem.delete(keep)
    assert snap.memories == 1 and (snap.path / "loci.sqlite3").is_file() and (snap.path / "chroma").is_dir()
    restored = restore_snapshot(store, snap.name)
    assert restored.name == snap.name
    with Memory(store, embedder=embedder) as mem:
        assert [r["memory"] for r in mem.get_all(user_id="u")["results"]] == ["I like tea"]
        assert mem.open_report.rows == mem.open_report.vectors == 1
    reasons = [s.reason for s in list_snapshots(store)]
    assert reasons[0] == "pre-restore" and "manual" in reasons
    pre = find_snapshot(store, None)
    assert pre.memories == 1  # the state just before the restore: coffee only


def test_only_the_newest_snapshots_are_kept(tmp_path, embedder):
    store = tmp_path / "s"
    with Memory(store, embedder=embedder) as mem:
        mem.add("I like tea", user_id="u", infer=False)
        names = [mem.backup(keep=3).name for _ in range(5)]
    assert [s.name for s in list_snapshots(store)] == names[::-1][:3]
    assert not is_due(store)


def test_a_backup_still_being_written_is_not_listed(tmp_path, embedder):
    store = tmp_path / "s"
    with Memory(store, embedder=embedder) as mem:
        mem.add("I like tea", user_id="u", infer=False)
        done = mem.backup()
    partial = done.path.parent / f".{done.name}x.partial"  # as create_snapshot leaves it just before the rename
    shutil.copytree(done.path, partial)
    assert [s.name for s in list_snapshots(store)] == [done.name]
    assert find_snapshot(store, None).name == done.name


def test_restore_needs_the_store_closed_and_a_known_name(tmp_path, embedder):
    store = tmp_path / "s"
    with Memory(store, embedder=embedder) as mem:
        mem.add("I like tea", user_id="u", infer=False)
        mem.backup()
        with pytest.raises(StoreError, match="already open"):
            restore_snapshot(store)
    with pytest.raises(StoreError, match="No backup called 'nope'"):
        restore_snapshot(store, "nope")
    assert is_due(tmp_path / "empty") and not list_snapshots(tmp_path / "empty")


def test_a_migration_is_preceded_by_a_backup(tmp_path, embedder):
    store = tmp_path / "s"
    with Memory(store, embedder=embedder) as mem:
        mem.add("I like tea", user_id="u", infer=False)
    db = sqlite3.connect(store / "loci.sqlite3")
    db.execute("DROP TABLE entity_links")
    db.execute("PRAGMA user_version = 1")  # as written by a Loci before migration 2
    db.commit()
    db.close()
    assert schema_version(store / "loci.sqlite3") == 1
    with Memory(store, embedder=embedder) as mem:
        assert mem.count() == 1
    snaps = list_snapshots(store)
    assert [s.reason for s in snaps] == ["pre-migration"]
    assert schema_version(snaps[0].path / "loci.sqlite3") == 1


def test_nothing_to_back_up_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="no database"):
        create_snapshot(tmp_path, reason="manual")
