"""Loci's engine: a private, local-first memory layer with mem0's Memory API."""
from .inference.offline import enforce_offline

enforce_offline()

from .assistant.answer import Answer  # noqa: E402
from .config import (EmbedderConfig, ExtractionConfig, LLMConfig, LociConfig, SearchConfig,  # noqa: E402
                     StoreConfig)
from .errors import (AccessDeniedError, ConfigError, ExtractionError, InvalidInputError, LociError,  # noqa: E402
                     ModelError, NotFoundError, StoreError)
from .extraction import CancelToken  # noqa: E402
from .memory import Memory  # noqa: E402
from .async_memory import AsyncMemory  # noqa: E402
from .records import Entity, HistoryEvent, MemoryRecord, Message, Scope, ScoredMemory  # noqa: E402
from .service import open_memory  # noqa: E402

__all__ = [
    "Memory", "AsyncMemory", "Answer", "CancelToken", "LociConfig", "EmbedderConfig", "LLMConfig",
    "ExtractionConfig", "SearchConfig", "StoreConfig",
    "LociError", "AccessDeniedError", "ConfigError", "ModelError", "ExtractionError", "StoreError", "NotFoundError",
    "InvalidInputError", "MemoryRecord", "Message", "Scope", "ScoredMemory", "HistoryEvent", "Entity",
    "open_memory",
]
