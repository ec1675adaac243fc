"""What the bundle leaves out although PyInstaller's hooks collect it (pure functions, unit-tested)."""
from __future__ import annotations

from fnmatch import fnmatch

# Shared libraries the app never loads: torch's own test and example backends.
DROP_BINARIES = (
    "torch/lib/libtorchbind_test.*", "torch/lib/libjitbackend_test.*",
    "torch/lib/libbackend_with_compiler.*", "torch/lib/libaoti_custom_ops.*",
)

# Data files the app never reads: C/C++ headers and build files, torch's test data.
DROP_DATA = (
    "torch/include/*", "torch/share/*", "torch/testing/_internal/data/*",
    "*/__pycache__/*",
)


def _norm(dest: str) -> str:
    return dest.replace("\\", "/")


def drop_binary(dest: str) -> bool:
    """True when a collected binary (its path inside the bundle) is left out."""
    return any(fnmatch(_norm(dest), pattern) for pattern in DROP_BINARIES)


def drop_data(dest: str) -> bool:
    """True when a collected data file (its path inside the bundle) is left out."""
    return any(fnmatch(_norm(dest), pattern) for pattern in DROP_DATA)
