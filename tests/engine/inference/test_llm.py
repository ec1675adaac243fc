"""The llama.cpp adapter with the real packaged SmolLM2 model, and model-file checks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.config import LLMConfig
from engine.errors import ModelError
from engine.extraction import MEMORY_TYPES, select_schema
from engine.extraction import CancelToken
from engine.inference.llm import (LlamaCppLLM, ModelKey, _template_keeps_system, gpu_backend, loaded_model,
                        merge_system)
from engine.inference.models import check_gguf, default_llm_path, find_gguf_models


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    model = LlamaCppLLM()
    model.load()
    return model


def test_default_model_is_packaged_and_valid() -> None:
    path = default_llm_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert check_gguf(path) == path


def test_real_model_returns_schema_valid_json(llm: LlamaCppLLM) -> None:
    chat = [{"role": "system", "content": "Pick the statements worth remembering and label them."},
            {"role": "user", "content": "1. Maya loves spicy Thai food.\n2. That sounds great.\n"
                                        "3. Maya's sister Jane lives in Berlin."}]
    raw = llm.complete_json(chat, select_schema(3), max_tokens=128)
    data = json.loads(raw)
    assert isinstance(data["keep"], list) and len(data["keep"]) <= 3
    for item in data["keep"]:
        assert 1 <= item["n"] <= 3
        assert item["type"] in MEMORY_TYPES
    assert llm.last_usage is not None and llm.last_usage.completion_tokens > 0


def test_one_model_per_process(llm: LlamaCppLLM) -> None:
    other = LlamaCppLLM()
    assert other.is_loaded  # the same file is already loaded: nothing is loaded twice
    other.complete_json([{"role": "user", "content": "Say hi."}],
                        {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}},
                         "required": ["a"]}, max_tokens=16)


def test_missing_model_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(ModelError, match="nowhere.gguf.*does not exist"):
        LlamaCppLLM(LLMConfig(model_path=str(missing))).load()


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("these are my notes, not a model\n" * 100_000)
    with pytest.raises(ModelError, match="notes.gguf is not a GGUF model file"):
        LlamaCppLLM(LLMConfig(model_path=str(fake))).load()


def test_truncated_model_file_is_refused(tmp_path: Path, llm: LlamaCppLLM) -> None:
    cut = tmp_path / "cut.gguf"
    with default_llm_path().open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(40_000_000))
    with pytest.raises(ModelError, match=r"cut.gguf is truncated"):
        LlamaCppLLM(LLMConfig(model_path=str(cut))).load()
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 100)
    with pytest.raises(ModelError, match="tiny.gguf"):
        check_gguf(tiny)
    assert llm.is_loaded  # a failed load leaves the working model in place


def test_header_cut_inside_metadata_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "header.gguf"
    with default_llm_path().open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(1_100_000))  # inside the tokenizer vocabulary
    with pytest.raises(ModelError, match="header.gguf"):
        check_gguf(cut)


def test_models_found_in_extra_folders(tmp_path: Path) -> None:
    shutil.copy(default_llm_path(), tmp_path / "mine.gguf")
    (tmp_path / "readme.txt").write_text("x")
    found = find_gguf_models([tmp_path])
    assert tmp_path / "mine.gguf" in found
    assert all(p.suffix == ".gguf" for p in found)


def test_system_messages_merged_for_templates_that_drop_them() -> None:
    chat = [{"role": "system", "content": "Rules."}, {"role": "user", "content": "Hello"}]
    assert merge_system(chat) == [{"role": "user", "content": "Rules.\n\nHello"}]
    assert merge_system([{"role": "user", "content": "x"}]) == [{"role": "user", "content": "x"}]

    class Fake:
        def __init__(self, template: str) -> None:
            self.metadata = {"tokenizer.chat_template": template}

    gemma_like = ("{% for m in messages %}{% if m['role'] != 'system' %}<start_of_turn>{{ m['role'] }}\n"
                  "{{ m['content'] }}<end_of_turn>\n{% endif %}{% endfor %}")
    raising = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
    chatml = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    assert _template_keeps_system(Fake(gemma_like)) is False
    assert _template_keeps_system(Fake(raising)) is False
    assert _template_keeps_system(Fake(chatml)) is True


def test_stream_yields_pieces_and_stops_when_cancelled(llm: LlamaCppLLM) -> None:
    chat = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write three sentences about the sea."}]
    pieces = list(llm.stream(chat, max_tokens=24))
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert llm.last_usage is not None and llm.last_usage.completion_tokens == len(pieces)
    token = CancelToken()
    got: list[str] = []
    for piece in llm.stream(chat, max_tokens=200, cancel=token):
        got.append(piece)
        if len(got) == 2:
            token.cancel()
    assert len(got) <= 3  # stops at once, and the model is free again:
    assert llm.complete(chat, max_tokens=8).strip()


def test_complete_honours_stop_strings(llm: LlamaCppLLM) -> None:
    out = llm.complete([{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
                       max_tokens=40, stop=["5"])
    assert "5" not in out and "6" not in out


def test_context_length_and_token_count(llm: LlamaCppLLM) -> None:
    assert llm.context_length == LLMConfig().n_ctx
    assert 2 <= llm.count_tokens("Hello there, Maya!") <= 8


def test_changed_settings_reload_the_model(tmp_path: Path, llm: LlamaCppLLM) -> None:
    first = loaded_model()
    assert first is not None and first.key.n_threads == llm.key.n_threads and first.device == "CPU"
    copy = tmp_path / "other.gguf"
    shutil.copy(default_llm_path(), copy)
    other = LlamaCppLLM(LLMConfig(model_path=str(copy), n_ctx=1024, n_threads=1))
    assert not other.is_loaded
    assert other.complete([{"role": "user", "content": "Say hi."}], max_tokens=4) is not None
    now = loaded_model()
    assert now is not None and now.key == ModelKey(copy.resolve(), 1024, 1, 0)
    assert other.context_length == 1024
    assert not llm.is_loaded  # one model per process: the old one was replaced...
    llm.load()  # ...and comes back when asked for
    assert loaded_model().key == llm.key  # type: ignore[union-attr]


def test_gpu_offload_is_reported_honestly() -> None:
    import llama_cpp

    backend = gpu_backend()
    assert (backend is None) == (not llama_cpp.llama_supports_gpu_offload())
    model = LlamaCppLLM(LLMConfig(n_gpu_layers=-1))
    info = model.info
    if backend is None:
        assert info.offloaded_layers == 0 and info.device.startswith("CPU (this llama.cpp build has no GPU")
    else:
        assert info.offloaded_layers > 0 and backend in info.device
    assert info.layers == 30  # SmolLM2-135M has 30 blocks

