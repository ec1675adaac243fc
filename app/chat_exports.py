"""ChatGPT and Claude data exports (the .zip or its conversations.json) read as a stream of conversations.

Nothing loads the whole file: conversations are parsed one at a time with ijson, so a 500 MB
export costs the memory of its largest conversation. One conversation becomes one session
(run id "<kind>-<conversation id>", its title kept), its messages in order along the active
branch (ChatGPT's tree is walked from `current_node` up through the parents, so edited and
regenerated branches are left out); system and tool messages, hidden and empty nodes are
skipped and attachments are noted by name. Qt-free; used by `loci import` and the desktop app.
"""
from __future__ import annotations

import contextlib
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Collection, Iterator, Mapping

from engine import InvalidInputError
from engine.records import CONVERSATION_KEY

KINDS = {
    "chatgpt": "ChatGPT export",
    "claude": "Claude export",
}
LOCI_EXPORT = "loci-export"
MEMBER = "conversations.json"
MAX_CHARS = 100_000  # engine.arguments.MAX_MESSAGE_CHARS: longer messages are cut there
_TEXT_TYPES = {"text", "multimodal_text"}
EXPECTED = ("a ChatGPT export (conversations.json whose conversations have a 'mapping'), a Claude "
             "export (conversations.json whose conversations have 'chat_messages'), the .zip of either, "
             "or a Loci export")


@dataclass(frozen=True, slots=True)
class ChatConversation:
    """One conversation of an export: a session of messages (mem0's dicts) under its own run id."""

    kind: str
    id: str
    title: str
    messages: tuple[dict[str, Any], ...]
    timestamp: datetime | None = None
    attachments: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return f"{self.kind}-{self.id}"

    @property
    def first(self) -> datetime | None:
        return _message_time(self.messages[0]) if self.messages else self.timestamp

    @property
    def last(self) -> datetime | None:
        return _message_time(self.messages[-1]) if self.messages else self.timestamp


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """What a preview shows of one conversation (no message text kept)."""

    id: str
    title: str
    messages: int
    user_messages: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """An export file at a glance: its kind and every conversation with messages in it."""

    path: Path
    kind: str
    conversations: tuple[ConversationInfo, ...]

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.conversations)

    @property
    def first(self) -> datetime | None:
        times = [c.first for c in self.conversations if c.first]
        return min(times) if times else None

    @property
    def last(self) -> datetime | None:
        times = [c.last for c in self.conversations if c.last]
        return max(times) if times else None


def sniff(path: str | Path) -> str | None:
    """"chatgpt", "claude" or "loci-export" from the file's content (a .zip or JSON); None otherwise."""
    p = _existing(path)
    with _open_json(p) as stream:  # a .zip without conversations.json raises, naming what it lacks
        head = stream.read(4096)
    text = head.decode("utf-8", "replace").lstrip("\ufeff").lstrip()
    if text.startswith("{") and f'"{LOCI_EXPORT}"' in text[:400]:
        return LOCI_EXPORT
    if not text.startswith("["):
        return None
    try:
        with _open_json(p) as stream:
            first = next(_items(stream, p.name), None)
    except InvalidInputError:
        return None
    return _kind_of(first)


def summarize(path: str | Path) -> ExportSummary:
    """Every conversation with at least one message (title, counts, dates), read in one streaming pass."""
    p = _existing(path)
    kind = _require_kind(p)
    infos = tuple(ConversationInfo(c.id, c.title, len(c.messages),
                                   sum(1 for m in c.messages if m["role"] == "user"), c.first, c.last)
                  for c in _conversations(p, kind, None))
    return ExportSummary(p, kind, infos)


def read_conversations(path: str | Path, only: Collection[str] | None = None) -> Iterator[ChatConversation]:
    """The conversations of an export with at least one message, in file order (only those ids when given)."""
    p = _existing(path)
    return _conversations(p, _require_kind(p), only)


