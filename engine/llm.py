"""LLM protocol and the llama-cpp-python adapter (lazy, one model per process, locked, JSON output)."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._offline import enforce_offline
from .config import LLMConfig
from .errors import ExtractionError, ModelError
from .models import check_gguf, default_llm_path

log = logging.getLogger(__name__)

_PROBE = "loci-system-probe-7f3a"


class LLM(Protocol):
    """A chat model that answers with JSON constrained by a schema. One required method."""

    name: str

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        """Return the raw text the model produced for the chat, constrained to the schema."""
        ...


@dataclass(frozen=True, slots=True)
class Usage:
    """What the last call cost: tokens in and out, and wall time."""

    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass(slots=True)
class _Loaded:
    """The process-wide llama.cpp model and what we learned about its chat template."""

    path: Path
    llama: Any
    keeps_system: bool
    call_lock: threading.Lock


# ONE llama.cpp model per process: loading another path replaces it. The lock guards both the
# cache and every call (a llama.cpp context must not run two generations at once).
_MODEL_LOCK = threading.RLock()
_LOADED: dict[Path, _Loaded] = {}


class LlamaCppLLM:
    """A GGUF chat model run by llama.cpp through its embedded chat template."""

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.config = config or LLMConfig()
        self._path = Path(self.config.model_path).expanduser() if self.config.model_path else None
        self.name = self._path.name if self._path else "SmolLM2-135M-Instruct.Q4_1"
        self.last_usage: Usage | None = None

    @property
    def path(self) -> Path:
        """The GGUF file this adapter runs (the packaged default unless configured)."""
        if self._path is None:
            self._path = default_llm_path()
        return self._path

    @property
    def is_loaded(self) -> bool:
        try:
            key = self.path.resolve()
        except ModelError:
            return False
        with _MODEL_LOCK:
            return key in _LOADED

    def load(self) -> None:
        """Load the model now; ModelError for a missing, truncated or non-GGUF file."""
        self._model()

    def _model(self) -> _Loaded:
        path = check_gguf(self.path)
        key = path.resolve()
        with _MODEL_LOCK:
            loaded = _LOADED.get(key)
            if loaded is not None:
                return loaded
            enforce_offline()
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError("llama-cpp-python is not installed, so memories cannot be extracted "
                                 "(pip install llama-cpp-python). Use infer=False meanwhile.") from exc
            cfg = self.config
            started = time.perf_counter()
            try:
                llama = Llama(model_path=str(path), n_ctx=cfg.n_ctx,
                              n_threads=cfg.n_threads or max(1, os.cpu_count() or 1),
                              n_gpu_layers=cfg.n_gpu_layers, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"llama.cpp could not load the model {path}: {exc}. The file may be "
                                 "damaged or of an architecture this llama.cpp build does not know; "
                                 "download it again or pick another GGUF model.") from exc
            loaded = _Loaded(path=key, llama=llama, keeps_system=_template_keeps_system(llama),
                             call_lock=threading.Lock())
            _LOADED.clear()  # one model per process: a successful load replaces the previous one
            _LOADED[key] = loaded
            log.info("language model %s loaded in %.1fs (system role kept: %s)",
                     path.name, time.perf_counter() - started, loaded.keeps_system)
            return loaded

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        model = self._model()
        chat = messages if model.keeps_system else merge_system(messages)
        started = time.perf_counter()
        with model.call_lock:
            try:
                out = model.llama.create_chat_completion(
                    messages=chat, response_format={"type": "json_object", "schema": schema},
                    temperature=self.config.temperature, max_tokens=max_tokens)
            except ValueError as exc:  # e.g. the prompt does not fit n_ctx
                raise ExtractionError(f"The language model could not process this input: {exc}. "
                                      "Send fewer or shorter messages at once, or raise llm.n_ctx.") from exc
        usage = out.get("usage") or {}
        self.last_usage = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                                time.perf_counter() - started)
        return str(out["choices"][0]["message"].get("content") or "")

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 stop: list[str] | None = None) -> str:
        """Plain-text chat completion (answers, chat): the model's reply, without a schema."""
        model = self._model()
        chat = messages if model.keeps_system else merge_system(messages)
        started = time.perf_counter()
        with model.call_lock:
            try:
                out = model.llama.create_chat_completion(
                    messages=chat, temperature=self.config.temperature, max_tokens=max_tokens,
                    stop=stop or None)
            except ValueError as exc:  # e.g. the prompt does not fit n_ctx
                raise ExtractionError(f"The language model could not process this input: {exc}. "
                                      "Give it less context, or raise llm.n_ctx.") from exc
        usage = out.get("usage") or {}
        self.last_usage = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                                time.perf_counter() - started)
        return str(out["choices"][0]["message"].get("content") or "")


def merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Fold system messages into the first user message, for chat templates that drop them."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    for m in rest:
        if m.get("role") == "user":
            m["content"] = f"{system}\n\n{m['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]


def _template_keeps_system(llama: Any) -> bool:
    """Render the GGUF's chat template with a probe system message; False if it vanishes or fails."""
    template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
    if not template:
        return True  # llama-cpp-python falls back to a built-in format that keeps system text
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")
        prompt = formatter(messages=[{"role": "system", "content": _PROBE},
                                     {"role": "user", "content": "hi"}]).prompt
    except Exception:  # noqa: BLE001 - templates that raise on a system role (Gemma 2) drop it
        return False
    return _PROBE in prompt
