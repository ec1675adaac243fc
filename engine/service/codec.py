"""Engine records, errors and times to JSON and back, for the owner <-> client connection."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pathlib import Path

from .. import errors
from ..assistant.answer import Answer
from ..store.backup import Snapshot
from ..store.export import ExportedMemory
from ..store.ledger import ScopeCount
from ..store.reembed import ReembedStatus
from ..records import Entity, HistoryEvent, MemoryRecord, Message, Scope, ScoredMemory

_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    MemoryRecord, ScoredMemory, HistoryEvent, Entity, Message, Scope, ScopeCount, Answer, Snapshot,
    ExportedMemory, ReembedStatus)}
_ERRORS: dict[str, type[errors.LociError]] = {cls.__name__: cls for cls in (
    errors.LociError, errors.ConfigError, errors.ModelError, errors.ExtractionError,
    errors.StoreError, errors.NotFoundError, errors.InvalidInputError)}


def encode(value: Any) -> Any:
    """A JSON-ready form of `value` that `decode` turns back into the same objects."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return {"__t": "datetime", "v": value.isoformat()}
    if isinstance(value, Path):
        return {"__t": "path", "v": str(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name not in _TYPES:
            raise TypeError(f"cannot send a {name} to another process")
        return {"__t": name, "f": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"__t": "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, (list, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {"__t": "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]} \
            if any(not isinstance(k, str) or k == "__t" for k in value) else \
            {k: encode(v) for k, v in value.items()}
    raise TypeError(f"cannot send a {type(value).__name__} to another process")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("__t")
    if tag is None:
        return {k: decode(v) for k, v in value.items()}
    if tag == "datetime":
        return datetime.fromisoformat(value["v"])
    if tag == "path":
        return Path(value["v"])
    if tag == "tuple":
        return tuple(decode(v) for v in value["v"])
    if tag == "dict":
        return {decode(k): decode(v) for k, v in value["v"]}
    cls = _TYPES.get(tag)
    if cls is None:
        raise ValueError(f"unknown record type {tag!r} from the store owner")
    return cls(**{k: decode(v) for k, v in value["f"].items()})


def encode_error(exc: errors.LociError) -> dict[str, Any]:
    kind = type(exc).__name__ if type(exc).__name__ in _ERRORS else "LociError"
    for cls in type(exc).__mro__:  # a subclass another helper adds travels as its known base
        if cls.__name__ in _ERRORS:
            kind = cls.__name__
            break
    return {"type": kind, "message": str(exc)}


def decode_error(data: dict[str, Any]) -> errors.LociError:
    return _ERRORS.get(str(data.get("type")), errors.LociError)(str(data.get("message", "")))
