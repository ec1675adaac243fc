"""The assistant's chat log: every turn of a remembered chat, kept beside the store, never a memory."""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import StoreError

log = logging.getLogger(__name__)

FOLDER = "chats"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")


@dataclass(frozen=True, slots=True)
class LoggedTurn:
    """One message of a chat as the log keeps it."""

    role: str
    content: str
    timestamp: datetime
    memory_ids: tuple[str, ...] = ()  # an assistant turn: the memories it cited


class ChatLog:
    """One JSON-lines file per chat in <data dir>/chats/ (readable by its owner only).

    The log is what the conversation list shows and reopens; search and answers never read it,
    so the assistant's replies and the user's questions do not become evidence.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.folder = Path(data_dir) / FOLDER
        self._lock = threading.Lock()

    def _file(self, chat_id: str) -> Path:
        if not _SAFE.match(chat_id):
            raise StoreError(f"A chat id may hold only letters, digits, '-', '_' and '.', not {chat_id!r}.")
        return self.folder / f"{chat_id}.jsonl"

    def append(self, chat_id: str, user_id: str, turns: list[LoggedTurn]) -> None:
        """Add turns to the end of a chat's log."""
        lines = "".join(json.dumps({"user_id": user_id, "role": t.role, "content": t.content,
                                    "timestamp": t.timestamp.isoformat(), "memory_ids": list(t.memory_ids)},
                                   ensure_ascii=False) + "\n" for t in turns)
        path = self._file(chat_id)
        try:
            with self._lock:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as f:
                    f.write(lines)
        except OSError as exc:
            raise StoreError(f"Could not save the chat in {self.folder}: {exc.strerror or exc}. "
                             "Check that the data folder is writable and the disk is not full.") from exc

    def read(self, chat_id: str, user_id: str | None = None) -> list[LoggedTurn]:
        """The turns of a chat, oldest first (of `user_id` only when given); [] when there is none."""
        if not _SAFE.match(chat_id):
            return []  # a session id no chat log can have (e.g. stored by another program)
        path = self._file(chat_id)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"Could not read the chat {path}: {exc.strerror or exc}.") from exc
        turns: list[LoggedTurn] = []
        for line in lines:
            try:
                row = json.loads(line)
                if user_id is not None and row.get("user_id") != user_id:
                    continue
                turns.append(LoggedTurn(str(row["role"]), str(row["content"]),
                                        datetime.fromisoformat(row["timestamp"]),
                                        tuple(str(i) for i in row.get("memory_ids", ()))))
            except (ValueError, KeyError, TypeError):
                log.warning("skipped a damaged line in the chat log %s", path.name)  # e.g. cut by a crash
        return turns

    def chat_ids(self) -> list[str]:
        """Every logged chat."""
        try:
            return sorted(p.stem for p in self.folder.glob("*.jsonl"))
        except OSError:
            return []

    def delete(self, chat_id: str) -> bool:
        """Remove a chat's log; False when there was none."""
        try:
            self._file(chat_id).unlink()
        except FileNotFoundError:
            return False
        return True
