"""Assistant benchmark: first token and tokens/s with memory on and off, memory prompt cost, LoCoMo QA.

    python bench/assistant_bench.py [--memories 10000] [--turns 6] [--locomo-questions 60]
                                    [--model PATH] [--skip-gui] [--skip-locomo]

1. A store of N memories (infer=False, added in batches of 500) for one user; chat turns on
   it through engine.assistant.chat.Assistant (incognito, so the store does not grow), memory on and off
   interleaved: time to first token from the call (what the person waits for after Enter:
   retrieval + prompt + first decoded token), tokens/s of the reply, prompt tokens and the
   share the memory block takes. Target: first token <= 1.5 s at 10k memories.
2. The Assistant view (offscreen Qt) on the same store: the worst and 99th-percentile delay of a
   10 ms timer while a reply streams. Target: < 100 ms.
3. LoCoMo dev (read from $LOCI_LOCOMO_DIR, default <repo>/../shared/data/locomo-dev): every
   turn imported raw (as bench/locomo_retrieval.py does), then the questions (categories 1-4,
   an even sample of --locomo-questions per conversation) asked through the chat path with the
   last session's date as "today"; token F1 against the gold answer (SQuAD-style normalisation).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import LociConfig, Memory  # noqa: E402
from engine.assistant.chat import Assistant, ChatConfig, Conversation  # noqa: E402

LOCOMO = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
USER = "bench"
FACTS = ["My sister Ingrid lives in Bergen and works as a nurse.", "I am allergic to peanuts.",
         "I started a new job at Nordlys Energy in April.", "My dog is called Rex.",
         "I am planning a hiking trip to Jotunheimen in July.", "I prefer tea over coffee."]
QUESTIONS = ["Where does my sister live?", "What am I allergic to?", "Where do I work now?",
             "What is my dog called?", "What trip am I planning?", "Do I like coffee?"]
_PEOPLE = ["Maya", "Tom", "Ingrid", "Ola", "Sara", "Lars", "Nina", "Jonas", "Eva", "Karl"]
_PLACES = ["Oslo", "Bergen", "Lisbon", "Leeds", "Kyoto", "Tromsø", "Berlin", "Madrid", "Austin", "Lima"]
_THINGS = ["a road bike", "a pottery class", "sourdough bread", "a jazz concert", "a new laptop", "a garden",
           "chess", "a marathon", "a novel by Ishiguro", "a sailing course", "a camera", "Spanish lessons"]
_VERBS = ["talked about", "bought", "started", "finished", "planned", "loved", "tried", "recommended"]


def synthetic(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(f"{rng.choice(_PEOPLE)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} in "
                   f"{rng.choice(_PLACES)} on day {i % 365 + 1} (note {i}).")
    return out


def build_store(path: Path, n: int, config: LociConfig) -> Memory:
    mem = Memory(path, config)
    if mem.count({"user_id": USER}) >= n:
        print(f"store: reusing {mem.count():,} memories in {path}")
        return mem
    t0 = time.perf_counter()
    texts = synthetic(max(0, n - len(FACTS)))
    for start in range(0, len(texts), 500):
        mem.add([{"role": "user", "content": t} for t in texts[start:start + 500]], user_id=USER, infer=False,
                timestamp="2024-03-01T10:00:00Z")
    mem.add([{"role": "user", "content": t, "name": "Maya"} for t in FACTS], user_id=USER, infer=False,
            timestamp="2024-04-01T10:00:00Z")
    print(f"store: {mem.count():,} memories added in {time.perf_counter() - t0:.1f} s (infer=False, batches of 500)")
    return mem


def chat_figures(mem: Memory, turns: int) -> None:
    on = Assistant(mem, config=ChatConfig(use_memory=True))
    off = Assistant(mem, config=ChatConfig(use_memory=False))
    mem.warm_up()
    t = time.perf_counter()
    on.chat(Conversation(user_id=USER, remember=False), "Hello!")  # loads the model: not counted
    print(f"warm-up turn (model load, indexes): {time.perf_counter() - t:.1f} s")
    rows: dict[str, list[dict[str, float]]] = {"memory on": [], "memory off": []}
    search_ms: list[float] = []
    for i in range(turns):
        q = QUESTIONS[i % len(QUESTIONS)]
        for label, bot in (("memory on", on), ("memory off", off)):
            cpu_first: list[float] = []
            cpu0 = _cpu()
            reply = bot.chat(Conversation(user_id=USER, remember=False), q,
                             on_token=lambda _p, c=cpu_first, t0=cpu0: c or c.append(_cpu() - t0))
            gen = reply.seconds - (reply.first_token_s or reply.seconds)
            rows[label].append({"first": reply.first_token_s or float("nan"), "tps": (reply.completion_pieces - 1) / gen
                                if gen > 0 and reply.completion_pieces > 1 else float("nan"),
                                "prompt": reply.prompt_tokens, "memory": reply.memory_tokens,
                                "n_mem": len(reply.memory_ids), "cpu": cpu_first[0] if cpu_first else float("nan")})
        t = time.perf_counter()
        mem.search_records(q, top_k=on.config.memory_top_k, filters={"user_id": USER})
        search_ms.append((time.perf_counter() - t) * 1000)
    print(f"\n{turns} turns each, interleaved; first token measured from the call (retrieval included)")
    print(f"{'':<11} {'first token p50':>16} {'max':>7} {'CPU s to 1st':>12} {'tokens/s':>9} {'prompt tok':>11} "
          f"{'memory tok':>11} {'memories':>9}")
    for label, r in rows.items():
        firsts = [x["first"] for x in r]
        print(f"{label:<11} {statistics.median(firsts):>14.2f} s {max(firsts):>6.2f}s "
              f"{statistics.median([x['cpu'] for x in r]):>12.2f} "
              f"{statistics.median([x['tps'] for x in r]):>9.1f} {statistics.median([x['prompt'] for x in r]):>11.0f} "
              f"{statistics.median([x['memory'] for x in r]):>11.0f} "
              f"{statistics.median([x['n_mem'] for x in r]):>9.0f}")
    share = statistics.median([x["memory"] / x["prompt"] for x in rows["memory on"] if x["prompt"]])
    search = statistics.median(search_ms) / 1000
    rate = statistics.median([x["prompt"] / max(1e-3, x["first"] - search) for x in rows["memory on"]])
    print(f"memory block: {share:.0%} of the prompt; search alone p50 {search * 1000:.0f} ms at "
          f"{mem.count():,} memories; prompt evaluation ~{rate:.0f} tokens/s, so first token ~= "
          f"search + prompt tokens / that rate")
    try:
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    on.close()
    off.close()


def _cpu() -> float:
    """CPU seconds this process has used (all threads): the wait on an idle machine, roughly,
    when the model runs on one thread (more threads add spin-waiting to this figure)."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def gui_figures(mem: Memory) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.application import build

    app = QApplication.instance() or QApplication([sys.argv[0]])
    window, bridge, messages = build(mem)
    messages.crash_dialogs_enabled = False
    window.show()
    bridge.start()
    view = window.assistant_view
    view.set_user(USER)
    view.conversation.remember = False
    end = time.monotonic() + 120
    while view.controller.model_state != "ready" and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    delays: list[int] = []
    clock = QElapsedTimer()
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: delays.append(clock.restart() - 10))
    done: list[bool] = []
    view.reply_shown.connect(lambda: done.append(True))
    for q in ("Tell me a long story about my sister.", "What do you know about my job?"):
        delays.clear()
        done.clear()
        view.input.setPlainText(q)
        clock.start()
        timer.start()
        view.send()
        while not done and time.monotonic() < end + 300:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        delays.sort()
        p99 = delays[int(len(delays) * 0.99) - 1] if delays else 0
        print(f"GUI while a reply streams ({len(delays)} ticks of a 10 ms timer): event-loop delay "
              f"max {max(delays, default=0)} ms, p99 {p99} ms")
    view.close_chat()
    bridge.close()
    window.close()


