"""Cancelling a long extraction: the token a front end sets and the error it raises."""
from __future__ import annotations

import threading
from typing import Any

from ..errors import ExtractionError


class Cancelled(ExtractionError):
    """The caller cancelled the extraction; nothing of it should be stored."""


class CancelToken:
    """Thread-safe flag a front end sets to stop a long extraction between windows."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()


def check_cancel(cancel: Any) -> None:
    """Raise Cancelled when the token (anything with `is_cancelled`) has been set."""
    if cancel is not None and getattr(cancel, "is_cancelled", False):
        raise Cancelled("The extraction was cancelled; nothing was stored.")
