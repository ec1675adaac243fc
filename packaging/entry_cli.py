"""Frozen-bundle entry point of the `loci` command line (PyInstaller script)."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.cli import main

    sys.exit(main())
