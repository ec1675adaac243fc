"""The browser's reads: a refresh brings counts, scopes and the right pages; details bring history and sources."""
from __future__ import annotations

from app.gui import browser_reads
from app.gui.browser_reads import read_details, read_overview


def _fill(memory, n: int, user: str = "maya") -> None:
    memory.add([{"role": "user", "content": f"I planted tree number {i} in the orchard"} for i in range(n)],
               user_id=user, infer=False)


def test_a_small_scope_is_read_whole_with_counts_and_scopes(memory):
    _fill(memory, 4)
    _fill(memory, 2, user="tom")
    ov = read_overview(memory, {"user_id": "maya"}, around=0)
    assert (ov.total, ov.scope_total, ov.scope) == (6, 4, {"user_id": "maya"})
    assert list(ov.rows) == [0] and len(ov.rows[0]) == 4
    assert all(r.scope.user_id == "maya" for r in ov.rows[0])
    assert {(s.kind, s.value, s.count) for s in ov.scopes} >= {("user_id", "maya", 4), ("user_id", "tom", 2)}


def test_a_long_scope_brings_the_first_page_and_the_page_around_the_row_shown(memory, monkeypatch):
    monkeypatch.setattr(browser_reads, "PRELOAD_ROWS", 3)
    monkeypatch.setattr(browser_reads, "PAGE_ROWS", 2)
    _fill(memory, 9)
    ov = read_overview(memory, {}, around=7)
    assert ov.scope_total == 9 and sorted(ov.rows) == [0, 6]
    assert [len(ov.rows[0]), len(ov.rows[6])] == [4, 3]  # two pages from each first row, fewer at the end
    everything = memory.list_records(top_k=9, link=False)
    assert [r.id for r in ov.rows[6]] == [r.id for r in everything[6:9]]


def test_an_empty_store_reads_as_empty(memory):
    ov = read_overview(memory, {"user_id": "nobody"}, around=0)
    assert (ov.total, ov.scope_total, ov.rows) == (0, 0, {0: []})


def test_details_hold_the_memory_its_history_and_where_it_came_from(memory):
    added = memory.add("My sister Ingrid lives in Bergen", user_id="maya", infer=False)["results"][0]
    memory.update(added["id"], "My sister Ingrid lives in Oslo")
    d = read_details(memory, added["id"])
    assert d.record.memory == "My sister Ingrid lives in Oslo"
    assert [h.event for h in d.history] == ["ADD", "UPDATE"]
    assert any("Bergen" in m.content for m in d.sources)
