"""The write side: messages -> episodes and facts -> the store's writer. Imports search, extraction, store."""
