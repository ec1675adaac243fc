"""The installed version of Loci (the frozen bundle carries a copy of the package metadata)."""
from __future__ import annotations

import importlib.metadata


def version() -> str:
    """The installed version (the frozen bundle carries a copy of the package metadata)."""
    try:
        return importlib.metadata.version("loci")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown (not installed: run `pip install -e .`)"
