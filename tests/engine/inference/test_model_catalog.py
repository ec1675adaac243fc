"""engine/inference/model_catalog.py: GGUF chat models found in fake LM Studio, Ollama, GPT4All and Jan folders."""
from __future__ import annotations

import json
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import LLMConfig
from engine.errors import ModelError
from engine.inference.llm import LlamaCppLLM
from engine.inference.model_catalog import (BETTER_HINT, better_model, better_model_note, discover_models,
                                           model_folders, ollama_name, parameter_count, resolve_model)
from engine.inference.models import default_llm_path, gguf_metadata

TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def _s(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path: Path, *, arch: str = "llama", name: str = "Test Model", ctx: int = 4096,
               file_type: int | None = 15, template: bool = True, size_label: str | None = "3B",
               padding: int = 0) -> Path:
    """A small but well-formed GGUF v3 header with the keys discovery reads (no tensors)."""
    kv: list[bytes] = [
        _s("general.architecture") + struct.pack("<I", 8) + _s(arch),
        _s("general.name") + struct.pack("<I", 8) + _s(name),
        _s(f"{arch}.context_length") + struct.pack("<I", 4) + struct.pack("<I", ctx),
        # a string array like a vocabulary, which the reader must skip
        _s("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<I", 8) + struct.pack("<Q", 3)
        + _s("<s>") + _s("hello") + _s("world"),
        _s("tokenizer.ggml.scores") + struct.pack("<I", 9) + struct.pack("<I", 6) + struct.pack("<Q", 3)
        + struct.pack("<3f", 0.0, -1.0, -2.0),
    ]
    if file_type is not None:
        kv.append(_s("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", file_type))
    if size_label:
        kv.append(_s("general.size_label") + struct.pack("<I", 8) + _s(size_label))
    if template:
        kv.append(_s("tokenizer.chat_template") + struct.pack("<I", 8) + _s(TEMPLATE))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv) + b"\0" * padding)
    return path


def ollama_model(root: Path, model: str, tag: str, digest_hex: str, *, namespace: str = "library",
                 host: str = "registry.ollama.ai", **gguf: object) -> Path:
    blob = write_gguf(root / "blobs" / f"sha256-{digest_hex}", **gguf)  # type: ignore[arg-type]
    manifest = root / "manifests" / host / namespace / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:c0ffee"},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest_hex}", "size": 1},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:7e3", "size": 1},
        ]}))
    return blob


@pytest.fixture
def linux_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    write_gguf(home / ".lmstudio/models/lmstudio-community/Qwen2.5-7B-Instruct-GGUF/"
               "Qwen2.5-7B-Instruct-Q4_K_M.gguf", arch="qwen2", name="Qwen2.5 7B Instruct", ctx=32768,
               size_label="7B", padding=5000)
    write_gguf(home / ".lmstudio/models/lmstudio-community/Qwen2.5-VL-GGUF/mmproj-model-f16.gguf", arch="clip")
    write_gguf(home / ".lmstudio/models/nomic/embed/nomic-embed-text-v1.5.Q8_0.gguf", arch="nomic-bert")
    write_gguf(home / ".cache/lm-studio/models/big/Llama-70B-Q2_K-00001-of-00002.gguf", name="Llama 70B",
               file_type=10, size_label="70B", padding=100)
    write_gguf(home / ".cache/lm-studio/models/big/Llama-70B-Q2_K-00002-of-00002.gguf", padding=200)
    ollama_model(home / ".ollama/models", "llama3.2", "3b", "a" * 64, name="Llama 3.2 3B Instruct", ctx=131072)
    ollama_model(home / ".ollama/models", "mymodel", "latest", "b" * 64, namespace="maya", size_label=None)
    broken = home / ".ollama/models/manifests/registry.ollama.ai/library/broken/latest"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    write_gguf(home / ".local/share/nomic.ai/GPT4All/Meta-Llama-3-8B-Instruct.Q4_0.gguf", file_type=None,
               ctx=8192, size_label="8B")
    (home / ".local/share/nomic.ai/GPT4All/localdocs_v2.db").write_text("not a model")
    write_gguf(home / "jan/models/mistral-ins-7b-q4/mistral-7b-instruct-v0.2.Q4_K_M.gguf", ctx=32768,
               size_label="7B")
    write_gguf(home / ".local/share/Jan/data/llamacpp/models/gemma-3-1b/model.gguf", arch="gemma3", ctx=32768,
               size_label="1B", file_type=2)
    (home / ".lmstudio/models/x").mkdir()
    (home / ".lmstudio/models/x/truncated.gguf").write_bytes(b"GGUF\x03\x00\x00\x00\x01")
    return home


