"""Time to first token of two GGUF models on the same answer prompts, in alternating blocks.

    python bench/first_token_ab.py A.gguf B.gguf [--prompts 12] [--rounds 2] [--store DIR]

The prompts are what Memory.answer() gives the model (engine/assistant/answer.py: instructions, the
worked example, a 300-word block of memories, the question), built from the LoCoMo dev questions
of categories 1, 3 and 4 (the ones the model answers) over a bench/locomo_retrieval.py store (--store,
default the cached infer=True store of conversation 26). Each model answers every prompt in a block;
blocks alternate A B A B so a shared machine's changing load falls on both. Prints the median and
p90 first-token time per model, its file size, and the median of A/B.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from locomo_retrieval import CACHE, last_session_date, load, open_memory  # noqa: E402

from engine.assistant.answer import EXAMPLE_IN, EXAMPLE_OUT, INSTRUCTIONS, relevant_memories  # noqa: E402
from engine.assistant.context import build_context  # noqa: E402
from engine.config import LLMConfig  # noqa: E402
from engine.inference.llm import LlamaCppLLM  # noqa: E402


def prompts(store: Path, conv_id: str, n: int) -> list[list[dict[str, str]]]:
    """The chats Memory.answer() would send for the first n answerable questions."""
    (_, conv), = load([conv_id])
    out: list[list[dict[str, str]]] = []
    with open_memory(store, "off") as mem:
        for qa in conv["qa"]:
            if qa.get("category") not in (1, 3, 4) or len(out) >= n:
                continue
            hits = mem.search_records(qa["question"], top_k=50, filters={"user_id": conv_id},
                                      reference_date=last_session_date(conv))
            found = relevant_memories(qa["question"], [h.record for h in hits])
            if not found:
                continue
            context = build_context(found, 300)
            numbered = "\n".join(f"[{k}] {line}" for k, line in enumerate(context.text.split("\n"), start=1))
            out.append([{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": EXAMPLE_IN},
                        {"role": "assistant", "content": EXAMPLE_OUT},
                        {"role": "user", "content": f"Memories:\n{numbered}\n\nQuestion: {qa['question']}"}])
    return out


def first_tokens(path: str, chats: list[list[dict[str, str]]]) -> list[float]:
    llm = LlamaCppLLM(LLMConfig(model_path=path))
    llm.load()
    times = []
    for chat in chats:
        started = time.perf_counter()
        stream = llm.stream(chat, max_tokens=4)
        try:
            next(iter(stream), None)
        finally:
            stream.close()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conversation", default="26")
    ap.add_argument("--store", type=Path, help="default: <cache>/<conversation>-infer-off-default")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    store = args.store or args.cache / f"{args.conversation}-infer-off-default"
    chats = prompts(store, args.conversation, args.prompts)
    times: dict[str, list[float]] = {args.a: [], args.b: []}
    for _ in range(args.rounds):
        for path in (args.a, args.b):
            times[path] += first_tokens(path, chats)
    print(f"{len(chats)} answer prompts (conversation {args.conversation}), {args.rounds} alternating rounds")
    for path, ts in times.items():
        ordered = sorted(ts)
        print(f"{Path(path).name:<40} {Path(path).stat().st_size / 1e6:6.0f} MB  first token median "
              f"{statistics.median(ts):.2f} s, p90 {ordered[int(len(ordered) * 0.9)]:.2f} s")
    ratios = [a / b for a, b in zip(times[args.a], times[args.b])]
    print(f"median ratio {Path(args.a).name} / {Path(args.b).name}: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
