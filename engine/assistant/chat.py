"""A chat turn that remembers: retrieve memories, fit the prompt to the context, stream, then store."""
from __future__ import annotations

import logging
import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol, Sequence

from .chat_log import ChatLog, LoggedTurn
from .context import MemoryContext, build_context
from .answer import (NO_MEMORY, as_answered, ask_one_memory, date_reply, found_reply, is_time_question,
                     memory_spans, relevant_memories, said_by, says_nothing_new, scored_relevance, spans_reply,
                     worth_answering)
from .grounding import Claim, check
from .intent import QUESTION, REMEMBER, REQUEST, STATEMENT, classify
from ..errors import InvalidInputError
from ..inference.llm import LoadedModel
from ..inference.shutdown import FRONT, on_exit
from ..records import MemoryRecord

log = logging.getLogger(__name__)

CHAT_PREFIX = "assistant-"  # run_id of every conversation held with the assistant
# Kept short on purpose: SmolLM2-135M follows a short prompt better than a long list of rules.
SYSTEM_PROMPT = ("You are Loci, a helpful assistant that remembers what the user told you in earlier "
                 "chats. Answer briefly.")
MESSAGE_OVERHEAD = 8  # tokens a chat template adds around each message (role markers)
SAFETY_TOKENS = 16
ACKNOWLEDGED = "Noted."  # the reply to a statement when the model's own reply could not be checked


class ChatModel(Protocol):
    """What the assistant needs from a language model (engine.inference.llm.LlamaCppLLM is one)."""

    @property
    def context_length(self) -> int: ...

    @property
    def info(self) -> LoadedModel:
        """Which model this is and where it runs (CPU or GPU)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, cancel: Any = None) -> Iterator[str]:
        """The reply, piece by piece; stops early when `cancel.is_cancelled`."""
        ...


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """How a chat turn uses memory and the model's context."""

    use_memory: bool = True  # retrieve memories for each message (off: a plain chat)
    memory_top_k: int = 6  # memories fetched per message before the budget cuts them
    question_top_k: int = 50  # for a question: searched wider, then only the relevant ones are kept
    memory_share: float = 0.4  # at most this share of the prompt budget goes to memories
    max_memory_words: int = 100  # ~140 tokens: prompt evaluation is most of the wait on a small CPU
    reply_tokens: int = 256  # room kept for the reply (small models ramble: keep it short)
    short_message_words: int = 3  # shorter messages ("and why?") are searched with the previous one


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a conversation; an assistant turn lists the memories it was given."""

    role: str  # user or assistant
    content: str
    timestamp: datetime
    memory_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class Conversation:
    """A chat session: its id is the run_id its memories are stored under."""

    user_id: str
    remember: bool = True  # False: an incognito chat, nothing of it is ever stored
    id: str = field(default_factory=lambda: new_conversation_id())
    turns: list[ChatTurn] = field(default_factory=list)

    @property
    def title(self) -> str:
        first = next((t.content for t in self.turns if t.role == "user"), "")
        words = " ".join(first.split())
        return (words[:48] + "…" if len(words) > 48 else words) or "New chat"


@dataclass(frozen=True, slots=True)
class Prompt:
    """The messages sent to the model, the memories they hold and what they cost."""

    messages: list[dict[str, str]]
    memories: tuple[MemoryRecord, ...]
    context: MemoryContext | None
    tokens: int  # whole prompt, including template overhead
    memory_tokens: int  # of which the memory block
    budget: int  # the most the prompt could have used
    turns_kept: int  # earlier conversation turns that fitted
    ranked: tuple[str, ...] = ()  # the ids of what search found, best first (before relevance and budget)


@dataclass(frozen=True, slots=True)
class Remembered:
    """The memories stored from one exchange: what the user stated, never the reply or a question."""

    memory_ids: tuple[str, ...]  # the facts drawn from the user's statement
    texts: tuple[str, ...]  # what to announce: the facts, or the statement itself when it gave none
    episode_ids: tuple[str, ...] = ()  # the statement as said (memory_type "message")

    @property
    def all_ids(self) -> tuple[str, ...]:
        """Everything stored from the exchange: what "forget that" removes."""
        return self.memory_ids + self.episode_ids


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A finished (or stopped) reply and everything a front end shows about it."""

    text: str
    memory_ids: tuple[str, ...]  # the memories the model was given, best first
    memories: tuple[MemoryRecord, ...]
    cancelled: bool
    prompt_tokens: int
    memory_tokens: int
    completion_pieces: int
    first_token_s: float | None  # from the call to the first piece of text
    seconds: float
    remembered: "Future[Remembered] | None"  # the background add; None when nothing is stored
    cited_ids: tuple[str, ...] = ()  # the memories the reply rests on ([n] in the text: n-th of `memories`)
    claims: tuple[Claim, ...] = ()  # the model's reply checked claim by claim (grounding.py)
    draft: str = ""  # the model's own reply when unsupported; `text` is then its second look or a quote
    streamed: str = ""  # what on_token was given; `text` may tell it otherwise (retold)

    @property
    def retold(self) -> bool:
        """True when `text` says other words than were streamed (told in the third person, a restated
        question cut, or replaced), or the model's own citation marks were renumbered ("[2]" streamed
        for the memory listed as [1]); not for marks only added: a front end shows `text` in their place."""
        if _CITE.sub("", self.text).strip() != _CITE.sub("", self.streamed).strip():
            return True
        marks = [m.strip() for m in _CITE.findall(self.streamed)]
        return bool(marks) and marks != [m.strip() for m in _CITE.findall(self.text)]

    @property
    def supported(self) -> bool:
        """False when the model said more than the memories; the reply then quotes them instead."""
        return all(c.supported for c in self.claims)


