"""The int8 embedding model: made locally from the fp32 export, close to it, the same vector for a text
in any batch, and kept apart in stores."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.inference.quantized as quantized
from engine import Memory
from engine.config import EmbedderConfig, LociConfig
from engine.errors import ConfigError, ModelError, StoreError
from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir
from engine.inference.onnx_embedder import OnnxEmbedder, cache_dir, default_embedder, onnx_path
from engine.inference.quantized import RECIPE, RECIPE_KEY, int8_onnx, int8_path, quantize

# generic conversation turns of mixed lengths (not LoCoMo): 64 of them make one batch
TURNS = ["ok", "Thanks, that helps a lot!", "Can you remind me when the dentist appointment is?",
         "We finally painted the kitchen a pale green and I love how bright it feels now.",
         "My brother is coming to visit in March; he wants to see the old harbour and try the fish soup.",
         "Honestly the second half of the book dragged, but the ending surprised me.",
         "I've been running three times a week since January and my knee hurts less than before, "
         "which the physiotherapist says is because the muscles around it got stronger.",
         "Did you ever hear back about the job in Lyon?", "é ü 漢字 — ça va ?", "lol same",
         "The train was cancelled so we drove, and it took six hours with the snow on the pass.",
         "She adopted two kittens from the shelter, Pepper and Salt."]
BATCH = [f"{TURNS[i % len(TURNS)]}{' (again)' * (i // len(TURNS))}" for i in range(63)] + ["word " * 600]
SENTENCES = ["I moved to Oslo last month", "My sister Ingrid lives in Bergen",
             "We adopted a grey cat called Miso", "The concert was cancelled because of the storm",
             "é ü 漢字", "word " * 600]
QUESTIONS = {"Where did I move?": 0, "Where does Ingrid live?": 1, "What is the cat's name?": 2,
             "Why was the concert called off?": 3}


@pytest.fixture(scope="module")
def fp32() -> OnnxEmbedder:
    embedder = default_embedder(EmbedderConfig(precision="fp32"))
    assert isinstance(embedder, OnnxEmbedder)
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def int8_file(fp32) -> Path:
    """The packaged model's int8 copy, in the cache beside its fp32 export (made once per machine)."""
    return int8_onnx(onnx_path(packaged_model_dir(DEFAULT_EMBEDDER)), cache_dir())


def test_the_int8_model_gives_384d_unit_vectors_close_to_fp32(fp32, int8_file):
    int8 = default_embedder(EmbedderConfig(precision="int8"))
    assert isinstance(int8, OnnxEmbedder) and int8.dimension == 384
    got, want = int8.embed_batch(SENTENCES), fp32.embed_batch(SENTENCES)
    assert got.shape == want.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.99, cosines  # 0.9986 on average over LoCoMo turns (bench/embedder_bench.py)
    assert not np.allclose(got, want, atol=1e-4)  # really another model, not the fp32 file again
    queries = int8.embed_batch(list(QUESTIONS))
    assert list((queries @ got.T).argmax(axis=1)) == list(QUESTIONS.values())
    assert int8.embed_batch([]).shape == (0, 384)
    batched = (int8.embed_batch(BATCH) * fp32.embed_batch(BATCH)).sum(axis=1)
    assert batched.mean() > 0.995 and batched.min() > 0.99, batched


def alone_vs_batched(embedder: OnnxEmbedder) -> np.ndarray:
    """Cosine of each text of BATCH embedded alone against the same text inside the 64-text batch."""
    together = embedder.embed_batch(BATCH)
    alone = np.stack([embedder.embed_batch([t])[0] for t in BATCH])
    return (together * alone).sum(axis=1)


def test_a_texts_int8_vector_does_not_depend_on_its_batch(tmp_path, int8_file):
    int8 = default_embedder(EmbedderConfig(precision="int8"))
    assert alone_vs_batched(int8).min() >= 0.9999
    # ... and the batch is really run in batches (64 texts of mixed lengths in a few padded calls)
    assert int8.is_batched
    # the check fails on onnxruntime's per-tensor dynamic quantization run in batches (the recipe
    # the int8 model used before), which is why such a file still runs one text at a time
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = tmp_path / "per-tensor"
    shutil.copytree(packaged_model_dir(DEFAULT_EMBEDDER), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "onnx").mkdir()
    quantize_dynamic(str(onnx_path(packaged_model_dir(DEFAULT_EMBEDDER))), str(folder / "onnx" / "model.onnx"),
                     weight_type=QuantType.QInt8, per_channel=True)
    as_fp32 = OnnxEmbedder(DEFAULT_EMBEDDER, folder)  # runs the per-tensor file in batches
    assert alone_vs_batched(as_fp32).min() < 0.999
    (folder / "onnx" / "model.onnx").rename(folder / "onnx" / "model_int8.onnx")
    shutil.copy(onnx_path(packaged_model_dir(DEFAULT_EMBEDDER)), folder / "onnx" / "model.onnx")
    shipped = OnnxEmbedder(DEFAULT_EMBEDDER, folder, precision="int8")  # no recipe in its metadata
    assert alone_vs_batched(shipped).min() >= 0.9999 and not shipped.is_batched


