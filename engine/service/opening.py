"""open_memory(): become the owner of a data folder, or a client of the process that is."""
from __future__ import annotations

import http.client
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

from ..config import LociConfig
from ..errors import StoreError
from ..paths import default_data_dir
from ..store.vectors import WriterLock
from . import announce
from .keys import load_or_create_api_key
from .owner import ServedMemory
from .remote import RemoteMemory

log = logging.getLogger(__name__)

# An owner announces itself once its database is open (about a second; the models load lazily).
WAIT_FOR_OWNER_S = 8.0


def open_memory(data_dir: str | Path | None = None, config: LociConfig | Mapping[str, Any] | None = None,
                *, embedder: Any = None, llm: Any = None,
                wait: float = WAIT_FOR_OWNER_S, preload: bool = True) -> ServedMemory | RemoteMemory:
    """The store in `data_dir`: a ServedMemory when this process is first, else a RemoteMemory.

    Both have engine.Memory's methods and a subscribe(fn) for changes made by anyone. A
    RemoteMemory takes over the store when its owner closes, so callers never see the lock.
    preload=False: an owner loads its models when first used (a short command that only reads).
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the data folder {folder}: {exc}") from exc
    cfg = config if isinstance(config, LociConfig) else LociConfig.from_dict(config)
    found = _owner_or_lock(folder, cfg, embedder, llm, wait, preload=preload)
    if isinstance(found, announce.Announcement):
        log.info("the store in %s is open in process %s; using it through %s", folder, found.pid, found.url)

        def reconnect(client: RemoteMemory) -> Any:
            return _owner_or_lock(folder, cfg, embedder, llm, wait, exclude=client._ann)
        return RemoteMemory(folder, found, cfg, reconnect=reconnect)
    return found


def _owner_or_lock(folder: Path, cfg: LociConfig, embedder: Any, llm: Any, wait: float,
                   exclude: announce.Announcement | None = None,
                   preload: bool = True) -> ServedMemory | announce.Announcement:
    deadline = time.monotonic() + wait
    while True:
        if lock_is_free(folder):
            try:
                return ServedMemory(folder, cfg, embedder=embedder, llm=llm, preload=preload)
            except StoreError:
                if lock_is_free(folder):
                    raise  # a real problem (manifest, disk), not a lost race for the lock
        ann = announce.read(folder)
        if ann is not None and ann.state == "serving" and ann != exclude and answers(folder, ann):
            return ann
        if time.monotonic() > deadline:
            raise StoreError(
                f"The memory store at {folder} is already open in {_holder(folder)}, which does not share "
                "it. Close that program (or update it to a Loci that shares its store), then try again.")
        time.sleep(0.1)


def lock_is_free(folder: Path) -> bool:
    """Whether no program holds the folder's writer lock right now."""
    lock = WriterLock(folder)
    try:
        lock.acquire()
    except StoreError:
        return False
    lock.release()
    return True


def answers(folder: Path, ann: announce.Announcement) -> bool:
    """Whether the announced owner answers a ping on its loopback address."""
    conn = http.client.HTTPConnection(ann.host, ann.port, timeout=5)
    try:
        conn.request("GET", "/ping", headers={"Authorization": f"Token {load_or_create_api_key(folder)}"})
        resp = conn.getresponse()
        return resp.status == 200 and json.loads(resp.read()).get("pid") == ann.pid
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()


def _holder(folder: Path) -> str:
    try:
        info = json.loads((folder / "loci.lock").read_text(encoding="utf-8"))
        return f"{info.get('program', 'a program')}, process {info.get('pid')}"
    except (OSError, ValueError):
        return "unknown program"