def _conversations(p: Path, kind: str, only: Collection[str] | None) -> Iterator[ChatConversation]:
    parse = _chatgpt if kind == "chatgpt" else _claude
    with _open_json(p) as stream:
        for n, raw in enumerate(_items(stream, p.name)):
            if not isinstance(raw, Mapping):
                raise InvalidInputError(f"Conversation {n + 1} in {p.name} is not an object; expected {EXPECTED}.")
            conv_id = str(raw.get("conversation_id") or raw.get("id") or raw.get("uuid") or f"n{n + 1}")
            if only is not None and conv_id not in only:
                continue
            conv = parse(raw, conv_id)
            for msg in conv.messages:  # each episode says where it came from
                msg["metadata"] = {"source": kind, CONVERSATION_KEY: conv.title}
            if conv.messages:
                yield conv


def _require_kind(p: Path) -> str:
    kind = sniff(p)
    if kind in KINDS:
        return kind
    if kind == LOCI_EXPORT:
        raise InvalidInputError(f"{p.name} is a Loci export: restore it with File -> Restore From Export "
                                "(or `loci import FILE`).")
    raise InvalidInputError(f"{p.name} is not a chat export Loci can read: expected {EXPECTED}.")


# -- ChatGPT -------------------------------------------------------------------------------

def _chatgpt(raw: Mapping[str, Any], conv_id: str) -> ChatConversation:
    mapping = raw.get("mapping") or {}
    if not isinstance(mapping, Mapping):
        mapping = {}
    messages: list[dict[str, Any]] = []
    attachments: list[str] = []
    for node in _active_branch(mapping, raw.get("current_node")):
        msg = node.get("message")
        if not isinstance(msg, Mapping):
            continue
        role = str((msg.get("author") or {}).get("role", ""))
        meta = msg.get("metadata") or {}
        if role not in ("user", "assistant") or meta.get("is_visually_hidden_from_conversation"):
            continue
        if msg.get("recipient", "all") != "all":  # a call to a tool (browser, code), not a reply
            continue
        content = msg.get("content") or {}
        if content.get("content_type", "text") not in _TEXT_TYPES:
            continue
        names = [str(a.get("name")) for a in meta.get("attachments") or () if isinstance(a, Mapping) and a.get("name")]
        text = " ".join(_part_text(part) for part in content.get("parts") or ()).strip()
        out = _message(role, text, names, msg.get("create_time"))
        if out is not None:
            messages.append(out)
            attachments += names
    return ChatConversation("chatgpt", conv_id, _title(raw.get("title")), tuple(messages),
                            _time(raw.get("create_time")), tuple(attachments))


def _active_branch(mapping: Mapping[str, Any], current: Any) -> list[Mapping[str, Any]]:
    """The nodes from the root down to current_node (or the newest leaf when it is missing)."""
    if not isinstance(current, str) or current not in mapping:
        leaves = [k for k, v in mapping.items() if isinstance(v, Mapping) and not v.get("children")]
        if not leaves:
            return []
        current = max(leaves, key=lambda k: _node_time(mapping[k]))
    chain: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    node_id: Any = current
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, Mapping):
            break
        chain.append(node)
        node_id = node.get("parent")
    chain.reverse()
    return chain


def _node_time(node: Mapping[str, Any]) -> float:
    msg = node.get("message")
    value = msg.get("create_time") if isinstance(msg, Mapping) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
        return str(part["text"])
    return ""  # an image or audio pointer: its file name, if any, is among the attachments


# -- Claude --------------------------------------------------------------------------------

