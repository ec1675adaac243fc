"""mem0 filter and entity shapes over a real store."""
import pytest

from engine import InvalidInputError
from engine.service.mem0_compat import delete_entity, flatten_filters, list_entities, page_of, scope_from


def test_flatten_lifts_plain_and_parts():
    assert flatten_filters({"AND": [{"user_id": "u"}, {"agent_id": "a"}]}) == {"user_id": "u", "agent_id": "a"}
    both = flatten_filters({"AND": [{"user_id": "u"}, {"OR": [{"run_id": "1"}, {"run_id": "2"}]}]})
    assert both == {"user_id": "u", "OR": [{"run_id": "1"}, {"run_id": "2"}]}
    assert scope_from({"AND": [{"user_id": "u"}]}, agent_id="a") == {"user_id": "u", "agent_id": "a"}
    with pytest.raises(InvalidInputError, match="app_id"):
        scope_from(None, app_id="x")


def test_entities_pages_and_entity_delete(memory):
    for i in range(3):
        memory.add(f"fact {i}", user_id="u", infer=False)
    memory.add("agent fact", agent_id="bot", infer=False)
    assert {(e["type"], e["name"], e["total_memories"]) for e in list_entities(memory)} == {
        ("user", "u", 3), ("agent", "bot", 1)}
    page = page_of(memory, {"AND": [{"user_id": "u"}]}, 2, 2, "/v3/memories/")
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"] is None and page["previous"]
    delete_entity(memory, "agent", "bot")
    assert memory.count({"agent_id": "bot"}) == 0
