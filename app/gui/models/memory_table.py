"""The memory table: pages of records read in the background, or a fixed list of (scored) search hits."""
from __future__ import annotations

import re
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from engine import MemoryRecord, ScoredMemory

COL_MEMORY, COL_SCORE, COL_TYPE, COL_USER, COL_AGENT, COL_SESSION, COL_EVENT_DATE, COL_CREATED, \
    COL_UPDATED, COL_ENTITIES, COL_SAID_BY, COL_SAID = range(12)  # new columns last: saved layouts keep theirs
HEADERS = {COL_MEMORY: "Memory", COL_SCORE: "Score", COL_TYPE: "Type", COL_USER: "User",
           COL_AGENT: "Agent", COL_SESSION: "Session", COL_EVENT_DATE: "Event date",
           COL_CREATED: "Stored", COL_UPDATED: "Updated", COL_ENTITIES: "Entities", COL_SAID_BY: "Said by",
           COL_SAID: "Said"}
RecordRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2
SIGNAL_NAMES = ("semantic", "keyword", "entity", "time")

Deliver = Callable[[Sequence[MemoryRecord]], None]
Request = Callable[[int, int, Deliver], Any]  # request(offset, limit, deliver): read in a worker, deliver later
_Index = QModelIndex | QPersistentModelIndex
_DIGITS = re.compile(r"\d+")


