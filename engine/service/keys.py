"""The data folder's API keys: the owner key (made on first use) and keys limited to one user's scope."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, NotFoundError, StoreError

log = logging.getLogger(__name__)

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


# -- keys for one scope (a user, optionally one agent of theirs), made with `loci api-key create` --
SCOPED_KEYS_FILE = "api_keys.json"


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What a scoped key may reach: one user's memories (of one agent, when given); read-only or not."""

    user_id: str
    agent_id: str | None = None
    read_only: bool = False

    def describe(self) -> str:
        who = f"user '{self.user_id}'" + (f", agent '{self.agent_id}'" if self.agent_id else "")
        return who + (" (read-only)" if self.read_only else "")


@dataclass(frozen=True, slots=True)
class ScopedKey:
    """One scoped key as listed: its id and scope; only a digest of the secret is kept on disk."""

    id: str
    scope: KeyScope
    created_at: str
    digest: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "user_id": self.scope.user_id, "agent_id": self.scope.agent_id,
                "read_only": self.scope.read_only, "created_at": self.created_at, "name": self.name}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _keys_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / SCOPED_KEYS_FILE


def list_scoped_keys(data_dir: str | Path) -> list[ScopedKey]:
    """The scoped keys of a data folder, oldest first (revoked keys are gone from the file)."""
    path = _keys_file(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StoreError(f"Cannot read the key list {path}: {exc}. Move it aside to start a new one "
                         "(every scoped key in it stops working).") from exc
    out = []
    for item in raw.get("keys", []) if isinstance(raw, dict) else []:
        try:
            scope = KeyScope(str(item["user_id"]), item.get("agent_id"), bool(item.get("read_only", False)))
            out.append(ScopedKey(str(item["id"]), scope, str(item.get("created_at", "")), str(item["digest"]),
                                 item.get("name")))
        except (KeyError, TypeError):
            continue
    return out


def _write_keys(data_dir: str | Path, keys: list[ScopedKey]) -> None:
    path = _keys_file(data_dir)
    rows = [{**k.to_dict(), "digest": k.digest} for k in keys]
    tmp = path.with_name(f".{SCOPED_KEYS_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": rows}, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StoreError(f"Cannot save the key list {path}: {exc.strerror or exc}.") from exc


def create_scoped_key(data_dir: str | Path, user_id: str, agent_id: str | None = None, *,
                      read_only: bool = False, name: str | None = None) -> tuple[ScopedKey, str]:
    """A new key for one user (and agent); returns its listing and the secret, shown only now."""
    for label, value in (("user_id", user_id), ("agent_id", agent_id)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInputError(f"{label} must be a non-empty name, not {value!r}.")
    token = PREFIX + "s-" + secrets.token_urlsafe(32)
    key = ScopedKey(id=secrets.token_hex(4), scope=KeyScope(user_id, agent_id, bool(read_only)),
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    digest=_digest(token), name=name)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    _write_keys(data_dir, [*list_scoped_keys(data_dir), key])
    return key, token


def revoke_scoped_key(data_dir: str | Path, key_id: str) -> ScopedKey:
    """Remove a scoped key: requests made with it are refused (401) from the next one on."""
    keys = list_scoped_keys(data_dir)
    found = [k for k in keys if k.id == key_id]
    if not found:
        raise NotFoundError(f"No scoped API key with id '{key_id}'. `loci api-key list` shows the ids.")
    _write_keys(data_dir, [k for k in keys if k.id != key_id])
    return found[0]


class KeyRing:
    """Who a presented key belongs to: the owner (None), a scope, or nobody (the key is refused).

    The key list is read again whenever its file changes, so a revoked key stops at once.
    """

    def __init__(self, data_dir: str | Path, owner_key: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.owner_key = owner_key or load_or_create_api_key(data_dir)
        self._stamp: tuple[int, int] | None = None
        self._by_digest: dict[str, KeyScope] = {}
        self._lock = threading.Lock()

    def identify(self, token: str | None) -> tuple[bool, KeyScope | None]:
        """(known, scope): (True, None) for the owner key, (True, scope) for a scoped one."""
        if token is None:
            return False, None
        if same_key(token, self.owner_key):
            return True, None
        scope = self._scoped().get(_digest(token))
        return (scope is not None), scope

    def _scoped(self) -> dict[str, KeyScope]:
        path = _keys_file(self.data_dir)
        try:
            st = path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    keys = list_scoped_keys(self.data_dir) if stamp else []
                except StoreError as exc:  # an unreadable list admits no scoped key
                    log.warning("%s", exc)
                    keys = []
                self._by_digest = {k.digest: k.scope for k in keys}
                self._stamp = stamp
            return self._by_digest
