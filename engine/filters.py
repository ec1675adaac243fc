"""mem0-style filter dicts compiled to predicates over memory records (and a Chroma pre-filter)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping

from .errors import InvalidInputError
from .records import MemoryRecord

Predicate = Callable[[MemoryRecord], bool]

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
LOGICAL = ("AND", "OR", "NOT")
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


def compile_filters(filters: Mapping[str, Any] | None) -> Predicate:
    """Turn a filter dict into a predicate; raises InvalidInputError on unknown operators."""
    if not filters:
        return lambda record: True
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    parts: list[Predicate] = []
    for key, cond in filters.items():
        if key in LOGICAL:
            parts.append(_logical(key, cond))
        elif not isinstance(key, str) or not key:
            raise InvalidInputError(f"Filter keys must be non-empty strings, not {key!r}.")
        else:
            parts.append(_field(key, cond))
    return lambda record: all(p(record) for p in parts)


def _logical(op: str, cond: Any) -> Predicate:
    items = cond if isinstance(cond, (list, tuple)) else [cond]
    if not items or not all(isinstance(c, Mapping) for c in items):
        raise InvalidInputError(f"'{op}' takes a list of filter dicts, e.g. {{'{op}': [{{'user_id': 'alice'}}]}}.")
    subs = [compile_filters(c) for c in items]
    if op == "AND":
        return lambda r: all(s(r) for s in subs)
    if op == "OR":
        return lambda r: any(s(r) for s in subs)
    return lambda r: not any(s(r) for s in subs)


def _field(key: str, cond: Any) -> Predicate:
    if isinstance(cond, Mapping):
        checks = []
        for op, operand in cond.items():
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
        options = [_coerce(key, v) for v in operand]
    elif op in ("contains", "icontains"):
        if not isinstance(operand, str):
            raise InvalidInputError(f"Operator '{op}' on '{key}' needs a text value.")
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
        from .temporal import parse_timestamp

        return parse_timestamp(value)
    if key == "event_date":
        from .temporal import parse_timestamp

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


def chroma_where(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Chroma `where` that narrows by scope; the full predicate still runs afterwards."""
    scope = scope_of(filters)
    clauses = [{k: {"$eq": v}} for k, v in scope.items()]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
