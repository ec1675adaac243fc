"""mem0-style filter dicts compiled to predicates over memory records (and a Chroma pre-filter)."""
from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping

from ..errors import InvalidInputError
from ..records import SCOPE_KEYS, MemoryRecord

Predicate = Callable[[MemoryRecord], bool]

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
LOGICAL = ("AND", "OR", "NOT")
# Chroma/MongoDB spellings accepted as well: {"$or": [...]}, {"user_id": {"$eq": "a"}}
_ALIASES = {"$and": "AND", "$or": "OR", "$not": "NOT", "and": "AND", "or": "OR", "not": "NOT"}
MAX_DEPTH = 16
MAX_KEY_CHARS = 200
_DATETIME_FIELDS = ("created_at", "updated_at", "timestamp")
_MISSING = object()


def field_value(record: MemoryRecord, key: str) -> Any:
    """The value a filter key refers to: a core field first, then metadata."""
    if key in SCOPE_KEYS:
        return getattr(record.scope, key)
    if key in _DATETIME_FIELDS:
        return getattr(record, key)
    if key == "memory_type":
        return record.memory_type
    if key == "event_date":
        return record.event_date
    if key in ("actor_id", "actor"):
        return record.actor
    if key == "role":
        return record.role
    if key in ("memory", "text"):
        return record.memory
    if key in ("entities", "entity"):
        return list(record.entities)
    if key == "hash":
        return record.hash
    if key == "id":
        return record.id
    return record.metadata.get(key, _MISSING)


def compile_filters(filters: Mapping[str, Any] | None, _depth: int = 0) -> Predicate:
    """Turn a filter dict into a predicate; raises InvalidInputError on anything it cannot use.

    Keys are fields (scope keys, core fields, else metadata) or the logical AND/OR/NOT (also
    spelled $and/$or/$not); a field takes a value (equality), "*" (any value) or a dict of
    operators (eq, ne, gt, gte, lt, lte, in, nin, contains, icontains; a leading $ is allowed).
    """
    if filters is None:
        return lambda record: True
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    if _depth > MAX_DEPTH:
        raise InvalidInputError(f"filters are nested more than {MAX_DEPTH} levels deep.")
    parts: list[Predicate] = []
    for key, cond in filters.items():
        _check_key(key)
        logical = _ALIASES.get(key, key)
        if logical in LOGICAL:
            parts.append(_logical(logical, cond, _depth))
        elif key.startswith("$"):
            raise InvalidInputError(f"Unknown filter key '{key}'. Combine filters with AND, OR or NOT "
                                    "(or $and, $or, $not).")
        else:
            parts.append(_field(key, cond))
    if len(parts) == 1:  # a search checks hundreds of candidates: one call less each
        return parts[0]
    return lambda record: all(p(record) for p in parts)


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key.strip():
        raise InvalidInputError(f"Filter keys must be non-empty strings, not {key!r}.")
    _check_string(key, "filter key")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInputError(f"A filter key is {len(key)} characters long; the limit is {MAX_KEY_CHARS}.")


def _check_string(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"A {what} contains characters that are not valid Unicode "
                                f"(position {exc.start}).") from exc


def _check_operand(key: str, value: Any) -> None:
    """A value a filter compares with: text, a finite number, a boolean, None or a datetime."""
    if isinstance(value, str):
        _check_string(value, f"filter value for '{key}'")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"The filter value for '{key}' is {value}; use a finite number.")
    elif not (value is None or isinstance(value, (bool, int, float, datetime, date))):
        raise InvalidInputError(f"The filter value for '{key}' must be text, a number, a boolean or "
                                f"a date, not {type(value).__name__}.")


def _logical(op: str, cond: Any, depth: int) -> Predicate:
    items = cond if isinstance(cond, (list, tuple)) else [cond]
    if not items or not all(isinstance(c, Mapping) and c for c in items):
        raise InvalidInputError(f"'{op}' takes a list of filter dicts, e.g. {{'{op}': [{{'user_id': 'alice'}}]}}.")
    subs = [compile_filters(c, depth + 1) for c in items]
    if op == "AND":
        return lambda r: all(s(r) for s in subs)
    if op == "OR":
        return lambda r: any(s(r) for s in subs)
    return lambda r: not any(s(r) for s in subs)


def _field(key: str, cond: Any) -> Predicate:
    if isinstance(cond, Mapping):
        if not cond:
            raise InvalidInputError(f"The filter on '{key}' is an empty dict; give a value or an "
                                    f"operator such as {{'eq': ...}}.")
        checks = []
        for op, operand in cond.items():
            if isinstance(op, str) and op.startswith("$"):
                op = op[1:]
            if op not in OPERATORS:
                raise InvalidInputError(
                    f"Unknown filter operator '{op}' on '{key}'. Use one of: {', '.join(OPERATORS)}.")
            checks.append(_operator(key, op, operand))
        return lambda r: all(c(r) for c in checks)
    if cond == "*":
        return lambda r: field_value(r, key) not in (_MISSING, None)
    return _operator(key, "eq", cond)


