"""The language model and the extractor built on it, rebuilt when their settings change."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from ..config import LociConfig
from ..errors import ConfigError
from ..extraction import Extractor, Scaffold


class Models:
    """Owns the local LLM made from `config.llm` (or a caller's model) and the extractor on it."""

    def __init__(self, config: LociConfig, given: Any = None) -> None:
        self._config = config  # read at each call: settings changed in place take effect
        self._given = given  # a caller's model is kept; else one is built from config.llm
        self._llm: Any = None
        self._llm_config: Any = None
        self._lock = threading.Lock()
        self._extractor: Extractor | None = None

    def language_model(self) -> Any:
        """The caller's model, else a LlamaCppLLM of the current `config.llm` (new when it changed)."""
        from ..inference.llm import LlamaCppLLM

        if self._given is not None:
            return self._given
        with self._lock:
            if self._llm is None or self._llm_config != self._config.llm:
                self._llm_config = replace(self._config.llm)
                self._llm = LlamaCppLLM(self._llm_config)
                self._extractor = None
            return self._llm

    def answering_model(self) -> Any:
        """The language model when it can answer (has `complete`), else a LlamaCppLLM of `config.llm`."""
        from ..inference.llm import LlamaCppLLM

        llm = self.language_model()
        if not hasattr(llm, "complete"):  # a given extraction-only model cannot answer
            llm = LlamaCppLLM(self._config.llm)
        return llm

    def extractor(self) -> Extractor:
        """The extractor of the current `config.extraction` on the current language model."""
        mode = self._config.extraction.mode
        if mode not in ("off", "type", "select", "extract"):
            raise ConfigError(f"extraction.mode is {mode!r}; use off, type, select or extract.")
        llm = self.language_model()  # lazy: a model file loads on its first call only
        with self._lock:
            if self._extractor is None or self._extractor.llm is not llm \
                    or self._extractor.config != self._config.extraction \
                    or self._extractor.scaffold.model != mode:
                self._extractor = Extractor(llm, self._config.extraction, scaffold=Scaffold(model=mode))
            return self._extractor
