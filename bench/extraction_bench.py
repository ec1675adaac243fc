"""Extraction benchmark: recall, precision, invalid output, dates and speed per model and scaffold."""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.inference.offline import enforce_offline  # noqa: E402

enforce_offline()

from engine.config import LLMConfig  # noqa: E402
from engine.inference.embeddings import SentenceTransformerEmbedder  # noqa: E402
from engine.extraction import Extractor, Scaffold  # noqa: E402
from engine.inference.llm import LlamaCppLLM  # noqa: E402
from engine.records import Message  # noqa: E402

GOLD = ROOT / "bench" / "data" / "extraction_gold.json"
LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev"
MATCH = 0.7  # cosine with all-MiniLM-L6-v2 at or above which an extracted memory matches a gold fact

CONFIGS: dict[str, Scaffold] = {
    "code only (all helpers)": Scaffold(model="off"),
    "  - no sentence/clause split": Scaffold(model="off", split_sentences=False),
    "  - no pronoun rewrite": Scaffold(model="off", rewrite_pronouns=False),
    "  - no small-talk filter": Scaffold(model="off", filter_small_talk=False),
    "  - no absolute dates in text": Scaffold(model="off", absolute_dates=False),
    "model types code's statements": Scaffold(model="type"),
    "model selects statements (default)": Scaffold(model="select"),
    # the model reads the raw messages; code validates, resolves dates and finds entities
    "model writes memories (mem0 style)": Scaffold(model="extract"),
}


@dataclass
class Exchange:
    """One add() call worth of messages and the facts it should yield."""

    messages: list[Message]
    facts: list[dict[str, Any]]
    context: list[Message] = field(default_factory=list)