def test_linux_folders_of_each_app_are_searched(linux_home: Path) -> None:
    found = discover_models(system="Linux", home=linux_home, env={})
    by_name = {m.name: m for m in found}
    assert found[0].source == "Loci" and found[0].path == default_llm_path()  # the default comes first
    assert found[0].quantization == "Q4_1" and found[0].context_length == 8192 and found[0].has_chat_template

    qwen = by_name["Qwen2.5-7B-Instruct-Q4_K_M"]
    assert (qwen.source, qwen.quantization, qwen.context_length, qwen.architecture, qwen.parameters) == \
        ("LM Studio", "Q4_K_M", 32768, "qwen2", "7B")
    assert qwen.size_bytes == qwen.path.stat().st_size
    assert qwen.label == "Qwen2.5-7B-Instruct-Q4_K_M · 5.4 KB · 32k context (LM Studio)"

    llama = by_name["llama3.2:3b"]  # an Ollama blob, named through its manifest
    assert llama.source == "Ollama" and llama.path.name == "sha256-" + "a" * 64
    assert llama.context_length == 131072 and llama.quantization == "Q4_K_M"
    assert llama.label == "llama3.2:3b · Q4_K_M · 505 B · 128k context (Ollama)"
    assert "maya/mymodel:latest" in by_name

    sharded = by_name["Llama-70B-Q2_K"]  # one entry for a split model, sized over its shards
    assert sharded.path.name.endswith("00001-of-00002.gguf") and sharded.quantization == "Q2_K"
    assert sharded.size_bytes == sum(p.stat().st_size for p in sharded.path.parent.glob("Llama-70B*"))

    gpt4all = by_name["Meta-Llama-3-8B-Instruct.Q4_0"]
    assert gpt4all.source == "GPT4All" and gpt4all.quantization == "Q4_0"  # from the file name
    assert by_name["mistral-7b-instruct-v0.2.Q4_K_M"].source == "Jan"
    assert by_name["model"].source == "Jan" and by_name["model"].architecture == "gemma3"

    names = " ".join(by_name)
    assert "mmproj" not in names and "nomic-embed" not in names  # no projectors or embedders
    assert "truncated" not in names and "broken" not in names  # damaged files are skipped
    assert len(found) == len({m.path.resolve() for m in found})


def test_macos_and_windows_locations(tmp_path: Path) -> None:
    home = tmp_path / "mac"
    write_gguf(home / "Library/Application Support/nomic.ai/GPT4All/phi-3-mini.Q4_0.gguf")
    write_gguf(home / "Library/Application Support/Jan/data/models/tiny/tiny.gguf")
    ollama_model(home / ".ollama/models", "qwen2.5", "0.5b", "c" * 64)
    mac = {m.name: m.source for m in discover_models(system="Darwin", home=home, env={}, include_default=False)}
    assert mac == {"phi-3-mini.Q4_0": "GPT4All", "tiny": "Jan", "qwen2.5:0.5b": "Ollama"}

    win = tmp_path / "win"
    local, roaming = win / "AppData" / "Local", tmp_path / "roaming"
    write_gguf(local / "nomic.ai/GPT4All/orca-mini-3b.gguf")
    write_gguf(roaming / "Jan/data/llamacpp/models/qwen3/model.gguf")
    write_gguf(win / ".lmstudio/models/a/b/c.gguf")
    found = discover_models(system="Windows", home=win, env={"APPDATA": str(roaming)}, include_default=False)
    assert {(m.name, m.source) for m in found} == {("orca-mini-3b", "GPT4All"), ("model", "Jan"),
                                                   ("c", "LM Studio")}
    folders = {str(p): s for s, p in model_folders(system="Windows", home=win, env={})}
    assert folders[str(win / "AppData" / "Local" / "nomic.ai" / "GPT4All")] == "GPT4All"