class MemoryTableModel(QAbstractTableModel):
    """Rows are memories. Two sources: paged (a total, the rows already read, and request(offset,
    limit, deliver) for the others: a page is asked for when first shown, shows "Loading…" until
    delivered, and is kept in a small LRU cache) or a list set with set_rows (search hits keep
    their score and per-signal breakdown). The model never reads the store itself."""

    PAGE = 200
    MAX_PAGES = 64

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._fetch: Request | None = None
        self._total = 0
        self._pages: OrderedDict[int, list[MemoryRecord]] = OrderedDict()
        self._asked: set[int] = set()  # pages requested, not yet delivered
        self._source = 0  # bumped by every reset: a page of an older source is dropped
        self._rows: list[tuple[MemoryRecord, float | None, dict[str, float]]] = []
        self._weights: dict[str, dict[str, float]] = {}  # memory id -> each signal's share

    # -- sources -----------------------------------------------------------------------
    def set_source(self, request: Request, total: int,
                   rows: Mapping[int, Sequence[MemoryRecord]] | None = None) -> None:
        """Page through request(offset, limit, deliver); rows already read (by their first row's
        number, a multiple of PAGE) show at once; resets the model."""
        self.beginResetModel()
        self._source += 1
        self._fetch, self._total = request, max(0, total)
        self._pages.clear()
        self._asked.clear()
        for first, records in (rows or {}).items():
            for i in range(0, len(records), self.PAGE):
                self._pages[(first + i) // self.PAGE] = list(records[i:i + self.PAGE])
        self._rows = []
        self.endResetModel()

    def is_loaded(self, row: int) -> bool:
        """Whether a row's record is here (a paged row may still be on its way)."""
        if self._fetch is None:
            return 0 <= row < len(self._rows)
        records = self._pages.get(row // self.PAGE)
        return records is not None and row % self.PAGE < len(records)

    def _delivered(self, source: int, page: int, records: Sequence[MemoryRecord]) -> None:
        if source != self._source:
            return  # the list was reset since: a newer read shows it
        self._asked.discard(page)
        self._pages[page] = list(records)
        while len(self._pages) > self.MAX_PAGES:
            self._pages.popitem(last=False)
        first, last = page * self.PAGE, min(self._total, (page + 1) * self.PAGE) - 1
        if first <= last:
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.columnCount() - 1))

    def set_rows(self, rows: Sequence[MemoryRecord | ScoredMemory]) -> None:
        """Show exactly these records (ScoredMemory keeps its score); resets the model."""
        self.beginResetModel()
        self._source += 1
        self._fetch, self._total = None, 0
        self._pages.clear()
        self._asked.clear()
        self._rows = [(r.record, r.score, dict(r.signals)) if isinstance(r, ScoredMemory) else (r, None, {})
                      for r in rows]
        self._weights = {r.record.id: dict(r.weights) for r in rows if isinstance(r, ScoredMemory)}
        self.endResetModel()

    def clear(self) -> None:
        self.set_rows([])

    @property
    def is_paged(self) -> bool:
        return self._fetch is not None

    @property
    def has_scores(self) -> bool:
        return any(score is not None for _r, score, _s in self._rows)

    def record(self, row: int) -> MemoryRecord | None:
        entry = self._entry(row)
        return entry[0] if entry else None

    def row_of(self, memory_id: str) -> int | None:
        """The row of a memory among the rows loaded so far."""
        if self._fetch is None:
            return next((i for i, (r, _s, _g) in enumerate(self._rows) if r.id == memory_id), None)
        for page, records in self._pages.items():
            for i, r in enumerate(records):
                if r.id == memory_id:
                    return page * self.PAGE + i
        return None

    def update_record(self, record: MemoryRecord) -> None:
        """Replace one loaded record (after an edit) and emit dataChanged for its row."""
        row = self.row_of(record.id)
        if row is None:
            return
        if self._fetch is None:
            _old, score, signals = self._rows[row]
            self._rows[row] = (record, score, signals)
        else:
            self._pages[row // self.PAGE][row % self.PAGE] = record
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def hide_ids(self, memory_ids: Sequence[str]) -> list[tuple[int, MemoryRecord]]:
        """Take these memories' loaded rows away at once (a delete the store has not done yet);
        returns (row, record) pairs for show_again."""
        wanted = set(memory_ids)
        gone: list[tuple[int, MemoryRecord]] = []
        for row in sorted((r for i in wanted if (r := self.row_of(i)) is not None), reverse=True):
            rec = self.record(row)
            if rec is None:
                continue
            self.beginRemoveRows(QModelIndex(), row, row)
            if self._fetch is None:
                del self._rows[row]
            else:
                del self._pages[row // self.PAGE][row % self.PAGE]
                self._total -= 1
            self.endRemoveRows()
            gone.append((row, rec))
        return sorted(gone, key=lambda pair: pair[0])

    def show_again(self, rows: Sequence[tuple[int, MemoryRecord]]) -> None:
        """Put rows taken by hide_ids back where they were (an undo, or a refused delete)."""
        for row, rec in rows:
            if self.row_of(rec.id) is not None:
                continue
            if self._fetch is None:
                row = min(row, len(self._rows))
                self.beginInsertRows(QModelIndex(), row, row)
                self._rows.insert(row, (rec, None, {}))
            else:
                row = min(row, self._total)
                page = self._pages.get(row // self.PAGE)
                self.beginInsertRows(QModelIndex(), row, row)
                if page is not None:
                    page.insert(row % self.PAGE, rec)
                self._total += 1
            self.endInsertRows()

    def score_details(self, row: int) -> str:
        """A search hit's score, one signal a line (for a narrow details pane); "" for other rows."""
        entry = self._entry(row)
        if entry is None or entry[1] is None:
            return ""
        rec, score, signals = entry
        weights = self._weights.get(rec.id, {})
        lines = [f"<b>Score {score:.3f}</b> (0 to 1) = the sum of each signal's value times its weight:"]
        for name in [n for n in (*SIGNAL_NAMES, "context") if n in signals] + sorted(
                set(signals) - {*SIGNAL_NAMES, "context"}):
            part = f" &times; {weights[name]:.2f} = {signals[name] * weights[name]:.3f}" if name in weights else ""
            lines.append(f"<b>{name}</b> {signals[name]:.2f}{part}<br><span style='color:gray'>"
                         f"{_EXPLAIN.get(name, '')}</span>")
        return "".join(f"<p>{line}</p>" for line in lines)

    def _entry(self, row: int) -> tuple[MemoryRecord, float | None, dict[str, float]] | None:
        if self._fetch is None:
            return self._rows[row] if 0 <= row < len(self._rows) else None
        if not 0 <= row < self._total:
            return None
        page = row // self.PAGE
        records = self._pages.get(page)
        if records is None:
            if page not in self._asked:  # read in the background; shown when it arrives
                self._asked.add(page)
                source = self._source

                def deliver(recs: Sequence[MemoryRecord], page: int = page, source: int = source) -> None:
                    self._delivered(source, page, recs)
                self._fetch(page * self.PAGE, self.PAGE, deliver)
            return None
        self._pages.move_to_end(page)
        i = row % self.PAGE
        return (records[i], None, {}) if i < len(records) else None

    # -- Qt overrides ------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        if parent.isValid():
            return 0
        return self._total if self._fetch is not None else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS.get(section)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._entry(index.row())
        if entry is None:
            if role == Qt.ItemDataRole.DisplayRole and index.column() == COL_MEMORY and self._fetch is not None:
                return "Loading…"
            return None
        rec, score, signals = entry
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(rec, score, col)
        if role == RecordRole:
            return rec
        if role == SortRole:
            return _sort_value(rec, score, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_SCORE and score is not None:
                return score_tooltip(score, signals, self._weights.get(rec.id, {}))
            if col == COL_MEMORY:
                return rec.memory if len(rec.memory) < 600 else rec.memory[:600] + "…"
            if col == COL_CREATED:
                return "When the memory was stored in Loci (an import stores old conversations today)"
            if col == COL_SESSION and rec.scope.run_id:
                return f"Session {rec.scope.run_id}"
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


_EXPLAIN = {
    "semantic": "meaning: how close the memory is to the query (embedding cosine)",
    "keyword": "keywords: BM25 match of the query's words, relative to the best match",
    "entity": "entities: people, places and things the query names that the memory mentions",
    "time": "time: whether the memory's date falls in the period the query asks about",
    "context": "context: the best score of the messages said just before and after this one "
               "(an answer often sits next to its question)",
}


def score_tooltip(score: float, signals: dict[str, float], weights: dict[str, float] | None = None) -> str:
    """Each signal's value times its weight; the products add up to the score (all in 0..1)."""
    weights = weights or {}
    names = [n for n in (*SIGNAL_NAMES, "context") if n in signals]
    names += sorted(set(signals) - set(names))
    rows = []
    for name in names:
        value = signals[name]
        if name in weights:
            rows.append(f"<tr><td nowrap>{name}</td><td align=right>{value:.2f}</td>"
                        f"<td nowrap>&times; {weights[name]:.2f}</td>"
                        f"<td align=right nowrap>= {value * weights[name]:.3f}</td></tr>")
        else:
            rows.append(f"<tr><td nowrap>{name}</td><td align=right>{value:.2f}</td><td></td><td></td></tr>")
    explained = "".join(f"<li>{_EXPLAIN[n]}</li>" for n in names if n in _EXPLAIN)
    total = (f"<tr><td><b>score</b></td><td></td><td></td><td align=right><b>{score:.3f}</b></td></tr>"
             if weights else "")
    return (f"<b>Score {score:.3f}</b> (0 to 1): each signal's value (0 to 1) times its weight"
            f"<table cellspacing=4><tr><th align=left>signal</th><th>value</th><th>weight</th><th></th></tr>"
            f"{''.join(rows)}{total}</table><ul style='margin-left:12px'>{explained}</ul>")


def _date(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


def _display(rec: MemoryRecord, score: float | None, col: int) -> str:
    if col == COL_MEMORY:
        return " ".join(rec.memory.split())[:300]
    if col == COL_SCORE:
        return f"{score:.3f}" if score is not None else ""
    if col == COL_TYPE:
        return rec.memory_type or ""
    if col == COL_USER:
        return rec.scope.user_id or ""
    if col == COL_AGENT:
        return rec.scope.agent_id or ""
    if col == COL_SESSION:
        return session_label(rec)
    if col == COL_EVENT_DATE:
        return rec.event_date or ""
    if col == COL_CREATED:
        return _date(rec.created_at)
    if col == COL_SAID:  # the day; the time is in the details
        return rec.timestamp.astimezone().strftime("%Y-%m-%d") if rec.timestamp else ""
    if col == COL_SAID_BY:
        return rec.actor or rec.role or ""
    if col == COL_UPDATED:
        return _date(rec.updated_at)
    if col == COL_ENTITIES:
        return ", ".join(rec.entities)
    return ""


def session_label(rec: MemoryRecord) -> str:
    """The session a memory belongs to as shown: the title of the chat it was imported from (as the
    sidebar shows it), else the session id."""
    return (rec.conversation or rec.scope.run_id) if rec.scope.run_id else ""


def natural_key(text: str) -> str:
    """A sort key that orders numbers inside text by value: session_2 before session_10."""
    return _DIGITS.sub(lambda m: m.group().zfill(12), text.casefold())


def _sort_value(rec: MemoryRecord, score: float | None, col: int) -> Any:
    if col == COL_EVENT_DATE:
        return rec.event_date or None  # blanks sort last (MemorySortProxy)
    if col in (COL_SESSION, COL_USER, COL_AGENT):
        value = _display(rec, score, col)
        return natural_key(value) if value else None
    if col == COL_SCORE:
        return float(score) if score is not None else -1.0
    if col == COL_CREATED:
        return rec.created_at.timestamp()
    if col == COL_SAID:
        return rec.timestamp.timestamp() if rec.timestamp else None
    if col == COL_UPDATED:
        return rec.updated_at.timestamp()
    if col == COL_MEMORY:
        return rec.memory.casefold()
    return _display(rec, score, col).casefold()


class MemorySortProxy(QSortFilterProxyModel):
    """Sorts by SortRole; empty values (no event date, no session) go last in either order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SortRole)

    def lessThan(self, left: _Index, right: _Index) -> bool:
        a, b = left.data(SortRole), right.data(SortRole)
        if a is None or b is None:
            if a is None and b is None:
                return left.row() < right.row()
            # Qt reverses lessThan for a descending sort; answer so that blanks end up last
            blank_last = b is None
            return blank_last if self.sortOrder() == Qt.SortOrder.AscendingOrder else not blank_last
        return bool(a < b)
