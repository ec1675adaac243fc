"""Config tree: dict and TOML loading, helpful errors for unknown or wrong settings."""
from __future__ import annotations

import pytest

from engine import ConfigError, LociConfig


def test_defaults_and_overrides():
    cfg = LociConfig.from_dict({"llm": {"n_ctx": 2048, "n_gpu_layers": -1}, "search": {"keyword_weight": 2}})
    assert cfg.llm.n_ctx == 2048 and cfg.llm.n_gpu_layers == -1
    assert cfg.search.keyword_weight == 2.0 and cfg.embedder.device == "auto"


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="Unknown setting 'llm.n_ctxx'. Did you mean 'llm.n_ctx'"):
        LociConfig.from_dict({"llm": {"n_ctxx": 1}})
    with pytest.raises(ConfigError, match="Unknown setting 'serch'. Did you mean 'search'"):
        LociConfig.from_dict({"serch": {}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="'llm.n_ctx' has the wrong type"):
        LociConfig.from_dict({"llm": {"n_ctx": "big"}})


def test_mem0_shaped_config_is_understood():
    cfg = LociConfig.from_dict({"embedder": {"provider": "huggingface", "config": {"model": "m"}},
                                "version": "v1.1"})
    assert cfg.embedder.model == "m"


def test_toml_round_trip(tmp_path):
    cfg = LociConfig.from_dict({"llm": {"model_path": "/models/qwen.gguf", "temperature": 0.1}})
    cfg.save(tmp_path / "config.toml")
    back = LociConfig.load(tmp_path / "config.toml")
    assert back == cfg
    assert LociConfig.load(tmp_path / "missing.toml") == LociConfig()
    (tmp_path / "bad.toml").write_text("[llm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        LociConfig.load(tmp_path / "bad.toml")


@pytest.mark.parametrize("data, name", [
    ({"search": {"oversample": -5}}, "search.oversample"),
    ({"search": {"oversample": 0}}, "search.oversample"),
    ({"search": {"keyword_weight": float("inf")}}, "search.keyword_weight"),
    ({"search": {"default_threshold": float("nan")}}, "search.default_threshold"),
    ({"extraction": {"duplicate_threshold": 1.5}}, "extraction.duplicate_threshold"),
    ({"llm": {"n_ctx": 0}}, "llm.n_ctx"),
    ({"embedder": {"batch_size": -1}}, "embedder.batch_size"),
    ({"embedder": {"device": "toaster"}}, "embedder.device"),
    ({"embedder": {"model": "bad \ud800"}}, "embedder.model"),
])
def test_out_of_range_values_are_named(data, name):
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        LociConfig.from_dict(data)
