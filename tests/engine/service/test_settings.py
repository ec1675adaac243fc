"""Changing settings of an open store: saved to TOML, LLM/extraction/search at once, folder or embedder reopen."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine import ConfigError, LociConfig, Memory
from engine.config import EmbedderConfig, LLMConfig
from engine.service.settings import SettingsChange, apply_settings, save_settings


def test_llm_extraction_and_search_settings_apply_to_the_open_store(memory: Memory) -> None:
    old = memory.config
    new = LociConfig.from_dict(old.to_dict())
    new.llm = LLMConfig(n_threads=2)
    new.search.default_threshold = 0.3
    change = apply_settings(memory, old, new, memory.data_dir, "")
    assert change == SettingsChange(Path(memory.data_dir), reopen=False)
    assert memory.config.llm.n_threads == 2 and memory.config.search.default_threshold == 0.3
    assert memory.search_records("anything") == []  # the store still answers with the new settings


def test_another_folder_or_embedder_needs_the_store_reopened(memory: Memory, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    old = memory.config
    elsewhere = apply_settings(memory, old, old, memory.data_dir, tmp_path / "other")
    assert elsewhere == SettingsChange(tmp_path / "other", reopen=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert apply_settings(memory, old, old, memory.data_dir, "~/loci").data_dir == tmp_path / "loci"
    new = LociConfig.from_dict(old.to_dict())
    new.embedder = EmbedderConfig(model="sentence-transformers/all-mpnet-base-v2")
    assert apply_settings(memory, old, new, memory.data_dir, None) == SettingsChange(Path(memory.data_dir), True)
    assert memory.config.embedder == old.embedder  # the open store keeps the embedder it was built with


def test_without_an_open_store_only_the_folder_is_decided(tmp_path: Path) -> None:
    config = LociConfig()
    assert apply_settings(None, config, config, None, None) == SettingsChange(None, reopen=False)
    assert apply_settings(None, config, config, None, tmp_path) == SettingsChange(tmp_path, reopen=True)


def test_settings_are_saved_and_read_back(tmp_path: Path) -> None:
    config = LociConfig()
    config.llm = LLMConfig(n_threads=3)
    save_settings(config, tmp_path / "loci.toml")
    assert LociConfig.load(tmp_path / "loci.toml").llm.n_threads == 3


def test_a_settings_file_that_cannot_be_written_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="Cannot save the settings to .*a-file"):
        save_settings(LociConfig(), blocker / "loci.toml")


def test_a_store_owned_by_a_child_process_reopens_for_any_setting_it_reads(memory):
    old = memory.config
    new = dataclasses.replace(old, search=dataclasses.replace(old.search, time_weight=0.4))
    assert apply_settings(memory, old, new, memory.data_dir, None, owner_process=True).reopen
    assert not apply_settings(memory, new, new, memory.data_dir, None, owner_process=True).reopen
