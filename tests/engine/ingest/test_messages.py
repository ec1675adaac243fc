"""engine/ingest/messages.py: mem0's messages argument read into checked Messages."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import InvalidInputError
from engine.ingest.messages import to_messages
from engine.records import Scope

MAYA = Scope(user_id="maya")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_a_text_a_dict_and_a_list_are_all_messages():
    (one,) = to_messages("I like tea", MAYA, WHEN)
    assert (one.role, one.content, one.timestamp, one.scope) == ("user", "I like tea", WHEN, MAYA)
    (two,) = to_messages({"role": "assistant", "content": "Noted", "name": "Loci"}, MAYA, WHEN)
    assert (two.role, two.name) == ("assistant", "Loci")
    many = to_messages([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}], MAYA, WHEN)
    assert [m.content for m in many] == ["a", "b"] and len({m.id for m in many}) == 2


def test_a_message_keeps_its_own_timestamp_and_checked_metadata():
    (msg,) = to_messages([{"content": "hi", "timestamp": "2023-05-08T13:56:00Z", "metadata": {"dia": "D1"}}],
                         MAYA, WHEN)
    assert msg.timestamp == datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc) and msg.metadata == {"dia": "D1"}
    with pytest.raises(InvalidInputError, match="The number at metadata.n is inf"):
        to_messages([{"content": "hi", "metadata": {"n": float("inf")}}], MAYA, WHEN)


def test_blank_messages_are_left_out_but_not_all_of_them():
    kept = to_messages([{"content": "I like tea"}, {"content": " \u200b "}], MAYA, WHEN)
    assert [m.content for m in kept] == ["I like tea"]
    with pytest.raises(InvalidInputError, match="every message is empty"):
        to_messages([{"content": "  "}, {"role": "system", "content": "Be brief."}], MAYA, WHEN)


@pytest.mark.parametrize("messages, message", [
    ([], "the message list is empty"),
    (42, "messages must be a string, a message dict or a list of {'role', 'content'} dicts, not int"),
    (["hi"], "Message 1 must be a dict with 'role' and 'content', not str"),
    ([{"content": "a"}, {"role": "robot", "content": "b"}], "Message 2 has role 'robot'; use one of user"),
    ([{"content": None}], "The content of message 1 must be text, not NoneType"),
    ([{"content": "a", "name": 5}], "The name of message 1 must be text"),
    ([{"content": "a", "timestamp": "someday"}], "Could not read 'someday' as a date/time"),
])
def test_what_cannot_be_a_message_is_refused_with_a_message(messages, message):
    with pytest.raises(InvalidInputError, match=message.replace("{", "\\{").replace("}", "\\}")):
        to_messages(messages, MAYA, WHEN)
