"""LoCoMo question answering: retrieve within a word budget, answer with a local GGUF, score token F1.

Every question of the dev conversations ($LOCI_LOCOMO_DIR, default <repo>/../shared/data/locomo-dev),
category 5 (adversarial: the memories do not hold the answer) included, goes through Memory.answer()
(engine/assistant/answer.py) on one or more paths (default ep+facts, what the assistant searches):
  raw-only      the infer=False store (every turn an episode);
  facts-only    the infer=True store, filters={"memory_type": {"ne": "message"}};
  ep+facts      the infer=True store searched whole (a fact and its episode share one slot).
Scores per category: token F1 against the gold answer (the LoCoMo paper's metric: lower case, no
punctuation or articles; multi-hop answers split at commas, each gold part matched to its best
predicted part; no stemming), "gold in context" (every gold word appears in the context given to the
model: an upper bound that needs no model), "gold share" (the share of the gold answer's content
words found there: locomo_retrieval.py's ans@ measure, partial credit, the question's abstention
context included) and the context size in words; the supported rate (share of shown answers whose
every claim the grounding check finds in the cited memories, engine/assistant/grounding.py,
re-checked here), the model's own reply supported before any fallback, abstention ("I don't have a
memory of that": wanted on category 5, a miss elsewhere), the first-token time (from the call to the
first piece of the answer: the model's first token, or the whole answer when no model was needed: a
date from the store, an abstention) and the answer time.
Compare models with --model PATH (any GGUF chat model; the header names it with its file size).

The stores come from bench/locomo_retrieval.py's cache (built there or here on first use).
Scale down with --limit N (first N questions per conversation) and --conversations 26.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import string
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from locomo_retrieval import (CACHE, FACTS_ONLY, answer_recall, build, last_session_date,  # noqa: E402
                              load, open_memory)

from engine.config import LLMConfig  # noqa: E402
from engine.assistant.context import format_memory  # noqa: E402
from engine.inference.llm import LlamaCppLLM  # noqa: E402

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
SCORED = (1, 2, 3, 4)  # categories with a gold answer to score F1 against


def questions(conv: dict, limit: int | None = None, per_category: int | None = None) -> list[dict]:
    """Every question (categories 1-5): all, the first `limit`, or the first `per_category` of each."""
    qs = [q for q in conv["qa"] if q.get("category") in CATEGORIES]
    if per_category:
        qs = [q for c in CATEGORIES for q in [x for x in qs if x["category"] == c][:per_category]]
    return qs[:limit] if limit else qs


def grounded(text: str, question: str, cited: list) -> float:
    """1.0 when the shown answer passes the grounding check against the memories it cites."""
    try:
        from engine.assistant.grounding import check
    except ImportError:  # the code before grounding existed: every answer counts as unchecked
        return 0.0
    return 1.0 if check(text, question, cited).supported else 0.0

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalise(text: str) -> str:
    text = str(text).casefold().replace(",", " ")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction).split(), normalise(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if not p or not g or same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, gold: str, category: int) -> float:
    """LoCoMo's per-category F1: multi-hop answers are lists; open-domain keeps the first option."""
    if category == 1:
        preds = [p for p in str(prediction).split(",") if p.strip()] or [""]
        golds = [g for g in str(gold).split(",") if g.strip()]
        return statistics.fmean(max(f1(p, g) for p in preds) for g in golds) if golds else 0.0
    if category == 3:
        gold = str(gold).split(";")[0]
    return f1(prediction, gold)


def gold_in_context(gold: str, context: str) -> float:
    want = normalise(gold).split()
    have = set(normalise(context).split())
    return 1.0 if want and all(w in have for w in want) else 0.0


