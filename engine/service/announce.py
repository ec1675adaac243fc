"""The file beside the writer lock that tells other processes where the store's owner listens."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANNOUNCE_FILE = "loci.service.json"


@dataclass(frozen=True, slots=True)
class Announcement:
    """Where an owner serves its store: loopback address, process id, and how it stopped."""

    host: str
    port: int
    pid: int
    program: str = ""
    state: str = "serving"  # serving | closed (the owner stopped cleanly)
    previous_pid: int | None = None  # the owner before this one
    previous_clean: bool = True  # whether that owner stopped cleanly (all its replies sent)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def path_of(data_dir: str | Path) -> Path:
    return Path(data_dir) / ANNOUNCE_FILE


def read(data_dir: str | Path) -> Announcement | None:
    """The current announcement, or None when there is none or it is unreadable."""
    try:
        data: dict[str, Any] = json.loads(path_of(data_dir).read_text(encoding="utf-8"))
        return Announcement(host=str(data["host"]), port=int(data["port"]), pid=int(data["pid"]),
                            program=str(data.get("program", "")), state=str(data.get("state", "serving")),
                            previous_pid=data.get("previous_pid"),
                            previous_clean=bool(data.get("previous_clean", True)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(data_dir: str | Path, ann: Announcement) -> None:
    """Replace the announcement atomically (readers never see half a file)."""
    target = path_of(data_dir)
    tmp = target.with_name(f".{ANNOUNCE_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private, as the whole folder is
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({
            "host": ann.host, "port": ann.port, "pid": ann.pid, "program": ann.program, "state": ann.state,
            "previous_pid": ann.previous_pid, "previous_clean": ann.previous_clean}))
    os.replace(tmp, target)
