"""mem0's `messages` argument (a text, a message dict or a list of them) read into checked Messages."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Mapping

from ..arguments import MAX_MESSAGE_CHARS, ROLES, check_metadata, check_text, is_blank
from ..errors import InvalidInputError
from ..extraction.temporal import timestamp_or_now
from ..records import Message, Scope


def to_messages(messages: Any, scope: Scope, when: datetime) -> list[Message]:
    """Checked messages of one add() call; a message without a timestamp gets `when`.

    Raises InvalidInputError on anything unusable and when every message is empty; the
    empty ones among others (blank text, control characters) are left out.
    """
    items = _items(messages)
    out: list[Message] = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"Message {n + 1} must be a dict with 'role' and 'content', "
                                    f"not {type(item).__name__}.")
        role = item.get("role", "user")
        content = item.get("content")
        name = item.get("name")
        if role not in ROLES:
            raise InvalidInputError(f"Message {n + 1} has role {role!r}; use one of {', '.join(ROLES)}.")
        check_text(content, f"content of message {n + 1}", MAX_MESSAGE_CHARS)
        if name is not None:
            check_text(name, f"name of message {n + 1}", 200)
        msg_time = timestamp_or_now(item["timestamp"]) if item.get("timestamp") is not None else when
        out.append(Message(id=str(uuid.uuid4()), role=role, content=str(content), timestamp=msg_time,
                           name=name or None, scope=scope,
                           metadata=check_metadata(item.get("metadata"))))
    if all(is_blank(m.content) for m in out if m.role != "system"):
        raise InvalidInputError("There is nothing to remember: every message is empty.")
    return [m for m in out if not is_blank(m.content)]


def _items(messages: Any) -> list[Any]:
    if isinstance(messages, str):
        items: list[Any] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        items = [messages]
    elif isinstance(messages, (list, tuple)):
        items = list(messages)
    else:
        raise InvalidInputError("messages must be a string, a message dict or a list of "
                                f"{{'role', 'content'}} dicts, not {type(messages).__name__}.")
    if not items:
        raise InvalidInputError("There is nothing to remember: the message list is empty.")
    return items