class TimedModel:
    """The answering model, streamed so the time to its first token is known (same text as complete())."""

    def __init__(self, llm: LlamaCppLLM) -> None:
        self.llm = llm
        self.started = 0.0
        self.first: float | None = None  # seconds from `started` to the model's first token

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 stop: list[str] | None = None) -> str:
        text = ""
        stream = self.llm.stream(messages, max_tokens=max_tokens)
        try:
            for piece in stream:
                if self.first is None:
                    self.first = time.perf_counter() - self.started
                text += piece
                cut = min((text.find(s) for s in stop or () if s in text), default=-1)
                if cut >= 0:
                    return text[:cut]
        finally:
            stream.close()
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", help="comma-separated conversation ids (default: all dev files)")
    ap.add_argument("--limit", type=int, help="only the first N questions of each conversation")
    ap.add_argument("--per-category", type=int, help="only the first N questions of each category")
    ap.add_argument("--mode", default="off", help="the extraction mode of the infer=True store")
    ap.add_argument("--extract-model", help="GGUF used for extraction (the store's cache key)")
    ap.add_argument("--model", help="GGUF that answers (default: the packaged SmolLM2-135M)")
    ap.add_argument("--budget", type=int, default=300, help="context words given to the model")
    ap.add_argument("--paths", default="ep+facts")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--verbose", action="store_true", help="print the table after every path")
    ap.add_argument("--dump", type=Path, help="write every question, gold answer and reply here (JSON lines)")
    args = ap.parse_args()
    convs = load(args.conversations.split(",") if args.conversations else None)
    llm = LlamaCppLLM(LLMConfig(model_path=args.model))
    llm.load()
    timed = TimedModel(llm)
    paths = args.paths.split(",")
    results: dict[str, dict[str, dict[int, list[float]]]] = {
        p: {m: {} for m in METRICS} for p in paths}
    seconds: list[float] = []
    dump = args.dump.open("w", encoding="utf-8") if args.dump else None
    for conv_id, conv in convs:
        stores = {
            "raw-only": (build(conv_id, conv, infer=False, mode=args.mode, model=args.extract_model,
                               cache=args.cache, rebuild=False).path, {}),
            "facts-only": (build(conv_id, conv, infer=True, mode=args.mode, model=args.extract_model,
                                 cache=args.cache, rebuild=False).path, FACTS_ONLY),
        }
        stores["ep+facts"] = (stores["facts-only"][0], {})
        ref = last_session_date(conv)
        for path in paths:
            store, filters = stores[path]
            with open_memory(store, args.mode, args.extract_model) as mem:
                for qa in questions(conv, args.limit, args.per_category):
                    cat = qa["category"]
                    gold = str(qa.get("answer", ""))
                    started = timed.started = time.perf_counter()
                    timed.first = None
                    ans = mem.answer(qa["question"], filters={"user_id": conv_id, **filters},
                                     budget_words=args.budget, reference_date=ref, llm=timed)
                    seconds.append(time.perf_counter() - started)
                    dated = "\n".join(format_memory(mem.get_record(i)) for i in ans.context_ids)
                    r = results[path]
                    abstained = float(getattr(ans, "abstained", False))
                    if cat in SCORED:
                        r["f1"].setdefault(cat, []).append(score(ans.text, gold, cat))
                        r["gold in ctx"].setdefault(cat, []).append(gold_in_context(gold, dated))
                        r["gold share"].setdefault(cat, []).append(answer_recall(gold, dated))
                    r["supported"].setdefault(cat, []).append(
                        1.0 if abstained else grounded(ans.text, qa["question"],
                                                       [mem.get_record(i) for i in ans.memory_ids]))
                    if not abstained and getattr(ans, "claims", ()):
                        r["model ok"].setdefault(cat, []).append(float(all(c.supported for c in ans.claims)))
                    r["abstained"].setdefault(cat, []).append(abstained)
                    r["first token"].setdefault(cat, []).append(
                        timed.first if timed.first is not None else seconds[-1])
                    r["seconds"].setdefault(cat, []).append(seconds[-1])
                    r["words"].setdefault(cat, []).append(float(ans.context_words))
                    if dump is not None:
                        dump.write(json.dumps({
                            "conversation": conv_id, "path": path, "category": cat, "question": qa["question"],
                            "gold": gold, "answer": ans.text, "abstained": bool(abstained),
                            "supported": r["supported"][cat][-1], "model_ok": all(c.supported for c in ans.claims),
                            "f1": r["f1"][cat][-1] if cat in SCORED else None,
                            "first_token": r["first token"][cat][-1], "seconds": seconds[-1],
                            "claims": [[c.text, list(c.unsupported)] for c in ans.claims],
                            "context": dated.split("\n")}) + "\n")
                    if args.limit and args.limit <= 5:
                        print(f"  [{path}] {qa['question']} -> {ans.text!r} (gold {gold!r})")
            print(f"  {conv_id} {path}: done", file=sys.stderr)
            if args.verbose:
                print_table(results, paths, convs, args, llm.name, seconds)
    if dump is not None:
        dump.close()
    print_table(results, paths, convs, args, f"{llm.name} ({llm.path.stat().st_size / 1e6:.0f} MB)", seconds)


METRICS = ("f1", "gold in ctx", "gold share", "supported", "model ok", "abstained", "first token", "seconds", "words")


def print_table(results: dict[str, dict[str, dict[int, list[float]]]], paths: list[str],
                convs: list[tuple[str, dict]], args: argparse.Namespace, model: str,
                seconds: list[float]) -> None:
    n_q = sum(len(questions(c, args.limit, args.per_category)) for _, c in convs)
    print(f"\n{n_q} questions (categories 1-5) from {', '.join(c for c, _ in convs)}; answers by "
          f"{model}; context budget {args.budget} words; infer=True store: extraction mode {args.mode}")
    ordered = sorted(seconds)
    print(f"answer time: median {statistics.median(seconds):.2f} s, p90 {ordered[int(len(ordered) * 0.9)]:.2f} s "
          "per question (whole answer)")
    firsts = sorted(v for p in paths for per in results[p]["first token"].values() for v in per)
    if firsts:
        print(f"first token: median {statistics.median(firsts):.2f} s, p90 {firsts[int(len(firsts) * 0.9)]:.2f} s")
    print("f1 and overall over categories 1-4; supported: shown answers passing the grounding check (an "
          "abstention counts as supported); model ok: the model's own reply passed, before any fallback; "
          "abstained: 'I don't have a memory of that' (wanted on adversarial)\n")
    header = f"{'path':<12} {'metric':<12}" + "".join(f"{CATEGORIES[c][:11]:>12}" for c in CATEGORIES) + \
        f"{'overall':>10}"
    print(header)
    print("-" * len(header))
    for metric in METRICS:
        for path in paths:
            per = results[path][metric]
            cells = [f"{statistics.fmean(per[c]):>12.{1 if metric == 'words' else 3}f}" if per.get(c)
                     else f"{'-':>12}" for c in CATEGORIES]
            flat = [v for c in (SCORED if metric in ("f1", "gold in ctx", "gold share", "abstained") else CATEGORIES)
                    for v in per.get(c, [])]
            overall = statistics.fmean(flat) if flat else 0.0
            print(f"{path:<12} {metric:<12}" + "".join(cells)
                  + (f"{overall:>10.1f}" if metric == "words" else f"{overall:>10.3f}"))
        print()


if __name__ == "__main__":
    main()
