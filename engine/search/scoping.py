"""Whose memories a read looks in: scope keywords merged into filters, checked filter arguments."""
from __future__ import annotations

from typing import Any, Mapping

from ..arguments import check_flag, scope_value
from ..errors import InvalidInputError
from ..records import SCOPE_KEYS
from .filters import compile_filters, names_scope, scope_of


def filter_dict(filters: Any) -> dict[str, Any]:
    """A copy of a filter dict, checked (InvalidInputError when it cannot be used)."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    compile_filters(filters)
    return dict(filters or {})


def names_entities(filters: Any) -> bool:
    """True when a filter (at any depth) tests a memory's entities."""
    if isinstance(filters, Mapping):
        return any(k in ("entities", "entity") or names_entities(v) for k, v in filters.items())
    if isinstance(filters, (list, tuple)):
        return any(names_entities(v) for v in filters)
    return False


def merge_scope(filters: Mapping[str, Any] | None, user_id: str | None, agent_id: str | None,
                run_id: str | None) -> dict[str, Any]:
    """The filters with the scope keywords added (integer ids as text); a conflict is an error."""
    if filters is not None and not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a dict, not {type(filters).__name__}.")
    merged = dict(filters or {})
    for key in SCOPE_KEYS:
        if key in merged:
            merged[key] = scope_value(merged[key])
    for key, value in zip(SCOPE_KEYS, (user_id, agent_id, run_id)):
        if value is not None:
            value = scope_value(value)
            if key in merged and scope_of({key: merged[key]}).get(key) != value:
                raise InvalidInputError(f"{key}={value!r} conflicts with {key} {merged[key]!r} in "
                                        "filters; give the scope once.")
            merged[key] = value
    return merged


def require_scope(filters: Mapping[str, Any], all_scopes: Any, doing: str) -> None:
    """mem0's rule: a read names whose memories it reads, unless all_scopes=True says every user's."""
    check_flag(all_scopes, "all_scopes")
    compile_filters(filters)  # a malformed filter is the more useful message
    if not all_scopes and not names_scope(filters):
        raise InvalidInputError(
            f"Say whose memories to {doing}: give user_id, agent_id or run_id (or the same keys in "
            f"filters). To {doing} every user's memories on purpose, pass all_scopes=True.")
