"""AsyncMemory: mem0's async API, every Memory method as a coroutine run in a worker thread."""
from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any, Mapping

from .config import LociConfig
from .memory import Memory


class AsyncMemory:
    """The same methods as Memory (add, search, get, get_all, update, delete, delete_all, history,
    reset, ...) as coroutines. Memory is thread-safe, so each call runs in asyncio's default
    executor and the event loop never blocks on a model or the disk.
    """

    def __init__(self, data_dir: str | Path | None = None,
                 config: LociConfig | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.sync = Memory(data_dir, config, **kwargs)

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any] | None = None, **kwargs: Any) -> "AsyncMemory":
        """mem0-style constructor (see Memory.from_config)."""
        out = cls.__new__(cls)
        out.sync = Memory.from_config(config_dict, **kwargs)
        return out

    async def __aenter__(self) -> "AsyncMemory":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)
        if not callable(method) or name.startswith("_"):
            return method

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

    # The mem0 methods, spelled out so help() and editors show them.
    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.add, messages, **kwargs)

    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.search, query, **kwargs)

    async def get(self, memory_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.sync.get, memory_id)

    async def get_all(self, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.get_all, **kwargs)

    async def update(self, memory_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.update, memory_id, *args, **kwargs)

    async def delete(self, memory_id: str, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.delete, memory_id, **kwargs)

    async def delete_all(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.delete_all, *args, **kwargs)

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.history, memory_id)

    async def reset(self) -> None:
        await asyncio.to_thread(self.sync.reset)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
