"""Property: every public Memory method, given arbitrary arguments, succeeds or raises a LociError.

Afterwards the store still opens and holds exactly one vector per memory.
"""
from __future__ import annotations

import math
from datetime import timezone

import pytest
from conftest import record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import LociError, Memory

# text with everything Unicode allows in a Python str: lone surrogates, NULs, controls
TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT,
                    st.just(float("nan")), st.just(2**63), st.just(""), st.just("\x00"),
                    st.just("\ud800"), st.just("*"), st.datetimes(timezones=st.just(timezone.utc)),
                    st.binary(max_size=8), st.just(object()))
ANY = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=4)),
    max_leaves=12)


def _deep(depth: int, leaf: object = "x") -> object:
    value: object = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


DEEP = st.integers(min_value=20, max_value=5000).map(_deep)
SCOPE_KEYS = st.sampled_from(["user_id", "agent_id", "run_id", "$or", "OR", "AND", "$and", "NOT",
                              "memory", "role", "created_at", "event_date", "tag"])
OPERATORS = st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains",
                             "icontains", "$eq", "$in", "like"])
FILTERS = st.recursive(
    st.dictionaries(SCOPE_KEYS, st.one_of(SCALARS, st.dictionaries(OPERATORS, ANY, max_size=2)),
                    max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(["AND", "OR", "NOT", "$or", "$and", "user_id"]),
                                  st.one_of(st.lists(inner, max_size=3), inner), max_size=2),
    max_leaves=8) | DEEP | ANY
MAYBE = lambda s: st.one_of(s, ANY)  # noqa: E731 - a valid value or anything at all
SCOPE = st.one_of(st.just("u"), st.just("v"), st.none(), ANY)
MESSAGES = st.one_of(
    TEXT, st.just("I like green tea"), ANY,
    st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "robot"]),
                                    "content": st.one_of(TEXT, st.just("My sister lives in Oslo"), ANY)},
                                   optional={"name": MAYBE(TEXT), "timestamp": ANY, "metadata": ANY}),
             max_size=3))


class FakeLLM:
    """Stands in for the GGUF model: answers every prompt with an empty object."""

    def complete_json(self, messages, schema, *, max_tokens):  # noqa: ANN001, ANN201
        return "{}"


class IdRef(int):
    """The n-th id stored so far, resolved when the call is made (strategies must not see state)."""


def _resolve(value, ids: list[str]):  # noqa: ANN001, ANN202
    if isinstance(value, IdRef):
        return ids[value % len(ids)]
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    return value


def _calls(draw):  # noqa: ANN001, ANN202
    some_id = st.one_of(st.integers(0, 1000).map(IdRef), ANY)
    name = draw(st.sampled_from([
        "add", "add", "add", "search", "search", "get", "get_all", "update", "delete", "delete_all",
        "history", "count", "entities", "entity_memories", "list_records", "search_records",
        "scopes", "source_messages", "delete_records", "check_integrity", "backup",
        "backup_if_due", "get_record", "history_records", "update_record"]))
    kw: dict = {}
    if name == "add":
        args = (draw(MESSAGES),)
        kw = draw(st.fixed_dictionaries({}, optional={
            "user_id": SCOPE, "agent_id": SCOPE, "run_id": SCOPE, "metadata": st.one_of(ANY, DEEP),
            "timestamp": ANY, "infer": st.one_of(st.booleans(), ANY), "memory_type": ANY,
            "prompt": ANY}))
        kw.setdefault("infer", False)
    elif name in ("search", "search_records"):
        args = (draw(st.one_of(st.just("tea"), TEXT, ANY)),)
        kw = draw(st.fixed_dictionaries({}, optional={
            "top_k": st.one_of(st.integers(-5, 2**64), ANY), "filters": FILTERS, "threshold": ANY,
            "reference_date": ANY, **({"user_id": SCOPE, "limit": ANY, "all_scopes": ANY,
                                      "explain": ANY, "rerank": ANY} if name == "search" else {})}))
    elif name in ("get_all", "list_records"):
        args = ()
        kw = draw(st.fixed_dictionaries({}, optional={
            "filters": FILTERS, "top_k": st.one_of(st.integers(-5, 2**64), ANY),
            "offset": st.one_of(st.integers(-5, 2**64), ANY),
            **({"user_id": SCOPE, "agent_id": SCOPE, "limit": ANY, "all_scopes": ANY}
               if name == "get_all" else {})}))
    elif name == "backup":
        args = (draw(st.one_of(st.just("manual"), ANY)),)
        kw = draw(st.fixed_dictionaries({}, optional={"keep": st.one_of(st.integers(-3, 3), ANY)}))
    elif name == "backup_if_due":
        args = (draw(st.one_of(st.floats(), ANY)),)
    elif name in ("update", "update_record"):
        args = (draw(some_id),)
        kw = draw(st.fixed_dictionaries({}, optional={"text": MAYBE(TEXT), "metadata": st.one_of(ANY, DEEP),
                                                      "actor": ANY}))
    elif name in ("get", "delete", "history", "source_messages", "get_record", "history_records"):
        args = (draw(some_id),)
    elif name == "delete_records":
        args = (draw(st.one_of(st.lists(some_id, max_size=3), ANY)),)
    elif name == "delete_all":
        args = ()
        kw = draw(st.fixed_dictionaries({}, optional={"user_id": st.one_of(st.just("v"), ANY),
                                                      "run_id": ANY}))
    elif name in ("count", "entities"):
        args = (draw(FILTERS),)
    elif name == "entity_memories":
        args = (draw(MAYBE(st.just("Oslo"))), draw(FILTERS))
    elif name == "check_integrity":
        args = ()
        kw = {"full": draw(st.booleans())}
    else:
        args = ()
    return name, args, kw


