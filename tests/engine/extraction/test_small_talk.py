"""engine/extraction/small_talk.py: greetings and thanks are small talk, anything with a fact is not."""
from __future__ import annotations

import pytest

from engine.extraction.small_talk import is_small_talk


@pytest.mark.parametrize("text", ["Thanks, good night!", "Hey!", "Haha, yeah, sounds great", "Yep.",
                                  "Understood", "Congrats!!", "Maya: Thank you so much!", "Bye, take care",
                                  "Glad to hear that!", "   "])
def test_pure_small_talk(text):
    assert is_small_talk(text)


@pytest.mark.parametrize("text", ["Thanks, see you in Oslo", "Good night, my flight is at 6",
                                  "I love my new job", "Great, I adopted a cat", "Night shift again tomorrow",
                                  "Thanks for the 3 tips"])
def test_messages_with_content_are_kept(text):
    assert not is_small_talk(text)
