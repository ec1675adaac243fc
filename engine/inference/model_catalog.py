"""Finds the GGUF chat models a person already has (LM Studio, Ollama, GPT4All, Jan, Loci's folder)."""
from __future__ import annotations

import json
import logging
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import ModelError
from .models import REPO_MODELS_DIR, default_llm_path, gguf_metadata
from ..paths import user_models_dir

log = logging.getLogger(__name__)

MAX_DEPTH = 4  # folder levels searched below an app's models folder
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_HOST = "registry.ollama.ai"
# Architectures that are not chat models (embedders, vision projectors, encoders).
NOT_CHAT = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "clip", "t5encoder", "wavtokenizer-dec",
            "xlm-roberta", "modern-bert", "neo-bert"}
# llama.cpp's llama_ftype values (general.file_type) -> the usual quantization names.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
              23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
              30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4"}
_QUANT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32|MXFP4)(?![A-Za-z0-9])",
                            re.IGNORECASE)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundModel:
    """One GGUF chat model on this computer and what its header says about it."""

    name: str  # how the app that owns it names it ("llama3.2:3b" for Ollama, the file name else)
    path: Path  # the file llama.cpp loads (an Ollama blob, or the first shard of a split model)
    source: str  # Loci, LM Studio, Ollama, GPT4All, Jan
    size_bytes: int  # all shards together
    quantization: str | None
    context_length: int | None  # tokens the model was trained for
    architecture: str | None
    parameters: str | None  # the header's size label, e.g. "3B"
    has_chat_template: bool

    @property
    def label(self) -> str:
        """One line for a picker: name, parameters, quantization, size, context, where from."""
        parts = [self.name]
        if self.parameters and self.parameters.casefold() not in self.name.casefold():
            parts.append(self.parameters)
        if self.quantization and self.quantization.casefold() not in self.name.casefold():
            parts.append(self.quantization)
        parts.append(human_size(self.size_bytes))
        if self.context_length:
            parts.append(f"{self.context_length // 1024}k context" if self.context_length >= 1024
                         else f"{self.context_length} context")
        return " · ".join(parts) + f" ({self.source})"


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def model_folders(*, system: str | None = None, home: Path | None = None,
                  env: Mapping[str, str] | None = None) -> list[tuple[str, Path]]:
    """Where each app keeps its models on this system (Linux, Darwin or Windows), existing or not."""
    system = system or platform.system()
    env = os.environ if env is None else env
    home = Path(home) if home is not None else Path.home()
    out: list[tuple[str, Path]] = [("Loci", user_models_dir()), ("Loci", REPO_MODELS_DIR)]
    out += [("LM Studio", home / ".lmstudio" / "models"), ("LM Studio", home / ".cache" / "lm-studio" / "models")]
    if env.get("OLLAMA_MODELS"):
        out.append(("Ollama", Path(env["OLLAMA_MODELS"])))
    out.append(("Ollama", home / ".ollama" / "models"))
    if system == "Windows":
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        roaming = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        out += [("GPT4All", local / "nomic.ai" / "GPT4All"),
                ("Jan", home / "jan" / "models"), ("Jan", roaming / "Jan" / "data")]
    elif system == "Darwin":
        support = home / "Library" / "Application Support"
        out += [("GPT4All", support / "nomic.ai" / "GPT4All"),
                ("Jan", home / "jan" / "models"), ("Jan", support / "Jan" / "data")]
    else:
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        out += [("Ollama", Path("/usr/share/ollama/.ollama/models")),  # the Linux service's home
                ("GPT4All", data / "nomic.ai" / "GPT4All"),
                ("Jan", home / "jan" / "models"), ("Jan", data / "Jan" / "data"), ("Jan", config / "Jan" / "data")]
    return out


def discover_models(*, system: str | None = None, home: Path | None = None,
                    env: Mapping[str, str] | None = None, extra_dirs: Iterable[str | Path] = (),
                    include_default: bool = True) -> list[FoundModel]:
    """Every GGUF chat model found in the apps' folders, the packaged default first. Nothing is downloaded."""
    found: list[FoundModel] = []
    seen: set[Path] = set()

    def keep(model: FoundModel | None) -> None:
        if model is None:
            return
        try:
            key = model.path.resolve()
        except OSError:
            return
        if key not in seen:
            seen.add(key)
            found.append(model)

    if include_default:
        try:
            path = default_llm_path()
            keep(describe(path, "Loci", name=path.stem))
        except ModelError:
            pass
    folders = model_folders(system=system, home=home, env=env) + [("Folder", Path(d)) for d in extra_dirs]
    for source, folder in folders:
        if not folder.is_dir():
            continue
        if source == "Ollama":
            for name, blob in ollama_models(folder):
                keep(describe(blob, source, name=name))
            continue
        for path, size in _gguf_files(folder):
            keep(describe(path, source, size=size))
    return found


# Answering questions over memories: the packaged 135M model repeats a memory at best; instruct models
# of 1-8B parameters follow the instructions and combine memories. Around 3B is the sweet spot on a CPU.
BETTER_MIN_PARAMS = 1e9
BETTER_MAX_PARAMS = 9e9
BETTER_TARGET_PARAMS = 3e9
BETTER_HINT = ("For better answers, add a 1.5B-3B instruct model (e.g. Qwen2.5-3B-Instruct or "
               "Llama-3.2-3B-Instruct, Q4_K_M, 1-2 GB) with LM Studio, Ollama, GPT4All or Jan; Loci finds it.")
_PARAMS_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([BbMm])(?![A-Za-z0-9])")


