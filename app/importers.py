"""Conversation files -> sessions of messages ready for Memory.add (Qt-free, no engine writes).

Formats: a mem0-style JSON list of {"role", "content"} messages, JSONL (one message per
line), a plain "Name: text" transcript, a LoCoMo conversation (speaker_a, speaker_b,
session_N, session_N_date_time) and Loci's own sample format (title, user_id, agent_id,
sessions). Every parse error is an `InvalidInputError` whose message names the file and the
line or key to fix.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine import InvalidInputError

FORMATS = {
    "auto": "Detect from the file",
    "mem0": "JSON list of messages (mem0)",
    "jsonl": "JSON Lines, one message per line",
    "transcript": "Plain transcript (Name: text)",
    "locomo": "LoCoMo conversation",
    "loci": "Loci sample (sessions)",
}
_ASSISTANT_NAMES = {"assistant", "ai", "bot", "agent", "model", "gpt", "claude", "chatgpt"}
_ROLES = {"user", "assistant", "system", "tool"}
_TRANSCRIPT_LINE = re.compile(r"^\s*([^:\n]{1,60}?)\s*:\s+(.*\S)\s*$")
_LOCOMO_SESSION = re.compile(r"^session_(\d+)$")


@dataclass(frozen=True, slots=True)
class Session:
    """One sitting of a conversation: stored under one run_id with one time."""

    messages: tuple[dict[str, Any], ...]
    run_id: str | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a file held: its sessions plus the scope it suggests."""

    sessions: tuple[Session, ...]
    title: str = ""
    user_id: str | None = None
    agent_id: str | None = None
    format: str = ""
    speakers: tuple[str, ...] = field(default=())

    @property
    def message_count(self) -> int:
        return sum(len(s.messages) for s in self.sessions)


def without_small_talk(conv: Conversation) -> tuple[Conversation, int]:
    """The conversation minus messages that are pure small talk, and how many were dropped."""
    from engine.extraction.small_talk import is_small_talk

    dropped = 0
    sessions = []
    for session in conv.sessions:
        kept = tuple(m for m in session.messages if not is_small_talk(str(m.get("content", ""))))
        dropped += len(session.messages) - len(kept)
        if kept:
            sessions.append(Session(kept, session.run_id, session.timestamp))
    return Conversation(tuple(sessions), conv.title, conv.user_id, conv.agent_id, conv.format,
                        conv.speakers), dropped


def load_conversation(path: str | Path, fmt: str = "auto") -> Conversation:
    """Read and parse a conversation file; fmt is one of FORMATS."""
    p = Path(path)
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown conversation format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError(f"The file {p} does not exist.") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{p.name} is not a UTF-8 text file; save it as UTF-8 and try again.") from None
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {p}: {exc.strerror or exc}.") from None
    return parse_conversation(text, fmt, name=p.name)


def parse_conversation(text: str, fmt: str = "auto", *, name: str = "the file") -> Conversation:
    """Parse conversation text in the given (or detected) format."""
    if not text.strip():
        raise InvalidInputError(f"{name} is empty: there is no conversation to import.")
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "jsonl":
        return parse_jsonl(text, name=name)
    if fmt == "transcript":
        return parse_transcript(text, name=name)
    data = _load_json(text, name)
    if fmt == "mem0":
        return parse_mem0(data, name=name)
    if fmt == "locomo":
        return parse_locomo(data, name=name)
    return parse_loci(data, name=name)


