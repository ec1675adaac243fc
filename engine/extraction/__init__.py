"""Messages -> candidate memories (sentences, dates, small talk, the extractor). Imports store, inference, base."""
from .cancel import Cancelled, CancelToken
from .extractor import Candidate, ExtractionResult, Extractor, Scaffold
from .prompts import MAX_ITEMS, MEMORY_TYPES, extract_schema, iter_items, select_schema
from .sentences import Statement, guess_type, speaker_of, statements, with_absolute_dates

__all__ = ["Cancelled", "CancelToken", "Candidate", "ExtractionResult", "Extractor", "Scaffold",
           "MAX_ITEMS", "MEMORY_TYPES", "extract_schema", "iter_items", "select_schema", "Statement",
           "guess_type", "speaker_of", "statements", "with_absolute_dates"]
