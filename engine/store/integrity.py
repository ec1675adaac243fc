"""Store integrity: the cheap check on open, rebuilding vectors from SQLite, and `loci doctor`."""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..inference.embeddings import Embedder
from ..errors import StoreError
from .ledger import Ledger
from .vectors import CHROMA_DIR, VectorStore, WriterLock, forget_chroma_system, vector_meta

log = logging.getLogger(__name__)

LEDGER_FILE = "loci.sqlite3"
REBUILD_BATCH = 256
SAMPLE = 100  # memories whose vectors a full check re-embeds and searches for
QUICK_CHECK_BUDGET_S = 3.0  # PRAGMA quick_check on open stops after this (bench/quick_check_bench.py)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What a check found and what it repaired (empty problems: the store is sound)."""

    rows: int
    vectors: int
    rebuilt: int = 0  # vectors re-embedded from SQLite
    removed: int = 0  # vectors without a memory, deleted
    problems: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()
    unrepaired: tuple[str, ...] = field(default=())
    index_broken: bool = False  # searching for a memory's own vector does not find it

    @property
    def is_sound(self) -> bool:
        return not self.unrepaired


def ledger_is_missing(path: Path) -> bool:
    """No SQLite file, or one emptied to 0 bytes."""
    return not path.is_file() or path.stat().st_size == 0


def missing_ledger_error(data_dir: Path) -> StoreError:
    from .backup import backups_dir, list_snapshots

    snaps = list_snapshots(data_dir)
    where = (f"The newest backup is {snaps[0].name} ({snaps[0].memories} memories): run "
             f"`loci restore {snaps[0].name}` to bring it back."
             if snaps else f"No backups were found in {backups_dir(data_dir)}; restore "
             f"{data_dir / LEDGER_FILE} from your own backup.")
    return StoreError(f"The memory database {data_dir / LEDGER_FILE} is missing or empty, but the "
                      f"vector database beside it still holds memories, so this store has lost its "
                      f"main file. Loci will not start it empty over the vectors. {where}")


def reconcile(ledger: Ledger, vectors: VectorStore, embedder: Embedder, *, full: bool = False,
              progress: Progress | None = None) -> IntegrityReport:
    """Make the vectors match the SQLite rows (the source of truth).

    The cheap form compares counts and reads one vector back; ids are compared only when
    the counts differ or full=True. Missing vectors are re-embedded, orphans deleted.
    """
    rows = ledger.count()
    count = vectors.count()
    if not full:
        vectors.probe()
        if rows == count:
            return IntegrityReport(rows, count)
    row_ids = set(ledger.ids())
    vector_ids = set(vectors.ids())
    missing = sorted(row_ids - vector_ids)
    orphans = sorted(vector_ids - row_ids)
    problems: list[str] = []
    repairs: list[str] = []
    if orphans:
        problems.append(f"{len(orphans)} vectors had no memory")
        vectors.delete(orphans)
        repairs.append(f"deleted {len(orphans)} vectors without a memory")
        log.warning("integrity: deleted %d orphan vectors", len(orphans))
    if missing:
        problems.append(f"{len(missing)} of {len(row_ids)} memories had no vector")
        log.warning("integrity: rebuilding %d missing vectors from SQLite", len(missing))
        rebuild_vectors(ledger, vectors, embedder, missing, progress=progress)
        repairs.append(f"rebuilt {len(missing)} vectors from the database")
    index_broken = False
    if full and row_ids:
        wrong, unfound = _sample_vectors(ledger, vectors, embedder, sorted(row_ids))
        if wrong:
            problems.append(f"{len(wrong)} sampled vectors did not match their memory's text")
            rebuild_vectors(ledger, vectors, embedder, wrong)
            repairs.append(f"re-embedded {len(wrong)} memories whose vectors were wrong")
        if unfound:
            problems.append(f"searching for {unfound} sampled memories by their own vector did not "
                            "find them: the vector index is damaged")
            index_broken = True
    return IntegrityReport(len(row_ids), vectors.count(), len(missing), len(orphans),
                           tuple(problems), tuple(repairs), index_broken=index_broken)


