"""LLM protocol and the llama-cpp-python adapter (lazy, one model per process, locked; JSON, text, stream)."""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from .offline import enforce_offline
from ..config import LLMConfig
from ..errors import ExtractionError, ModelError
from .models import check_gguf, default_llm_path
from .shutdown import MODELS, is_exiting, on_exit

log = logging.getLogger(__name__)

_PROBE = "loci-system-probe-7f3a"
# Free-text replies (complete, stream) repeat less with a mild penalty; small models otherwise loop.
REPEAT_PENALTY = 1.1


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


@dataclass(frozen=True, slots=True)
class ModelKey:
    """What a loaded llama.cpp model was built with: change any of it and the model is reloaded."""

    path: Path
    n_ctx: int
    n_threads: int
    n_gpu_layers: int


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """What the process-wide model is and where it runs (for status lines and tests)."""

    key: ModelKey
    name: str
    device: str  # "CPU" or e.g. "GPU (CUDA): 30 of 30 layers"
    gpu_backend: str | None  # CUDA, Metal, Vulkan, ROCm, SYCL; None when llama.cpp is CPU-only
    layers: int | None  # transformer blocks in the model
    offloaded_layers: int  # how many of them run on the GPU


@dataclass(slots=True)
class _Loaded:
    """The process-wide llama.cpp model and what we learned about its chat template."""

    key: ModelKey
    llama: Any
    keeps_system: bool
    call_lock: threading.Lock
    info: LoadedModel


# ONE llama.cpp model per process: loading another model or the same one with other settings
# replaces it. The lock guards both the cache and every call (a llama.cpp context must not run
# two generations at once).
_MODEL_LOCK = threading.RLock()
_LOADED: dict[ModelKey, _Loaded] = {}


def _close_at_exit() -> None:
    """Close the model before the interpreter tears down the modules its destructor needs
    (otherwise llama.cpp prints a TypeError from Llama.__del__ at exit, or crashes when a
    reply is still being generated on another thread: a stream stops at its next token)."""
    for loaded in list(_LOADED.values()):
        if loaded.call_lock.acquire(timeout=EXIT_WAIT_S):
            try:
                loaded.llama.close()
            finally:
                loaded.call_lock.release()
        else:
            log.warning("the language model was still busy at exit")
    _LOADED.clear()


EXIT_WAIT_S = 60.0  # a generation under way at exit (one not streamed cannot stop early)
on_exit(_close_at_exit, MODELS)


def loaded_model() -> LoadedModel | None:
    """The model llama.cpp holds in this process right now, or None."""
    return next((m.info for m in list(_LOADED.values())), None)  # lock-free, like is_loaded


