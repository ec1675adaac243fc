"""update(): a memory's new text (re-embedded and re-linked) or metadata, through the Writer."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from ..inference.embeddings import Embedder
from ..records import MemoryRecord, content_hash
from ..search.entities import EntityExtractor, links
from ..search.reader import Reader
from ..store.ledger import utcnow
from ..store.writer import Mentions, Writer


class Editor:
    """Edits stored memories: the text is embedded and its entities found again only when it changed."""

    def __init__(self, reader: Reader, writer: Writer, embedder: Embedder,
                 entity_extractor: EntityExtractor) -> None:
        self._reader = reader
        self._writer = writer
        self._embedder = embedder
        self._entity_extractor = entity_extractor

    def update(self, memory_id: str, text: str | None, metadata: dict[str, Any] | None,
               actor: str | None) -> MemoryRecord:
        """The memory with its new text and/or metadata (replacing the old), as written.

        The new text's entities are found before the write lock is taken, so other writers do
        not wait for spaCy (nor for the entity linker's slice that may hold it)."""
        found = self._entity_extractor.extract_many([text])[0] if text is not None else None
        with self._writer.lock:
            old = self._reader.get_record(memory_id)
            new_text = text if text is not None else old.memory
            new_hash = content_hash(new_text)
            new = replace(old, memory=new_text, hash=new_hash,
                          metadata=metadata if metadata is not None else old.metadata,
                          updated_at=utcnow())
            vector = None
            mentions: Mentions = {}
            if new_hash != old.hash:
                assert found is not None  # a new hash comes from new text
                mentions = {new.id: links(found, ())}
                new = replace(new, entities=tuple(t for _, t, _ in mentions[new.id]))
                vector = self._embedder.embed_batch([new_text])
            self._writer.replace(old, new, vector, mentions, actor)
        return new

    def with_entities(self, records: Sequence[MemoryRecord]) -> tuple[list[MemoryRecord], Mentions]:
        """Find the entities each memory mentions (spaCy) merged with those the extractor gave
        (an update links its new text at once; new memories go through the entity linker)."""
        found = self._entity_extractor.extract_many([r.memory for r in records])
        out: list[MemoryRecord] = []
        mentions: Mentions = {}
        for rec, ms in zip(records, found):
            mentions[rec.id] = links(ms, rec.entities)
            out.append(replace(rec, entities=tuple(t for _, t, _ in mentions[rec.id])))
        return out, mentions