def _claude(raw: Mapping[str, Any], conv_id: str) -> ChatConversation:
    items = [m for m in raw.get("chat_messages") or () if isinstance(m, Mapping)]
    messages: list[dict[str, Any]] = []
    attachments: list[str] = []
    for msg in _claude_branch(items):
        sender = str(msg.get("sender", ""))
        role = {"human": "user", "user": "user", "assistant": "assistant"}.get(sender)
        if role is None:
            continue
        blocks = msg.get("content")
        if isinstance(blocks, list) and blocks:
            text = "\n".join(str(b.get("text")) for b in blocks
                             if isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str))
        else:
            text = str(msg.get("text") or "")
        names = [str(a.get("file_name")) for key in ("attachments", "files") for a in msg.get(key) or ()
                 if isinstance(a, Mapping) and a.get("file_name")]
        names = list(dict.fromkeys(names))
        out = _message(role, text.strip(), names, msg.get("created_at"))
        if out is not None:
            messages.append(out)
            attachments += names
    return ChatConversation("claude", conv_id, _title(raw.get("name")), tuple(messages),
                            _time(raw.get("created_at")), tuple(attachments))


def _claude_branch(items: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Newer exports link messages by parent_message_uuid: keep the branch ending at the newest one."""
    by_id = {str(m.get("uuid")): m for m in items if m.get("uuid")}
    if not items or not all(m.get("parent_message_uuid") for m in items) or len(by_id) != len(items):
        return items
    chain: list[Mapping[str, Any]] = []
    node: Mapping[str, Any] | None = items[-1]
    while node is not None and len(chain) <= len(items):
        chain.append(node)
        node = by_id.get(str(node.get("parent_message_uuid")))
    chain.reverse()
    return chain


# -- shared --------------------------------------------------------------------------------

def _message(role: str, text: str, attachments: list[str], when: Any) -> dict[str, Any] | None:
    if attachments:
        text = (text + "\n" if text else "") + f"[attached: {', '.join(attachments)}]"
    if not text.strip():
        return None
    msg: dict[str, Any] = {"role": role, "content": text[:MAX_CHARS]}
    moment = _time(when)
    if moment is not None:
        msg["timestamp"] = moment.isoformat()
    return msg


def _message_time(msg: Mapping[str, Any]) -> datetime | None:
    return _time(msg.get("timestamp"))


def _time(value: Any) -> datetime | None:
    """Unix seconds (ChatGPT) or ISO 8601 (Claude) -> aware UTC; None when absent or unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), timezone.utc)
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _title(value: Any) -> str:
    return str(value).strip() if isinstance(value, str) and value.strip() else "Untitled conversation"


def _existing(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInputError(f"The file {p} does not exist.")
    return p


@contextlib.contextmanager
def _open_json(p: Path) -> Iterator[BinaryIO]:
    """The file itself, or conversations.json inside a .zip, as a binary stream."""
    if not zipfile.is_zipfile(p):
        with p.open("rb") as f:
            yield f
        return
    try:
        with zipfile.ZipFile(p) as archive:
            names = archive.namelist()
            member = next((n for n in names if Path(n).name == MEMBER), None)
            if member is None:
                raise InvalidInputError(f"{p.name} is a .zip without {MEMBER}: expected {EXPECTED}.")
            with archive.open(member) as inner:
                yield inner  # type: ignore[misc]
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{p.name} is a damaged .zip file; download the export again.") from None


def _items(stream: BinaryIO, name: str) -> Iterator[Any]:
    """The elements of a top-level JSON array, one at a time."""
    import ijson

    try:
        yield from ijson.items(_skip_bom(stream), "item", use_float=True)
    except ijson.JSONError as exc:
        raise InvalidInputError(f"{name} is not valid JSON ({exc}); expected {EXPECTED}.") from None


def _skip_bom(stream: BinaryIO) -> BinaryIO:
    head = stream.read(3)
    rest: BinaryIO = stream
    if head == b"\xef\xbb\xbf":
        head = b""
    return _Prefixed(head, rest)  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    """A stream with a few bytes put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                out, self._head = self._head + self._rest.read(), b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _kind_of(first: Any) -> str | None:
    if isinstance(first, Mapping):
        if "mapping" in first:
            return "chatgpt"
        if "chat_messages" in first:
            return "claude"
    return None

