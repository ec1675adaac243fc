"""One owner per store, many clients: open_memory() gives the owner's Memory or a client. Imports anything in engine."""
from .keys import load_or_create_api_key
from .opening import open_memory
from .owner import ServedMemory
from .remote import RemoteMemory

__all__ = ["open_memory", "ServedMemory", "RemoteMemory", "load_or_create_api_key"]
