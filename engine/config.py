"""Typed configuration tree, loaded from dicts or TOML; unknown keys get a "did you mean"."""
from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04's python3): the same parser, from PyPI
    import tomli as tomllib


@dataclass(slots=True)
class EmbedderConfig:
    """Which sentence-transformers model embeds memories."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    path: str | None = None  # a local model folder; default: the packaged model
    device: str = "auto"  # auto, cpu, cuda, mps
    batch_size: int = 64
    dimension: int | None = None  # when set, checked against the model (mem0's embedding_dims)
    backend: str = "onnx"  # onnx (onnxruntime, light) or torch (sentence-transformers)
    # auto: int8 (half the CPU per embed) where the model runs on onnxruntime on the CPU, else fp32;
    # a store made at another precision moves to this one in the background (store/reembed.py)
    precision: str = "auto"


@dataclass(slots=True)
class LLMConfig:
    """The local GGUF model that extracts memories."""

    model_path: str | None = None  # default: the packaged small model
    n_ctx: int = 4096
    n_threads: int | None = None  # default: all cores
    n_gpu_layers: int = 0  # -1 offloads everything when llama.cpp was built with a GPU
    temperature: float = 0.0
    max_tokens: int = 768


@dataclass(slots=True)
class ExtractionConfig:
    """How conversations become memories."""

    context_messages: int = 6  # recent messages of the same session shown to the model
    similar_memories: int = 5  # existing memories shown so the model does not repeat them
    duplicate_threshold: float = 0.92  # cosine above which a new memory counts as known
    mode: str = "off"  # the model's part: off (code only), type, select, extract; measured in bench/


@dataclass(slots=True)
class SearchConfig:
    """Weights and knobs of hybrid retrieval."""

    oversample: int = 5
    semantic_weight: float = 1.0
    keyword_weight: float = 1.0
    entity_weight: float = 0.1
    time_weight: float = 0.2
    context_weight: float = 0.5  # share of a neighbouring turn's score a memory inherits
    bm25_scale: float = 4.0  # BM25 score at which keyword evidence counts as ~63% confident
    default_threshold: float | None = None
    evidence: str = "episode"  # one hit per source message shown as: episode, fact, best; "all": no collapse


@dataclass(slots=True)
class StoreConfig:
    """Where memories live: the embedded Chroma folder (default) or a shared Chroma server."""

    history_db_path: str | None = None  # the SQLite file; default: loci.sqlite3 in the data folder
    collection_name: str = "memories"
    chroma_host: str | None = None  # set to use a Chroma server (`chroma run`) instead of the folder
    chroma_port: int = 8000
    chroma_ssl: bool = False


@dataclass(slots=True)
class LociConfig:
    """Everything a Memory needs besides the data folder."""

    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "LociConfig":
        """Build from a nested dict; mem0-style keys 'embedder'/'llm' with a 'config' sub-dict work too."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"Config must be a mapping of settings, not {type(data).__name__}.")
        config: LociConfig = _build(cls, data, "")
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first setting whose value is out of range."""
        for section in ("embedder", "llm", "extraction", "search", "store"):
            values = getattr(self, section)
            for f in dataclasses.fields(values):
                _check_value(f"{section}.{f.name}", getattr(values, f.name))

    @classmethod
    def load(cls, path: str | Path) -> "LociConfig":
        """Read a TOML settings file; a missing file gives the defaults."""
        p = Path(path)
        if not p.exists():
            return cls()
        try:
            with p.open("rb") as fh:
                return cls.from_dict(tomllib.load(fh))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Settings file {p} is not valid TOML: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the settings as TOML (None values are left out)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                if value is not None:
                    lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        p.write_text("\n".join(lines), encoding="utf-8")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# Allowed ranges (inclusive) of numeric settings; every float must also be finite.
_RANGES: dict[str, tuple[float, float]] = {
    "embedder.batch_size": (1, 65_536),
    "llm.n_ctx": (128, 1 << 20),
    "llm.n_threads": (1, 1024),
    "llm.n_gpu_layers": (-1, 100_000),
    "llm.temperature": (0.0, 5.0),
    "llm.max_tokens": (1, 1 << 20),
    "extraction.context_messages": (0, 1000),
    "extraction.similar_memories": (0, 1000),
    "extraction.duplicate_threshold": (0.0, 1.0),
    "search.oversample": (1, 1000),
    "search.semantic_weight": (0.0, 1000.0),
    "search.keyword_weight": (0.0, 1000.0),
    "search.entity_weight": (0.0, 1000.0),
    "search.time_weight": (0.0, 1000.0),
    "search.context_weight": (0.0, 1000.0),
    "search.bm25_scale": (1e-6, 1e6),
    "search.default_threshold": (-1e6, 1e6),
    "store.chroma_port": (1, 65_535),
}
_DEVICES = ("auto", "cpu", "cuda", "mps")
_PRECISIONS = ("auto", "fp32", "int8")


def _check_value(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Setting '{name}' is {value}; give a finite number.")
    if name in _RANGES and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise ConfigError(f"Setting '{name}' is {value}; it must be between {low:g} and {high:g}.")
    if name == "embedder.device" and not (value in _DEVICES or str(value).startswith("cuda:")):
        raise ConfigError(f"Setting 'embedder.device' is {value!r}; use one of {', '.join(_DEVICES)}.")
    if name == "embedder.precision" and value not in _PRECISIONS:
        raise ConfigError(f"Setting 'embedder.precision' is {value!r}; use one of {', '.join(_PRECISIONS)}.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"Setting '{name}' contains characters that are not valid Unicode.") from None
        if "\x00" in value:
            raise ConfigError(f"Setting '{name}' contains a NUL character.")


_IGNORED_MEM0_KEYS = {"provider", "version"}
_MEM0_ONLY_KEYS = {"vector_store", "history_db_path", "graph_store", "custom_fact_extraction_prompt",
                   "custom_update_memory_prompt", "reranker"}
_LOCAL_EMBEDDERS = ("huggingface", "sentence_transformers", "sentence-transformers", "loci")
_LOCAL_LLMS = ("llama_cpp", "llamacpp", "llama-cpp", "gguf", "loci")


def is_mem0_config(data: Mapping[str, Any]) -> bool:
    """True for a mem0 config dict (it has mem0-only keys or provider/config sections)."""
    if any(k in data for k in _MEM0_ONLY_KEYS):
        return True
    return any(isinstance(data.get(k), Mapping) and ("provider" in data[k] or "config" in data[k])
               for k in ("embedder", "llm"))


def from_mem0_config(data: Mapping[str, Any]) -> tuple[str | None, "LociConfig"]:
    """(data folder, settings) for a mem0 config dict; what Loci cannot honour is refused.

    vector_store.config.path becomes the data folder (Chroma and Loci's files live there),
    collection_name and host/port map to [store], history_db_path to store.history_db_path,
    a huggingface embedder to [embedder] (model name or local folder; embedding_dims is
    checked against the model) and a local GGUF llm to [llm]. Hosted providers (OpenAI, ...),
    graph stores, rerankers and custom prompts cannot run offline here and raise ConfigError.
    """
    out: dict[str, Any] = {}
    data_dir: str | None = None
    for key, value in data.items():
        if key == "version" or value is None:
            continue
        if key == "vector_store":
            data_dir = _map_vector_store(value, out)
        elif key == "history_db_path":
            out.setdefault("store", {})["history_db_path"] = str(value)
        elif key == "embedder":
            out["embedder"] = _map_embedder(value)
        elif key == "llm":
            out["llm"] = _map_llm(value)
        elif key in ("graph_store", "reranker") and isinstance(value, Mapping) and not value.get("provider"):
            continue  # an empty section asks for nothing
        elif key in ("custom_fact_extraction_prompt", "custom_update_memory_prompt", "graph_store",
                     "reranker"):
            raise ConfigError(f"Loci cannot honour the mem0 setting '{key}': {_WHY_NOT[key]} "
                              "Remove it from the config.")
        elif key in ("extraction", "search", "store", "data_dir"):
            if key == "data_dir":
                data_dir = str(value)
            else:
                out[key] = value
        else:
            raise ConfigError(f"Unknown mem0 setting '{key}'. Loci maps vector_store, history_db_path, "
                              "embedder and llm.")
    return data_dir, LociConfig.from_dict(out)


_WHY_NOT = {
    "custom_fact_extraction_prompt": "pass prompt= to add() instead.",
    "custom_update_memory_prompt": "Loci only adds memories (no LLM update step).",
    "graph_store": "Loci keeps entities itself and has no graph database.",
    "reranker": "no local reranker model ships on PyPI.",
}


def _section(value: Any, name: str) -> tuple[str | None, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"The mem0 setting '{name}' must be a section with 'provider' and 'config'.")
    provider = value.get("provider")
    config = value.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"The mem0 setting '{name}.config' must be a section of settings.")
    return (str(provider).lower() if provider else None), dict(config)


def _map_vector_store(value: Any, out: dict[str, Any]) -> str | None:
    provider, config = _section(value, "vector_store")
    if provider not in (None, "chroma", "chromadb"):
        raise ConfigError(f"Loci stores vectors in Chroma; the mem0 vector store '{provider}' is not "
                          "supported. Use provider 'chroma' (a folder path, or host and port).")
    store = out.setdefault("store", {})
    path = config.pop("path", None)
    for key, target in (("collection_name", "collection_name"), ("host", "chroma_host"),
                        ("port", "chroma_port"), ("ssl", "chroma_ssl")):
        if config.get(key) is not None:
            store[target] = config.pop(key)
        else:
            config.pop(key, None)
    if config:
        raise ConfigError(f"Loci cannot honour vector_store.config key(s) {', '.join(sorted(config))}; "
                          "it maps path, collection_name, host, port and ssl.")
    if path is not None and store.get("chroma_host"):
        raise ConfigError("vector_store.config has both a path and a host; give one of them.")
    return str(path) if path is not None else None


def _map_embedder(value: Any) -> dict[str, Any]:
    provider, config = _section(value, "embedder")
    if provider not in (None, *_LOCAL_EMBEDDERS):
        raise ConfigError(f"The embedder '{provider}' needs a network service; Loci embeds locally. "
                          "Use provider 'huggingface' with a model folder or name.")
    if config.get("huggingface_base_url"):
        raise ConfigError("embedder.config.huggingface_base_url points at a server; Loci embeds locally. "
                          "Remove it.")
    out: dict[str, Any] = {}
    model = config.pop("model", None)
    if model is not None:
        if Path(str(model)).expanduser().is_dir():
            from .paths import DEFAULT_EMBEDDER, packaged_model_dir

            folder = Path(str(model)).expanduser().resolve()
            packaged = packaged_model_dir(DEFAULT_EMBEDDER)
            out["path"] = str(folder)
            out["model"] = DEFAULT_EMBEDDER if packaged and packaged.resolve() == folder else folder.name
        else:
            out["model"] = str(model)
    if config.get("embedding_dims") is not None:
        out["dimension"] = config.pop("embedding_dims")
    kwargs = config.pop("model_kwargs", None) or {}
    if "device" in kwargs:
        out["device"] = kwargs.pop("device")
    for key in ("api_key", "embedding_dims"):
        config.pop(key, None)
    if config or kwargs:
        raise ConfigError("Loci cannot honour embedder setting(s) "
                          f"{', '.join(sorted([*config, *kwargs]))}; it maps model, embedding_dims "
                          "and model_kwargs.device.")
    return out


def _map_llm(value: Any) -> dict[str, Any]:
    provider, config = _section(value, "llm")
    model = config.pop("model", None) or config.pop("model_path", None)
    is_gguf = isinstance(model, str) and model.lower().endswith(".gguf")
    if provider not in (None, *_LOCAL_LLMS) and not is_gguf:
        raise ConfigError(f"The LLM provider '{provider}' is a network service; Loci runs a local GGUF "
                          "model. Give provider 'llama_cpp' with config.model set to a .gguf file, "
                          "or leave the llm section out to use the packaged model.")
    out: dict[str, Any] = {}
    if model is not None:
        if not Path(str(model)).expanduser().is_file():
            raise ConfigError(f"llm.config.model {model!r} is not a GGUF file on this machine.")
        out["model_path"] = str(Path(str(model)).expanduser())
    for key in ("temperature", "max_tokens", "n_ctx", "n_threads", "n_gpu_layers"):
        if config.get(key) is not None:
            out[key] = config.pop(key)
        else:
            config.pop(key, None)
    config.pop("api_key", None)
    config.pop("top_p", None) if config.get("top_p") in (None, 1, 1.0) else None
    if config:
        raise ConfigError(f"Loci cannot honour llm setting(s) {', '.join(sorted(config))}; it maps "
                          "model, temperature, max_tokens, n_ctx, n_threads and n_gpu_layers.")
    return out


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _IGNORED_MEM0_KEYS:
            continue
        if key in _MEM0_ONLY_KEYS and not prefix:
            raise ConfigError(f"'{key}' is a mem0 setting: open the store with Memory.from_config(...) "
                              "so it is mapped (or refused) rather than ignored.")
        if key == "config" and isinstance(value, Mapping) and prefix:
            # mem0 shape: {"embedder": {"provider": ..., "config": {...}}}
            nested = _build(cls, value, prefix)
            kwargs.update({f: getattr(nested, f) for f in fields if f in value})
            continue
        if key not in fields:
            guess = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean '{prefix}{guess[0]}'?" if guess else (
                f" Known settings: {', '.join(prefix + f for f in fields)}.")
            raise ConfigError(f"Unknown setting '{prefix}{key}'.{hint}")
        f = fields[key]
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            if not isinstance(value, Mapping):
                raise ConfigError(f"Setting '{prefix}{key}' must be a section of settings.")
            kwargs[key] = _build(sub, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_type(f, value, f"{prefix}{key}")
    return cls(**kwargs)


def _check_type(f: dataclasses.Field[Any], value: Any, name: str) -> Any:
    expected = str(f.type)
    if value is None:
        if "None" in expected:
            return None
        raise ConfigError(f"Setting '{name}' cannot be empty.")
    if "float" in expected and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if "int" not in expected else value
    if "int" in expected and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "bool" in expected and isinstance(value, bool):
        return value
    if "str" in expected and isinstance(value, (str, Path)):
        return str(value)
    raise ConfigError(f"Setting '{name}' has the wrong type: expected {expected}, got {value!r}.")
