"""engine/ingest/model_owner.py: the language model and extractor follow the settings, a given model stays."""
from __future__ import annotations

import pytest

from engine import ConfigError, LociConfig
from engine.config import LLMConfig
from engine.inference.llm import LlamaCppLLM
from engine.ingest.model_owner import Models


class JsonOnly:
    """A model that can extract (complete_json) but not answer (no complete)."""

    name = "json-only"

    def complete_json(self, messages, schema, *, max_tokens):
        return "{}"


class Chatty(JsonOnly):
    def complete(self, messages, *, max_tokens, stop=None):
        return "ok"


def test_a_given_model_is_used_as_given_whatever_the_settings():
    config = LociConfig()
    given = JsonOnly()
    models = Models(config, given)
    assert models.language_model() is given
    config.llm = LLMConfig(n_threads=3)
    assert models.language_model() is given and models.extractor().llm is given


def test_the_local_model_is_rebuilt_when_its_settings_change_in_place_or_replaced():
    config = LociConfig()
    models = Models(config)
    first = models.language_model()
    assert isinstance(first, LlamaCppLLM) and models.language_model() is first
    config.llm.n_threads = 2
    second = models.language_model()
    assert second is not first and second.config.n_threads == 2
    config.llm = LLMConfig(n_ctx=1024)
    assert models.language_model().config.n_ctx == 1024
    assert second.config.n_threads == 2  # each adapter keeps a copy of the settings it was made with


def test_the_extractor_follows_the_mode_and_the_model():
    config = LociConfig.from_dict({"extraction": {"mode": "off"}})
    models = Models(config, JsonOnly())
    first = models.extractor()
    assert models.extractor() is first and first.scaffold.model == "off"
    config.extraction.mode = "extract"
    assert models.extractor() is not first and models.extractor().scaffold.model == "extract"
    config.extraction.mode = "guess"
    with pytest.raises(ConfigError, match="extraction.mode is 'guess'; use off, type, select or extract."):
        models.extractor()


def test_a_new_local_model_gets_a_new_extractor():
    config = LociConfig.from_dict({"extraction": {"mode": "select"}})
    models = Models(config)
    first = models.extractor()
    config.llm.n_ctx = 1024
    again = models.extractor()
    assert again is not first and again.llm is models.language_model() and again.llm is not first.llm


def test_answers_need_a_model_that_can_complete():
    chatty = Chatty()
    assert Models(LociConfig(), chatty).answering_model() is chatty
    config = LociConfig()
    config.llm.n_ctx = 1024
    stand_in = Models(config, JsonOnly()).answering_model()
    assert isinstance(stand_in, LlamaCppLLM) and stand_in.config.n_ctx == 1024
