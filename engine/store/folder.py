"""A data folder as a whole: opened for writing (embedder, vectors, ledger), kept private, measured on disk."""
from __future__ import annotations

import dataclasses
import logging
import os
import stat
from pathlib import Path

from ..config import EmbedderConfig, LociConfig
from ..errors import ConfigError, StoreError
from ..inference.embeddings import Embedder
from ..inference.onnx_embedder import effective_precision
from .backup import create_snapshot, schema_version
from .integrity import (LEDGER_FILE, damaged_ledger_error, ledger_is_missing, missing_ledger_error,
                        move_vectors_aside, quick_problems)
from .ledger import SCHEMA_VERSION as LEDGER_SCHEMA
from .ledger import Ledger
from .vectors import Manifest, VectorStore, WriterLock

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def lock_folder(data_dir: Path) -> WriterLock:
    """The data folder, made when missing, with this process's writer lock held."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise StoreError(f"Cannot create the data folder {data_dir}: {exc}") from exc
    lock = WriterLock(data_dir)
    lock.acquire()
    return lock


def store_embedder_config(data_dir: Path, config: EmbedderConfig) -> EmbedderConfig:
    """The embedder settings a data folder opens with: a store built with the same model at another
    precision (fp32, int8) keeps its own until a re-embed moves it, so its vectors and the
    queries' always match."""
    if config.precision == "auto":  # int8 where the model runs on onnxruntime on the CPU
        config = dataclasses.replace(config, precision=effective_precision(config))
    recorded = Manifest(data_dir).recorded_embedder()
    if recorded is None:
        return config
    model, _, precision = recorded.partition("@")
    precision = precision or "fp32"
    if model != config.model or precision == config.precision:
        return config
    log.info("the store in %s was built with the %s embedding model and opens with it (embedder.precision "
             "is %s: engine/store/reembed.py moves it in the background)", data_dir, precision, config.precision)
    return dataclasses.replace(config, precision=precision)


def open_store(data_dir: Path, config: LociConfig, embedder: Embedder) -> tuple[VectorStore, Ledger]:
    """The folder's vector store and ledger (the caller holds its writer lock).

    Refuses an embedder other than the one that made the folder, and a lost SQLite file beside
    surviving vectors; a schema migration is preceded by a backup. Nothing stays open on error.
    """
    if not embedder.dimension:
        load = getattr(embedder, "load", None)
        if load:
            load()
    check_dimension(config, embedder)
    Manifest(data_dir).check_or_write(embedder.name, embedder.dimension)
    store = config.store
    ledger_path = (Path(store.history_db_path).expanduser() if store.history_db_path
                   else data_dir / LEDGER_FILE)
    missing = ledger_is_missing(ledger_path)
    if not missing:
        problems = quick_problems(ledger_path)
        if problems:
            raise damaged_ledger_error(ledger_path, problems)
    vectors = _open_vectors(data_dir, config, repairable=not missing)
    try:
        if missing and vectors.count() > 0:
            raise missing_ledger_error(data_dir)
        if 0 < schema_version(ledger_path) < LEDGER_SCHEMA:
            create_snapshot(data_dir, reason="pre-migration")
        ledger = Ledger(ledger_path)
        make_private(data_dir)  # a store made by an older Loci (0644 files in a 0755 folder) too
        return vectors, ledger
    except BaseException:
        vectors.close()
        raise


def _open_vectors(data_dir: Path, config: LociConfig, *, repairable: bool) -> VectorStore:
    """The folder's Chroma; an unreadable local one is moved aside and started afresh when the
    ledger can rebuild it (the open's reconcile then re-embeds every memory, with progress)."""
    store = config.store

    collection = None if store.chroma_host else Manifest(data_dir).recorded_collection()  # after a re-embed

    def make() -> VectorStore:
        return VectorStore(data_dir, collection or store.collection_name, host=store.chroma_host,
                           port=store.chroma_port, ssl=store.chroma_ssl)

    try:
        vectors = make()
    except StoreError as exc:
        if store.chroma_host or not repairable:
            raise
        move_vectors_aside(data_dir, str(exc.__cause__ or exc))
        return make()
    if not store.chroma_host and repairable:
        try:  # a damaged page may only show when read
            vectors.count()
            vectors.probe()
        except StoreError as exc:
            vectors.close()
            move_vectors_aside(data_dir, str(exc.__cause__ or exc))
            return make()
    return vectors


def check_dimension(config: LociConfig, embedder: Embedder) -> None:
    """A dimension given in the settings must be the one the embedding model makes."""
    wanted = config.embedder.dimension
    if wanted and embedder.dimension and wanted != embedder.dimension:
        raise ConfigError(f"embedding_dims is {wanted}, but the embedding model '{embedder.name}' makes "
                          f"{embedder.dimension}-dimensional vectors. Set it to {embedder.dimension} "
                          "or leave it out.")


def disk_usage(data_dir: Path, ledger: Ledger) -> int:
    """Bytes the folder takes on disk, measured as after a restart (the SQLite log is folded in)."""
    ledger.checkpoint()
    total = 0
    # os.walk skips a folder that goes while it walks (a backup's .partial folder renamed when it
    # completes); a file that goes is skipped below.
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = os.path.join(root, name)
            try:
                if os.path.isfile(path):
                    total += os.path.getsize(path)
            except OSError:
                continue
    return total


def make_private(data_dir: Path) -> int:
    """Make the folder readable by its owner only (POSIX): folders 0700, files 0600; returns how many changed.

    Called when a store opens and closes, so files a session created (Chroma's segments, backups)
    are private too, and an older store is fixed. Symbolic links are left alone; Windows keeps the
    profile folder's ACLs, which already limit it to the user.
    """
    if os.name != "posix":
        return 0
    changed = 0
    for root, dirs, files in os.walk(data_dir):
        for name, mode in [(root, PRIVATE_DIR)] + [(os.path.join(root, f), PRIVATE_FILE) for f in files]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
                    continue
                if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                    continue
                os.chmod(name, mode)
                changed += 1
            except FileNotFoundError:
                continue  # removed meanwhile (a temp file)
            except OSError as exc:
                log.warning("cannot make %s private: %s", name, exc)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    if changed:
        log.info("made %d files and folders in %s private", changed, data_dir)
    return changed