def detect_format(text: str) -> str:
    """Guess the format from the content (JSON shape, JSONL lines or plain text)."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return "jsonl" if stripped.startswith("{") else "transcript"
        if isinstance(data, list):
            return "mem0"
        if isinstance(data, Mapping):
            inner = data.get("conversation", data)
            if isinstance(inner, Mapping) and "speaker_a" in inner:
                return "locomo"
            if "sessions" in data:
                return "loci"
            if "messages" in data:
                return "mem0"
            return "jsonl"  # a single message object on one line
    return "transcript"


def _load_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                f"{exc.msg}).") from None


def _message(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise InvalidInputError(f"{where} must be an object with 'role' and 'content'.")
    content = item.get("content", item.get("text"))
    if not isinstance(content, str):
        raise InvalidInputError(f"{where} has no text: give it a 'content' string.")
    role = str(item.get("role", "user")).lower()
    if role not in _ROLES:
        raise InvalidInputError(f"{where} has role '{role}'; use user, assistant, system or tool.")
    msg: dict[str, Any] = {"role": role, "content": content}
    name = item.get("name") or item.get("speaker")
    if isinstance(name, str) and name.strip():
        msg["name"] = name.strip()
    if item.get("timestamp") is not None:
        msg["timestamp"] = item["timestamp"]
    return msg


def parse_mem0(data: Any, *, name: str = "the file") -> Conversation:
    """A JSON list of {"role", "content", "name"?} messages (or {"messages": [...]})."""
    extra: Mapping[str, Any] = {}
    if isinstance(data, Mapping):
        extra, data = data, data.get("messages")
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{name} must hold a non-empty JSON list of messages.")
    msgs = tuple(_message(m, f"Message {i + 1} in {name}") for i, m in enumerate(data))
    return Conversation((Session(msgs, _opt_str(extra.get("run_id"))),), title=str(extra.get("title", "")),
                        user_id=_opt_str(extra.get("user_id")), agent_id=_opt_str(extra.get("agent_id")),
                        format="mem0", speakers=_speakers(msgs))


def parse_jsonl(text: str, *, name: str = "the file") -> Conversation:
    """One JSON message object per line; blank lines are skipped."""
    msgs: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"Line {n} of {name} is not valid JSON ({exc.msg}).") from None
        msgs.append(_message(item, f"Line {n} of {name}"))
    if not msgs:
        raise InvalidInputError(f"{name} holds no messages.")
    return Conversation((Session(tuple(msgs)),), format="jsonl", speakers=_speakers(msgs))


def parse_transcript(text: str, *, name: str = "the file") -> Conversation:
    """"Name: text" lines; a line without a speaker continues the previous message.

    The first speaker who is not obviously an assistant becomes the user; the others are
    stored with role "assistant" and their names kept.
    """
    turns: list[list[str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _TRANSCRIPT_LINE.match(line)
        if match:
            turns.append([match.group(1).strip(), match.group(2)])
        elif turns:
            turns[-1][1] += "\n" + line.strip()
        else:
            raise InvalidInputError(f"Line {n} of {name} does not start with a speaker: write it as "
                                    "'Name: what they said'.")
    if not turns:
        raise InvalidInputError(f"{name} holds no 'Name: text' lines.")
    names = [t[0] for t in turns]
    user = next((s for s in names if s.lower() not in _ASSISTANT_NAMES), names[0])
    msgs = tuple({"role": "user" if speaker == user else "assistant", "content": content, "name": speaker}
                 for speaker, content in turns)
    return Conversation((Session(msgs),), user_id=_slug(user), format="transcript", speakers=_speakers(msgs))


def parse_locomo(data: Any, *, name: str = "the file") -> Conversation:
    """A LoCoMo sample (or its "conversation" dict): speaker_a is the user, speaker_b the other."""
    sample_id = data.get("sample_id") if isinstance(data, Mapping) else None
    conv = data.get("conversation", data) if isinstance(data, Mapping) else None
    if not isinstance(conv, Mapping) or "speaker_a" not in conv:
        raise InvalidInputError(f"{name} is not a LoCoMo conversation: 'speaker_a' and 'session_N' keys are missing.")
    speaker_a, speaker_b = str(conv["speaker_a"]), str(conv.get("speaker_b", ""))
    numbers = sorted(int(m.group(1)) for k in conv if (m := _LOCOMO_SESSION.match(k)))
    sessions: list[Session] = []
    for n in numbers:
        turns = conv[f"session_{n}"]
        if not isinstance(turns, list):
            raise InvalidInputError(f"'session_{n}' in {name} must be a list of turns.")
        when_text = conv.get(f"session_{n}_date_time")
        when = parse_locomo_time(when_text) if when_text else None
        msgs: list[dict[str, Any]] = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, Mapping) or not isinstance(turn.get("text"), str):
                raise InvalidInputError(f"Turn {i + 1} of session_{n} in {name} has no 'text'.")
            speaker = str(turn.get("speaker", ""))
            content = turn["text"]
            if turn.get("blip_caption"):
                content += f" [shares a photo: {turn['blip_caption']}]"
            msgs.append({"role": "assistant" if speaker == speaker_b and speaker != speaker_a else "user",
                         "content": content, "name": speaker or None})
        if msgs:
            prefix = f"{sample_id}-" if sample_id else ""
            sessions.append(Session(tuple(msgs), f"{prefix}session_{n}", when))
    if not sessions:
        raise InvalidInputError(f"{name} holds no sessions with messages.")
    return Conversation(tuple(sessions), title=f"{speaker_a} and {speaker_b}", user_id=_slug(speaker_a),
                        agent_id=None, format="locomo", speakers=(speaker_a, speaker_b))


def parse_loci(data: Any, *, name: str = "the file") -> Conversation:
    """Loci's sample format: {"title", "user_id", "agent_id", "sessions": [{"run_id", "date", "messages"}]}."""
    if not isinstance(data, Mapping) or not isinstance(data.get("sessions"), list):
        raise InvalidInputError(f"{name} is not a conversation Loci knows: expected a list of messages, "
                                "a LoCoMo file or an object with 'sessions'.")
    sessions: list[Session] = []
    for i, s in enumerate(data["sessions"]):
        if not isinstance(s, Mapping) or not isinstance(s.get("messages"), list):
            raise InvalidInputError(f"Session {i + 1} in {name} has no 'messages' list.")
        msgs = tuple(_message(m, f"Message {j + 1} of session {i + 1} in {name}")
                     for j, m in enumerate(s["messages"]))
        when = _iso(s.get("date"), f"the date of session {i + 1} in {name}") if s.get("date") else None
        sessions.append(Session(msgs, _opt_str(s.get("run_id")), when))
    if not sessions:
        raise InvalidInputError(f"{name} holds no sessions.")
    return Conversation(tuple(sessions), title=str(data.get("title", "")), user_id=_opt_str(data.get("user_id")),
                        agent_id=_opt_str(data.get("agent_id")), format="loci",
                        speakers=_speakers(m for s in sessions for m in s.messages))


def parse_locomo_time(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware UTC datetime."""
    from engine.extraction.temporal import parse_timestamp

    try:
        return parse_timestamp(text)
    except (ValueError, InvalidInputError):
        pass
    cleaned = " ".join(text.replace(",", " ").split())
    for pattern in ("%I:%M %p on %d %B %Y", "%I:%M %p on %d %b %Y", "%H:%M on %d %B %Y"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise InvalidInputError(f"Cannot read the session time '{text}'; expected e.g. '1:56 pm on 8 May, 2023'.")


def _iso(value: Any, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"Cannot read {what} ('{value}'); use ISO 8601 like 2024-03-02T18:20:00Z.") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _speakers(msgs: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for m in msgs:
        if m.get("name"):
            seen.setdefault(m["name"], None)
    return tuple(seen)


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", name.strip().lower()).strip("-") or "user"
