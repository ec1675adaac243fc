"""Process-wide switches: keep libraries off the network and their thread pools polite."""
from __future__ import annotations

import os

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


# OpenMP threads that spin while waiting make a single-query embedding 10-20x slower when
# another process (or the GUI thread) competes for this machine's cores; passive waiting
# keeps it at ~15 ms. Only a default: a value the user set wins.
_DEFAULT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def enforce_offline() -> None:
    """Set the offline/telemetry-off variables before any heavy library is imported."""
    for key, value in _OFFLINE_ENV.items():
        os.environ[key] = value
    for key, value in _DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
