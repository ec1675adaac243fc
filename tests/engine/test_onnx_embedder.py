"""The onnxruntime embedder gives sentence-transformers' vectors without torch in the process."""
from __future__ import annotations

import numpy as np

from engine.config import EmbedderConfig
from engine.embeddings import DEFAULT_EMBEDDER, SentenceTransformerEmbedder, packaged_model_dir
from engine.onnx_embedder import OnnxEmbedder, can_export, default_embedder


def test_onnx_vectors_match_sentence_transformers(embedder):
    onnx = default_embedder(EmbedderConfig())
    assert isinstance(onnx, OnnxEmbedder) and onnx.dimension == 384
    texts = ["I moved to Oslo last month", "Where does Maya's sister live?", "word " * 600, "é ü 漢字"]
    got, want = onnx.embed_batch(texts), embedder.embed_batch(texts)
    assert got.shape == want.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-4
    assert onnx.embed_batch([]).shape == (0, 384)


def test_folders_it_cannot_reproduce_use_sentence_transformers(tmp_path):
    assert can_export(packaged_model_dir(DEFAULT_EMBEDDER))
    (tmp_path / "modules.json").write_text("[]")
    assert not can_export(tmp_path)
    picked = default_embedder(EmbedderConfig(path=str(tmp_path)))
    assert isinstance(picked, SentenceTransformerEmbedder)
    assert isinstance(default_embedder(EmbedderConfig(backend="torch")), SentenceTransformerEmbedder)


def test_a_frozen_app_embeds_with_sentence_transformers(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert isinstance(default_embedder(EmbedderConfig()), SentenceTransformerEmbedder)
