"""Answers and chats from memory (context, answer, chat turn). Imports search, extraction, inference."""
