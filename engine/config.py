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
class LociConfig:
    """Everything a Memory needs besides the data folder."""

    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

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
        for section in ("embedder", "llm", "extraction", "search"):
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
}
_DEVICES = ("auto", "cpu", "cuda", "mps")


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
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"Setting '{name}' contains characters that are not valid Unicode.") from None
        if "\x00" in value:
            raise ConfigError(f"Setting '{name}' contains a NUL character.")


_IGNORED_MEM0_KEYS = {"provider", "version", "vector_store", "history_db_path", "graph_store",
                      "custom_fact_extraction_prompt", "custom_update_memory_prompt", "reranker"}


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _IGNORED_MEM0_KEYS:
            continue
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
