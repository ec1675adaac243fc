"""The data folder's API key: made on first use, kept in a file only its owner can read."""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..errors import StoreError

KEY_FILE = "api_key"
PREFIX = "loci-"


def key_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / KEY_FILE


def load_or_create_api_key(data_dir: str | Path) -> str:
    """The store's API key; created (mode 0600) the first time anyone asks for it."""
    path = key_path(data_dir)
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise StoreError(f"Cannot read the API key file {path}: {exc.strerror or exc}.") from exc
    if existing:
        return existing
    key = PREFIX + secrets.token_urlsafe(32)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        os.chmod(tmp, 0o600)
        try:  # first writer wins: never replace a key someone may already be using
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # file systems without hard links
            if not path.exists():
                os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"Cannot create the API key file {path}: {exc.strerror or exc}.") from exc
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return path.read_text(encoding="utf-8").strip()


def token_from_header(value: str | None) -> str | None:
    """The key in an `Authorization: Token <key>` (or `Bearer <key>`) header."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        return None
    return token.strip()


def same_key(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key with the store's key."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
