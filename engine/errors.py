"""The error hierarchy: every LociError's str() is safe and useful to show a person."""
from __future__ import annotations


class LociError(Exception):
    """Base of every fault of the environment or the input (bugs are not LociErrors)."""

    @property
    def user_message(self) -> str:
        return str(self)


class ConfigError(LociError):
    """A setting is unknown, malformed or out of range."""


class ModelError(LociError):
    """A model file is missing, corrupt or failed to load."""


class ExtractionError(LociError):
    """The language model's output could not be used, or extraction is unavailable."""


class StoreError(LociError):
    """The store is locked, full, corrupt, or was built with another embedder."""


class NotFoundError(LociError, ValueError):
    """No memory with the given id (a ValueError too, as mem0 raises for a missing id)."""


class InvalidInputError(LociError, ValueError):
    """An argument given to the API cannot be used (wrong type, empty, bad filter)."""


class AccessDeniedError(LociError):
    """The caller's key or server is limited to a scope and the call reaches beyond it."""
