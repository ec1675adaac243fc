"""The onnxruntime embedder gives sentence-transformers' vectors without torch in the process."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.inference.onnx_embedder as onnx_embedder
from engine.config import EmbedderConfig
from engine.inference.embeddings import DEFAULT_EMBEDDER, SentenceTransformerEmbedder, packaged_model_dir
from engine.errors import ModelError
from engine.inference.onnx_embedder import OnnxEmbedder, can_export, default_embedder, length_groups, onnx_path

TEXTS = ["I moved to Oslo last month", "Where does Maya's sister live?", "word " * 600, "é ü 漢字"]


@pytest.fixture(scope="module")
def exported() -> Path:
    """The packaged model's ONNX export (made once per machine by the venv's embedder)."""
    embedder = default_embedder(EmbedderConfig(precision="fp32"))
    embedder.load()
    path = onnx_path(packaged_model_dir(DEFAULT_EMBEDDER))
    assert path.is_file()
    return path


def model_folder(target: Path, onnx_file: Path | None) -> Path:
    """The packaged model's folder as an installer ships it: no torch weights, onnx/model.onnx."""
    source = packaged_model_dir(DEFAULT_EMBEDDER)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    if onnx_file is not None:
        (target / "onnx").mkdir()
        shutil.copy(onnx_file, target / "onnx" / "model.onnx")
    return target


def no_export(*_args):
    raise AssertionError("exported although the folder ships onnx/model.onnx")


def test_onnx_vectors_match_sentence_transformers(embedder):
    onnx = default_embedder(EmbedderConfig(precision="fp32"))
    assert isinstance(onnx, OnnxEmbedder) and onnx.dimension == 384
    got, want = onnx.embed_batch(TEXTS), embedder.embed_batch(TEXTS)
    assert got.shape == want.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-5  # stores move between the installed app and a venv
    assert onnx.embed_batch([]).shape == (0, 384)


def test_a_batch_of_mixed_lengths_gives_each_text_its_own_vector(embedder):
    # texts run in groups of similar length, each cut to its longest: the vectors are those of
    # each text alone, in the order given
    onnx = default_embedder(EmbedderConfig(precision="fp32"))
    texts = [("word " * n).strip() + f" {n}" for n in (40, 2, 300, 7, 7, 90, 1, 15, 3, 120)] + TEXTS
    together = onnx.embed_batch(texts)
    alone = np.stack([onnx.embed_batch([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    assert np.abs(together - embedder.embed_batch(texts)).max() < 1e-5


def test_length_groups_keep_padding_small_and_cover_every_text():
    lengths = [3, 3, 4, 5, 9, 10, 11, 40, 41, 200]
    groups = length_groups(lengths, most=4)
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))  # contiguous, nothing left out
    for start, stop in groups:
        part = lengths[start:stop]
        assert len(part) <= 4 and (len(part) == 1 or max(part) * len(part) <= 1.3 * sum(part))
    assert length_groups([7] * 10, most=4) == [(0, 4), (4, 8), (8, 10)]
    assert length_groups([], most=4) == []


def test_folders_it_cannot_reproduce_use_sentence_transformers(tmp_path):
    assert can_export(packaged_model_dir(DEFAULT_EMBEDDER))
    (tmp_path / "modules.json").write_text("[]")
    assert not can_export(tmp_path)
    picked = default_embedder(EmbedderConfig(path=str(tmp_path)))
    assert isinstance(picked, SentenceTransformerEmbedder)
    assert isinstance(default_embedder(EmbedderConfig(backend="torch")), SentenceTransformerEmbedder)


def test_a_folder_shipping_onnx_model_runs_it_without_exporting(tmp_path, monkeypatch, embedder, exported):
    folder = model_folder(tmp_path / "model", exported)
    monkeypatch.setenv("LOCI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_embedder, "export", no_export)
    picked = default_embedder(EmbedderConfig(path=str(folder), precision="fp32"))
    assert isinstance(picked, OnnxEmbedder)
    assert np.abs(picked.embed_batch(TEXTS) - embedder.embed_batch(TEXTS)).max() < 1e-5
    assert not (tmp_path / "cache").exists()  # nothing cached: the folder's file was used


def without_segment_ids(source: Path, target: Path) -> None:
    """An export taking only input_ids and attention_mask (as many shipped onnx/model.onnx do):
    token_type_ids becomes zeros computed inside the graph."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    graph.input.remove(next(i for i in graph.input if i.name == "token_type_ids"))
    zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    graph.node.insert(0, helper.make_node("Shape", ["input_ids"], ["ids_shape"]))
    graph.node.insert(1, helper.make_node("ConstantOfShape", ["ids_shape"], ["token_type_ids"], value=zero))
    onnx.save(model, str(target))


def test_a_shipped_export_without_segment_ids_gives_the_same_vectors(tmp_path, monkeypatch, embedder, exported):
    folder = model_folder(tmp_path / "model", None)
    (folder / "onnx").mkdir()
    without_segment_ids(exported, folder / "onnx" / "model.onnx")
    monkeypatch.setattr(onnx_embedder, "export", no_export)
    picked = OnnxEmbedder(DEFAULT_EMBEDDER, folder)
    assert np.abs(picked.embed_batch(TEXTS) - embedder.embed_batch(TEXTS)).max() < 1e-5


def test_a_damaged_shipped_file_is_an_error_and_is_kept(tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "model", None)
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"not a model")
    monkeypatch.setattr(onnx_embedder, "export", no_export)
    with pytest.raises(ModelError, match="working ONNX export"):
        OnnxEmbedder(DEFAULT_EMBEDDER, folder).embed_batch(["hello"])
    assert (folder / "onnx" / "model.onnx").read_bytes() == b"not a model"


def test_a_frozen_app_embeds_with_onnxruntime_from_the_shipped_file(tmp_path, monkeypatch, embedder, exported):
    folder = model_folder(tmp_path / "model", exported)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(onnx_embedder, "export", no_export)
    for config in (EmbedderConfig(path=str(folder)), EmbedderConfig(path=str(folder), backend="torch")):
        picked = default_embedder(config)
        assert isinstance(picked, OnnxEmbedder)  # torch is not in an installed app
    assert np.abs(picked.embed_batch(TEXTS) - embedder.embed_batch(TEXTS)).max() < 1e-5


def test_a_frozen_app_says_what_a_folder_without_onnx_needs(tmp_path, monkeypatch):
    folder = model_folder(tmp_path / "model", None)
    monkeypatch.setenv("LOCI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(onnx_embedder, "export", no_export)
    with pytest.raises(ModelError, match="onnx/model.onnx") as err:
        default_embedder(EmbedderConfig(path=str(folder)))
    assert str(folder) in str(err.value) and "leave the embedding model folder empty" in str(err.value)
    # built directly, the embedder refuses too instead of running the app as an exporter
    with pytest.raises(ModelError, match="onnx/model.onnx"):
        OnnxEmbedder(DEFAULT_EMBEDDER, folder).embed_batch(["hello"])
    # a model the onnxruntime path cannot pool like sentence-transformers
    other = tmp_path / "cls-pooling"
    other.mkdir()
    (other / "modules.json").write_text("[]")
    with pytest.raises(ModelError, match="not a mean-pooling sentence-transformers model"):
        default_embedder(EmbedderConfig(path=str(other)))
    # a bundle built without the file: the built-in model is incomplete
    import engine.inference.embeddings

    monkeypatch.setattr(engine.inference.embeddings, "packaged_model_dir", lambda _name: folder)
    with pytest.raises(ModelError, match="Reinstall Loci"):
        default_embedder(EmbedderConfig())
