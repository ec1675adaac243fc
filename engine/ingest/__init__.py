"""The write side: messages -> episodes and facts -> the store's write path. Imports search, extraction, store, inference, base."""  # noqa: E501
