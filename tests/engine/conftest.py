"""The engine's real parts wired as the facade wires them, for tests of one room at a time."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine.config import LociConfig
from engine.ingest.adder import Adder
from engine.ingest.editor import Editor
from engine.ingest.model_owner import Models
from engine.search.entities import EntityExtractor
from engine.search.entity_linker import EntityLinker
from engine.search.reader import Reader
from engine.search.retrieval import Retriever
from engine.store.ledger import Ledger
from engine.store.vectors import VectorStore
from engine.store.writer import Writer


@dataclass
class Rooms:
    """A store's ledger and vectors with the write path, the read side and the write side on them."""

    config: LociConfig
    ledger: Ledger
    vectors: VectorStore
    retriever: Retriever
    linker: EntityLinker
    writer: Writer
    reader: Reader
    models: Models
    adder: Adder
    editor: Editor

    def close(self) -> None:
        self.linker.stop()
        self.vectors.close()
        self.ledger.close()


def wire(folder: Path, embedder: Any, config: LociConfig | None = None, llm: Any = None) -> Rooms:
    config = config or LociConfig.from_dict({"extraction": {"mode": "off"}})
    folder.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(folder / "loci.sqlite3")
    vectors = VectorStore(folder)
    lock = threading.RLock()
    entity_extractor = EntityExtractor()
    retriever = Retriever(ledger, vectors, embedder, config.search)
    linker = EntityLinker(ledger, entity_extractor, lock, retriever.link)
    writer = Writer(ledger, vectors, embedder, lock, retriever, linker)
    reader = Reader(ledger, retriever, linker, config)
    models = Models(config, llm)
    adder = Adder(ledger, vectors, embedder, writer, reader, models, config)
    editor = Editor(reader, writer, embedder, entity_extractor)
    return Rooms(config, ledger, vectors, retriever, linker, writer, reader, models, adder, editor)


@pytest.fixture
def make_rooms(tmp_path: Path, embedder: Any) -> Iterator[Callable[..., Rooms]]:
    """make_rooms(config=None, llm=None): real rooms on a fresh folder, closed after the test."""
    made: list[Rooms] = []

    def make(config: LociConfig | None = None, llm: Any = None) -> Rooms:
        made.append(wire(tmp_path / f"rooms{len(made)}", embedder, config, llm))
        return made[-1]

    yield make
    for wired in made:
        wired.close()


@pytest.fixture
def rooms(make_rooms: Callable[..., Rooms]) -> Rooms:
    """Real rooms on a fresh folder, extraction by code only (no language model)."""
    return make_rooms()