def gpu_backend() -> str | None:
    """The GPU backend this llama.cpp build offloads to (CUDA, Metal, Vulkan...), or None for CPU only."""
    try:
        import llama_cpp
    except ImportError:
        return None
    if not llama_cpp.llama_supports_gpu_offload():
        return None
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    for name in ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "CANN", "MUSA"):
        if name.casefold() in info.casefold():
            return name
    return "GPU"


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
    def key(self) -> ModelKey:
        """The cache key: this file with this context size, thread count and GPU offload."""
        cfg = self.config
        return ModelKey(self.path.expanduser().resolve(), cfg.n_ctx,
                        cfg.n_threads or max(1, os.cpu_count() or 1), cfg.n_gpu_layers)

    @property
    def is_loaded(self) -> bool:
        try:
            key = self.key
        except ModelError:
            return False
        return key in _LOADED  # lock-free: never waits behind a load or a generation

    @property
    def info(self) -> LoadedModel:
        """Name and device of this adapter's model (loads it when needed)."""
        return self._model().info

    @property
    def context_length(self) -> int:
        """Tokens the model's context holds (prompt and reply together)."""
        return int(self._model().llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model."""
        with self._use() as model:
            return len(model.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def load(self) -> None:
        """Load the model now; ModelError for a missing, truncated or non-GGUF file."""
        self._model()

    def _model(self) -> _Loaded:
        path = check_gguf(self.path)
        key = self.key
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
            started = time.perf_counter()
            try:
                llama = Llama(model_path=str(path), n_ctx=key.n_ctx, n_threads=key.n_threads,
                              n_threads_batch=key.n_threads, n_gpu_layers=key.n_gpu_layers,
                              verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"llama.cpp could not load the model {path}: {exc}. The file may be "
                                 "damaged or of an architecture this llama.cpp build does not know; "
                                 "download it again or pick another GGUF model.") from exc
            loaded = _Loaded(key=key, llama=llama, keeps_system=_template_keeps_system(llama),
                             call_lock=threading.Lock(), info=_describe(key, llama))
            for old in _LOADED.values():  # one model per process: a successful load replaces it
                with old.call_lock:  # ...once a generation still running on it has finished
                    old.llama.close()
            _LOADED.clear()
            _LOADED[key] = loaded
            log.info("language model %s loaded in %.1fs on %s (system role kept: %s)",
                     path.name, time.perf_counter() - started, loaded.info.device, loaded.keeps_system)
            return loaded

    @contextmanager
    def _use(self) -> Iterator[_Loaded]:
        """Hold the current model's call lock (reloading if settings changed meanwhile)."""
        while True:
            model = self._model()
            with model.call_lock:
                # no _MODEL_LOCK here: a load waiting for this call lock holds it (a plain dict read
                # is atomic, and the model cannot be closed while we hold its call lock)
                if _LOADED.get(model.key) is model:
                    yield model
                    return
            # replaced (and closed) by another load between _model() and the lock: try again

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        started = time.perf_counter()
        with self._use() as model:
            chat = messages if model.keeps_system else merge_system(messages)
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
        """The model's free-text reply to the chat (through the model's own chat template)."""
        return "".join(self._generate(messages, max_tokens, stop, None))

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, cancel: Any = None) -> Iterator[str]:
        """The reply piece by piece as the model writes it; stops early once `cancel.is_cancelled`.

        The model stays locked until the generator is exhausted or closed, so always iterate to
        the end or close it (a `for` loop with `break` closes it when the generator is dropped).
        """
        return self._generate(messages, max_tokens, None, cancel)

    def _generate(self, messages: list[dict[str, str]], max_tokens: int, stop: list[str] | None,
                  cancel: Any) -> Iterator[str]:
        started = time.perf_counter()
        produced = 0
        prompt_tokens = 0
        with self._use() as model:
            chat = messages if model.keeps_system else merge_system(messages)
            try:
                chunks = model.llama.create_chat_completion(
                    messages=chat, temperature=self.config.temperature, max_tokens=max_tokens,
                    stop=stop, stream=True, repeat_penalty=REPEAT_PENALTY)
                for chunk in chunks:
                    if (cancel is not None and cancel.is_cancelled) or is_exiting():
                        break
                    delta = chunk["choices"][0].get("delta") or {}
                    text = delta.get("content")
                    if text:
                        produced += 1
                        yield text
                prompt_tokens = model.llama.n_tokens - produced
            except ValueError as exc:  # e.g. the prompt does not fit n_ctx
                raise ModelError(f"The language model could not process this chat: {exc}. Start a new "
                                 "chat, or raise llm.n_ctx in the settings.") from exc
            finally:
                self.last_usage = Usage(max(0, int(prompt_tokens)), produced, time.perf_counter() - started)


def _describe(key: ModelKey, llama: Any) -> LoadedModel:
    meta = getattr(llama, "metadata", None) or {}
    arch = meta.get("general.architecture", "")
    try:
        layers: int | None = int(meta.get(f"{arch}.block_count", ""))
    except ValueError:
        layers = None
    backend = gpu_backend()
    offloaded = 0
    if backend is not None and key.n_gpu_layers != 0:
        total = (layers or 0) + 1  # llama.cpp counts the output layer too
        offloaded = total if key.n_gpu_layers < 0 else min(key.n_gpu_layers, total)
    if offloaded:
        device = f"GPU ({backend}): {offloaded} of {(layers or 0) + 1} layers"
    elif backend is None and key.n_gpu_layers != 0:
        device = "CPU (this llama.cpp build has no GPU support)"
    else:
        device = "CPU"
    name = str(meta.get("general.name") or key.path.stem)
    return LoadedModel(key=key, name=name, device=device, gpu_backend=backend, layers=layers,
                       offloaded_layers=offloaded)


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