def _sample_vectors(ledger: Ledger, vectors: VectorStore, embedder: Embedder,
                    ids: list[str]) -> tuple[list[str], int]:
    """Re-embed a spread sample: ids whose stored vector differs, and how many self-searches miss."""
    step = max(1, len(ids) // SAMPLE)
    sample = ids[::step][:SAMPLE]
    records = ledger.get_many(sample)
    texts = [records[i].memory for i in sample if i in records]
    fresh = embedder.embed_batch(texts)
    stored = vectors.vectors(sample)
    wrong: list[str] = []
    unfound = 0
    for mid, vec in zip([i for i in sample if i in records], fresh):
        have = stored.get(mid)
        if have is None or float(have @ vec) < 0.99:
            wrong.append(mid)
            continue
        if mid not in {hit for hit, _ in vectors.query(vec, 5)}:
            unfound += 1
    return wrong, unfound


def rebuild_vectors(ledger: Ledger, vectors: VectorStore, embedder: Embedder, ids: list[str], *,
                    progress: Progress | None = None) -> None:
    """Embed the given memories again and write their vectors, in batches, with progress."""
    done = 0
    for start in range(0, len(ids), REBUILD_BATCH):
        chunk = ids[start:start + REBUILD_BATCH]
        records = [r for r in ledger.get_many(chunk).values()]
        if records:
            vecs = embedder.embed_batch([r.memory for r in records])
            vectors.upsert([r.id for r in records], vecs, [vector_meta(r) for r in records])
        done += len(chunk)
        log.info("integrity: rebuilt %d of %d vectors", done, len(ids))
        if progress is not None:
            progress(done, len(ids))


def sqlite_problems(path: Path) -> list[str]:
    """PRAGMA integrity_check of a database file: [] when it is sound."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def quick_problems(path: Path, budget_s: float = QUICK_CHECK_BUDGET_S) -> list[str]:
    """PRAGMA quick_check of a database, stopped after budget_s seconds: [] when sound (or not finished).

    quick_check reads every page (not the index contents integrity_check compares), so a garbled
    page is found when the store opens rather than at the first search that reads it. On a store
    too large to check within the budget the rest is left to `loci doctor` (logged).
    """
    deadline = time.monotonic() + budget_s
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    try:
        db.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
        rows = db.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc).lower():
            log.info("quick check of %s stopped after %.1f s; `loci doctor` checks it fully", path, budget_s)
            return []
        return [str(exc)]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        db.close()
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def damaged_ledger_error(path: Path, problems: list[str]) -> StoreError:
    return StoreError(f"The memory database {path} is damaged ({'; '.join(problems[:2])}). Run `loci doctor` "
                      "to copy everything still readable into a fresh database, or `loci restore` to go "
                      "back to a backup.")


def move_vectors_aside(data_dir: Path, why: str) -> Path:
    """Move an unreadable Chroma folder (or whatever stands in its place) under backups/; returns where."""
    from .backup import backups_dir

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = backups_dir(data_dir) / f"damaged-{stamp}" / CHROMA_DIR
    forget_chroma_system(data_dir / CHROMA_DIR)
    if not os.path.lexists(data_dir / CHROMA_DIR):  # nothing left to move: it starts afresh
        return aside
    try:
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(data_dir / CHROMA_DIR), str(aside))
    except OSError as exc:
        raise StoreError(f"The vector database in {data_dir / CHROMA_DIR} is damaged ({why}) and cannot be "
                         f"moved aside to rebuild it: {exc}. Free some disk space, then open Loci again.") from exc
    log.warning("the vector database of %s was unreadable (%s): moved to %s, rebuilding it from the "
                "memory database", data_dir, why, aside)
    return aside


def check_and_repair(data_dir: Path, open_store: Callable[[], Any], *,
                     progress: Progress | None = None) -> IntegrityReport:
    """Check a closed store fully and repair what can be repaired.

    1. SQLite: PRAGMA integrity_check; a damaged file is salvaged with VACUUM INTO when SQLite
       can still read it (the damaged file is kept under backups/), else the newest backup is
       named. 2. Chroma: opened and probed; if it cannot be read it is moved under backups/
       and rebuilt from SQLite. 3. The store is opened (finishing interrupted writes) and the
       ids of both halves are compared: missing vectors are rebuilt, orphans deleted.
    `open_store()` opens the store for step 3 (engine.memory.doctor passes a Memory).
    """
    from .backup import backups_dir, list_snapshots

    data_dir = Path(data_dir)
    ledger_path = data_dir / LEDGER_FILE
    if not data_dir.is_dir():
        raise StoreError(f"There is no store at {data_dir}.")
    problems: list[str] = []
    repairs: list[str] = []
    unrepaired: list[str] = []
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lock = WriterLock(data_dir)
    lock.acquire()
    try:
        if ledger_is_missing(ledger_path):
            if (data_dir / CHROMA_DIR).exists():
                raise missing_ledger_error(data_dir)
            raise StoreError(f"There is no memory database in {data_dir}.")
        found = sqlite_problems(ledger_path)
        if found:
            problems.append(f"the database failed its integrity check: {'; '.join(found[:3])}")
            if _salvage(ledger_path, backups_dir(data_dir) / f"damaged-{stamp}"):
                repairs.append("copied everything SQLite could still read into a fresh database "
                               f"(the damaged file is in {backups_dir(data_dir) / f'damaged-{stamp}'})")
            else:
                snaps = list_snapshots(data_dir)
                hint = (f"run `loci restore {snaps[0].name}`" if snaps else
                        "restore the file from your own backup")
                unrepaired.append(f"the database cannot be read any more: {hint}")
                return IntegrityReport(0, 0, problems=tuple(problems), unrepaired=tuple(unrepaired))
        try:
            store = VectorStore(data_dir)
            store.probe()
            store.ids()
            store.close()
        except StoreError as exc:
            problems.append(f"the vector database could not be read ({exc})")
            aside = move_vectors_aside(data_dir, str(exc))
            repairs.append(f"moved the damaged vector database to {aside}; it is rebuilt from the "
                           "database")
    finally:
        lock.release()
    with open_store() as mem:
        opened = mem.open_report
        full = mem.check_integrity(full=True, progress=progress)
    if full.index_broken:  # rebuild the vector database from scratch
        aside = backups_dir(data_dir) / f"damaged-{stamp}" / CHROMA_DIR
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(data_dir / CHROMA_DIR), str(aside))
        with open_store() as mem:
            rebuilt = mem.open_report
            after = mem.check_integrity(full=True)
        repairs.append(f"rebuilt the damaged vector index from the database (old one in {aside})")
        if after.index_broken:
            unrepaired.append("the vector index is still damaged after a rebuild")
        full = IntegrityReport(after.rows, after.vectors, rebuilt.rebuilt, 0, full.problems,
                               full.repairs + rebuilt.repairs)
    return IntegrityReport(full.rows, full.vectors, opened.rebuilt + full.rebuilt,
                           opened.removed + full.removed,
                           tuple(problems) + opened.problems + full.problems,
                           tuple(repairs) + opened.repairs + full.repairs, tuple(unrepaired))


def _salvage(path: Path, aside: Path) -> bool:
    """Copy what SQLite can still read into a fresh database; keeps the damaged copy in aside.

    First VACUUM INTO (exact when the damage is only in free pages or indexes); failing that,
    every table is read row by row by rowid, so a damaged page loses only the rows it held.
    """
    fresh = path.with_suffix(".salvaged")
    fresh.unlink(missing_ok=True)
    salvaged = _vacuum_into(path, fresh) or _copy_rows(path, fresh)
    if not salvaged or sqlite_problems(fresh):
        fresh.unlink(missing_ok=True)
        return False
    aside.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        old = Path(f"{path}{suffix}")
        if old.exists():
            shutil.move(str(old), str(aside / old.name))
    fresh.replace(path)
    return True


def _vacuum_into(path: Path, fresh: Path) -> bool:
    try:
        db = sqlite3.connect(str(path))
        try:
            db.execute("VACUUM INTO ?", (str(fresh),))
        finally:
            db.close()
        return True
    except sqlite3.DatabaseError as exc:
        log.warning("doctor: VACUUM INTO of %s failed (%s); copying row by row", path, exc)
        fresh.unlink(missing_ok=True)
        return False


def _copy_rows(path: Path, fresh: Path) -> bool:
    """Rebuild the schema in fresh (the ledger's migrations) and copy every readable row."""
    try:
        Ledger(fresh).close()
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(str(fresh))
    except (sqlite3.DatabaseError, StoreError) as exc:
        log.warning("doctor: cannot salvage %s: %s", path, exc)
        return False
    copied = lost = 0
    try:
        tables = [r[0] for r in dst.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            try:
                top = src.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
            except sqlite3.DatabaseError:
                top = src.execute("PRAGMA page_count").fetchone()[0] * 200
            for rowid in range(1, top + 1):
                try:
                    row = src.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
                except sqlite3.DatabaseError:
                    lost += 1
                    continue
                if row is not None:
                    marks = ",".join("?" * len(row))
                    dst.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", row)
                    copied += 1
        dst.commit()
    except sqlite3.DatabaseError as exc:
        log.warning("doctor: salvage of %s stopped: %s", path, exc)
        return False
    finally:
        src.close()
        dst.close()
    log.warning("doctor: salvaged %d rows from %s (%d unreadable)", copied, path, lost)
    return copied > 0