def new_conversation_id() -> str:
    return f"{CHAT_PREFIX}{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class Assistant:
    """Chats on the local model with the memory store; remembers what the user states.

    One background thread, in the order the turns were made, writes each exchange to the chat log
    (engine/assistant/chat_log.py) and adds the user's statements to memory (infer=True, the
    conversation id as run_id; engine/assistant/intent.py decides what is a statement). Replies,
    questions and requests are never stored as memories. Incognito conversations (remember=False)
    are neither logged nor stored. Pass `llm` to use a model other than the store's own
    (`memory.language_model()`, which follows the current settings).
    """

    def __init__(self, memory: Any, *, llm: ChatModel | None = None, config: ChatConfig | None = None,
                 system_prompt: str = SYSTEM_PROMPT) -> None:
        self.memory = memory
        self.config = config or ChatConfig()
        self.system_prompt = system_prompt
        self._llm = llm
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loci-remember")
        self._pending: list[Future[Remembered]] = []
        self._unregister_exit = on_exit(self.close, FRONT)  # exchanges are stored before the store closes
        self.log = ChatLog(memory.data_dir)

    @property
    def llm(self) -> ChatModel:
        return self._llm if self._llm is not None else self.memory.language_model()

    # -- the turn --------------------------------------------------------------------
    def prepare(self, conversation: Conversation, text: str, *, now: datetime | None = None) -> Prompt:
        """Retrieve memories and build the prompt for `text` within the model's context."""
        llm = self.llm
        cfg = self.config
        now = now or datetime.now(timezone.utc)
        budget = llm.context_length - cfg.reply_tokens - SAFETY_TOKENS
        system = f"{self.system_prompt}\nToday is {now:%A, %d %B %Y}."
        used = llm.count_tokens(system) + llm.count_tokens(text) + 2 * MESSAGE_OVERHEAD
        if used > budget:
            raise InvalidInputError(f"This message is too long for the model's context ({used} of "
                                    f"{budget} tokens). Shorten it, or pick a model with a longer context.")
        block = ""
        context: MemoryContext | None = None
        memories: tuple[MemoryRecord, ...] = ()
        memory_tokens = 0
        ranked: tuple[str, ...] = ()
        if cfg.use_memory:
            asking = classify(text).kind in (QUESTION, REQUEST)
            hits = self._retrieve(conversation, text, asking)
            ranked = tuple(h.record.id for h in hits)
            if asking:  # as Memory.answer: the relevant ones first
                relevant = {r.id for r in relevant_memories(text, [h.record for h in hits])}
                hits = [h for h in hits if h.record.id in relevant] or hits[:cfg.memory_top_k]
            room = min(int((budget - used) * cfg.memory_share), budget - used)
            words = min(cfg.max_memory_words, max(1, int(room * 0.6)))
            while hits and room > 0 and words >= 1:
                context = build_context(hits, words)
                memory_tokens = llm.count_tokens(_memory_block(context.text)) + 1
                if memory_tokens <= room:
                    break
                words = int(words * room / memory_tokens * 0.9)
                context = None
            if context is not None:
                by_id = {h.record.id: h.record for h in hits}
                memories = tuple(by_id[i] for i in context.memory_ids)
                block = _memory_block(context.text) + "\n\n"
                used += memory_tokens
            else:
                memory_tokens = 0
        kept: list[dict[str, str]] = []
        for turn in reversed(_model_dialogue(conversation.turns)):
            cost = llm.count_tokens(turn.content) + MESSAGE_OVERHEAD
            if used + cost > budget:
                break
            kept.append({"role": turn.role, "content": turn.content})
            used += cost
        kept.reverse()
        if kept and kept[0]["role"] == "assistant":  # templates expect a user turn first
            used -= llm.count_tokens(kept[0]["content"]) + MESSAGE_OVERHEAD
            kept = kept[1:]
        # The memories go into the last user message, not the system message: the system text and
        # the earlier turns then stay a fixed prefix that llama.cpp keeps evaluated between turns.
        messages = [{"role": "system", "content": system}, *kept, {"role": "user", "content": block + text}]
        return Prompt(messages, memories, context, used, memory_tokens, budget, len(kept), ranked)

    def chat(self, conversation: Conversation, text: str, *, on_token: Callable[[str], None] | None = None,
             cancel: Any = None, now: datetime | None = None) -> ChatReply:
        """Answer `text` in `conversation` (streamed to on_token), then remember the exchange."""
        started = time.perf_counter()
        text = text.strip()
        if not text:
            raise InvalidInputError("Type a message first.")
        now = now or datetime.now(timezone.utc)
        prompt = self.prepare(conversation, text, now=now)
        # A question is answered from memory or not at all; a request ("tell me about Caroline") is
        # checked against the memories it touches, and otherwise left to the model ("write a poem").
        kind = classify(text).kind if self.config.use_memory else ""
        scored = scored_relevance(text, prompt.memories) if kind in (QUESTION, REQUEST) else []
        found = [r for _, r in scored]
        asking = kind == QUESTION or bool(found)
        number = {r.id: n for n, r in enumerate(prompt.memories, start=1)}
        fixed = ""
        if kind == QUESTION and not found:
            fixed = NO_MEMORY  # memory is silent: say so rather than let the model invent
        elif found and is_time_question(text):
            best = found[0]
            fixed = f"{date_reply(best)}: \u201c{_plain(best)}\u201d{said_by(best)} [{number[best.id]}]"
        elif kind == QUESTION and not worth_answering(text, scored, prompt.ranked):
            fixed = NO_MEMORY  # only a near miss: a reply could only be about something else
        pieces: list[str] = []
        first: float | None = None
        if fixed:
            first = time.perf_counter() - started
            pieces.append(fixed)
            if on_token is not None:
                on_token(fixed)
        else:
            first = self._stream(prompt, pieces, on_token, cancel, started)
        cancelled = bool(cancel is not None and cancel.is_cancelled)
        reply = streamed = "".join(pieces).strip()
        cited: tuple[str, ...] = tuple(r.id for r in found[:1]) if fixed and fixed != NO_MEMORY else ()
        claims: tuple[Claim, ...] = ()
        draft = ""
        if kind in (STATEMENT, REMEMBER) and reply and not cancelled:
            # the user told something: a reply may repeat it or the memories, but not invent
            grounding = check(reply, text, prompt.memories, now=now)
            claims = grounding.claims
            if not grounding.supported:
                draft, reply = reply, ACKNOWLEDGED
        elif asking and found and not fixed and reply and not cancelled:
            reply = as_answered(reply, prompt.memories)  # a copied "Name:" line told as answer() does
            grounding = check(reply, text, prompt.memories, now=now)
            claims = grounding.claims
            if grounding.supported and not says_nothing_new(reply, text, prompt.memories):
                cited = grounding.memory_ids or (found[0].id,)
                reply = f"{_CITE.sub('', reply).rstrip()} " + "".join(f"[{number[i]}]" for i in cited)
            elif worth_answering(text, scored, prompt.ranked):
                draft, cited = reply, (found[0].id,)
                # asked again on the best memory alone; else what that memory says, quoted
                second = None if cancelled else ask_one_memory(_Completer(self.llm), text, found[0])
                spans = [] if second else memory_spans(text, found)
                if spans:  # the words of the memories that answer it, with who said them and when
                    cited = tuple(dict.fromkeys(s.record.id for s in spans))
                    reply = f"{spans_reply(spans)} " + "".join(f"[{number[i]}]" for i in cited)
                else:
                    reply = f"{second or found_reply(found[0], text)} [{number[found[0].id]}]"
            else:  # the model invented, and no memory is close enough to quote
                draft, cited, reply = reply, (), NO_MEMORY
        ids = tuple(r.id for r in prompt.memories)
        conversation.turns.append(ChatTurn("user", text, now))
        if reply:
            conversation.turns.append(ChatTurn("assistant", reply, datetime.now(timezone.utc), cited))
        remembered = self._remember(conversation, text, reply, now, cited)
        log.debug("chat turn: %d memories, %d prompt tokens, %d pieces, first piece %.2fs",
                  len(ids), prompt.tokens, len(pieces), first or -1.0)
        return ChatReply(reply, ids, prompt.memories, cancelled, prompt.tokens, prompt.memory_tokens,
                         len(pieces), first, time.perf_counter() - started, remembered, cited, claims, draft,
                         streamed)

    def _stream(self, prompt: Prompt, pieces: list[str], on_token: Callable[[str], None] | None,
                cancel: Any, started: float) -> float | None:
        """Stream the model's reply into `pieces`; returns the seconds to the first piece."""
        first: float | None = None
        stream = self.llm.stream(prompt.messages, max_tokens=self.config.reply_tokens, cancel=cancel)
        try:
            for piece in stream:
                if first is None:
                    first = time.perf_counter() - started
                pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
                if cancel is not None and cancel.is_cancelled:
                    break
        finally:
            close = getattr(stream, "close", None)  # a generator holds the model's lock until closed
            if close is not None:
                close()
        return first

    def _retrieve(self, conversation: Conversation, text: str, asking: bool) -> list[Any]:
        """The user's memories for a message (wider for a question), never the assistant's own words.

        Only what Loci's assistant said in its own chats is left out: in an imported conversation
        the other person's turns carry the role "assistant" too, and they are memories.
        """
        query = text
        if len(text.split()) < self.config.short_message_words:
            previous = next((t.content for t in reversed(conversation.turns) if t.role == "user"), "")
            query = f"{previous} {text}".strip()
        top_k = self.config.question_top_k if asking else self.config.memory_top_k
        hits: list[Any] = self.memory.search_records(query[:2000], top_k=top_k,
                                                     filters={"user_id": conversation.user_id})
        return [h for h in hits if not _said_by_assistant(h.record)]

    def _remember(self, conversation: Conversation, text: str, reply: str, when: datetime,
                  cited: tuple[str, ...] = ()) -> "Future[Remembered] | None":
        """Log the exchange in the chat log; store only what the user stated (or asked to remember).

        The reply and the user's questions and requests stay in the log, never in memory: what the
        model said is not something the user told, and must not come back as evidence.
        """
        if not conversation.remember:
            return None
        user_id, run_id = conversation.user_id, conversation.id
        intent = classify(text)
        turns = [LoggedTurn("user", text, when)]
        if reply:
            turns.append(LoggedTurn("assistant", reply, datetime.now(timezone.utc), cited))

        def add() -> Remembered:
            self.log.append(run_id, user_id, turns)
            if intent.to_remember is None:
                return Remembered((), (), ())
            result = self.memory.add([{"role": "user", "content": intent.to_remember}], user_id=user_id,
                                     run_id=run_id, timestamp=when, infer=True,
                                     metadata={"source": "assistant chat", "intent": intent.kind})
            added = [e for e in result.get("results", []) if e.get("event") == "ADD"]
            episodes = tuple(e["id"] for e in result.get("episodes", []))
            texts = tuple(e["memory"] for e in added) or ((intent.to_remember,) if episodes else ())
            return Remembered(tuple(e["id"] for e in added), texts, episodes)

        future = self._executor.submit(add)
        self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    # -- around the turn -------------------------------------------------------------
    def forget(self, memory_ids: Sequence[str]) -> int:
        """Delete memories (e.g. the ones just remembered); returns how many were removed."""
        return int(self.memory.delete_records(list(memory_ids), actor="you (Loci assistant)"))

    def conversations(self, user_id: str) -> list[Conversation]:
        """Earlier remembered chats of a user (newest first): the chat log, and the chats that
        earlier versions kept as stored messages."""
        runs = set(self.log.chat_ids())
        runs |= {s.value for s in self.memory.scopes() if s.kind == "run_id" and s.value.startswith(CHAT_PREFIX)}
        out: list[Conversation] = []
        for run_id in sorted(runs):
            conv = self.open_conversation(run_id, user_id)
            if conv.turns:
                out.append(conv)
        out.sort(key=lambda c: c.turns[0].timestamp, reverse=True)
        return out

    def open_conversation(self, run_id: str, user_id: str, *, limit: int = 200) -> Conversation:
        """A chat with its last `limit` messages, to continue it (from the log, else stored messages)."""
        logged = self.log.read(run_id, user_id)
        if logged:
            turns = [ChatTurn(t.role, t.content, t.timestamp, t.memory_ids) for t in logged[-limit:]]
        else:
            messages = self.memory.messages({"user_id": user_id, "run_id": run_id}, limit=limit)
            turns = [ChatTurn(m.role, m.content, m.timestamp) for m in messages if m.role in ("user", "assistant")]
        return Conversation(user_id=user_id, remember=True, id=run_id, turns=turns)

    @property
    def is_busy(self) -> bool:
        """True while an exchange is still being stored in the background."""
        return any(not f.done() for f in self._pending)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every exchange handed to the background has been stored."""
        for future in list(self._pending):
            try:
                future.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - reported through the future to whoever shows it
                log.exception("storing a chat exchange failed")

    def close(self) -> None:
        """Finish the pending adds and stop the background thread."""
        self._unregister_exit()
        self.wait()
        self._executor.shutdown(wait=True)


_CITE = re.compile(r"\s*\[\d{1,3}\]")


_COMPOSED = re.compile("^(I found: \u201c|I don't have a memory of that\\.$|Noted\\.$|[^:\n]{1,40}: \u201c|"
                       "[^\n]*, from what [^\n]*said on )")  # the last: an answer cut from memories


def _model_dialogue(turns: Sequence[ChatTurn]) -> list[ChatTurn]:
    """The turns shown to the model again: those Loci composed in its place (a quoted memory, a
    date from the store, "I don't have a memory of that") are left out with the message they
    answered, or a small model copies them as its next reply, whatever was said."""
    out: list[ChatTurn] = []
    for turn in turns:
        if turn.role == "assistant" and _COMPOSED.match(turn.content):
            if out and out[-1].role == "user":
                out.pop()
            continue
        out.append(turn)
    return out


def _said_by_assistant(record: MemoryRecord) -> bool:
    """A reply of Loci's assistant kept by an earlier version: never fed back to it as evidence."""
    return record.role == "assistant" and (record.scope.run_id or "").startswith(CHAT_PREFIX)


class _Completer:
    """A chat model's stream read to its end or to a stop string (answer.Completer)."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None) -> str:
        text = ""
        pieces = self.model.stream(messages, max_tokens=max_tokens)
        try:
            for piece in pieces:
                text += piece
                cut = min((text.find(s) for s in stop or () if s in text), default=-1)
                if cut >= 0:
                    return text[:cut]
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        return text


def _plain(record: MemoryRecord) -> str:
    """A memory's text without the "Name: " a transcript line starts with."""
    text = " ".join(record.memory.split())
    return text[len(record.actor) + 1:].strip() if record.actor and text.startswith(f"{record.actor}:") else text


def _memory_block(text: str) -> str:
    return ("Notes from earlier chats (date, who said it, what):\n" + text) if text else ""
