"""mem0's platform shapes over a Loci store: filters, scopes, entities and pages (REST and MCP share them)."""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidInputError

ENTITY_KINDS = {"user": "user_id", "agent": "agent_id", "run": "run_id"}
SCOPE_KEYS = ("user_id", "agent_id", "run_id")


def flatten_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """mem0 v2/v3 filters ({"AND": [{"user_id": "x"}, ...]}) with plain AND parts lifted to the top.

    Lifting lets the store page by scope in SQLite instead of scanning; what cannot be lifted
    (OR, NOT, repeated keys) stays as it is and is still understood by engine filters.
    """
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be an object, not {type(filters).__name__}.")
    out: dict[str, Any] = {}
    rest: list[Any] = []
    for key, value in filters.items():
        if key == "AND" and isinstance(value, list):
            for part in value:
                flat = flatten_filters(part) if isinstance(part, Mapping) else None
                if flat is not None and "AND" not in flat and not (set(flat) & set(out)):
                    out.update(flat)
                else:
                    rest.append(part)
        elif key in out:
            rest.append({key: value})
        else:
            out[key] = value
    if "app_id" in out:
        raise_app_id()
    if rest:
        out["AND"] = rest
    return out


def raise_app_id() -> None:
    raise InvalidInputError("Loci has no app_id scope: use user_id, agent_id or run_id "
                            "(or keep the app's name in metadata).")


def scope_from(filters: Mapping[str, Any] | None = None, **given: Any) -> dict[str, str]:
    """user_id/agent_id/run_id from top-level arguments, else from plain filter keys."""
    if given.get("app_id"):
        raise_app_id()
    flat = flatten_filters(filters)
    out: dict[str, str] = {}
    for key in SCOPE_KEYS:
        value = given.get(key) or flat.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    return out


def list_entities(memory: Any) -> list[dict[str, Any]]:
    """Every user, agent and run holding memories, in mem0's /v1/entities/ shape."""
    kinds = {v: k for k, v in ENTITY_KINDS.items()}
    return [{"id": s.value, "name": s.value, "type": kinds[s.kind], "total_memories": s.count,
             "owner": None, "organization": None, "metadata": None, "created_at": None, "updated_at": None}
            for s in memory.scopes()]


def delete_entity(memory: Any, kind: str, name: str) -> dict[str, str]:
    """Delete every memory of one user/agent/run (an entity exists only through its memories)."""
    key = ENTITY_KINDS.get(kind)
    if key is None:
        if kind == "app":
            raise_app_id()
        raise InvalidInputError(f"Unknown entity type '{kind}': use user, agent or run.")
    memory.delete_all(**{key: name})
    return {"message": "Entity deleted successfully."}


def page_of(memory: Any, filters: Mapping[str, Any] | None, page: int, page_size: int,
            base_url: str = "") -> dict[str, Any]:
    """One page of get_all in mem0's paginated shape ({count, next, previous, results})."""
    if page < 1 or page_size < 1:
        raise InvalidInputError("page and page_size must be 1 or more.")
    flat = flatten_filters(filters)
    total = memory.count(flat)
    rows = memory.get_all(filters=flat, top_k=page_size, offset=(page - 1) * page_size)["results"]
    nxt = f"{base_url}?page={page + 1}&page_size={page_size}" if page * page_size < total else None
    prev = f"{base_url}?page={page - 1}&page_size={page_size}" if page > 1 else None
    return {"count": total, "next": nxt, "previous": prev, "results": rows}
