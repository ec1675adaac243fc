"""Where Loci keeps its data, config and models; LOCI_HOME moves everything."""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "loci"


def default_data_dir() -> Path:
    """The store folder: $LOCI_HOME if set, else the platform's user data dir."""
    home = os.environ.get("LOCI_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    """The settings file: inside $LOCI_HOME if set, else the platform's config dir."""
    home = os.environ.get("LOCI_HOME")
    if home:
        return Path(home).expanduser() / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def user_models_dir() -> Path:
    """Where a person drops extra GGUF models (also searched: the repo's models/)."""
    return default_data_dir() / "models"
