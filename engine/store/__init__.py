"""Ledger, vectors, and what keeps them whole (journal, integrity, backup, export). Imports inference and base."""
