"""Answers and chat from memory: context within a word budget, the answer, the remembering chat turn. Imports search, extraction, inference."""
