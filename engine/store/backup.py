"""Consistent snapshots of a store (SQLite online backup + the Chroma folder), kept N deep, and restore."""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import StoreError
from .vectors import CHROMA_DIR, MANIFEST, WriterLock

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"
LEDGER_FILE = "loci.sqlite3"
INFO_FILE = "snapshot.json"
KEEP = 7  # snapshots kept per store; the oldest go first


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One backup folder: when and why it was taken and how many memories it holds."""

    path: Path
    created_at: datetime
    reason: str
    memories: int

    @property
    def name(self) -> str:
        return self.path.name


def backups_dir(data_dir: Path) -> Path:
    return Path(data_dir) / BACKUP_DIR


def list_snapshots(data_dir: Path) -> list[Snapshot]:
    """Every readable snapshot of a store, newest first (a backup still being written is not one)."""
    root = backups_dir(data_dir)
    out: list[Snapshot] = []
    if not root.is_dir():
        return out
    for folder in root.iterdir():
        info = folder / INFO_FILE
        if folder.name.startswith(".") or not folder.is_dir() or not info.is_file():
            continue  # ".<name>.partial" has its info file just before it is renamed
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
            out.append(Snapshot(folder, datetime.fromisoformat(data["created_at"]),
                                str(data.get("reason", "")), int(data.get("memories", 0))))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("skipping unreadable snapshot %s", folder)
    out.sort(key=lambda s: (s.created_at, s.name), reverse=True)
    return out


def find_snapshot(data_dir: Path, name: str | None) -> Snapshot:
    """A snapshot by folder name (or a path to one); the newest when name is None."""
    snaps = list_snapshots(data_dir)
    if name is None:
        if not snaps:
            raise StoreError(f"There are no backups in {backups_dir(data_dir)}.")
        return snaps[0]
    for snap in snaps:
        if snap.name == name or str(snap.path) == str(name) or snap.path == Path(name).resolve():
            return snap
    known = ", ".join(s.name for s in snaps[:5]) or "none"
    raise StoreError(f"No backup called '{name}' in {backups_dir(data_dir)} (latest: {known}).")


def is_due(data_dir: Path, max_age: timedelta = timedelta(days=1)) -> bool:
    """True when the newest snapshot is older than max_age (or there is none)."""
    snaps = list_snapshots(data_dir)
    return not snaps or datetime.now(timezone.utc) - snaps[0].created_at >= max_age


def schema_version(ledger_path: Path) -> int:
    """The schema number recorded in a ledger file (0 when it is new or unreadable)."""
    if not ledger_path.is_file() or ledger_path.stat().st_size == 0:
        return 0
    try:
        db = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return 0


def create_snapshot(data_dir: Path, *, reason: str, keep: int = KEEP) -> Snapshot:
    """Copy the store into backups/<time>-<reason>/ and drop the oldest beyond keep.

    The ledger is copied with SQLite's online backup API, which gives a consistent copy even
    while another connection has it open; the caller holds the store's write lock, so Chroma
    is not written to meanwhile. SQLite is the source of truth: vectors a snapshot lacks are
    rebuilt from it when the restored store opens.
    """
    data_dir = Path(data_dir)
    ledger = data_dir / LEDGER_FILE
    if not ledger.is_file() or ledger.stat().st_size == 0:
        raise StoreError(f"There is no database in {data_dir} to back up.")
    now = datetime.now(timezone.utc)
    name = f"{now:%Y%m%dT%H%M%S%fZ}-{reason}"
    root = backups_dir(data_dir)
    tmp = root / f".{name}.partial"
    try:
        tmp.mkdir(parents=True)
        memories = _copy_sqlite(ledger, tmp / LEDGER_FILE, count_memories=True)
        chroma = data_dir / CHROMA_DIR
        if chroma.is_dir():
            shutil.copytree(chroma, tmp / CHROMA_DIR, ignore=shutil.ignore_patterns(
                "chroma.sqlite3", "chroma.sqlite3-*"))
            if (chroma / "chroma.sqlite3").is_file():
                _copy_sqlite(chroma / "chroma.sqlite3", tmp / CHROMA_DIR / "chroma.sqlite3")
        if (data_dir / MANIFEST).is_file():
            shutil.copy2(data_dir / MANIFEST, tmp / MANIFEST)
        (tmp / INFO_FILE).write_text(json.dumps({
            "created_at": now.isoformat(), "reason": reason, "memories": memories}), encoding="utf-8")
        os.replace(tmp, root / name)
    except (OSError, sqlite3.Error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"Could not back up the store to {root}: {exc}. Is the disk full?") from exc
    snap = Snapshot(root / name, now, reason, memories)
    log.info("backup %s taken (%d memories)", snap.name, memories)
    prune(data_dir, keep)
    return snap


def prune(data_dir: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the newest `keep` snapshots (and leftovers of interrupted ones)."""
    removed: list[Path] = []
    root = backups_dir(data_dir)
    if root.is_dir():
        for leftover in root.glob(".*.partial"):
            shutil.rmtree(leftover, ignore_errors=True)
    for snap in list_snapshots(data_dir)[max(keep, 1):]:
        shutil.rmtree(snap.path, ignore_errors=True)
        removed.append(snap.path)
    return removed


def restore_snapshot(data_dir: Path, name: str | None = None, *, keep: int = KEEP) -> Snapshot:
    """Replace the store with a snapshot (the newest when name is None); returns it.

    The store must be closed: this takes its write lock. The current state is snapshotted
    first (reason "pre-restore") when its database is readable, so a restore can be undone.
    """
    data_dir = Path(data_dir)
    snap = find_snapshot(data_dir, name)
    lock = WriterLock(data_dir)
    lock.acquire()
    try:
        if (data_dir / LEDGER_FILE).is_file() and (data_dir / LEDGER_FILE).stat().st_size:
            try:
                create_snapshot(data_dir, reason="pre-restore", keep=keep + 1)
            except StoreError as exc:  # a damaged database is why people restore
                log.warning("no pre-restore backup: %s", exc)
        try:
            for stale in (LEDGER_FILE, f"{LEDGER_FILE}-wal", f"{LEDGER_FILE}-shm", MANIFEST):
                (data_dir / stale).unlink(missing_ok=True)
            shutil.rmtree(data_dir / CHROMA_DIR, ignore_errors=True)
            _copy_sqlite(snap.path / LEDGER_FILE, data_dir / LEDGER_FILE)
            if (snap.path / CHROMA_DIR).is_dir():
                shutil.copytree(snap.path / CHROMA_DIR, data_dir / CHROMA_DIR)
            if (snap.path / MANIFEST).is_file():
                shutil.copy2(snap.path / MANIFEST, data_dir / MANIFEST)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Could not restore {snap.name} into {data_dir}: {exc}. The backup is "
                             "untouched; free some space and run the restore again.") from exc
    finally:
        lock.release()
    log.warning("store %s restored from backup %s", data_dir, snap.name)
    return snap


def _copy_sqlite(source: Path, dest: Path, *, count_memories: bool = False) -> int:
    """Copy a SQLite database with the online backup API; optionally count its memories."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
        finally:
            dst.close()
        if count_memories:
            try:
                return int(src.execute("SELECT COUNT(*) FROM memories").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
        return 0
    finally:
        src.close()
