"""Frozen-bundle entry point of the desktop app `loci-gui` (PyInstaller script)."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.gui.application import main

    sys.exit(main())
