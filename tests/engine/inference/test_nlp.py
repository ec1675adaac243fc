"""engine/inference/nlp.py: one shared spaCy pipeline; background parses step aside for foreground callers."""
from __future__ import annotations

import threading
import time

import pytest

from engine.inference import nlp


def test_the_pipeline_is_loaded_once_and_parses_what_it_is_given():
    assert nlp.spacy_pipeline() is nlp.spacy_pipeline()
    docs = nlp.parse(["Maya moved to Oslo.", "Ingrid lives in Bergen."], disable=("parser",))
    assert ["Oslo" in [e.text for e in d.ents] for d in docs] == [True, False]
    assert [t.text for t in docs[1]] == ["Ingrid", "lives", "in", "Bergen", "."]


def test_a_foreground_parse_does_not_wait_for_a_whole_background_batch():
    texts = [f"Entry {i}: Maya met Tomas and Ingrid in Bergen to plan the concert." for i in range(1500)]
    nlp.spacy_pipeline()
    done: list[int] = []
    started = threading.Event()

    def background() -> None:
        started.set()
        done.append(len(nlp.parse(texts, disable=("parser", "lemmatizer"), background=True)))

    worker = threading.Thread(target=background)
    worker.start()
    started.wait(30)
    for _ in range(3):  # each foreground call gets in between two slices
        assert "Paris" in [e.text for e in nlp.parse(["Caroline went to Paris."])[0].ents]
        assert worker.is_alive() and not done  # the background batch is still under way
    worker.join(300)
    assert done == [1500]  # and it parsed every text


def test_loading_spacy_does_not_load_torch_which_still_imports_afterwards():
    """thinc would import torch (seconds holding the GIL: the app's window froze); spaCy works without it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\n"
            "from engine.inference.nlp import spacy_pipeline\n"
            "doc = spacy_pipeline()('My sister Ingrid lives in Bergen.')\n"
            "assert 'torch' not in sys.modules, 'spaCy loaded torch'\n"
            "assert ('Ingrid', 'PERSON') in [(e.text, e.label_) for e in doc.ents]\n"
            "import torch\n"
            "assert torch.zeros(2).sum().item() == 0\n"
            "print('ok')\n")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_background_slices_are_short_while_foreground_callers_come_and_longer_once_they_stop(monkeypatch):
    monkeypatch.setattr(nlp, "FOREGROUND_QUIET_S", 0.2)
    nlp.parse(["Caroline went to Paris."])  # a foreground caller
    assert nlp.background_slice() == nlp.BACKGROUND_SLICE
    monkeypatch.setattr(nlp, "_last_foreground", time.monotonic() - 0.3)
    assert nlp.background_slice() == nlp.QUIET_SLICE > nlp.BACKGROUND_SLICE
    texts = [f"Note {i}: Maya met Tomas in Bergen." for i in range(nlp.QUIET_SLICE + 5)]
    docs = nlp.parse(texts, disable=("parser",), background=True)  # long slices parse every text too
    assert len(docs) == len(texts) and all("Bergen" in [e.text for e in d.ents] for d in docs)
    nlp.parse(["Ingrid lives in Bergen."])
    assert nlp.background_slice() == nlp.BACKGROUND_SLICE


def test_a_kept_doc_serves_the_next_parse_of_its_text_once():
    text = "Caroline moved to Lisbon with her sister Ana last spring."
    kept = nlp.parse([text], keep=True)[0]  # the whole pipeline, as an add's extraction parses
    assert kept.has_annotation("DEP") and kept.tensor.size == 0  # the tensor is dropped: nothing reads it
    again = nlp.parse([text, "Tomas lives in Bergen."], disable=("parser", "lemmatizer"), background=True)
    assert again[0] is kept and [e.text for e in again[0].ents] == ["Caroline", "Lisbon", "last spring"]
    assert "Bergen" in [e.text for e in again[1].ents]
    assert nlp.parse([text], disable=("parser",))[0] is not kept  # served once
    with pytest.raises(ValueError):
        nlp.parse([text], disable=("parser",), keep=True)


def test_only_the_latest_docs_are_kept(monkeypatch):
    monkeypatch.setattr(nlp, "KEPT_DOCS", 2)
    texts = [f"Note {i}: Maya met Tomas in Bergen." for i in range(3)]
    docs = nlp.parse(texts, keep=True)
    again = nlp.parse(texts, disable=("parser",))
    assert [a is d for a, d in zip(again, docs)] == [False, True, True]
