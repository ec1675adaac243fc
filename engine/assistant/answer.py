"""Questions answered from memory: search, a context within a word budget, one short model reply."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from .context import build_context
from ..records import MemoryRecord, ScoredMemory

INSTRUCTIONS = (
    "You answer questions about people from the memories given. Use only the memories. Answer in "
    "a few words, without a full sentence. When the question asks when, answer with the date. "
    "After the answer, write the numbers of the memories you used in brackets, like [2].")
EXAMPLE_IN = ("Memories:\n[1] [3 June 2023] Maya: I adopted a cat called Miso last week!\n"
              "[2] [9 June 2023] Sam: My sister lives in Oslo.\n\nQuestion: When did Maya adopt Miso?")
EXAMPLE_OUT = "The week before 3 June 2023 [1]"
ANSWER_TOKENS = 48
_CITE = re.compile(r"\[(\d{1,3})\]")
_LEAD = re.compile(r"^\s*(the )?(short )?answer( to (this|the) question)? is:?\s*|^\s*answer:\s*", re.IGNORECASE)
_MONTH = ("(January|February|March|April|May|June|July|August|September|October|November|December)")
_DATE = re.compile(rf"\b(\d{{1,2}} {_MONTH} \d{{4}}|{_MONTH} \d{{1,2}},? \d{{4}}|{_MONTH} \d{{4}}|"
                   rf"\d{{4}}-\d{{2}}-\d{{2}}|(?:19|20)\d{{2}})\b")
_STOP = frozenset("a an the and or of to in on at for is was were be by with it its that this as "
                  "from did does do what when where who how why which".split())


class Completer(Protocol):
    """A chat model giving plain text (engine.inference.llm.LlamaCppLLM.complete)."""

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 stop: list[str] | None = None) -> str:
        ...


class Searcher(Protocol):
    """Anything with Memory.search_records' signature."""

    def search_records(self, query: str, *, top_k: int = 20, filters: Mapping[str, Any] | None = None,
                       threshold: float | None = None, reference_date: Any = None) -> list[ScoredMemory]:
        ...


@dataclass(frozen=True, slots=True)
class Answer:
    """A model's answer, the memories it cites, and the context it was given (ids and words)."""

    text: str
    memory_ids: tuple[str, ...]  # cited: marked [n] by the model, else the lines sharing its words
    context_ids: tuple[str, ...]  # every memory the model was shown, best first
    context_words: int


def answer(searcher: Searcher, llm: Completer, question: str, *,
           filters: Mapping[str, Any] | None = None, budget_words: int = 300,
           reference_date: Any = None) -> Answer:
    """Retrieve memories for `question` up to `budget_words` words and let the model answer."""
    hits = searcher.search_records(question, top_k=max(10, budget_words // 6), filters=filters,
                                   reference_date=reference_date)
    if not hits:
        return Answer("I don't know: no memory matches this question.", (), (), 0)
    context = build_context(hits, budget_words)
    records = {h.record.id: h.record for h in hits}
    shown = [records[i] for i in context.memory_ids]
    numbered = "\n".join(f"[{n}] {line}" for n, line in enumerate(context.text.split("\n"), start=1))
    chat = [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": EXAMPLE_IN},
            {"role": "assistant", "content": EXAMPLE_OUT},
            {"role": "user", "content": f"Memories:\n{numbered}\n\nQuestion: {question}"}]
    raw = llm.complete(chat, max_tokens=ANSWER_TOKENS, stop=["\n\n", "Question:"])
    text, cited = read_reply(raw, shown)
    if is_time_question(question) and cited:
        text = date_answer(text, cited[0])
    return Answer(text, tuple(r.id for r in cited), context.memory_ids, context.words)


def read_reply(raw: str, shown: Sequence[MemoryRecord]) -> tuple[str, list[MemoryRecord]]:
    """The answer text without its [n] marks, and the memories it cites.

    Numbers outside the context are ignored; with no valid mark, the memories sharing the most
    content words with the answer are cited (none when it shares none).
    """
    first = raw.strip().split("\n")[0]
    numbers = [int(n) for n in _CITE.findall(first)]
    cited = [shown[n - 1] for n in dict.fromkeys(numbers) if 1 <= n <= len(shown)]
    text = _LEAD.sub("", _CITE.sub("", first))
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;:").strip()
    if not cited and text:
        cited = _overlapping(text, shown)
    return text, cited


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOP}


def _overlapping(text: str, shown: Sequence[MemoryRecord]) -> list[MemoryRecord]:
    words = _content(text)
    scored = [(len(words & _content(r.memory)), k) for k, r in enumerate(shown)]
    best = max((s for s, _ in scored), default=0)
    return [shown[k] for s, k in scored if best and s == best][:3]


def is_time_question(question: str) -> bool:
    from ..extraction.temporal import is_when_question

    return is_when_question(question)


def date_answer(text: str, source: MemoryRecord) -> str:
    """A time question's answer as a date: relative words resolved against when `source` was
    said, then only the date kept ("She went on 7 May 2023." -> "7 May 2023"); with no date in
    the reply, the date of the memory it cites."""
    from .context import human_date

    text = absolute_dates(text, source.timestamp)
    found = _DATE.search(text)
    if found is None:
        return human_date(source.event_date or source.timestamp.date().isoformat())
    value = found.group(0)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return human_date(value)
    us = re.fullmatch(rf"{_MONTH} (\d{{1,2}}),? (\d{{4}})", value)
    return f"{us.group(2)} {us.group(1)} {us.group(3)}" if us else value


def absolute_dates(text: str, said_at: datetime) -> str:
    """"last week" in an answer -> the dates it meant, resolved against when the memory was said."""
    from ..extraction.sentences import with_absolute_dates

    out = with_absolute_dates(text, text, said_at)[0]
    first = text.split(" ", 1)[0].casefold()
    if first not in ("on", "in") and out.startswith(("on ", "in ")):
        out = out.split(" ", 1)[1]  # an answer is a phrase: "7 May 2023", not "on 7 May 2023"
    return out
