"""Loci's desktop memory browser (PySide6); talks to the engine only through engine_bridge."""