def _fuzz(tmp_path, embedder, examples: int) -> None:
    store = tmp_path / "store"
    mem = Memory(store, embedder=embedder, llm=FakeLLM())
    raw: list[str] = []
    ids: list[str] = [mem.add("I like green tea", user_id="u", infer=False)["results"][0]["id"]]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one_call(data) -> None:  # noqa: ANN001
        name, args, kw = _calls(data.draw)
        args = tuple(_resolve(a, ids) for a in args)
        record("fuzz calls made")
        try:
            out = getattr(mem, name)(*args, **kw)
        except LociError as exc:
            assert str(exc), "a LociError must say something"
            return
        except Exception as exc:  # noqa: BLE001 - exactly what the property forbids
            record("fuzz raw exceptions")
            raw.append(f"{name}{args!r:.200}{kw!r:.300}: {type(exc).__name__}: {exc}")
            raise
        if name == "add" and isinstance(out, dict):
            ids.extend(r["id"] for r in out["results"] if r.get("event") == "ADD")
        if name in ("search", "get_all", "get") and isinstance(out, dict):
            import json

            json.dumps(out, default=str).encode("utf-8")  # what a front end does with the result

    try:
        one_call()
    finally:
        mem.close()
    assert not raw, raw
    with Memory(store, embedder=embedder) as again:
        report = again.check_integrity(full=True)
        assert report.rows == report.vectors == again.count()
        assert not again.open_report.problems and not report.problems, (again.open_report, report)


def test_public_methods_raise_only_loci_errors(tmp_path, hash_embedder):
    _fuzz(tmp_path, hash_embedder, examples=300)


@pytest.mark.reliability
def test_public_methods_raise_only_loci_errors_long(tmp_path, hash_embedder):
    _fuzz(tmp_path, hash_embedder, examples=3000)


@given(data_dir=st.one_of(st.integers(), st.floats(), st.binary(), st.lists(st.integers()),
                          st.just(""), st.just("   "), st.none().map(lambda _: object())),
       config=st.one_of(st.none(), ANY, st.just({"search": {"oversample": -5}}),
                        st.dictionaries(st.sampled_from(["search", "llm", "embedder", "extraction"]),
                                        st.dictionaries(st.sampled_from(
                                            ["oversample", "n_ctx", "batch_size", "temperature",
                                             "duplicate_threshold", "semantic_weight", "device"]),
                                            SCALARS, max_size=3), max_size=2)))
@settings(max_examples=150, deadline=None, database=None)
def test_constructor_rejects_bad_arguments_with_loci_errors(data_dir, config):
    record("fuzz calls made")
    try:
        Memory(data_dir, config).close()
    except LociError:
        return
    except Exception:
        record("fuzz raw exceptions")
        raise
    assert not math.isnan(0.0)  # unreachable in practice: none of these data_dirs is a folder
    raise AssertionError(f"Memory({data_dir!r}) opened a store")