class RecordingLLM:
    """Wraps the real adapter: counts calls, invalid outputs, tokens and model time."""

    def __init__(self, inner: LlamaCppLLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.config = inner.config
        self.reset()

    def reset(self) -> None:
        self.calls = self.invalid = self.tokens = 0
        self.seconds = 0.0

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        raw = self.inner.complete_json(messages, schema, max_tokens=max_tokens)
        self.calls += 1
        usage = self.inner.last_usage
        if usage is not None:
            self.tokens += usage.completion_tokens
            self.seconds += usage.seconds
        key = next(iter(schema.get("required", [])), None)
        try:
            data = json.loads(raw)
            ok = isinstance(data, dict) and (key is None or isinstance(data.get(key), (list, str)))
        except json.JSONDecodeError:
            ok = False
        self.invalid += 0 if ok else 1
        return raw


def load_gold() -> list[Exchange]:
    data = json.loads(GOLD.read_text(encoding="utf-8"))
    out = []
    for ex in data["exchanges"]:
        when = datetime.fromisoformat(ex["time"])
        msgs = [Message(f"{ex['id']}-{i}", m["role"], m["content"], when, m.get("name"))
                for i, m in enumerate(ex["messages"])]
        out.append(Exchange(msgs, ex["facts"]))
    return out


def _locomo_time(text: str) -> datetime:
    try:
        from engine.extraction.temporal import parse_timestamp

        return parse_timestamp(text)
    except (ImportError, ValueError):
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def load_locomo(sessions: int) -> list[list[Exchange]]:
    """Per LoCoMo session: its turns as two-message exchanges; gold = the session's observations."""
    out: list[list[Exchange]] = []
    for path in sorted(LOCOMO.glob("*.json")):
        conv = json.loads(path.read_text(encoding="utf-8"))
        for n in range(1, sessions + 1):
            turns, obs = conv.get(f"session_{n}"), conv.get(f"session_{n}_observation")
            if not turns or not obs:
                continue
            when = _locomo_time(conv[f"session_{n}_date_time"])
            facts = [{"text": item[0]} for items in obs.values() for item in items
                     if isinstance(item, list) and item and isinstance(item[0], str)]
            msgs = [Message(t["dia_id"], "user", t.get("text", ""), when, t["speaker"]) for t in turns]
            exchanges = [Exchange(msgs[i:i + 2], [], msgs[max(0, i - 4):i]) for i in range(0, len(msgs), 2)]
            exchanges[0].facts = facts  # scored per session, see score_sessions
            out.append(exchanges)
    return out


@dataclass
class Row:
    name: str
    recall: float
    precision: float
    invalid: float
    dates: str
    types: str
    latency: float
    tok_s: float
    extracted: int
    gold: int


def run(extractor: Extractor, exchanges: Sequence[Exchange]) -> tuple[list[list[Any]], list[float]]:
    results, latencies = [], []
    for ex in exchanges:
        started = time.perf_counter()
        res = extractor.extract(ex.messages, context=ex.context)
        latencies.append(time.perf_counter() - started)
        results.append(list(res.candidates))
    return results, latencies


def score(embedder: SentenceTransformerEmbedder, groups: list[tuple[list[dict[str, Any]], list[Any]]]
          ) -> tuple[int, int, int, int, int, int, int, int]:
    """(gold, recalled, extracted, precise, dated, dated_ok, typed, typed_ok) over gold/extracted groups."""
    gold = recalled = extracted = precise = dated = dated_ok = typed = typed_ok = 0
    for facts, cands in groups:
        gold += len(facts)
        extracted += len(cands)
        dated += sum(1 for f in facts if f.get("event_date"))
        if not facts or not cands:
            continue
        g = embedder.embed_batch([f["text"] for f in facts])
        c = embedder.embed_batch([x.text for x in cands])
        sim = g @ c.T
        for i, f in enumerate(facts):
            j = int(sim[i].argmax())
            if sim[i, j] >= MATCH:
                recalled += 1
                if f.get("event_date"):
                    dated_ok += int(cands[j].event_date == f["event_date"])
                if f.get("type"):
                    typed += 1
                    typed_ok += int(cands[j].memory_type == f["type"])
        precise += int((sim.max(axis=0) >= MATCH).sum())
    return gold, recalled, extracted, precise, dated, dated_ok, typed, typed_ok


def measure(name: str, extractor: Extractor, llm: RecordingLLM | None, embedder: SentenceTransformerEmbedder,
            exchanges: Sequence[Exchange], sessions: list[list[Exchange]] | None = None) -> Row:
    if llm is not None:
        llm.reset()
    if sessions is None:
        results, lat = run(extractor, exchanges)
        groups = [(ex.facts, r) for ex, r in zip(exchanges, results)]
    else:
        groups, lat = [], []
        for session in sessions:
            results, session_lat = run(extractor, session)
            lat += session_lat
            groups.append((session[0].facts, [c for r in results for c in r]))
    gold, rec, ext, prec, dated, dated_ok, typed, typed_ok = score(embedder, groups)
    calls = llm.calls if llm else 0
    return Row(name, rec / gold if gold else 0.0, prec / ext if ext else 0.0,
               (llm.invalid / calls) if llm and calls else 0.0,
               f"{dated_ok}/{dated}" if dated else "-", f"{typed_ok}/{typed}" if typed else "-",
               sum(lat) / len(lat) if lat else 0.0,
               (llm.tokens / llm.seconds) if llm and llm.seconds else 0.0, ext, gold)


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    head = (f"{'configuration':38} {'recall':>6} {'prec':>6} {'invalid':>7} {'dates':>6} {'types':>6} "
            f"{'s/exch':>6} {'tok/s':>6} {'found':>5} {'gold':>5}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r.name:38} {r.recall:6.2f} {r.precision:6.2f} {r.invalid:7.0%} {r.dates:>6} {r.types:>6} "
              f"{r.latency:6.2f} {r.tok_s:6.0f} {r.extracted:5d} {r.gold:5d}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="a GGUF file to measure instead of the packaged SmolLM2-135M")
    ap.add_argument("--sessions", type=int, default=1, help="LoCoMo sessions per conversation (set 2)")
    ap.add_argument("--configs", default="", help="comma-separated substrings of configuration names")
    ap.add_argument("--skip-locomo", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    inner = LlamaCppLLM(LLMConfig(model_path=args.model, n_threads=args.threads))
    started = time.perf_counter()
    inner.load()
    print(f"model: {inner.path.name} ({inner.path.stat().st_size / 1e6:.0f} MB), "
          f"loaded in {time.perf_counter() - started:.1f}s")
    llm = RecordingLLM(inner)
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    wanted = [s.strip() for s in args.configs.split(",") if s.strip()]
    configs = {k: v for k, v in CONFIGS.items() if not wanted or any(w in k for w in wanted)}
    gold = load_gold()
    Extractor(None).extract(gold[0].messages)  # warm spaCy so the first row is not charged for it
    rows = []
    for name, scaffold in configs.items():
        uses_model = scaffold.model != "off"
        extractor = Extractor(llm if uses_model else None, scaffold=scaffold)
        rows.append(measure(name, extractor, llm if uses_model else None, embedder, gold))
        print(f"  measured: {name.strip()} ({rows[-1].latency:.2f} s/exchange)", file=sys.stderr, flush=True)
    n_facts = sum(len(e.facts) for e in gold)
    print_table(f"set 1: hand-written gold ({len(gold)} exchanges, {n_facts} facts), "
                f"match = cosine >= {MATCH}", rows)
    if not args.skip_locomo and LOCOMO.is_dir():
        sessions = load_locomo(args.sessions)
        rows = []
        for name, scaffold in configs.items():
            if name.startswith("  -"):
                continue
            uses_model = scaffold.model != "off"
            extractor = Extractor(llm if uses_model else None, scaffold=scaffold)
            rows.append(measure(name, extractor, llm if uses_model else None, embedder, [], sessions))
            print(f"  measured: {name.strip()} ({rows[-1].latency:.2f} s/exchange)", file=sys.stderr, flush=True)
        n_ex = sum(len(s) for s in sessions)
        print_table(f"set 2: LoCoMo observations ({len(sessions)} sessions, {n_ex} two-turn exchanges)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
