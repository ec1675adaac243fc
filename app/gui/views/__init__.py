"""Panels and dialogs of the main window, one per module."""
