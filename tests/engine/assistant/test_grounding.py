"""engine/assistant/grounding.py: a reply's names, numbers, dates and words are checked against its memories."""
from __future__ import annotations

from datetime import datetime, timezone

from engine.assistant.grounding import check, stem
from engine.records import MemoryRecord, Scope

SAID = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)


def rec(id_: str, text: str, actor: str | None = "Caroline", event_date: str | None = None) -> MemoryRecord:
    return MemoryRecord(id=id_, memory=text, hash=id_, scope=Scope(user_id="u"), created_at=SAID,
                        updated_at=SAID, timestamp=SAID, role="user", actor=actor, event_date=event_date)


MEMORIES = [rec("a", "Caroline: I went to an LGBTQ support group yesterday and it was so powerful.",
                event_date="2023-05-07"),
            rec("b", "Melanie: I painted a sunrise over the lake last year.", actor="Melanie",
                event_date="2022-01-01/2022-12-31")]


def test_a_reply_that_repeats_the_memories_is_supported_and_cites_them() -> None:
    got = check("Caroline went to an LGBTQ support group on 7 May 2023.", "What did Caroline do?", MEMORIES)
    assert got.supported and got.memory_ids[0] == "a"
    assert check("Melanie painted a sunrise in 2022 [2].", "When did Melanie paint?", MEMORIES).memory_ids == ("b",)


def test_an_invented_name_is_flagged() -> None:
    got = check("Caroline went to the support group with Jessica.", "What did Caroline do?", MEMORIES)
    assert not got.supported and got.claims[0].unsupported == ("Jessica",)


def test_an_invented_date_or_number_is_flagged() -> None:
    wrong_day = check("Melanie painted a sunrise on 20 August 2023.", "When did Melanie paint?", MEMORIES)
    assert not wrong_day.supported and "20 August 2023" in wrong_day.claims[0].unsupported
    number = check("Caroline went to 3 support groups.", "What did Caroline do?", MEMORIES)
    assert not number.supported and number.claims[0].unsupported == ("3",)


def test_invented_content_is_flagged_but_words_of_the_question_are_not() -> None:
    made_up = check("Caroline is a 2019-2024 employee of the company, working in sales.", "Who is Caroline?",
                    MEMORIES)
    assert not made_up.supported
    echo = check("Caroline went to a support group.", "Where did Caroline go last week?", MEMORIES)
    assert echo.supported


def test_a_name_from_one_memory_on_a_fact_from_another_is_flagged() -> None:
    # "What is my cat called?": the cat's name is in one memory, Ingrid in another the model was given
    memories = [rec("cat", "user: My cat is called Miso", actor="user"),
                rec("sis", "Maya: Lovely. Ingrid turned 34 and we had fish soup.", actor="Maya")]
    chimera = check("Ingrid is the one who has a cat named Miso.", "What is my cat called?", memories)
    assert not chimera.supported and "Ingrid" in chimera.claims[0].unsupported
    honest = check("Your cat is called Miso.", "What is my cat called?", memories)
    assert honest.supported and honest.memory_ids == ("cat",)
    both = check("Caroline went to a support group and Melanie painted a sunrise.", "?", MEMORIES)
    assert both.supported and set(both.memory_ids) == {"a", "b"}  # a claim may rest on two memories


def test_claims_are_checked_one_by_one() -> None:
    got = check("Caroline went to a support group. She also adopted a puppy named Rex.", "?", MEMORIES)
    assert [c.supported for c in got.claims] == [True, False]
    assert got.memory_ids == ("a",)  # only the supported claim's memories are cited


def test_stems_meet_across_forms() -> None:
    assert stem("painted") == stem("painting") == stem("paints")
    assert stem("met") == stem("meet") and stem("went") == stem("go")
    assert stem("running") == stem("run") and stem("stopped") == stem("stop") and stem("getting") == stem("get")
    assert stem("falling") == stem("fall") and stem("passed") == stem("pass")  # a double l or s stays


def test_the_possessive_of_a_known_name_is_that_name() -> None:
    """An answer cut from "my slipper" said by Melanie reads "Melanie's slipper": no invented name."""
    slipper = rec("c", "Melanie: Oliver hid his bone in my slipper once!", actor="Melanie")
    assert check("In Melanie's slipper", "Where did Oliver hide his bone?", [slipper]).supported
    assert not check("In Jessica's slipper", "Where did Oliver hide his bone?", [slipper]).supported


def test_a_date_anchored_to_another_day_is_checked_as_the_days_it_means() -> None:
    said = datetime(2023, 6, 9, 10, 0, tzinfo=timezone.utc)
    talk = MemoryRecord(id="t", memory="Caroline: I gave a talk at a school last week.", hash="t",
                        scope=Scope(user_id="u"), created_at=said, updated_at=said, timestamp=said,
                        actor="Caroline", event_date="2023-05-29/2023-06-04")
    q = "When did Caroline give a talk?"
    assert check("The week before 9 June 2023", q, [talk]).supported
    assert check("The weekend before 9 June 2023", q, [talk]).supported
    late = check("The week before 9 August 2023", q, [talk])
    assert not late.supported and late.claims[0].unsupported == ("The week before 9 August 2023",)
    assert not check("Two weeks after 9 June 2023", q, [talk]).supported
    tattoo = MemoryRecord(id="y", memory="Gina: Got the tattoo a few years ago.", hash="y", scope=Scope(user_id="u"),
                          created_at=said, updated_at=said, timestamp=said, actor="Gina", event_date="2020")
    assert check("A few years before 9 June 2023", "When did Gina get her tattoo?", [tattoo]).supported


def test_a_plural_possessive_meets_its_noun() -> None:
    from engine.assistant.grounding import stem

    assert stem("pets'") == stem("pets") == stem("Pets") and stem("parents'") == stem("parent")
