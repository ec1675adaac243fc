"""int8 copies of an embedder's ONNX export, made locally with onnxruntime's dynamic quantization.

Weights become int8 per output channel (activations are quantized at run time, per call), except
the feed-forward output projection of each layer (the MatMul after GELU, whose input has outliers
a per-tensor int8 scale flattens): kept in fp32, they lift cosine agreement with the fp32 vectors
on conversation turns from 0.992 to 0.996 for a third of the CPU saved (bench/embedder_bench.py;
hit@10 on LoCoMo within 0.005 on both paths, BENCHMARKS.md). The file is made once per fp32 file
from it, next to the cached exports, in about ten seconds; nothing is downloaded.
A model folder may ship its own as onnx/model_int8.onnx (an installed app has to: it carries
neither the `onnx` package nor onnxruntime's quantization tools).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelError

log = logging.getLogger(__name__)

PREBUILT_INT8 = Path("onnx") / "model_int8.onnx"  # where a model folder ships its int8 file
RECIPE = "ffn-out-fp32"  # what the int8 copy leaves in fp32 (part of the cache key: a new recipe, a new file)


def prebuilt_int8(folder: Path) -> Path | None:
    """The int8 ONNX file a model folder ships (onnx/model_int8.onnx), if any."""
    path = folder / PREBUILT_INT8
    return path if path.is_file() else None


def int8_path(fp32: Path, cache: Path) -> Path:
    """Where the int8 copy of an fp32 ONNX file is kept (keyed by the file's path, size and mtime)."""
    stat = fp32.stat()
    key = hashlib.sha1(f"{fp32.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{RECIPE}".encode()).hexdigest()[:16]
    return cache / "onnx" / f"{fp32.stem}-{key}-int8.onnx"


def quantize(source: Path, target: Path) -> None:
    """Write the int8 (weights, per channel) dynamic quantization of an ONNX model to `target`."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # the installed app leaves the tools out
        raise ModelError("This installation cannot make the int8 embedding model (onnxruntime's "
                         "quantization tools are missing). Set embedder.precision to \"fp32\", or pick "
                         "a model folder that ships onnx/model_int8.onnx.") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("making the int8 embedding model from %s (once per model)", source.name)
    quiet = logging.getLogger()  # the tools log advice to pre-process on the root logger, every call
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # In a folder of its own: the tools write "<source>-inferred.onnx" beside their input, so two
        # programs making the file at once (the app and `loci serve` on a new machine) clashed.
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".int8-") as work:
            private = Path(work) / "model.onnx"
            try:
                os.link(source, private)
            except OSError:
                shutil.copyfile(source, private)
            tmp = Path(work) / "int8.onnx"
            quantize_dynamic(str(private), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=kept_in_fp32(source))
            tmp.replace(target)
    except OSError as exc:
        raise ModelError(f"Could not write the int8 embedding model {target}: {exc}. Check that the "
                         "disk is not full, or set embedder.precision to \"fp32\".") from exc
    except Exception as exc:  # onnx/onnxruntime reject a model they cannot quantize
        raise ModelError(f"Could not make an int8 copy of the embedding model {source}: {exc}. "
                         "Set embedder.precision to \"fp32\".") from exc
    finally:
        quiet.setLevel(level)


def kept_in_fp32(source: Path) -> list[str]:
    """The nodes the int8 copy leaves in fp32: each layer's feed-forward output MatMul (named
    .../output/dense/MatMul outside attention in BERT-like exports; none found, none kept)."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul")
            and "/attention/" not in n.name]


def int8_onnx(fp32: Path, cache: Path) -> Path:
    """The cached int8 copy of an fp32 ONNX file, made now if missing."""
    target = int8_path(fp32, cache)
    if not target.is_file():
        quantize(fp32, target)
    return target
