"""The extractor: statements from the scaffolding, at most one bounded LLM call per window, validation in code."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..config import ExtractionConfig
from ..errors import ExtractionError, LociError
from ..inference.llm import LLM
from ..records import Message
from .cancel import CancelToken, check_cancel
from .prompts import (EXTRACT_EXAMPLE_IN, EXTRACT_EXAMPLE_OUT, EXTRACT_INSTRUCTIONS, MAX_ITEMS,
                      MAX_RAW_CHARS, MEMORY_TYPES, PROCEDURE_INSTRUCTIONS, SELECT_EXAMPLE_IN,
                      SELECT_EXAMPLE_OUT, SELECT_INSTRUCTIONS, extract_schema, iter_items, select_schema)
from .small_talk import is_small_talk
from .sentences import Statement, finish, guess_type, speaker_of, statements, with_absolute_dates

log = logging.getLogger(__name__)

MAX_TEXT = 240  # characters per memory text, in the schema and in validation
WINDOW_CHARS = 1200  # new-message text per LLM call; longer inputs are chunked
WINDOW_UNITS = 10  # statements per LLM call in "select" mode
EXTRACT_TOKENS = 320  # output budget of one "extract" call: about 8 short memories


@dataclass(frozen=True, slots=True)
class Candidate:
    """One memory proposed by extraction, not yet stored."""

    text: str  # self-contained: names instead of pronouns
    memory_type: str  # fact, preference, event, plan, relationship
    entities: tuple[str, ...]  # names the model gave; the store adds spaCy's (engine/search/entities.py)
    source_indices: tuple[int, ...]  # indices into the `new` messages list
    event_date: str | None  # ISO date or "start/end", resolved in code against the message time


@dataclass(frozen=True, slots=True)
class ExtractionResult:
    """Candidates, what was dropped and why, and which informative messages yielded nothing."""

    candidates: tuple[Candidate, ...]
    dropped: tuple[str, ...] = ()
    uncovered: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Scaffold:
    """Which deterministic helpers run around the model; the benchmark switches them one by one.

    model: "off"     no LLM call: the code's statements are the memories, typed by rules;
           "type"    one call per window labels the code's statements (fact, preference...);
           "select"  one call per window picks the statements worth keeping (types by rules);
           "extract" one call per window writes the memories (mem0 style), validated in code.
    """

    split_sentences: bool = True  # spaCy sentences and clauses ("... and I ...") as statements
    merge_clauses: bool = True  # the informative clauses of one message make one memory
    rewrite_pronouns: bool = True  # I/me/my -> the speaker's name, verb agreement fixed
    filter_small_talk: bool = True  # greetings, thanks, questions, reactions yield nothing
    absolute_dates: bool = True  # "yesterday" in the text becomes "on 7 May 2023"
    model: str = "select"  # Memory uses config extraction.mode (default "off": measured best, see bench/)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]|<\|[^|>]{0,40}\|>")
_STOP = frozenset("""a an the and or but of to in on at for with is are was were be been has have had
it its this that these those he she they them his her their i me my you your we our us as by from
about into not no so very just also too than then there here who which what when where will would
can could should do does did""".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 2}


def _grounded(text: str, source: str) -> bool:
    """Most content words of a memory must appear in the messages (no inventions, no injections)."""
    words = _content_words(text)
    if not words:
        return False
    known = _content_words(source)
    stems = {w[:5] for w in known}
    hits = sum(1 for w in words if w in known or w[:5] in stems)
    return hits / len(words) >= 0.7

# -- the extractor --------------------------------------------------------------------------

@dataclass(slots=True)
class _Draft:
    text: str
    memory_type: str
    sources: tuple[int, ...]
    original: str
    statement: int = -1


@dataclass(slots=True)
class _Window:
    statements: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)


class Extractor:
    """Turns new messages into candidate memories: one LLM call per window, everything validated."""

    def __init__(self, llm: LLM | None, config: ExtractionConfig | None = None, *,
                 scaffold: Scaffold | None = None) -> None:
        self.llm = llm
        self.config = config or ExtractionConfig()
        self.scaffold = scaffold or Scaffold()
        if self.scaffold.model not in ("off", "type", "select", "extract"):
            raise ValueError(f"unknown scaffold model mode {self.scaffold.model!r}")

    @property
    def wants_existing(self) -> bool:
        """Whether extract() reads the `existing` memories (only the model's prompt does)."""
        return self.llm is not None and self.scaffold.model == "extract"

    def extract(self, new: Sequence[Message], *, context: Sequence[Message] = (),
                existing: Sequence[str] = (), prompt: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                cancel: CancelToken | None = None) -> ExtractionResult:
        """Candidate memories from `new` (context and existing memories only inform the model)."""
        check_cancel(cancel)
        new = list(new)
        if not new:
            return ExtractionResult(())
        sc = self.scaffold
        found = statements(new, split=sc.split_sentences, rewrite=sc.rewrite_pronouns,
                           filter_small_talk=sc.filter_small_talk, merge=sc.merge_clauses,
                           cancel=cancel)
        informative = sorted({s.index for s in found if s.informative})
        mode = sc.model if self.llm is not None else "off"
        windows = self._windows(new, found, mode)
        total = len(windows)
        if progress is not None:
            progress(0, total)
        drafts: list[_Draft] = []
        dropped: list[str] = []
        for done, window in enumerate(windows, start=1):
            check_cancel(cancel)
            if mode == "extract":
                got, bad = self._model_extract(new, window, context, existing, prompt)
                drafts += got
                dropped += bad
            elif mode in ("type", "select") and window.statements:
                got, bad = self._model_select(found, window, prompt, keep_all=mode == "type")
                drafts += got
                dropped += bad
            else:
                drafts += [_Draft(found[i].text, guess_type(found[i].text),
                                  (found[i].index,), found[i].original, i)
                           for i in window.statements]
            if progress is not None:
                progress(done, total)
        check_cancel(cancel)
        candidates = self._finish(new, drafts, existing, dropped)
        covered = {i for c in candidates for i in c.source_indices}
        uncovered = tuple(i for i in informative if i not in covered)
        return ExtractionResult(tuple(candidates), tuple(dropped), uncovered)

    # -- windows
    def _windows(self, new: list[Message], statements: list[Statement], mode: str) -> list[_Window]:
        windows: list[_Window] = []
        current = _Window()
        chars = 0
        if mode == "extract":
            for i, msg in enumerate(new):
                size = len(msg.content or "")
                if current.messages and chars + size > WINDOW_CHARS:
                    windows.append(current)
                    current, chars = _Window(), 0
                current.messages.append(i)
                chars += size
        else:
            for i, st in enumerate(statements):
                if current.statements and (len(current.statements) >= WINDOW_UNITS
                                           or chars + len(st.text) > WINDOW_CHARS):
                    windows.append(current)
                    current, chars = _Window(), 0
                current.statements.append(i)
                chars += len(st.text)
        if current.messages or current.statements or not windows:
            windows.append(current)
        return windows

    # -- the model
    def _call(self, messages: list[dict[str, str]], schema: dict[str, Any], max_tokens: int) -> str:
        assert self.llm is not None
        try:
            return self.llm.complete_json(messages, schema, max_tokens=max_tokens)
        except LociError:
            raise
        except Exception as exc:  # noqa: BLE001 - a backend failure must not lose the messages
            raise ExtractionError(f"The language model failed while extracting memories ({exc}). "
                                  "The messages were not stored; try again, or use infer=False.") from exc

    def _model_select(self, statements: list[Statement], window: _Window, prompt: str | None,
                      keep_all: bool) -> tuple[list[_Draft], list[str]]:
        local = [statements[i] for i in window.statements]
        listing = "\n".join(f"{n}. {st.text}" for n, st in enumerate(local, start=1))
        chat = [{"role": "system", "content": prompt or SELECT_INSTRUCTIONS},
                {"role": "user", "content": SELECT_EXAMPLE_IN},
                {"role": "assistant", "content": SELECT_EXAMPLE_OUT},
                {"role": "user", "content": listing}]
        raw = self._call(chat, select_schema(len(local)), 32 + 20 * min(len(local), MAX_ITEMS))
        chosen: dict[int, str] = {}
        dropped: list[str] = []
        for k, item in enumerate(iter_items(raw, "keep")):
            if k >= MAX_ITEMS:
                dropped.append("the model returned more items than allowed; the rest were ignored")
                break
            n = item.get("n") if isinstance(item, dict) else None
            kind = item.get("type") if isinstance(item, dict) else None
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(local):
                dropped.append(f"item {k + 1}: no valid statement number")
                continue
            chosen.setdefault(n - 1, kind if kind in MEMORY_TYPES else guess_type(local[n - 1].text))
        out: list[_Draft] = []
        for n, st in enumerate(local):
            if n in chosen or keep_all:
                # measured: the rules type better than a 135M model, so only "type" mode uses its labels
                kind = (chosen.get(n) if keep_all else None) or guess_type(st.text)
                out.append(_Draft(st.text, kind, (st.index,), st.original, window.statements[n]))
        return out, dropped

    def _model_extract(self, new: list[Message], window: _Window, context: Sequence[Message],
                       existing: Sequence[str], prompt: str | None) -> tuple[list[_Draft], list[str]]:
        idx = window.messages
        lines = [f"[{n}] {speaker_of(new[i])}: {(new[i].content or '')[:WINDOW_CHARS]}"
                 for n, i in enumerate(idx, start=1)]
        parts = []
        if context:
            parts.append("Earlier messages (context only):\n" + "\n".join(
                f"- {speaker_of(m)}: {(m.content or '')[:300]}" for m in list(context)[-self.config.context_messages:]))
        if existing:
            parts.append("Already known (do not repeat):\n" + "\n".join(
                f"- {t[:200]}" for t in list(existing)[:self.config.similar_memories]))
        parts.append("New messages:\n" + "\n".join(lines))
        chat = [{"role": "system", "content": prompt or EXTRACT_INSTRUCTIONS},
                {"role": "user", "content": EXTRACT_EXAMPLE_IN},
                {"role": "assistant", "content": EXTRACT_EXAMPLE_OUT},
                {"role": "user", "content": "\n\n".join(parts)}]
        max_tokens = getattr(getattr(self.llm, "config", None), "max_tokens", 768)
        raw = self._call(chat, extract_schema(len(idx)), min(max_tokens, EXTRACT_TOKENS))
        source_text = " ".join([*(new[i].content or "" for i in idx), *(speaker_of(new[i]) for i in idx)])
        out: list[_Draft] = []
        dropped: list[str] = []
        for k, item in enumerate(iter_items(raw, "memories")):
            if k >= MAX_ITEMS:
                dropped.append("the model returned more items than allowed; the rest were ignored")
                break
            draft, reason = _validate(item, idx, source_text, [new[i].content or "" for i in idx])
            if draft is None:
                dropped.append(f"item {k + 1}: {reason}")
            else:
                out.append(draft)
        return out, dropped

    # -- post-processing in code
    def _finish(self, new: list[Message], drafts: list[_Draft], existing: Sequence[str],
                dropped: list[str]) -> list[Candidate]:
        known = {_norm(t) for t in existing}
        seen: set[str] = set()
        kept: list[tuple[_Draft, str, str | None]] = []
        for d in drafts:
            ref = new[d.sources[0]].timestamp
            text, event_date = with_absolute_dates(d.text, d.original, ref, self.scaffold.absolute_dates)
            key = _norm(text)
            if key in known:
                dropped.append("already known: an existing memory says the same")
                continue
            if key in seen:
                continue
            seen.add(key)
            kept.append((d, text, event_date))
        return [Candidate(text, d.memory_type, (), d.sources, event_date) for d, text, event_date in kept]

    def summarize_procedure(self, messages: Sequence[Message], *, prompt: str | None = None) -> str:
        """A procedure summary of an agent's run (mem0's procedural_memory)."""
        lines = [f"{speaker_of(m)}: {(m.content or '')[:1500]}" for m in messages][-40:]
        if not lines:
            raise ExtractionError("There are no messages to summarise.")
        schema = {"type": "object", "required": ["summary"], "properties": {
            "summary": {"type": "string", "minLength": 10, "maxLength": 1500}}}
        summary = ""
        if self.llm is not None:
            chat = [{"role": "system", "content": prompt or PROCEDURE_INSTRUCTIONS},
                    {"role": "user", "content": "\n".join(lines)[-6000:]}]
            raw = self._call(chat, schema, 512)
            try:
                data = json.loads(raw[:MAX_RAW_CHARS])
                summary = data.get("summary", "") if isinstance(data, dict) else ""
            except (json.JSONDecodeError, RecursionError):
                summary = ""
            summary = _CONTROL.sub("", summary if isinstance(summary, str) else "").strip()
        if len(summary) < 10:  # unusable output: keep a faithful summary written by code
            steps = [f"{n}. {line[:300]}" for n, line in enumerate(lines, start=1)]
            summary = "Procedure (from the conversation):\n" + "\n".join(steps)
        return summary[:4000]


def _validate(item: Any, idx: list[int], source_text: str,
              contents: Sequence[str] = ()) -> tuple[_Draft | None, str]:
    """One model item -> a draft, or None and the reason (shown to the person as `dropped`)."""
    if not isinstance(item, dict):
        return None, f"not an object ({type(item).__name__})"
    text = item.get("text")
    if not isinstance(text, str):
        return None, "no text"
    text = finish(_CONTROL.sub("", text.replace("\n", " ")))
    if not 3 <= len(text) <= MAX_TEXT:
        return None, "text empty or too long"
    if _repetitive(text):
        return None, f"repetitive text: {text[:60]!r}"
    if text.endswith("?") or is_small_talk(text):
        return None, f"a question or small talk, not a memory: {text[:60]!r}"
    if not _grounded(text, source_text):
        return None, f"not supported by the messages: {text[:60]!r}"
    kind = item.get("type")
    if kind not in MEMORY_TYPES:
        kind = guess_type(text)
    raw_sources = item.get("sources")
    sources: list[int] = []
    if isinstance(raw_sources, list):
        for s in raw_sources[:4]:
            if isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= len(idx):
                sources.append(idx[s - 1])
    if not sources:
        sources = [idx[0]] if len(idx) == 1 or not contents else [_best_source(text, idx, contents)]
    return _Draft(text, kind, tuple(dict.fromkeys(sources)), text), ""


def _repetitive(text: str) -> bool:
    """Tiny models loop ("How have you been? How have you been? ..."): any word trigram twice."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    return len(grams) != len(set(grams))


def _best_source(text: str, idx: list[int], contents: Sequence[str]) -> int:
    """The message sharing the most content words with a memory the model gave no source for."""
    words = _content_words(text)
    overlaps = [len(words & _content_words(c)) for c in contents]
    return idx[max(range(len(overlaps)), key=overlaps.__getitem__)]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.casefold()))
