"""engine/store/folder.py: a data folder opened (embedder checked, old schemas backed up) and measured."""
from __future__ import annotations

import os
import sqlite3
import tarfile
from pathlib import Path

import numpy as np
import pytest

from engine import ConfigError, LociConfig, StoreError
from engine.store.backup import list_snapshots
from engine.config import EmbedderConfig
from engine.store.folder import check_dimension, disk_usage, open_store, store_embedder_config
from engine.store.ledger import SCHEMA_VERSION
from engine.store.vectors import VectorStore

DATA = Path(__file__).resolve().parents[1] / "data"


class OtherEmbedder:
    """Another model's name and size (the Embedder protocol), to open a folder it did not make."""

    name = "other-model"
    dimension = 8

    def embed_batch(self, texts):
        return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)


def test_a_new_folder_is_opened_and_remembers_its_embedder(tmp_path, embedder):
    vectors, ledger = open_store(tmp_path, LociConfig(), embedder)
    try:
        assert ledger.count() == 0 and vectors.count() == 0
    finally:
        vectors.close()
        ledger.close()
    with pytest.raises(StoreError, match="was built with the embedding model"):
        open_store(tmp_path, LociConfig(), OtherEmbedder())


def test_a_dimension_in_the_settings_must_match_the_model(embedder):
    check_dimension(LociConfig.from_dict({"embedder": {"dimension": embedder.dimension}}), embedder)
    with pytest.raises(ConfigError, match=f"embedding_dims is 512, but the embedding model '{embedder.name}' "
                                          f"makes {embedder.dimension}-dimensional vectors"):
        check_dimension(LociConfig.from_dict({"embedder": {"dimension": 512}}), embedder)


def test_a_lost_ledger_beside_vectors_is_refused_and_nothing_stays_open(tmp_path, embedder, monkeypatch):
    vectors, ledger = open_store(tmp_path, LociConfig(), embedder)
    vectors.upsert(["a"], embedder.embed_batch(["I like tea"]), [{"user_id": "u", "ts": 0}])
    vectors.close()
    ledger.close()
    (tmp_path / "loci.sqlite3").unlink()
    closed: list[VectorStore] = []
    real_close = VectorStore.close
    monkeypatch.setattr(VectorStore, "close", lambda self: closed.append(self) or real_close(self))
    with pytest.raises(StoreError, match="is missing or empty"):
        open_store(tmp_path, LociConfig(), embedder)
    assert len(closed) == 1


def test_an_older_schema_is_backed_up_before_it_is_migrated(tmp_path, embedder):
    with tarfile.open(DATA / "store_v2.tar.gz") as tar:  # made by Loci at schema 2
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "store_v2"
    vectors, ledger = open_store(folder, LociConfig(), embedder)
    vectors.close()
    ledger.close()
    assert [s.reason for s in list_snapshots(folder)] == ["pre-migration"]
    db = sqlite3.connect(folder / "loci.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_disk_usage_skips_a_folder_that_goes_while_it_counts(tmp_path, embedder, monkeypatch):
    """A daily backup renames its .partial folder when done; the size shown must not fail on it."""
    vectors, ledger = open_store(tmp_path, LociConfig(), embedder)
    try:
        partial = tmp_path / "backups" / ".20261204T015457Z-daily.partial"
        partial.mkdir(parents=True)
        (partial / "loci.sqlite3").write_bytes(b"x" * 1000)
        whole = disk_usage(tmp_path, ledger)
        scandir = os.scandir

        def gone(path):  # listed by its parent, renamed before it is read
            if str(path) == str(partial):
                raise FileNotFoundError(2, "No such file or directory", str(path))
            return scandir(path)

        monkeypatch.setattr(os, "scandir", gone)
        assert disk_usage(tmp_path, ledger) == whole - 1000
    finally:
        vectors.close()
        ledger.close()


def test_disk_usage_counts_every_file_with_the_sqlite_log_folded_in(tmp_path, embedder):
    vectors, ledger = open_store(tmp_path, LociConfig(), embedder)
    try:
        before = disk_usage(tmp_path, ledger)
        with ledger.transaction() as db:
            db.execute("CREATE TABLE filler (x BLOB)")
            db.execute("INSERT INTO filler VALUES (?)", (b"x" * 200_000,))
        after = disk_usage(tmp_path, ledger)
        assert after - before >= 200_000
        assert not (tmp_path / "loci.sqlite3-wal").exists() or (tmp_path / "loci.sqlite3-wal").stat().st_size == 0
        assert after == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    finally:
        vectors.close()
        ledger.close()


def _modes(folder: Path) -> dict[str, int]:
    import stat

    return {str(p.relative_to(folder)) or ".": stat.S_IMODE(p.lstat().st_mode)
            for p in [folder, *folder.rglob("*")] if not p.is_symlink()}


def _not_private(folder: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in _modes(folder).items()
            if mode != (0o700 if (folder / name).is_dir() else 0o600)}


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX file modes")
def test_a_store_is_private_after_create_and_after_use(tmp_path, embedder):
    import os

    from engine import Memory

    old = os.umask(0o022)  # a usual desktop umask: the store must not rely on the caller's
    try:
        with Memory(tmp_path / "store", embedder=embedder) as mem:
            assert _not_private(tmp_path / "store") == {}  # as created
            mem.add("Maya lives in Oslo", user_id="maya", infer=False)
            mem.backup()
        assert (tmp_path / "store" / "backups").is_dir()
        assert _not_private(tmp_path / "store") == {}  # segments and the backup made meanwhile too
    finally:
        os.umask(old)


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX file modes")
def test_an_older_world_readable_store_is_made_private_on_open(tmp_path, embedder):
    import os

    from engine import Memory
    from engine.store.folder import make_private

    store = tmp_path / "store"
    with Memory(store, embedder=embedder) as mem:
        mem.add("Maya lives in Oslo", user_id="maya", infer=False)
    for path in [store, *store.rglob("*")]:  # as an older Loci left it
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the store's")
    os.chmod(outside, 0o644)
    (store / "link").symlink_to(outside)
    with Memory(store, embedder=embedder) as mem:
        assert _not_private(store) == {}
        assert mem.count({"user_id": "maya"}) == 1
    assert oct(outside.stat().st_mode & 0o777) == "0o644"  # a link is not followed
    assert make_private(store) == 0


def test_a_folder_opens_with_the_precision_that_built_it(tmp_path):
    default, int8 = EmbedderConfig(), EmbedderConfig(precision="int8")
    assert default.precision == "auto"
    assert store_embedder_config(tmp_path, default).precision == "int8"  # the default for new folders
    assert store_embedder_config(tmp_path, int8) is int8  # a new folder takes the setting
    manifest = tmp_path / "manifest.json"
    manifest.write_text(f'{{"schema_version": 1, "embedder": "{default.model}@int8", "dimension": 384}}')
    assert store_embedder_config(tmp_path, default).precision == "int8"
    assert store_embedder_config(tmp_path, int8) is int8
    manifest.write_text(f'{{"schema_version": 1, "embedder": "{default.model}", "dimension": 384}}')
    assert store_embedder_config(tmp_path, int8).precision == "fp32"
    other = EmbedderConfig(model="another/model", precision="int8")
    assert store_embedder_config(tmp_path, other) is other  # another model: open_store refuses it
    manifest.write_text("{not json")
    assert store_embedder_config(tmp_path, int8) is int8  # open_store says the manifest is damaged
