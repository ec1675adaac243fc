"""Frozen-bundle entry point of the desktop app `loci-gui` (PyInstaller script)."""
import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    # A windowed executable (Windows, macOS .app) has no console: sys.stdout/stderr are None,
    # and libraries that print progress (tqdm) or log would fail on them.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the app)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    from app.gui.application import main

    sys.exit(main())
