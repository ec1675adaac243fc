"""Sentence embeddings with onnxruntime and tokenizers: the same vectors as sentence-transformers
at about a third of the memory (no torch or transformers in the process).

A mean-pooling sentence-transformers folder (all-MiniLM-L6-v2, the packaged default) runs from
the ONNX file the folder ships as onnx/model.onnx (the layout of many Hugging Face repositories,
and of the model inside Loci's installers, exported at build time by packaging/build.py).
Without one it is exported once per machine, in a child process that imports torch, and cached
under $LOCI_CACHE (default: the platform's user cache folder). Vectors match the
sentence-transformers adapter within 1e-5, so stores built by either open with the other.
When a folder cannot be exported (another pooling, no `onnx` package) Memory falls back to
SentenceTransformerEmbedder. An installed app (a PyInstaller bundle) has neither torch nor an
interpreter to export with: it needs onnx/model.onnx in the folder and says so when it is missing.
With precision "int8" it runs an int8 quantization of that file instead (quantized.py): about
half the CPU per embed, vectors within 0.996 cosine of fp32, under its own name in the store
manifest. Its activations are quantized per token, so a text's vector does not depend on the
texts embedded with it and texts are batched as at fp32; an int8 file made another way
(onnxruntime's per-tensor dynamic quantization, as some model folders ship) runs each text alone.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .offline import enforce_offline
from .quantized import int8_onnx, is_batchable, prebuilt_int8
from ..errors import ConfigError, ModelError

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_S = 600
PREBUILT = Path("onnx") / "model.onnx"  # where a model folder ships its ONNX export
INT8_GROUP = 8  # most texts in one int8 run (see embed_batch)


def is_frozen() -> bool:
    """True in an installed app (PyInstaller bundle): sys.executable is the app, torch is absent."""
    return bool(getattr(sys, "frozen", False))


def prebuilt_onnx(folder: Path) -> Path | None:
    """The ONNX export a model folder ships (onnx/model.onnx), if any."""
    path = folder / PREBUILT
    return path if path.is_file() else None


def frozen_requirement(folder: Path) -> str | None:
    """None when an installed app can embed with this folder, else what the person should do."""
    if not can_export(folder):
        return (f"{folder} is not a mean-pooling sentence-transformers model with tokenizer.json, the kind "
                "the installed app runs. Pick another folder, or leave the embedding model folder empty to "
                "use the built-in model.")
    if prebuilt_onnx(folder) is None:
        return (f"{folder} has no onnx/model.onnx, which the installed app needs (it embeds with onnxruntime). "
                "Pick a folder that ships one, as many Hugging Face models do, or leave the embedding model "
                "folder empty to use the built-in model.")
    return None


def cache_dir() -> Path:
    """Where exported models are kept: $LOCI_CACHE, else the platform's user cache folder."""
    env = os.environ.get("LOCI_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("loci", appauthor=False))


def can_export(folder: Path) -> bool:
    """True for a sentence-transformers folder this module reproduces: BERT-like, mean pooling."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "") for m in modules]
    return (len(kinds) in (2, 3) and kinds[0].endswith("Transformer") and kinds[1].endswith("Pooling")
            and (len(kinds) == 2 or kinds[2].endswith("Normalize"))
            and pooling.get("pooling_mode_mean_tokens") is True
            and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                                 "pooling_mode_mean_sqrt_len_tokens"))
            and (folder / "tokenizer.json").is_file())


def onnx_path(folder: Path) -> Path:
    """The cached ONNX file for a model folder (keyed by its weights' size and mtime)."""
    weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).is_file()),
                   folder / "config.json")
    stat = weights.stat()
    key = hashlib.sha1(f"{folder.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{folder.name}-{key}.onnx"


class OnnxEmbedder:
    """Embedder protocol over onnxruntime; loads (and on first use exports) lazily."""

    def __init__(self, name: str, folder: Path, batch_size: int = 64, threads: int | None = None,
                 precision: str = "fp32") -> None:
        self.name = name if precision == "fp32" else f"{name}@{precision}"  # stores record which
        self.precision = precision
        self.dimension = 0
        self._folder = folder
        self._batch_size = batch_size
        self._threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._session: Any = None
        self._tokenizer: Any = None
        self._fallback: Any = None  # sentence-transformers, when the export is impossible here
        self._pool: ThreadPoolExecutor | None = None
        self._inputs: set[str] = set()
        self._output = "last_hidden_state"
        self._batchable = precision == "fp32"  # an int8 file says so in its metadata (quantized.py)
        self._lock = threading.Lock()
        try:
            self.dimension = int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
        except (OSError, ValueError, KeyError):
            self.dimension = 0

    def load(self) -> None:
        with self._lock:
            if self._session is not None or self._fallback is not None:
                return
            enforce_offline()
            shipped = prebuilt_onnx(self._folder)
            path = shipped or onnx_path(self._folder)
            int8 = prebuilt_int8(self._folder) if self.precision == "int8" else None
            if int8 is not None:
                shipped = path = int8
            elif not path.is_file():
                if is_frozen():  # no interpreter to export with, and no torch
                    raise ModelError(frozen_requirement(self._folder) or f"{path} is missing.")
                try:
                    export(self._folder, path)
                except (ModelError, OSError, subprocess.SubprocessError) as exc:
                    if self.precision != "fp32":  # sentence-transformers would give other vectors
                        raise ModelError(f"The {self.precision} embedding model needs an ONNX export of "
                                         f"{self._folder}: {exc}. Set embedder.precision to \"fp32\".") from exc
                    from .embeddings import SentenceTransformerEmbedder

                    log.warning("using sentence-transformers instead of onnxruntime: %s", exc)
                    self._fallback = SentenceTransformerEmbedder(self.name, self._folder,
                                                                 batch_size=self._batch_size)
                    self._fallback.load()
                    return
            if self.precision == "int8" and int8 is None:
                path, shipped = int8_onnx(path, cache_dir()), None  # a cache file, remade if damaged
            from tokenizers import Tokenizer

            try:
                # int8 runs its groups side by side on workers of one thread each: two threads on one
                # int8 group cost half as much CPU again (small matrices), for little less wall time
                session = _session(path, self._threads if self.precision == "fp32" else 1)
                batchable = self.precision == "fp32" or is_batchable(session.get_modelmeta().custom_metadata_map)
                tokenizer = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
            except Exception as exc:
                if shipped is not None:  # the folder's own file: never deleted
                    raise ModelError(f"Could not load the embedding model {path}: {exc}. Replace the file "
                                     "with a working ONNX export, or pick another model folder.") from exc
                path.unlink(missing_ok=True)  # a damaged cache file: export again next time
                raise ModelError(f"Could not load the embedding model {path}: {exc}. Open Loci again to "
                                 "rebuild it.") from exc
            limit = _max_length(self._folder)
            tokenizer.enable_truncation(limit)
            tokenizer.enable_padding()
            self._inputs = {i.name for i in session.get_inputs()}
            outputs = [o.name for o in session.get_outputs()]
            self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
            self._tokenizer, self._session, self._batchable = tokenizer, session, batchable
            log.info("embedding model %s loaded with onnxruntime from %s (%d threads, %s)", self.name,
                     "the model folder" if shipped else "the cache", self._threads,
                     "batched" if batchable else "one text at a time")

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if self._fallback is not None:
            return np.asarray(self._fallback.embed_batch(texts), dtype=np.float32)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Tokenize once, then run the texts in groups of similar length, each cut to its longest
        # text: padding every text of a batch to the longest one doubled the work on chat turns.
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        if self.precision == "fp32":
            most = self._batch_size
        elif self._batchable:  # int8 per token: at least one group per worker, and small ones (the
            # per-row graph holds more [tokens x 1536] tensors: 64-text groups of long replies cost
            # ~170 MiB more peak RSS in an import than 8-text ones, for no less CPU per text)
            most = max(1, min(self._batch_size, INT8_GROUP, -(-len(texts) // self._threads)))
        else:  # an int8 file quantizing per call: beside others a text would get another vector
            most = 1  # (cosine ~0.99) than alone, as a query is, so each text runs alone
        groups = [order[start:stop] for start, stop in length_groups(lengths[order].tolist(), most)]
        # the biggest groups first (they hold the longest texts): workers then finish together
        groups.sort(key=lambda rows: -len(rows) * int(lengths[rows].max()))

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            width = max(int(lengths[rows].max()), 1)
            return rows, self._run(ids[rows, :width], mask[rows, :width])
        pool = self._workers() if self.precision != "fp32" and len(groups) > 1 else None
        parts = list(pool.map(run, groups)) if pool is not None else [run(rows) for rows in groups]
        result = np.empty((len(texts), parts[0][1].shape[1]), dtype=np.float32)
        for rows, vectors in parts:
            result[rows] = vectors
        return result

    @property
    def is_batched(self) -> bool:
        """True when texts run in batches (fp32, or an int8 file quantizing per token); loads the model."""
        self.load()
        return self._batchable or self._fallback is not None

    def embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embed_batch([text])[0], dtype=np.float32)

    def _workers(self) -> ThreadPoolExecutor | None:
        """The threads int8 groups run on side by side (onnxruntime lets go of the GIL); None with one."""
        if self._threads < 2:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="loci-embed")
            return self._pool

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        # exports of models without segment ids (many shipped onnx/model.onnx) take two inputs
        hidden = self._session.run([self._output], {k: v for k, v in feed.items() if k in self._inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def _session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session on `threads` threads that do not spin."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning worker threads steal the CPU from everything else on a busy machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def length_groups(lengths: Sequence[int], most: int, slack: float = 1.3) -> list[tuple[int, int]]:
    """Split token lengths sorted ascending into runs [start, stop) of at most `most` texts whose
    padded size (count x longest) stays within `slack` times their real size."""
    groups: list[tuple[int, int]] = []
    start, total = 0, 0
    for k, n in enumerate(lengths):
        if k > start and (k - start >= most or n * (k - start + 1) > slack * (total + n)):
            groups.append((start, k))
            start, total = k, 0
        total += n
    if start < len(lengths):
        groups.append((start, len(lengths)))
    return groups


def _max_length(folder: Path) -> int:
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def export(folder: Path, target: Path) -> None:
    """Export a model folder to ONNX in a child process (torch never enters this process)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting the embedding model %s to ONNX (once per machine)", folder.name)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    res = subprocess.run([sys.executable, "-m", "engine.inference.onnx_embedder", str(folder), str(target)],
                         env=env, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S,
                         cwd=str(Path(__file__).resolve().parents[1]))
    if res.returncode != 0 or not target.is_file():
        raise ModelError(f"Could not prepare the embedding model {folder} for onnxruntime: "
                         f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'unknown error'}")


def _export_here(folder: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    tmp = target.with_suffix(f".{os.getpid()}.tmp")  # its own: two programs may export at once
    torch.onnx.export(Encoder(model), (sample, sample, torch.zeros_like(sample)), str(tmp),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                    "last_hidden_state": axes},
                      opset_version=17, dynamo=False)
    tmp.replace(target)


def effective_precision(config: Any) -> str:
    """The precision an EmbedderConfig asks for, "auto" resolved: int8 where the model runs on
    onnxruntime on the CPU and an int8 file can be had (made here, or shipped in the folder by an
    installed app, which cannot make one), fp32 otherwise (torch, a GPU, another pooling)."""
    if config.precision != "auto":
        return str(config.precision)
    from ..paths import packaged_model_dir

    folder = Path(config.path).expanduser() if config.path else packaged_model_dir(config.model)
    if folder is None or not can_export(folder):
        return "fp32"
    if is_frozen():
        return "int8" if prebuilt_int8(folder) is not None else "fp32"
    return "int8" if config.backend == "onnx" and config.device in ("auto", "cpu") else "fp32"


def default_embedder(config: Any) -> Any:
    """The embedder Memory uses for an EmbedderConfig: onnxruntime when the model allows it.

    An installed app always embeds with onnxruntime (it ships without torch), from the ONNX
    file in the model folder; a folder without one is a ModelError saying what to pick."""
    from dataclasses import replace

    from ..paths import packaged_model_dir
    from .embeddings import SentenceTransformerEmbedder

    if config.precision == "auto":
        config = replace(config, precision=effective_precision(config))
    folder = Path(config.path).expanduser() if config.path else packaged_model_dir(config.model)
    if is_frozen():
        if folder is None:
            raise ModelError(f"No local files for embedding model '{config.model}'. Pick its folder (one with "
                             "onnx/model.onnx) in the settings, or leave the model at the built-in "
                             "all-MiniLM-L6-v2.")
        problem = frozen_requirement(folder)
        if problem is not None and not config.path:
            raise ModelError(f"The built-in embedding model in {folder} has no onnx/model.onnx: this "
                             "installation is incomplete. Reinstall Loci.")
        if problem is not None:
            raise ModelError(problem)
        if config.backend != "onnx" or config.device not in ("auto", "cpu"):
            log.info("the installed app embeds with onnxruntime on the CPU (backend=%s, device=%s ignored)",
                     config.backend, config.device)
        return OnnxEmbedder(config.model, folder, config.batch_size, precision=config.precision)
    if config.backend == "onnx" and config.device in ("auto", "cpu") and folder is not None \
            and can_export(folder):
        return OnnxEmbedder(config.model, folder, config.batch_size, precision=config.precision)
    if config.precision != "fp32":
        raise ConfigError(f"embedder.precision = \"{config.precision}\" runs a mean-pooling sentence-transformers "
                          "model with onnxruntime on the CPU: set embedder.backend to \"onnx\" and "
                          "embedder.device to \"auto\" or \"cpu\", or precision back to \"fp32\".")
    return SentenceTransformerEmbedder(config.model, config.path, config.device, config.batch_size)


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    _export_here(Path(sys.argv[1]), Path(sys.argv[2]))
