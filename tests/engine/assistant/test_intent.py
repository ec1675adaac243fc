"""engine/assistant/intent.py: statements are remembered as said; questions, requests, small talk are not."""
from __future__ import annotations

import pytest

from engine.assistant.intent import QUESTION, REMEMBER, REQUEST, SMALL_TALK, STATEMENT, classify


@pytest.mark.parametrize("text", ["My cat is called Miso", "I moved to Oslo last month.",
                                  "My appointment is on Friday", "Caroline went to a support group yesterday"])
def test_statements_are_remembered_as_said(text: str) -> None:
    assert classify(text).kind == STATEMENT and classify(text).to_remember == text


@pytest.mark.parametrize("text, kind", [
    ("What do you know about Caroline?", QUESTION), ("When did Melanie paint a sunrise", QUESTION),
    ("Is Ingrid in Bergen", QUESTION), ("I wonder where I put my keys", QUESTION),
    ("Can you remember where I parked?", QUESTION),
    ("Tell me about Caroline", REQUEST), ("Please list my pets", REQUEST),
    ("thanks!", SMALL_TALK), ("How are you doing?", SMALL_TALK)])
def test_questions_requests_and_small_talk_are_not(text: str, kind: str) -> None:
    assert classify(text).kind == kind and classify(text).to_remember is None


def test_a_mixed_message_keeps_only_its_statements() -> None:
    got = classify("Hi! I adopted a dog called Pixel. Any tips for the first week?")
    assert got.kind == STATEMENT and got.to_remember == "I adopted a dog called Pixel."


@pytest.mark.parametrize("text, kept", [
    ("Remember that the wifi password is in the drawer", "The wifi password is in the drawer"),
    ("please remember: dentist on 3 June", "Dentist on 3 June"),
    ("Don't forget I hate cilantro", "I hate cilantro")])
def test_an_explicit_request_to_remember_stores_what_follows(text: str, kept: str) -> None:
    assert classify(text) == classify(text) and classify(text).kind == REMEMBER
    assert classify(text).to_remember == kept
