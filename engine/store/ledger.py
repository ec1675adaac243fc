"""SQLite ledger: memory rows, the audit log, stored messages, the write journal and the entity queue."""
from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import StoreError
from ..records import CONVERSATION_KEY, HistoryEvent, MemoryRecord, Message, Scope, conversation_title

SCHEMA_VERSION = 4
LIGHT_CACHE_ROWS = 100_000  # light rows kept for search between writes


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one (executescript would commit the open transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _migration_1(db: sqlite3.Connection) -> None:
    _run_script(
        db, """
        CREATE TABLE memories (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            hash TEXT NOT NULL,
            user_id TEXT, agent_id TEXT, run_id TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            role TEXT, actor TEXT, memory_type TEXT, event_date TEXT,
            source_ids TEXT NOT NULL DEFAULT '[]',
            entities TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX memories_user ON memories(user_id);
        CREATE INDEX memories_agent ON memories(agent_id);
        CREATE INDEX memories_run ON memories(run_id);
        CREATE INDEX memories_hash ON memories(hash);
        CREATE TABLE history (
            id TEXT PRIMARY KEY,
            memory_id TEXT NOT NULL,
            event TEXT NOT NULL,
            old_memory TEXT, new_memory TEXT,
            actor TEXT, role TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX history_memory ON history(memory_id);
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            user_id TEXT, agent_id TEXT, run_id TEXT,
            role TEXT NOT NULL, name TEXT, content TEXT NOT NULL,
            timestamp TEXT NOT NULL, created_at TEXT NOT NULL
        );
        CREATE INDEX messages_run ON messages(run_id);
        CREATE TABLE journal (
            memory_id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL
        );
        """
    )


def _migration_2(db: sqlite3.Connection) -> None:
    _run_script(
        db, """
        CREATE TABLE entity_links (
            memory_id TEXT NOT NULL,
            key TEXT NOT NULL,
            text TEXT NOT NULL,
            label TEXT NOT NULL,
            PRIMARY KEY (memory_id, key)
        );
        CREATE INDEX entity_links_key ON entity_links(key)
        """
    )


def _migration_3(db: sqlite3.Connection) -> None:
    """Messages stored as said (infer=False) become episodes: memory_type "message"."""
    db.execute("UPDATE memories SET memory_type = 'message' WHERE memory_type IS NULL "
               "AND source_ids != '[]'")


def _migration_4(db: sqlite3.Connection) -> None:
    """Memories whose entities are still to be found (engine/search/entity_linker.py) are queued here,
    in the transaction that stores them; the row leaves the queue when its links are written."""
    db.execute("CREATE TABLE IF NOT EXISTS entity_queue (memory_id TEXT PRIMARY KEY, queued_at TEXT NOT NULL)")


# Numbered migrations: index i upgrades the schema from version i to i + 1.
MIGRATIONS = [_migration_1, _migration_2, _migration_3, _migration_4]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


_MEMORY_COLUMNS = ("id, text, hash, user_id, agent_id, run_id, metadata, created_at, updated_at, "
                   "timestamp, role, actor, memory_type, event_date, source_ids, entities")


def _record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(
        id=row[0], memory=row[1], hash=row[2],
        scope=Scope(user_id=row[3], agent_id=row[4], run_id=row[5]),
        metadata=json.loads(row[6]), created_at=_dt(row[7]), updated_at=_dt(row[8]),
        timestamp=_dt(row[9]), role=row[10], actor=row[11], memory_type=row[12],
        event_date=row[13], source_message_ids=tuple(json.loads(row[14])),
        entities=tuple(json.loads(row[15])),
    )


@dataclass(frozen=True, slots=True)
class ScopeCount:
    """How many memories one user, agent or session has; a session's title when its memories carry
    one (MemoryRecord.conversation: the chat it was imported from)."""

    kind: str  # user_id, agent_id, run_id
    value: str
    count: int
    title: str | None = None


class Ledger:
    """The relational half of a store. Every method is safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Cannot open the database {path}: {exc}. The file may be damaged: run "
                             "`loci doctor` to check it, or `loci restore` to go back to a backup."
                             ) from exc
        self._lock = threading.RLock()
        # Read caches for search (light rows, scope counts): valid between two transactions,
        # so every transaction empties them (only this process writes the file: see service/).
        self._light: dict[str, MemoryRecord] = {}
        self._near: dict[str, list[str]] = {}  # same-time neighbours of rows read (neighbours())
        self._counts: dict[tuple[tuple[str, str], ...], int] = {}
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if not is_environment_error(exc):
                raise
            raise self._store_error(exc, "open") from exc
        except BaseException:
            self._db.close()
            raise

    # -- plumbing ---------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"The store at {self.path.parent} was written by a newer Loci "
                                 f"(schema {version}); update Loci to open it.")
            for number in range(version, SCHEMA_VERSION):
                with self.transaction() as db:
                    MIGRATIONS[number](db)
                    db.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of writes; rolled back when the block raises."""
        with self._lock:
            self._forget_reads()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise self._store_error(exc, "save to") from exc
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                self._rollback()
                if not is_environment_error(exc):
                    raise
                raise self._store_error(exc, "save to") from exc
            except BaseException:
                self._rollback()
                raise
            else:
                self.commit()
            finally:
                self._forget_reads()  # rows read inside the block may have been rolled back

    def _forget_reads(self) -> None:
        self._light.clear()
        self._near.clear()
        self._counts.clear()

    def commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._rollback()
            raise self._store_error(exc, "save to") from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass

    def _store_error(self, exc: sqlite3.DatabaseError, doing: str) -> StoreError:
        text = str(exc)
        if "full" in text or "I/O" in text:
            return StoreError(f"Could not {doing} {self.path}: {text}. Is the disk full? Free some "
                              "space and try again; nothing was changed.")
        if "locked" in text or "busy" in text:
            return StoreError(f"Could not {doing} {self.path}: another program holds the database "
                              "({text}). Close it and try again.")
        return StoreError(f"The database {self.path} is damaged ({text}). Run `loci doctor` to check "
                          "and repair it, or `loci restore` to go back to a backup.")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                if not is_environment_error(exc):
                    raise
                raise self._store_error(exc, "read") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def checkpoint(self) -> None:
        """Move the write-ahead log into the database file and empty it (as closing does)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- journal: intents recorded before the vector store is touched -------
    def journal_begin(self, memory_ids: Iterable[str]) -> None:
        now = utcnow().isoformat()
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?)", [(i, now) for i in memory_ids])

    def journal_pending(self) -> list[str]:
        return [r[0] for r in self._query("SELECT memory_id FROM journal")]

    @staticmethod
    def journal_clear(db: sqlite3.Connection, memory_ids: Iterable[str]) -> None:
        db.executemany("DELETE FROM journal WHERE memory_id = ?", [(i,) for i in memory_ids])

    # -- writes (called inside transaction()) -----------------------------
    @staticmethod
    def insert_memory(db: sqlite3.Connection, rec: MemoryRecord) -> None:
        Ledger.insert_memories(db, [rec])

    @staticmethod
    def insert_memories(db: sqlite3.Connection, records: Sequence[MemoryRecord]) -> None:
        db.executemany(
            f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(rec.id, rec.memory, rec.hash, rec.scope.user_id, rec.scope.agent_id, rec.scope.run_id,
              json.dumps(dict(rec.metadata)), rec.created_at.isoformat(), rec.updated_at.isoformat(),
              rec.timestamp.isoformat(), rec.role, rec.actor, rec.memory_type, rec.event_date,
              json.dumps(list(rec.source_message_ids)), json.dumps(list(rec.entities)))
             for rec in records])

    @staticmethod
    def replace_memory(db: sqlite3.Connection, rec: MemoryRecord) -> None:
        db.execute(
            "UPDATE memories SET text=?, hash=?, metadata=?, updated_at=?, memory_type=?, "
            "event_date=?, entities=? WHERE id=?",
            (rec.memory, rec.hash, json.dumps(dict(rec.metadata)), rec.updated_at.isoformat(),
             rec.memory_type, rec.event_date, json.dumps(list(rec.entities)), rec.id))

    @staticmethod
    def delete_memory(db: sqlite3.Connection, memory_id: str) -> None:
        db.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
        db.execute("DELETE FROM entity_queue WHERE memory_id = ?", (memory_id,))

    @staticmethod
    def add_history(db: sqlite3.Connection, memory_id: str, event: str, old: str | None,
                    new: str | None, actor: str | None = None, role: str | None = None,
                    when: datetime | None = None) -> None:
        Ledger.add_histories(db, [(memory_id, event, old, new, actor, role, when)])

    @staticmethod
    def add_histories(db: sqlite3.Connection, events: Sequence[tuple[str, str, str | None, str | None,
                                                                     str | None, str | None,
                                                                     datetime | None]]) -> None:
        """Several history rows: (memory_id, event, old, new, actor, role, when or None for now)."""
        now = utcnow()
        db.executemany("INSERT INTO history VALUES (?,?,?,?,?,?,?,?)",
                       [(str(uuid.uuid4()), mid, event, old, new, actor, role, (when or now).isoformat())
                        for mid, event, old, new, actor, role, when in events])

    @staticmethod
    def insert_messages(db: sqlite3.Connection, messages: Sequence[Message]) -> None:
        Ledger._put_messages(db, messages, "INSERT")

    @staticmethod
    def restore_messages(db: sqlite3.Connection, messages: Sequence[Message]) -> None:
        """Put back exported messages with their own times; ones already stored are kept."""
        Ledger._put_messages(db, messages, "INSERT OR IGNORE")

    @staticmethod
    def _put_messages(db: sqlite3.Connection, messages: Sequence[Message], verb: str) -> None:
        now = utcnow().isoformat()
        db.executemany(
            f"{verb} INTO messages (id, user_id, agent_id, run_id, role, name, content, timestamp, "
            "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(m.id, m.scope.user_id, m.scope.agent_id, m.scope.run_id, m.role, m.name, m.content,
              m.timestamp.isoformat(), m.created_at.isoformat() if m.created_at else now)
             for m in messages])

    @staticmethod
    def restore_history(db: sqlite3.Connection, events: Sequence[HistoryEvent]) -> None:
        """Put back exported history rows with their ids and times; known ids are kept."""
        db.executemany("INSERT OR IGNORE INTO history VALUES (?,?,?,?,?,?,?,?)",
                       [(e.id, e.memory_id, e.event, e.old_memory, e.new_memory, e.actor, e.role,
                         e.created_at.isoformat()) for e in events])

    # -- reads -------------------------------------------------------------
    def get(self, memory_id: str) -> MemoryRecord | None:
        rows = self._query(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id = ?", (memory_id,))
        return _record(rows[0]) if rows else None

    def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryRecord]:
        out: dict[str, MemoryRecord] = {}
        ids = list(memory_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id IN ({marks})", chunk):
                out[row[0]] = _record(row)
        return out

    def get_many_light(self, memory_ids: Sequence[str]) -> dict[str, MemoryRecord]:
        """Records with only id, scope, times, event date and expiry filled (text and the rest
        empty): enough to filter by scope and rank candidates cheaply (retrieval.py). Kept
        until the next write, so repeated searches read each row once."""
        with self._lock:
            out = {i: self._light[i] for i in memory_ids if i in self._light}
            missing = [i for i in dict.fromkeys(memory_ids) if i not in out]
            for start in range(0, len(missing), 500):
                chunk = missing[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for mid, user, agent, run, created, stamp, event, expiry in self._query(
                        "SELECT id, user_id, agent_id, run_id, created_at, timestamp, event_date, "
                        f"json_extract(metadata, '$.expiration_date') FROM memories WHERE id IN ({marks})",
                        chunk):
                    made = _dt(created)
                    out[mid] = MemoryRecord(id=mid, memory="", hash="", scope=Scope(user, agent, run),
                                            created_at=made, updated_at=made, timestamp=_dt(stamp),
                                            metadata={"expiration_date": expiry} if expiry else {},
                                            event_date=event)
            if missing:
                if len(self._light) > LIGHT_CACHE_ROWS:
                    self._light.clear()
                self._light.update((i, out[i]) for i in missing if i in out)
            return out

    def iter_scope(self, scope: dict[str, str], *, newest_first: bool = True) -> Iterator[MemoryRecord]:
        """All memories whose scope matches the given literal keys, in a stable order."""
        where, args = _where_scope(scope)
        order = "DESC" if newest_first else "ASC"
        rows = self._query(f"SELECT {_MEMORY_COLUMNS} FROM memories {where} ORDER BY seq {order}", args)
        return (_record(r) for r in rows)

    def page(self, scope: dict[str, str], offset: int, limit: int, *, oldest_first: bool = False,
             unexpired_on: Any = None) -> list[MemoryRecord]:
        """One page of a scope's memories in insertion order; unexpired_on (a date) hides expired ones."""
        where, args = _where_scope(scope)
        if unexpired_on is not None:
            clause = ("(json_extract(metadata, '$.expiration_date') IS NULL OR "
                      "json_extract(metadata, '$.expiration_date') >= ?)")
            where = f"{where} AND {clause}" if where else f"WHERE {clause}"
            args = [*args, unexpired_on.isoformat()]
        order = "ASC" if oldest_first else "DESC"
        rows = self._query(f"SELECT {_MEMORY_COLUMNS} FROM memories {where} ORDER BY seq {order} "
                           "LIMIT ? OFFSET ?", [*args, limit, offset])
        return [_record(r) for r in rows]

    def count(self, scope: dict[str, str] | None = None) -> int:
        tag = tuple(sorted((scope or {}).items()))
        with self._lock:
            cached = self._counts.get(tag)
            if cached is None:
                where, args = _where_scope(scope or {})
                cached = self._counts[tag] = int(self._query(f"SELECT COUNT(*) FROM memories {where}",
                                                             args)[0][0])
            return cached

    def from_messages(self, message_ids: Sequence[str]) -> list[MemoryRecord]:
        """Every memory made from any of these messages (an episode and the facts drawn from it)."""
        out: dict[str, MemoryRecord] = {}
        for mid in dict.fromkeys(message_ids):
            rows = self._query(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE source_ids LIKE ? "
                               "ORDER BY seq", (f'%"{mid}"%',))
            out.update((r[0], _record(r)) for r in rows)
        return list(out.values())

    def fingerprint(self) -> str:
        """A cheap summary that changes with every committed change to the memories (each one
        adds a history row): index snapshots saved with it are stale when it differs."""
        rows = self._query("SELECT (SELECT COUNT(*) FROM memories), (SELECT MAX(seq) FROM memories), "
                           "(SELECT MAX(rowid) FROM history), (SELECT COUNT(*) FROM entity_links)")
        return ":".join(str(v) for v in rows[0])

    def index_rows(self) -> list[tuple[str, str | None, str | None, str | None]]:
        """(id, user_id, agent_id, run_id) of every memory in insertion order (index builds)."""
        return self._query("SELECT id, user_id, agent_id, run_id FROM memories ORDER BY seq")

    def texts(self, memory_ids: Sequence[str]) -> dict[str, str]:
        """id -> text for the given memories (index builds)."""
        out: dict[str, str] = {}
        ids = list(memory_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self._query(f"SELECT id, text FROM memories WHERE id IN ({marks})", chunk))
        return out

    def ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM memories")]

    def hashes(self) -> dict[str, str]:
        """id -> hash of the text of every memory (a re-embed finds what changed since it embedded)."""
        return dict(self._query("SELECT id, hash FROM memories"))

    def neighbours(self, memory_ids: Sequence[str], max_gap_s: float = 0.0) -> dict[str, list[str]]:
        """Memories stored just before and after each one in the same scope and conversation.

        Neighbours are rows adjacent in insertion order with the same user, agent and session
        whose message times lie within max_gap_s of each other; the default 0 means the same
        message time, i.e. messages stored by one add() call (one conversation chunk).
        """
        same_time = max_gap_s <= 0  # compared in SQL: times are stored in one ISO format
        with self._lock:
            ids = list(dict.fromkeys(memory_ids))
            if same_time:  # the default is kept between writes, as light rows are
                out = {i: list(self._near[i]) for i in ids if self._near.get(i)}
                ids = [i for i in ids if i not in self._near]
            else:
                out = {}
            found = self._neighbours(ids, max_gap_s)
            out.update(found)
            if same_time:
                if len(self._near) > LIGHT_CACHE_ROWS:
                    self._near.clear()
                self._near.update((i, list(found.get(i, ()))) for i in ids)
            return out

    def _neighbours(self, ids: list[str], max_gap_s: float) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        same_time = max_gap_s <= 0
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                "SELECT m.id, n.id, m.timestamp, n.timestamp FROM memories m JOIN memories n "
                "ON n.seq IN (m.seq - 1, m.seq + 1) AND n.user_id IS m.user_id "
                "AND n.agent_id IS m.agent_id AND n.run_id IS m.run_id "
                f"{'AND n.timestamp = m.timestamp ' if same_time else ''}"
                f"WHERE m.id IN ({marks})", chunk)
            for mid, nid, mts, nts in rows:
                if same_time or abs((_dt(mts) - _dt(nts)).total_seconds()) <= max_gap_s:
                    out.setdefault(mid, []).append(nid)
        return out

    def find_hash(self, scope: dict[str, str], content_hash: str,
                  exclude_type: str | None = None) -> str | None:
        where, args = _where_scope(scope)
        clause = f"{where} AND hash = ?" if where else "WHERE hash = ?"
        if exclude_type is not None:
            clause += " AND memory_type IS NOT ?"
            args = [*args, content_hash, exclude_type]
        else:
            args = [*args, content_hash]
        rows = self._query(f"SELECT id FROM memories {clause} LIMIT 1", args)
        return rows[0][0] if rows else None

    def history(self, memory_id: str) -> list[HistoryEvent]:
        rows = self._query("SELECT id, memory_id, event, old_memory, new_memory, actor, role, "
                           "created_at FROM history WHERE memory_id = ? ORDER BY created_at, rowid",
                           (memory_id,))
        return [HistoryEvent(id=r[0], memory_id=r[1], event=r[2], old_memory=r[3], new_memory=r[4],
                             actor=r[5], role=r[6], created_at=_dt(r[7])) for r in rows]

    def has_history(self, memory_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM history WHERE memory_id = ? LIMIT 1", (memory_id,)))

    def messages(self, message_ids: Sequence[str]) -> list[Message]:
        if not message_ids:
            return []
        marks = ",".join("?" * len(message_ids))
        rows = self._query("SELECT id, role, content, timestamp, name, user_id, agent_id, run_id, "
                           f"created_at FROM messages WHERE id IN ({marks}) ORDER BY seq",
                           list(message_ids))
        return [_message(r) for r in rows]

    def recent_messages(self, scope: dict[str, str], limit: int,
                        exclude: Sequence[str] = ()) -> list[Message]:
        """The last messages said in a scope, oldest first (context for extraction)."""
        where, args = _where_scope(scope)
        rows = self._query("SELECT id, role, content, timestamp, name, user_id, agent_id, run_id, "
                           f"created_at FROM messages {where} ORDER BY seq DESC LIMIT ?",
                           [*args, limit + len(exclude)])
        skip = set(exclude)
        return [_message(r) for r in reversed(rows) if r[0] not in skip][-limit:] if limit else []

    def scope_counts(self) -> list[ScopeCount]:
        out: list[ScopeCount] = []
        for kind in ("user_id", "agent_id"):
            for value, n in self._query(f"SELECT {kind}, COUNT(*) FROM memories WHERE {kind} IS NOT "
                                        f"NULL GROUP BY {kind} ORDER BY {kind}"):
                out.append(ScopeCount(kind, value, int(n)))
        path = f"'$.{CONVERSATION_KEY}'"
        for value, n, title in self._query(
                f"SELECT run_id, COUNT(*), MIN(CASE WHEN json_type(metadata, {path}) = 'text' "
                f"THEN json_extract(metadata, {path}) END) FROM memories WHERE run_id IS NOT NULL "
                "GROUP BY run_id ORDER BY run_id"):
            out.append(ScopeCount("run_id", value, int(n), conversation_title(title)))
        return out

    # -- entity links (derived from memory text, kept beside the rows) ------
    @staticmethod
    def set_entity_links(db: sqlite3.Connection, memory_id: str,
                         mentions: Sequence[tuple[str, str, str]]) -> None:
        """Replace a memory's (key, text, label) entity mentions; it leaves the entity queue."""
        db.execute("DELETE FROM entity_links WHERE memory_id = ?", (memory_id,))
        db.execute("DELETE FROM entity_queue WHERE memory_id = ?", (memory_id,))
        db.executemany("INSERT OR IGNORE INTO entity_links VALUES (?,?,?,?)",
                       [(memory_id, k, t, lab) for k, t, lab in mentions])

    # -- the entity queue: memories stored before their entities were found --
    @staticmethod
    def queue_entities(db: sqlite3.Connection, memory_ids: Sequence[str]) -> None:
        """Mark memories as waiting for their entity links (in the transaction storing them)."""
        now = utcnow().isoformat()
        db.executemany("INSERT OR REPLACE INTO entity_queue VALUES (?, ?)", [(i, now) for i in memory_ids])

    def entities_pending(self, limit: int | None = None) -> list[str]:
        """Ids waiting for their entity links, oldest first."""
        rows = self._query("SELECT memory_id FROM entity_queue ORDER BY rowid LIMIT ?",
                           (-1 if limit is None else limit,))
        return [r[0] for r in rows]

    @staticmethod
    def link_entities(db: sqlite3.Connection,
                      found: Sequence[tuple[str, str, tuple[str, ...], Sequence[tuple[str, str, str]]]]
                      ) -> list[str]:
        """Write the links of queued memories: (id, text hash, entity names, mentions) each.

        A memory is linked only while it is still queued with that hash (a memory deleted or
        re-linked by an update meanwhile is left alone); queued ids whose memory is gone leave
        the queue. Returns the ids linked.
        """
        ids = [f[0] for f in found]
        marks = ",".join("?" * len(ids))
        live = {mid: h for mid, h in db.execute(
            f"SELECT q.memory_id, m.hash FROM entity_queue q JOIN memories m ON m.id = q.memory_id "
            f"WHERE q.memory_id IN ({marks})", ids)} if ids else {}
        done = [f for f in found if live.get(f[0]) == f[1]]
        db.executemany("DELETE FROM entity_links WHERE memory_id = ?", [(f[0],) for f in done])
        db.executemany("INSERT OR IGNORE INTO entity_links VALUES (?,?,?,?)",
                       [(f[0], k, t, lab) for f in done for k, t, lab in f[3]])
        db.executemany("UPDATE memories SET entities = ? WHERE id = ?",
                       [(json.dumps(list(f[2])), f[0]) for f in done])
        gone = [i for i in ids if i not in live]
        db.executemany("DELETE FROM entity_queue WHERE memory_id = ?", [(f[0],) for f in done] +
                       [(i,) for i in gone])
        return [f[0] for f in done]

    @staticmethod
    def drop_entity_links(db: sqlite3.Connection, memory_id: str) -> None:
        db.execute("DELETE FROM entity_links WHERE memory_id = ?", (memory_id,))

    def entity_links(self) -> list[tuple[str, str, str, str]]:
        """Every (memory_id, key, text, label) row."""
        return self._query("SELECT memory_id, key, text, label FROM entity_links")

    def linked_memory_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT DISTINCT memory_id FROM entity_links")}

    def wipe(self) -> None:
        with self.transaction() as db:
            for table in ("memories", "history", "messages", "journal", "entity_links", "entity_queue"):
                db.execute(f"DELETE FROM {table}")


def is_environment_error(exc: sqlite3.DatabaseError) -> bool:
    """A fault of the disk or the file (full, I/O, damaged, locked), not a mistake in our SQL."""
    return isinstance(exc, (sqlite3.OperationalError, sqlite3.DataError, sqlite3.InternalError)) \
        or type(exc) is sqlite3.DatabaseError


def _message(r: Sequence[Any]) -> Message:
    return Message(id=r[0], role=r[1], content=r[2], timestamp=_dt(r[3]), name=r[4],
                   scope=Scope(user_id=r[5], agent_id=r[6], run_id=r[7]), created_at=_dt(r[8]))


def _where_scope(scope: dict[str, str]) -> tuple[str, list[str]]:
    keys = [k for k in ("user_id", "agent_id", "run_id") if scope.get(k) is not None]
    if not keys:
        return "", []
    return "WHERE " + " AND ".join(f"{k} = ?" for k in keys), [scope[k] for k in keys]
