"""The embedder a store can switch while in use: vectors made before a switch are known stale."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.config import EmbedderConfig
from engine.inference.embeddings import DEFAULT_EMBEDDER
from engine.inference.onnx_embedder import default_embedder
from engine.inference.switchable import SwitchableEmbedder

INT8 = f"{DEFAULT_EMBEDDER}@int8"


@pytest.fixture(scope="module")
def int8():
    embedder = default_embedder(EmbedderConfig(precision="int8"))
    embedder.load()
    return embedder


def test_vectors_made_before_a_switch_are_made_again_when_committed_after_it(int8):
    # a writer embeds outside the write lock: the write path asks whether its vectors are stale
    fp32 = default_embedder(EmbedderConfig(precision="fp32"))
    switchable = SwitchableEmbedder(fp32)
    switchable.embed_batch(["warm"])
    assert not switchable.is_stale()
    switchable.switch(int8)
    assert switchable.is_stale() and switchable.name == INT8
    box: list[bool] = []
    other = threading.Thread(target=lambda: box.append(switchable.is_stale()))
    other.start()
    other.join()
    assert box == [False]  # a thread that embedded nothing has nothing stale
    vector = switchable.embed_batch(["fresh"])
    assert not switchable.is_stale() and np.allclose(vector, int8.embed_batch(["fresh"]), atol=1e-6)
    with pytest.raises(ValueError):
        switchable.switch(type("Small", (), {"name": "x", "dimension": 3})())  # type: ignore[arg-type]