def _operator(key: str, op: str, operand: Any) -> Predicate:
    if op in ("in", "nin"):
        if not isinstance(operand, (list, tuple, set)):
            raise InvalidInputError(f"Operator '{op}' on '{key}' needs a list of values.")
        for value in operand:
            _check_operand(key, value)
        options = [_coerce(key, v) for v in operand]
    elif op in ("contains", "icontains"):
        if not isinstance(operand, str):
            raise InvalidInputError(f"Operator '{op}' on '{key}' needs a text value.")
        _check_operand(key, operand)
    else:
        _check_operand(key, operand)
    if op == "eq" and key in SCOPE_KEYS and isinstance(operand, str):  # the common filter, checked directly
        return lambda record: getattr(record.scope, key) == operand
    target = _coerce(key, operand) if op not in ("in", "nin", "contains", "icontains") else None

    def check(record: MemoryRecord) -> bool:
        value = field_value(record, key)
        if value is _MISSING or value is None:
            return op in ("ne", "nin")
        value = _normalise(key, value)
        if op == "eq":
            return _any_of(value, lambda v: v == target)
        if op == "ne":
            return not _any_of(value, lambda v: v == target)
        if op == "in":
            return _any_of(value, lambda v: v in options)
        if op == "nin":
            return not _any_of(value, lambda v: v in options)
        if op == "contains":
            return _any_of(value, lambda v: operand in str(v))
        if op == "icontains":
            low = operand.casefold()
            return _any_of(value, lambda v: low in str(v).casefold())
        try:
            if op == "gt":
                return _any_of(value, lambda v: v > target)
            if op == "gte":
                return _any_of(value, lambda v: v >= target)
            if op == "lt":
                return _any_of(value, lambda v: v < target)
            return _any_of(value, lambda v: v <= target)
        except TypeError:
            return False

    return check


def _any_of(value: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(value, (list, tuple)):
        return any(test(v) for v in value)
    return test(value)


def _coerce(key: str, value: Any) -> Any:
    """Filter operands on time fields become UTC datetimes (event_date: ISO dates)."""
    if key in _DATETIME_FIELDS:
        from ..extraction.temporal import parse_timestamp

        return parse_timestamp(value)
    if key == "event_date":
        from ..extraction.temporal import parse_timestamp

        if isinstance(value, (datetime, date)):
            return (value if isinstance(value, date) and not isinstance(value, datetime)
                    else value.astimezone(timezone.utc).date()).isoformat()
        return parse_timestamp(value).date().isoformat() if not _is_iso_date(value) else value
    return value


def _normalise(key: str, value: Any) -> Any:
    if key == "event_date" and isinstance(value, str):
        return value.split("/")[0]  # ranges compare by their first day
    return value


def _is_iso_date(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"


def scope_of(filters: Mapping[str, Any] | None) -> dict[str, str]:
    """The plain scope keys (user_id/agent_id/run_id with a literal value) of a filter dict."""
    out: dict[str, str] = {}
    for key in SCOPE_KEYS:
        value = (filters or {}).get(key)
        if isinstance(value, str) and value != "*":
            out[key] = value
        elif isinstance(value, Mapping) and set(value) == {"eq"} and isinstance(value["eq"], str):
            out[key] = value["eq"]
    return out


def names_scope(filters: Mapping[str, Any] | None, _depth: int = 0) -> bool:
    """True when the filters confine results to named users, agents or sessions.

    A literal scope key (or eq / in with text values) does, as does AND with such a part, or
    OR whose every branch does. "*" and negations do not.
    """
    if not isinstance(filters, Mapping) or _depth > MAX_DEPTH:
        return False
    for key, cond in filters.items():
        logical = _ALIASES.get(key, key) if isinstance(key, str) else None
        if key in SCOPE_KEYS:
            if isinstance(cond, str) and cond != "*":
                return True
            if isinstance(cond, Mapping) and len(cond) == 1:
                (op, operand), = cond.items()
                op = op[1:] if isinstance(op, str) and op.startswith("$") else op
                if op == "eq" and isinstance(operand, str) and operand != "*":
                    return True
                if op == "in" and isinstance(operand, (list, tuple, set)) and operand and \
                        all(isinstance(v, str) for v in operand):
                    return True
        elif logical in ("AND", "OR"):
            items = cond if isinstance(cond, (list, tuple)) else [cond]
            scoped = [names_scope(c, _depth + 1) for c in items]
            if items and (any(scoped) if logical == "AND" else all(scoped)):
                return True
    return False


def chroma_where(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Chroma `where` that narrows by scope; the full predicate still runs afterwards."""
    scope = scope_of(filters)
    clauses = [{k: {"$eq": v}} for k, v in scope.items()]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