def test_the_int8_copy_is_smaller_than_fp32_keeps_its_embedding_tables_and_is_made_once(tmp_path, monkeypatch):
    import onnx

    source = onnx_path(packaged_model_dir(DEFAULT_EMBEDDER))
    made = int8_onnx(source, tmp_path)
    assert made == int8_path(source, tmp_path) and made.parent == tmp_path / "onnx"
    assert made.stat().st_size < source.stat().st_size * 0.7  # int8 weight matrices
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temp file left
    model = onnx.load(str(made))
    assert {p.key: p.value for p in model.metadata_props}[RECIPE_KEY] == RECIPE
    ops = {n.op_type for n in model.graph.node}
    assert "MatMulIntegerToFloat" in ops and "MatMul" in ops  # attention's own products stay fp32
    assert "DynamicQuantizeLinear" not in ops  # nothing scaled per call
    tables = {n.input[0] for n in model.graph.node if n.op_type == "Gather"}
    fp32_tables = {t.name for t in model.graph.initializer if t.data_type == 1 and len(t.dims) == 2}
    assert tables & fp32_tables  # the word embeddings stay fp32 (int8 rows cost raw hit@10 0.009)
    stamp = made.stat().st_mtime_ns
    assert int8_onnx(source, tmp_path) == made and made.stat().st_mtime_ns == stamp
    # a new recipe is a new file: a machine holding an older int8 copy makes the new one
    monkeypatch.setattr(quantized, "RECIPE", "some-later-recipe")
    assert int8_path(source, tmp_path) != made


