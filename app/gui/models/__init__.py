"""Qt item models over engine records."""
from .entity_table import EntityTableModel
from .memory_table import MemoryTableModel

__all__ = ["MemoryTableModel", "EntityTableModel"]