def normalise(text: str) -> list[str]:
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the|and)\b", " ", text)
    return text.split()


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction), normalise(gold)
    if not p or not g:
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def locomo(config: LociConfig, per_conv: int, reply_tokens: int) -> None:
    from locomo_retrieval import ingest, last_session_date  # bench/locomo_retrieval.py: one importer

    from engine.extraction.temporal import parse_timestamp

    files = sorted(LOCOMO.glob("*.json"))
    if not files:
        print(f"\nLoCoMo: no files in {LOCOMO} (set LOCI_LOCOMO_DIR)")
        return
    scores: dict[int, list[float]] = {c: [] for c in CATEGORIES}
    firsts: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "locomo", config) as mem:
        bot = Assistant(mem, config=ChatConfig(reply_tokens=reply_tokens))
        for f in files:
            conv = json.loads(f.read_text(encoding="utf-8"))
            ingest(mem, f.stem, conv)
            today = parse_timestamp(last_session_date(conv))
            qa = [q for q in conv["qa"] if q.get("category") in CATEGORIES and "answer" in q]
            step = max(1, len(qa) // per_conv) if per_conv else 1
            for q in qa[::step][:per_conv or None]:
                reply = bot.chat(Conversation(user_id=f.stem, remember=False), q["question"], now=today)
                scores[q["category"]].append(token_f1(reply.text, str(q["answer"])))
                firsts.append(reply.first_token_s or float("nan"))
        bot.close()
    allv = [s for v in scores.values() for s in v]
    print(f"\nLoCoMo dev through the chat path ({len(allv)} questions from {len(files)} conversations, "
          f"replies up to {reply_tokens} tokens, model {Path(config.llm.model_path or 'SmolLM2-135M (default)').name})")
    print("token F1: " + "  ".join(f"{CATEGORIES[c]} {statistics.mean(v):.3f} (n={len(v)})"
                                   for c, v in scores.items() if v) + f"  overall {statistics.mean(allv):.3f}")
    print(f"first token p50 {statistics.median(firsts):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--locomo-questions", type=int, default=30, help="per conversation (0: all)")
    ap.add_argument("--locomo-reply-tokens", type=int, default=64)
    ap.add_argument("--model", help="a GGUF file (default: the packaged SmolLM2-135M)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--store", type=Path, help="keep the N-memory store here and reuse it next time")
    ap.add_argument("--skip-gui", action="store_true")
    ap.add_argument("--skip-locomo", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    config = LociConfig()
    config.llm.model_path = args.model
    config.llm.n_threads = args.threads
    print(f"model: {args.model or 'SmolLM2-135M-Instruct Q4_1 (packaged default)'}; "
          f"{os.cpu_count()} cores; n_ctx {config.llm.n_ctx}")
    with tempfile.TemporaryDirectory() as tmp:
        mem = build_store(args.store or Path(tmp) / "store", args.memories, config)
        try:
            chat_figures(mem, args.turns)
            if not args.skip_gui:
                gui_figures(mem)
        finally:
            mem.close()
    if not args.skip_locomo:
        locomo(config, args.locomo_questions, args.locomo_reply_tokens)


if __name__ == "__main__":
    main()