def test_a_folder_shipping_model_int8_runs_it_without_quantizing(tmp_path, monkeypatch, fp32, int8_file):
    folder = tmp_path / "model"
    shutil.copytree(packaged_model_dir(DEFAULT_EMBEDDER), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "onnx").mkdir()  # as an installer would ship both
    shutil.copy(onnx_path(packaged_model_dir(DEFAULT_EMBEDDER)), folder / "onnx" / "model.onnx")
    shutil.copy(int8_file, folder / "onnx" / "model_int8.onnx")
    monkeypatch.setenv("LOCI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # an installed app: no export, no tools

    def refuse(*_args):
        raise AssertionError("quantized although the folder ships onnx/model_int8.onnx")

    monkeypatch.setattr(quantized, "quantize", refuse)
    picked = default_embedder(EmbedderConfig(path=str(folder), precision="int8"))
    got, want = picked.embed_batch(SENTENCES), fp32.embed_batch(SENTENCES)
    assert (got * want).sum(axis=1).min() > 0.97 and not np.allclose(got, want, atol=1e-4)
    assert not (tmp_path / "cache").exists()


def test_an_installed_app_without_the_tools_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # left out of the bundle
    source = onnx_path(packaged_model_dir(DEFAULT_EMBEDDER))
    with pytest.raises(ModelError, match='precision to "fp32"') as err:
        quantize(source, tmp_path / "int8.onnx")
    assert "model_int8.onnx" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_a_damaged_source_is_a_model_error_and_leaves_nothing(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="int8 copy"):
        int8_onnx(bad, tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("*.onnx*"))


def test_int8_needs_the_onnx_backend():
    with pytest.raises(ConfigError, match="embedder.backend"):
        default_embedder(EmbedderConfig(precision="int8", backend="torch"))
    with pytest.raises(ConfigError, match="fp32, int8"):
        LociConfig.from_dict({"embedder": {"precision": "int4"}})


def test_int8_is_the_default_where_onnxruntime_runs_the_model(tmp_path, int8_file):
    assert default_embedder(EmbedderConfig()).name == f"{DEFAULT_EMBEDDER}@int8"
    with Memory(tmp_path / "store") as mem:  # the default settings, as `loci` has them
        mem.add("My sister Ingrid lives in Bergen", user_id="maya", infer=False)
        mem.add("We adopted a grey cat called Miso", user_id="maya", infer=False)
        hits = mem.search("Where does Ingrid live?", filters={"user_id": "maya"})["results"]
        assert hits[0]["memory"] == "My sister Ingrid lives in Bergen"
        assert mem.migration_status().state == "none"
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["embedder"] == f"{DEFAULT_EMBEDDER}@int8" and manifest["dimension"] == 384
    with Memory(tmp_path / "store", {"embedder": {"precision": "int8"}}) as mem:
        assert mem.embedder.name == f"{DEFAULT_EMBEDDER}@int8" and mem.migration_status().state == "none"
        hits = mem.search("What is the cat called?", filters={"user_id": "maya"})["results"]
        assert hits[0]["memory"] == "We adopted a grey cat called Miso"
    # where int8 cannot run (torch, a GPU, another pooling) the default is fp32, and no error
    assert default_embedder(EmbedderConfig(backend="torch")).name == DEFAULT_EMBEDDER
    other = tmp_path / "cls-pooling"
    other.mkdir()
    (other / "modules.json").write_text("[]")
    assert default_embedder(EmbedderConfig(path=str(other))).name == "sentence-transformers/all-MiniLM-L6-v2"


def test_a_frozen_app_runs_the_shipped_int8_file_by_default(tmp_path, monkeypatch, fp32, int8_file):
    folder = tmp_path / "model"
    shutil.copytree(packaged_model_dir(DEFAULT_EMBEDDER), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "onnx").mkdir()
    shutil.copy(onnx_path(packaged_model_dir(DEFAULT_EMBEDDER)), folder / "onnx" / "model.onnx")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert default_embedder(EmbedderConfig(path=str(folder))).name == DEFAULT_EMBEDDER  # no int8 file: fp32
    shutil.copy(int8_file, folder / "onnx" / "model_int8.onnx")

    def no_quantize(*_args):
        raise AssertionError("quantized in an installed app")
    monkeypatch.setattr(quantized, "quantize", no_quantize)
    picked = default_embedder(EmbedderConfig(path=str(folder)))
    assert picked.name == f"{DEFAULT_EMBEDDER}@int8"
    assert float((picked.embed_batch(SENTENCES) * fp32.embed_batch(SENTENCES)).sum(axis=1).min()) > 0.95


def test_an_fp32_store_set_to_fp32_stays_untouched(tmp_path, int8_file):
    with Memory(tmp_path / "store", {"embedder": {"precision": "fp32"}}) as mem:
        mem.add("I moved to Oslo last month", user_id="maya", infer=False)
        want = mem.embedder.embed_batch(["Where did Maya move?"])
    before = (tmp_path / "store" / "manifest.json").read_text()
    with Memory(tmp_path / "store", {"embedder": {"precision": "fp32"}}) as mem:
        assert mem.embedder.name == DEFAULT_EMBEDDER  # queries embedded like the stored vectors
        assert np.abs(mem.embedder.embed_batch(["Where did Maya move?"]) - want).max() < 1e-6
        assert mem.search("Where did Maya move?", filters={"user_id": "maya"})["results"]
        assert mem.migration_status(wait=0.5).state == "none"
    assert (tmp_path / "store" / "manifest.json").read_text() == before
    # an embedder given explicitly is checked against the store, and the error names the setting
    int8 = OnnxEmbedder(DEFAULT_EMBEDDER, packaged_model_dir(DEFAULT_EMBEDDER), precision="int8")
    with pytest.raises(StoreError, match='Set embedder.precision to "fp32"') as err:
        Memory(tmp_path / "store", embedder=int8)
    assert "export the memories" in str(err.value)


def test_loci_doctor_finds_nothing_to_repair_in_an_int8_store_made_in_batches(tmp_path, int8_file):
    from engine.memory import doctor

    with Memory(tmp_path / "store") as mem:  # the default: int8, adds embedded in batches
        assert mem.embedder.name == f"{DEFAULT_EMBEDDER}@int8"
        for start in range(0, len(BATCH), 16):  # 16 turns of mixed lengths per add
            mem.add([{"role": "user", "content": t} for t in BATCH[start:start + 16]], user_id="maya",
                    infer=False)
        assert len(mem.get_all(filters={"user_id": "maya"}, limit=200)["results"]) == len(BATCH)
    # the sample check re-embeds up to 100 memories in one batch and wants cosine >= 0.99 with the
    # stored vectors: a per-tensor int8 model batched failed it for a quarter of them
    report = doctor(tmp_path / "store")
    assert report.is_sound and not report.problems and not report.repairs, report
