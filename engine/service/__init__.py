"""Sharing a store: one owner, many clients; imports and settings changes any front end runs. Imports any room."""
from .keys import load_or_create_api_key
from .opening import open_memory
from .owner import ServedMemory
from .remote import RemoteMemory

__all__ = ["open_memory", "ServedMemory", "RemoteMemory", "load_or_create_api_key"]
