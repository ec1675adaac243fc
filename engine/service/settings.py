"""Changing the settings of an open store: what is saved, what applies at once, what needs the store reopened."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import LociConfig
from ..errors import ConfigError

LIVE_SECTIONS = ("llm", "extraction", "search")  # read at use (the LLM when it is first loaded)


class Configured(Protocol):
    """A store whose config can change while it is open (engine.Memory, its remote client)."""

    config: LociConfig


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """Where the store lives from now on, and whether it must be closed and opened there."""

    data_dir: Path | None
    reopen: bool


def save_settings(config: LociConfig, path: str | Path) -> None:
    """Write the settings file; a folder that cannot be written is a ConfigError naming it."""
    try:
        config.save(path)
    except OSError as exc:
        raise ConfigError(f"Cannot save the settings to {path}: {exc.strerror or exc}.") from exc


def apply_settings(memory: Configured | None, old: LociConfig, new: LociConfig,
                   data_dir: str | Path | None, chosen_dir: str | Path | None, *,
                   owner_process: bool = False) -> SettingsChange:
    """Give the open store the settings it reads at use (LLM, extraction, search) and say whether
    the rest needs it reopened: another data folder (chosen_dir; empty keeps data_dir) or another
    embedder (its vectors would not match the store's). owner_process: the store is owned by a
    child process of the caller (owner_process.py), which reads every setting when it starts, so
    any change to them restarts it."""
    live_changed = owner_process and any(getattr(new, s) != getattr(old, s) for s in LIVE_SECTIONS)
    if memory is not None:  # (memory.config may be `old` itself)
        for section in LIVE_SECTIONS:
            setattr(memory.config, section, getattr(new, section))
    current = Path(data_dir) if data_dir else None
    target = Path(chosen_dir).expanduser() if chosen_dir else current
    return SettingsChange(target, reopen=target != current or new.embedder != old.embedder or live_changed)