def test_ollama_models_env_var_and_names(tmp_path: Path) -> None:
    store = tmp_path / "elsewhere"
    ollama_model(store, "llama3.1", "8b-instruct-q8_0", "d" * 64, file_type=7)
    ollama_model(store, "model", "v1", "e" * 64, host="hf.co", namespace="bartowski")
    found = {m.name: m for m in discover_models(system="Linux", home=tmp_path / "nohome",
                                                env={"OLLAMA_MODELS": str(store)}, include_default=False)}
    assert set(found) == {"llama3.1:8b-instruct-q8_0", "hf.co/bartowski/model:v1"}
    assert found["llama3.1:8b-instruct-q8_0"].quantization == "Q8_0"
    assert ollama_name("registry.ollama.ai", "library", "gemma2", "2b") == "gemma2:2b"


def test_a_model_is_picked_by_path_or_by_name(linux_home: Path, tmp_path: Path) -> None:
    models = discover_models(system="Linux", home=linux_home, env={})
    assert resolve_model("llama3.2:3b", models).name == "sha256-" + "a" * 64
    assert resolve_model("Qwen2.5-7B-Instruct-Q4_K_M.gguf", models).parent.name == "Qwen2.5-7B-Instruct-GGUF"
    assert resolve_model(str(default_llm_path()), []) == default_llm_path()
    with pytest.raises(ModelError, match="Did you mean llama3.2:3b"):
        resolve_model("llama3.2", models)
    with pytest.raises(ModelError, match="No GGUF models were found"):
        resolve_model("anything", [])


def test_a_discovered_copy_of_the_default_model_really_runs(tmp_path: Path) -> None:
    blob = tmp_path / "ollama" / "blobs" / ("sha256-" + "f" * 64)
    blob.parent.mkdir(parents=True)
    shutil.copy(default_llm_path(), blob)
    manifest = tmp_path / "ollama/manifests/registry.ollama.ai/library/smollm2/135m"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                                "digest": "sha256:" + "f" * 64}]}))
    found = discover_models(system="Linux", home=tmp_path / "h", env={"OLLAMA_MODELS": str(tmp_path / "ollama")},
                            include_default=False)
    assert [m.name for m in found] == ["smollm2:135m"]
    llm = LlamaCppLLM(LLMConfig(model_path=str(found[0].path), n_ctx=512))
    assert llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=4).strip()


def test_header_reader_skips_the_vocabulary(tmp_path: Path) -> None:
    meta = gguf_metadata(default_llm_path())
    assert meta["general.architecture"] == "llama" and meta["llama.context_length"] == 8192
    assert "tokenizer.ggml.tokens" not in meta and "tokenizer.chat_template" in meta
    with pytest.raises(ModelError, match="not a GGUF"):
        gguf_metadata(_text(tmp_path / "notes.gguf"))
    cut = write_gguf(tmp_path / "cut.gguf")
    cut.write_bytes(cut.read_bytes()[:60])
    with pytest.raises(ModelError, match="damaged or truncated"):
        gguf_metadata(cut)


def test_the_better_model_is_a_found_instruct_model_near_3b(linux_home: Path) -> None:
    found = discover_models(system="Linux", home=linux_home, env={})
    sizes = {m.name: parameter_count(m) for m in found}
    assert sizes["llama3.2:3b"] == 3e9 and sizes["Qwen2.5-7B-Instruct-Q4_K_M"] == 7e9
    assert sizes["SmolLM2-135M-Instruct.Q4_1"] == 135e6 and sizes["maya/mymodel:latest"] is None
    best = better_model(found)  # 70B is too slow on a CPU, the default and unknown sizes are left out
    assert best is not None and best.name == "llama3.2:3b"
    note = better_model_note(found)
    assert note.startswith("Better answers: llama3.2:3b (Ollama, ") and "135M" in note


def test_no_better_model_found_says_what_to_add(linux_home: Path, tmp_path: Path) -> None:
    found = discover_models(system="Linux", home=tmp_path / "empty", env={})
    assert [m.source for m in found] == ["Loci"]  # only the packaged default
    assert better_model(found) is None and better_model_note(found) == BETTER_HINT
    llama = next(m for m in discover_models(system="Linux", home=linux_home, env={}) if m.name == "llama3.2:3b")
    assert better_model([replace(llama, has_chat_template=False)]) is None  # a base model follows no prompt


def _text(path: Path) -> Path:
    path.write_text("hello")
    return path
