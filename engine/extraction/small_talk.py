"""Recognises pure small talk ("Thanks, good night!") that is not worth storing as a memory."""
from __future__ import annotations

import re

# Words that carry no fact on their own: greetings, thanks, reactions, farewells and fillers.
# A message made only of these (in any order, any punctuation) is small talk.
SMALL_TALK_WORDS = frozenset("""
hi hey hello hiya yo heya morning evening afternoon night good great nice cool awesome wow ok okay
sure yes yeah yep yup no nope nah thanks thank you thx ty much so very lol lmao haha hahaha hehe omg
bye goodbye see ya later cheers welcome np problem sounds amazing fantastic wonderful lovely glad
happy hear to that's that is it's it sweet true right totally absolutely indeed agreed congrats
congratulations how are doing going been what's up sup all well fine too the a an and oh ah hmm um
take care talk soon have day care love luck best wishes same here me neat dear friend buddy pal
understood gotcha got noted alright aww ooh yay great xoxo night sleep tight sweet dreams tonight
again you're your
""".split())
_WORD = re.compile(r"[a-z']+")
_SPEAKER = re.compile(r"^\s*[^:\n]{1,40}:\s+")


def is_small_talk(text: str) -> bool:
    """True when every word of the message is a greeting, thanks, reaction or filler.

    A leading "Name: " (a transcript speaker) is ignored. Messages with any other word, a
    number or a name ("Thanks, see you in Oslo") are not small talk.
    """
    body = _SPEAKER.sub("", text, count=1).lower().replace("\u2019", "'")
    if any(ch.isdigit() for ch in body):
        return False
    words = _WORD.findall(body)
    return not words or all(w.strip("'") in SMALL_TALK_WORDS for w in words)
