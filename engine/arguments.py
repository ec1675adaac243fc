"""Checks and normalisers of the facade's public arguments (ids, text, scopes, metadata, counts)."""
from __future__ import annotations

import json
import logging
import math
import unicodedata
from datetime import date, datetime
from typing import Any, Mapping

from .errors import InvalidInputError
from .records import EXPIRATION_KEY, SCOPE_KEYS, Scope

# the scope-key warnings are the facade's: they keep the logger name callers filter on
log = logging.getLogger("engine.memory")

MAX_MESSAGE_CHARS = 100_000
MAX_QUERY_CHARS = 10_000
MAX_ID_CHARS = 1_000
MAX_TOP_K = 10_000  # results of one search
MAX_PAGE = 1_000_000_000  # rows or offset of one listing
MAX_NESTING = 16  # depth of metadata lists and dicts
ROLES = ("user", "assistant", "system", "tool")
UNSET: Any = object()  # "argument not given" where None means "clear it"


def check_text(text: Any, what: str, limit: int) -> None:
    """Text of at most `limit` characters, valid Unicode and without NUL characters."""
    if not isinstance(text, str):
        raise InvalidInputError(f"The {what} must be text, not {type(text).__name__}.")
    if len(text) > limit:
        raise InvalidInputError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}. "
                                "Split it into smaller messages.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"The {what} contains characters that are not valid Unicode "
                                f"(position {exc.start}); fix the encoding and try again.") from exc
    if "\x00" in text:
        raise InvalidInputError(f"The {what} contains a NUL character (\\x00); remove it and try again.")


def check_id(memory_id: Any) -> None:
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise InvalidInputError(f"A memory id must be a non-empty string, not {memory_id!r}.")
    check_text(memory_id, "memory id", MAX_ID_CHARS)


def check_flag(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, not {value!r}.")


def check_count(value: Any, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be a whole number from {low} to {high:,}, not {value!r}.")


def check_actor(actor: Any) -> None:
    if actor is not None:
        check_text(actor, "actor", 200)


def check_threshold(threshold: Any) -> None:
    """A minimum score: a finite number (booleans are not numbers here)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
            not math.isfinite(threshold):
        raise InvalidInputError(f"threshold must be a number (a minimum score such as 0.3), "
                                f"not {threshold!r}.")


def check_reason(reason: Any) -> None:
    """A backup's reason: one ASCII word (it names the snapshot folder)."""
    if not isinstance(reason, str) or not reason.isidentifier() or not reason.isascii():
        raise InvalidInputError(f"A backup reason is one word, not {reason!r}.")


def check_hours(hours: Any) -> None:
    """An age in hours, from 0 to a century."""
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 <= hours <= 24 * 365 * 100:
        raise InvalidInputError(f"max_age_hours must be a number of hours, not {hours!r}.")


def is_blank(text: str) -> bool:
    """Nothing a person could read: only spaces, control characters or format marks."""
    return all(unicodedata.category(ch)[0] in "CZ" for ch in text)


def scope_value(value: Any) -> Any:
    """mem0 turns integer ids (a database key, say) into text; so does Loci."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def check_scope(user_id: Any, agent_id: Any, run_id: Any) -> Scope:
    """The scope a write names; at least one of its three ids is required."""
    user_id, agent_id, run_id = scope_value(user_id), scope_value(agent_id), scope_value(run_id)
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        if value is not None and (not isinstance(value, str) or not value.strip() or value == "*"):
            raise InvalidInputError(f"{name} must be a non-empty string, not {value!r}.")
        if value is not None:
            check_text(value, name, 200)
    scope = Scope(user_id, agent_id, run_id)
    if scope.is_empty:
        raise InvalidInputError("Say whose memory this is: give at least one of user_id, agent_id "
                                "or run_id.")
    return scope


def drop_scope_keys(meta: dict[str, Any], where: str, scope: Scope | None = None) -> dict[str, Any]:
    """mem0's rule: who a memory belongs to is set by user_id/agent_id/run_id, never by metadata.

    A scope key inside metadata is dropped, with a warning unless it repeats the memory's scope.
    """
    clean: dict[str, Any] = {}
    for key, value in meta.items():
        if key not in (*SCOPE_KEYS, "actor_id"):
            clean[key] = value
        elif scope is None or value != getattr(scope, key, None):
            log.warning("%s: ignoring metadata['%s']; set the owner with user_id, agent_id or run_id",
                        where, key)
    return clean


def expiration_day(value: Any) -> str:
    """A YYYY-MM-DD text from a date, datetime or ISO date text (mem0's accepted forms)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise InvalidInputError(f"expiration_date must be a date like '2025-12-31', not {value!r}.")


def updated_metadata(old: Mapping[str, Any], new: dict[str, Any] | None, scope: Scope,
                     expiration_date: Any) -> dict[str, Any]:
    """update()'s metadata: the new keys (scope keys dropped) over the old, the expiry set,
    cleared (None) or kept (UNSET)."""
    merged = {**old, **drop_scope_keys(new or {}, "update()", scope)}
    if expiration_date is not UNSET:
        merged.pop(EXPIRATION_KEY, None)
        if expiration_date is not None:
            merged[EXPIRATION_KEY] = expiration_day(expiration_date)
    return merged


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A copy of a metadata dict that JSON can hold, at most MAX_MESSAGE_CHARS long as JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, not {type(metadata).__name__}.")
    check_json_value(metadata, "metadata", 0)
    text = json.dumps(dict(metadata), allow_nan=False)
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(f"metadata is {len(text):,} characters long as JSON; the limit is "
                                f"{MAX_MESSAGE_CHARS:,}.")
    return dict(metadata)


def check_json_value(value: Any, where: str, depth: int) -> None:
    """Text (valid Unicode), finite numbers, booleans, None, and lists or dicts of them."""
    if depth > MAX_NESTING:
        raise InvalidInputError(f"metadata is nested more than {MAX_NESTING} levels deep at {where}.")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        check_text(value, f"value of {where}", MAX_MESSAGE_CHARS)
    elif isinstance(value, int):
        if abs(value) >= 2**63:
            raise InvalidInputError(f"The number at {where} is too large to store.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"The number at {where} is {value}; use a finite number.")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"metadata keys must be strings, not {key!r} (in {where}).")
            check_text(key, f"key in {where}", 200)
            check_json_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            check_json_value(item, f"{where}[{n}]", depth + 1)
    else:
        raise InvalidInputError(f"metadata must hold only text, numbers, booleans, lists and dicts; "
                                f"{where} is a {type(value).__name__}.")