def parameter_count(model: FoundModel) -> float | None:
    """The model's size in parameters, from its header's size label or its name ("3B", "1.5b", "270M")."""
    for text in (model.parameters or "", model.name, model.path.name):
        match = _PARAMS_IN_NAME.search(text.replace("_", "-").replace(":", "-"))
        if match:
            return float(match.group(1)) * (1e9 if match.group(2) in "Bb" else 1e6)
    return None


def better_model(models: Iterable[FoundModel]) -> FoundModel | None:
    """The model found on this computer most likely to answer better than the packaged default.

    A chat model (with a chat template) of 1-9 billion parameters, the one closest to 3B (the
    best answers a CPU gives in seconds); on ties the smaller file. None when there is none.
    """
    default = _default_path()
    fits: list[tuple[float, int, FoundModel]] = []
    for m in models:
        n = parameter_count(m)
        if (n is None or not m.has_chat_template or not BETTER_MIN_PARAMS <= n <= BETTER_MAX_PARAMS
                or (default is not None and _same_file(m.path, default))):
            continue
        fits.append((abs(n - BETTER_TARGET_PARAMS), m.size_bytes, m))
    return min(fits, key=lambda t: t[:2])[2] if fits else None


def better_model_note(models: Iterable[FoundModel]) -> str:
    """One honest line for Settings and `loci models`: which found model gives better answers."""
    best = better_model(models)
    if best is None:
        return BETTER_HINT
    return (f"Better answers: {best.name} ({best.source}, {human_size(best.size_bytes)}) answers questions "
            "about your memories better than the packaged 135M model, more slowly on a CPU without a GPU.")


def _default_path() -> Path | None:
    try:
        return default_llm_path()
    except ModelError:
        return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def resolve_model(spec: str, models: Iterable[FoundModel] | None = None) -> Path:
    """A model path from what a person typed: a file path, or a name or file name from discovery."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    candidates = list(models) if models is not None else discover_models()
    wanted = spec.casefold()
    for m in candidates:
        if wanted in (m.name.casefold(), m.path.name.casefold(), m.path.stem.casefold()):
            return m.path
    near = [m.name for m in candidates if wanted in m.name.casefold()]
    hint = f" Did you mean {', '.join(near[:3])}?" if near else (
        " Run 'loci models' to see the models found on this computer." if candidates else
        " No GGUF models were found in LM Studio, Ollama, GPT4All, Jan or Loci's models folder.")
    raise ModelError(f"No model file or known model named '{spec}'.{hint}")


def describe(path: Path, source: str, *, name: str | None = None, size: int | None = None) -> FoundModel | None:
    """A FoundModel from a GGUF file's header, or None when it is no chat model or unreadable."""
    if path.name.casefold().startswith("mmproj"):
        return None  # a vision projector, not a model one can chat with
    try:
        meta = gguf_metadata(path)
        size = size if size is not None else path.stat().st_size
    except (ModelError, OSError) as exc:
        log.info("skipping %s: %s", path, exc)
        return None
    arch = str(meta.get("general.architecture") or "") or None
    if arch in NOT_CHAT:
        return None
    ctx = meta.get(f"{arch}.context_length") if arch else None
    file_type = meta.get("general.file_type")
    quant = FILE_TYPES.get(file_type) if isinstance(file_type, int) else None
    if quant is None:
        match = _QUANT_IN_NAME.search(path.name)
        quant = match.group(1).upper() if match else None
    label = meta.get("general.size_label")
    return FoundModel(name=name or _SHARD.sub("", path.name).removesuffix(".gguf"), path=path, source=source,
                      size_bytes=size, quantization=quant,
                      context_length=int(ctx) if isinstance(ctx, int) else None, architecture=arch,
                      parameters=str(label) if label else None,
                      has_chat_template=bool(meta.get("tokenizer.chat_template")))


def ollama_models(root: Path) -> Iterator[tuple[str, Path]]:
    """(name, blob path) for every model in an Ollama folder, read from its manifests."""
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        parts = manifest.relative_to(manifests).parts
        if len(parts) != 4:  # host / namespace / model / tag
            continue
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            layers = data.get("layers") or []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            log.info("skipping Ollama manifest %s: %s", manifest, exc)
            continue
        digest = next((layer.get("digest") for layer in layers
                       if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER), None)
        if not isinstance(digest, str) or ":" not in digest:
            continue
        blob = root / "blobs" / digest.replace(":", "-")
        if blob.is_file():
            yield ollama_name(*parts), blob


def ollama_name(host: str, namespace: str, model: str, tag: str) -> str:
    """Ollama's own short name: llama3.2:3b, me/mymodel:latest, or host/ns/model:tag."""
    if host == OLLAMA_DEFAULT_HOST:
        return f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def _gguf_files(root: Path) -> Iterator[tuple[Path, int]]:
    """(file, size of all its shards) for the .gguf files under root, MAX_DEPTH levels down."""
    base = len(root.parts)
    for folder, dirs, files in os.walk(root, onerror=lambda exc: log.info("cannot list %s", exc)):
        depth = len(Path(folder).parts) - base
        if depth >= MAX_DEPTH:
            dirs[:] = []
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        ggufs = sorted(f for f in files if f.casefold().endswith(".gguf"))
        for name in ggufs:
            path = Path(folder) / name
            shard = _SHARD.search(name)
            try:
                if shard is None:
                    yield path, path.stat().st_size
                elif shard.group(1) == "00001":  # llama.cpp loads the other shards from the first
                    stem = name[:shard.start()]
                    yield path, sum((Path(folder) / f).stat().st_size for f in ggufs
                                    if f.startswith(stem) and _SHARD.search(f))
            except OSError:
                continue
