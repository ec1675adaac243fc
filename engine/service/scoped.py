"""A store seen through one scope: the one place where a scoped key or a confined server is enforced.

`ScopedMemory(memory, KeyScope("alice"))` has the Memory methods the REST API and the MCP
server use, over any Memory-like object (engine.Memory, ServedMemory, RemoteMemory). Memories
outside the scope do not exist for it: an id of another user's memory is NotFoundError (a 404,
never a 403 that would confirm the id), lists, counts and searches are ANDed with the scope
whatever the filters say, writes for another scope are refused, and `delete_all`/`reset` need
the owner (a confined MCP server may empty its own scope). A read-only scope refuses every write.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import AccessDeniedError, NotFoundError
from ..records import MemoryRecord
from ..store.ledger import ScopeCount
from .keys import KeyScope


class ScopedMemory:
    """The memories of one scope, and nothing else, of a Memory-like store."""

    def __init__(self, memory: Any, scope: KeyScope, *, may_delete_all: bool = False) -> None:
        self._memory = memory
        self.scope = scope
        self._may_delete_all = may_delete_all

    @property
    def data_dir(self) -> Path:
        return Path(self._memory.data_dir)

    # -- what the scope is ---------------------------------------------------------------
    def _fixed(self) -> dict[str, str]:
        fixed = {"user_id": self.scope.user_id}
        if self.scope.agent_id is not None:
            fixed["agent_id"] = self.scope.agent_id
        return fixed

    def _contains(self, rec: MemoryRecord) -> bool:
        return all(getattr(rec.scope, key) == value for key, value in self._fixed().items())

    def _confine(self, filters: Mapping[str, Any] | None, run_id: Any = None, **given: Any) -> dict[str, Any]:
        """The caller's filters ANDed with the scope: they can narrow it, never widen it."""
        self._check_given(**given)
        inner: dict[str, Any] = dict(filters or {})
        if run_id is not None:
            inner = {"AND": [inner, {"run_id": run_id}]} if inner else {"run_id": run_id}
        out: dict[str, Any] = self._fixed()
        if inner:
            out["AND"] = [inner]
        return out

    def check_given(self, **given: Any) -> None:
        """A scope named as an argument must be this one (user_id, agent_id): else AccessDeniedError."""
        self._check_given(**given)

    def _check_given(self, **given: Any) -> None:
        fixed = self._fixed()
        for key, value in given.items():
            if value is None:
                continue
            allowed = fixed.get(key)
            if allowed is not None and value != allowed:
                raise AccessDeniedError(f"This key is limited to {self.scope.describe()}: it cannot reach "
                                        f"{key} '{value}'.")

    def _check_write(self) -> None:
        if self.scope.read_only:
            raise AccessDeniedError(f"This key is read-only ({self.scope.describe()}): it cannot change memories.")

    def _mine(self, memory_id: str) -> MemoryRecord:
        """The memory, when it is in scope; else exactly what a missing id gives."""
        rec: MemoryRecord = self._memory.get_record(memory_id)
        if not self._contains(rec):
            raise NotFoundError(f"No memory with id '{memory_id}'. It may have been deleted.")
        return rec

    # -- writes --------------------------------------------------------------------------
    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        self._check_write()
        self._check_given(user_id=user_id, agent_id=agent_id)
        out: dict[str, Any] = self._memory.add(messages, user_id=self.scope.user_id,
                                               agent_id=agent_id or self.scope.agent_id, run_id=run_id, **kwargs)
        return out

    def update(self, memory_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check_write()
        self._mine(memory_id)
        return self._memory.update(memory_id, *args, **kwargs)  # type: ignore[no-any-return]

    def update_record(self, memory_id: str, *args: Any, **kwargs: Any) -> MemoryRecord:
        self._check_write()
        self._mine(memory_id)
        return self._memory.update_record(memory_id, *args, **kwargs)  # type: ignore[no-any-return]

    def delete(self, memory_id: str, **kwargs: Any) -> dict[str, Any]:
        self._check_write()
        self._mine(memory_id)
        return self._memory.delete(memory_id, **kwargs)  # type: ignore[no-any-return]

    def delete_records(self, memory_ids: Sequence[str], **kwargs: Any) -> int:
        self._check_write()
        for memory_id in memory_ids:
            self._mine(memory_id)
        return self._memory.delete_records(memory_ids, **kwargs)  # type: ignore[no-any-return]

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, Any]:
        self._check_write()
        if not self._may_delete_all:
            raise AccessDeniedError("Deleting all of a scope's memories needs the owner's API key "
                                    "(`loci api-key`); this key may delete memories one by one.")
        self._check_given(user_id=user_id, agent_id=agent_id)
        return self._memory.delete_all(self.scope.user_id, agent_id or self.scope.agent_id,  # type: ignore[no-any-return]
                                       run_id)

    def reset(self) -> None:
        raise AccessDeniedError("Emptying the whole store needs the owner's API key (`loci api-key`).")

    # -- reads ---------------------------------------------------------------------------
    def get(self, memory_id: str) -> dict[str, Any] | None:
        found = self._memory.get(memory_id)
        if found is None or any(found.get(k) != v for k, v in self._fixed().items()):
            return None
        return dict(found)

    def get_record(self, memory_id: str) -> MemoryRecord:
        return self._mine(memory_id)

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """A memory's history; NotFoundError unless the memory is in scope now."""
        self._mine(memory_id)
        return self._memory.history(memory_id)  # type: ignore[no-any-return]

    def source_messages(self, memory_id: str) -> list[Any]:
        self._mine(memory_id)
        return self._memory.source_messages(memory_id)  # type: ignore[no-any-return]

    def search(self, query: str, *, filters: Mapping[str, Any] | None = None, user_id: str | None = None,
               agent_id: str | None = None, run_id: str | None = None, all_scopes: bool = False,
               **kwargs: Any) -> dict[str, Any]:
        return self._memory.search(query, filters=self._confine(filters, run_id, user_id=user_id,  # type: ignore[no-any-return]
                                                                agent_id=agent_id), **kwargs)

    def get_all(self, *, filters: Mapping[str, Any] | None = None, user_id: str | None = None,
                agent_id: str | None = None, run_id: str | None = None, all_scopes: bool = False,
                **kwargs: Any) -> dict[str, Any]:
        return self._memory.get_all(filters=self._confine(filters, run_id, user_id=user_id,  # type: ignore[no-any-return]
                                                          agent_id=agent_id), **kwargs)

    def list_records(self, *, filters: Mapping[str, Any] | None = None, **kwargs: Any) -> list[MemoryRecord]:
        return self._memory.list_records(filters=self._confine(filters), **kwargs)  # type: ignore[no-any-return]

    def count(self, filters: Mapping[str, Any] | None = None) -> int:
        return int(self._memory.count(self._confine(filters)))

    def scopes(self) -> list[ScopeCount]:
        """The scope itself (with its count), as the only user/agent there is."""
        out = [ScopeCount("user_id", self.scope.user_id, self.count({"user_id": self.scope.user_id}))]
        if self.scope.agent_id is not None:
            out.append(ScopeCount("agent_id", self.scope.agent_id, self.count()))
        return [s for s in out if s.count]

    def entities(self, filters: Mapping[str, Any] | None = None) -> list[Any]:
        return self._memory.entities(self._confine(filters))  # type: ignore[no-any-return]


def view_for(memory: Any, scope: KeyScope | None, *, may_delete_all: bool = False) -> Any:
    """The store as a caller with this scope sees it: the store itself for the owner (scope None)."""
    return memory if scope is None else ScopedMemory(memory, scope, may_delete_all=may_delete_all)
