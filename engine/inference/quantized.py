"""int8 copies of an embedder's ONNX export whose vector for a text does not depend on its batch.

Every MatMul with a constant weight runs on int8: weights per output channel (symmetric), and
activations quantized at run time per ROW (per token), asymmetric: each token's own min/max
give its scale and zero point, so a token's int8 values depend on that token alone, never on
the other texts (or the padding) of a batch. onnxruntime's dynamic quantization scaled a
whole call's activations by one number, so a text's vector moved with its batchmates (cosine
~0.99 between alone and batched) and int8 texts had to be run one by one.

Per row, a MatMul is: QuantizeLinear along axis 0 of the activations seen as [rows, K] (the
row scales and zero points as 1-D tensors), MatMulIntegerToFloat (com.microsoft, uint8 x int8,
scaled by the weights' channel scales), then the row scale applied and the zero point taken
off through the weights' column sums: y = s_r * (q - z_r) W = s_r * (q W) - (s_r z_r) colsum(W).
The embedding tables (a lookup, no compute to save) stay fp32: int8 per vocabulary row cost raw
LoCoMo hit@10 0.009 (0.798 against fp32's 0.807); kept, hit@10 equals fp32's on every path (file
59 MB against 23 MB). Against fp32 on the 788 LoCoMo dev turns (with int8 tables): cosine
0.9986 mean / 0.9967 min (onnxruntime's per-tensor recipe with the feed-forward outputs in fp32,
run text by text: 0.9959 / 0.9910), at 0.72x its CPU per text in 20-text calls and 0.82x for one
text (bench/embedder_bench.py). Stores made by the earlier recipes keep their vectors (`@int8`):
the new vectors agree with the previous recipe's at cosine 0.995 mean, 0.987 min.

The file is made once per fp32 file from it with the `onnx` package and numpy (no calibration
data, nothing downloaded), next to the cached exports; its metadata names the recipe, which the
embedder reads to know it may batch. A model folder may ship its own as onnx/model_int8.onnx (an
installed app has to: it carries neither `onnx` nor the quantization code's dependencies); a
file made another way (without the recipe's name) is run one text at a time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ModelError

log = logging.getLogger(__name__)

PREBUILT_INT8 = Path("onnx") / "model_int8.onnx"  # where a model folder ships its int8 file
RECIPE = "rows-asym-v2"  # how the int8 copy is made (part of the cache key: a new recipe, a new file)
RECIPE_KEY = "loci.int8_recipe"  # the model metadata entry naming the recipe
BATCHABLE_RECIPES = frozenset({"rows-asym-v1", RECIPE})  # recipes whose vectors do not depend on the batch


def prebuilt_int8(folder: Path) -> Path | None:
    """The int8 ONNX file a model folder ships (onnx/model_int8.onnx), if any."""
    path = folder / PREBUILT_INT8
    return path if path.is_file() else None


def int8_path(fp32: Path, cache: Path) -> Path:
    """Where the int8 copy of an fp32 ONNX file is kept (keyed by the file's path, size and mtime)."""
    stat = fp32.stat()
    key = hashlib.sha1(f"{fp32.resolve()}|{stat.st_size}|{int(stat.st_mtime)}|{RECIPE}".encode()).hexdigest()[:16]
    return cache / "onnx" / f"{fp32.stem}-{key}-int8.onnx"


def is_batchable(metadata: Mapping[str, str]) -> bool:
    """True when an int8 model's metadata names a recipe whose vectors do not depend on the batch."""
    return metadata.get(RECIPE_KEY) in BATCHABLE_RECIPES


def quantize(source: Path, target: Path) -> None:
    """Write the per-row int8 copy of an ONNX model (quantize_rows) to `target`, atomically."""
    try:
        import onnx  # noqa: F401  (the installed app leaves it out)
    except ImportError as exc:
        raise ModelError("This installation cannot make the int8 embedding model (the `onnx` package is "
                         "missing). Set embedder.precision to \"fp32\", or pick a model folder that ships "
                         "onnx/model_int8.onnx.") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("making the int8 embedding model from %s (once per model)", source.name)
    try:
        model = quantize_rows(source)
        # written beside the target under a name of its own: two programs may make it at once
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".int8-", suffix=".onnx")
        os.close(handle)
        try:
            onnx.save(model, tmp)
            os.chmod(tmp, 0o644)  # as the exports beside it (mkstemp makes it private)
            Path(tmp).replace(target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise ModelError(f"Could not write the int8 embedding model {target}: {exc}. Check that the "
                         "disk is not full, or set embedder.precision to \"fp32\".") from exc
    except ModelError:
        raise
    except Exception as exc:  # onnx rejects a file that is not a model
        raise ModelError(f"Could not make an int8 copy of the embedding model {source}: {exc}. "
                         "Set embedder.precision to \"fp32\".") from exc


def quantize_rows(source: Path) -> Any:
    """The per-row int8 copy of an ONNX model, as an onnx ModelProto (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:  # per-axis QuantizeLinear
        raise ModelError(f"{source.name} uses ONNX opset {opset}; the int8 copy needs 13 or later. "
                         "Set embedder.precision to \"fp32\".")
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    build = _Builder(opset)
    replaced: set[str] = set()
    for node in graph.node:
        if node.op_type == "MatMul" and _matrix(weights.get(node.input[1])):
            replaced.add(node.input[1])
            build.matmul(node, numpy_helper.to_array(weights[node.input[1]]).astype(np.float32))
        else:
            build.nodes.append(node)
    if not replaced:
        raise ModelError(f"{source.name} has no weight matrix to quantize. Set embedder.precision to \"fp32\".")
    kept = [t for t in graph.initializer if t.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept + [numpy_helper.from_array(np.asarray(v), k) for k, v in build.consts.items()])
    del graph.node[:]
    graph.node.extend(build.nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, RECIPE_KEY: RECIPE})
    return model


def _matrix(tensor: Any) -> bool:
    """True for a 2-D float32 initializer (a weight matrix)."""
    return tensor is not None and len(tensor.dims) == 2 and tensor.data_type == 1


class _Builder:
    """The new graph's nodes and constants, one activation quantized once for all its MatMuls."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[Any] = []
        self.consts: dict[str, np.ndarray] = {}
        self._rows: dict[str, tuple[str, str, str]] = {}  # activation -> (int8 values, row scale, scale x zero point)

    def const(self, name: str, value: Any) -> str:
        self.consts.setdefault(name, np.asarray(value))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def reduce(self, op: str, x: str, output: str) -> str:
        if self.opset >= 18:  # axes became an input
            return self.add(op, [x, self.const("int8_axis1", np.array([1], np.int64))], output, keepdims=0)
        return self.add(op, [x], output, axes=[1], keepdims=0)

    def rows(self, x: str, k: int) -> tuple[str, str, str]:
        """Quantize activation x (..., k) per row: uint8 values, the row scales (..., 1) and
        scale x zero point (..., 1)."""
        if x in self._rows:
            return self._rows[x]
        p = f"{x}/int8_rows/"
        flat = self.add("Reshape", [x, self.const(f"int8_rows_of_{k}", np.array([-1, k], np.int64))], p + "flat")
        zero = self.const("int8_f0", np.float32(0.0))
        high = self.add("Max", [self.reduce("ReduceMax", flat, p + "max"), zero], p + "high")
        low = self.add("Min", [self.reduce("ReduceMin", flat, p + "min"), zero], p + "low")
        spread = self.add("Max", [self.add("Sub", [high, low], p + "spread0"),
                                  self.const("int8_tiny", np.float32(1e-30))], p + "spread")
        scale = self.add("Mul", [spread, self.const("int8_1_255", np.float32(1 / 255))], p + "scale")
        # zero point = round(-low / scale), in [0, 255] since low <= 0 <= high
        point = self.add("Neg", [self.add("Round", [self.add("Div", [low, scale], p + "ls")], p + "lsr")], p + "zpf")
        values = self.add("QuantizeLinear", [flat, scale, self.add("Cast", [point], p + "zp", to=2)], p + "q2", axis=0)
        shape = self.add("Shape", [x], p + "shape")
        values = self.add("Reshape", [values, shape], p + "q")
        lead = self.add("Slice", [shape, self.const("int8_i0", np.array([0], np.int64)),
                                  self.const("int8_im1", np.array([-1], np.int64))], p + "lead")
        column = self.add("Concat", [lead, self.const("int8_i1", np.array([1], np.int64))], p + "col", axis=0)
        row_scale = self.add("Reshape", [scale, column], p + "s")
        offset = self.add("Reshape", [self.add("Mul", [point, scale], p + "zs0"), column], p + "zs")
        self._rows[x] = (values, row_scale, offset)
        return self._rows[x]

    def matmul(self, node: Any, w: np.ndarray) -> None:
        k = w.shape[0]
        scale = np.abs(w).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        name, y = node.input[1], node.output[0]
        self.const(f"{name}/int8", q)
        self.const(f"{name}/int8_scale", scale.astype(np.float32))
        # (q - z) W = q W - z colsum(W), with the zero point per row and colsum in float
        self.const(f"{name}/int8_colsum", (q.astype(np.float32).sum(axis=0) * scale).astype(np.float32))
        values, row_scale, offset = self.rows(node.input[0], k)
        p = f"{y}/int8/"
        product = self.add("MatMulIntegerToFloat",
                           [values, f"{name}/int8", self.const("int8_f1", np.float32(1.0)), f"{name}/int8_scale",
                            self.const("int8_u0", np.uint8(0)), self.const("int8_s0", np.int8(0))],
                           p + "qw", domain="com.microsoft")
        scaled = self.add("Mul", [product, row_scale], p + "scaled")
        self.add("Sub", [scaled, self.add("Mul", [offset, f"{name}/int8_colsum"], p + "offset")], y)



def int8_onnx(fp32: Path, cache: Path) -> Path:
    """The cached int8 copy of an fp32 ONNX file, made now if missing."""
    target = int8_path(fp32, cache)
    if not target.is_file():
        quantize(fp32, target)
    return target
