"""engine/assistant/span.py: the part of a memory that answers a question, by the kind of thing asked (real spaCy)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.assistant.answer import key_stems
from engine.assistant.span import (DURATION, FREQUENCY, HOW, NUMBER, WHAT, WHERE, WHO, WHY, YES_NO, answer_spans,
                                   of_the_asked_kind, question_form)
from engine.records import MemoryRecord, Scope


def _said(actor: str, text: str, k: int = 0) -> MemoryRecord:
    t = datetime(2023, 7, 15, tzinfo=timezone.utc)
    return MemoryRecord(id=f"m{k}", memory=f"{actor}: {text}", hash=f"m{k}", scope=Scope(user_id="u"),
                        created_at=t, updated_at=t, timestamp=t, actor=actor)


def _span(question: str, *records: MemoryRecord) -> list[str]:
    return [s.text for s in answer_spans(question, records, key_stems(question))]


@pytest.mark.parametrize("question, kind", [
    ("Who performed at the concert?", WHO), ("Where did Oliver hide his bone?", WHERE),
    ("How many children does Melanie have?", NUMBER), ("How long has she been painting?", DURATION),
    ("How often does she go to the beach?", FREQUENCY), ("Why did she choose the agency?", WHY),
    ("How did Melanie feel after the race?", HOW), ("What did Melanie paint?", WHAT),
    ("In what ways does she help?", WHAT), ("Did Melanie make the bowl?", YES_NO)])
def test_the_kind_of_answer_a_question_asks_for(question, kind):
    assert question_form(question).kind == kind


def test_the_type_noun_and_whether_a_list_is_wanted():
    pets = question_form("What pets does Melanie have?")
    assert (pets.noun, pets.verb, pets.wants_list) == ("pet", "have", True)
    books = question_form("What kind of books does Caroline like?")
    assert books.noun == "book" and books.wants_list  # the noun after "kind of"
    song = question_form("Which song motivates Caroline?")
    assert (song.noun, song.verb, song.wants_list) == ("song", "motivate", False)


def test_who_is_answered_with_a_name_from_the_next_sentence_too():
    rec = _said("Melanie", "Thanks, Caroline! It was Matt Patterson, he is so talented! His songs were amazing.")
    assert _span("Who performed at the concert?", rec) == ["Matt Patterson"]


def test_where_takes_the_place_and_my_becomes_the_speaker():
    rec = _said("Melanie", "Oliver's hilarious! He hid his bone in my slipper once!")
    assert _span("Where did Oliver hide his bone once?", rec) == ["In Melanie's slipper"]


def test_counts_durations_and_frequencies():
    kids = _said("Melanie", "I have 3 kids and they keep me busy.")
    assert _span("How many kids does Melanie have?", kids) == ["3 kids"]
    married = _said("Melanie", "We have been married for 5 years and it still feels new.")
    assert _span("How long has Melanie been married?", married) == ["5 years"]
    beach = _said("Melanie", "We don't go to the beach often, usually only once or twice a year.")
    assert _span("How often does Melanie go to the beach?", beach) == ["Once or twice a year"]


def test_a_quoted_title_answers_what_book():
    rec = _said("Caroline", "I loved \"Becoming Nicole\" by Amy Ellis Nutt. It's a real inspiring story.")
    assert _span("What book did Caroline recommend?", rec) == ["Becoming Nicole"]


def test_what_the_questions_verb_governs_in_the_memory():
    rec = _said("Melanie", "The event was thought-provoking. I'm starting to realize that self-care is really "
                           "important.")
    assert _span("What did Melanie realize after the charity race?", rec) == ["Self-care is really important"]


def test_a_list_question_gathers_one_answer_from_each_memory():
    pets = [_said("Melanie", "Our first pet was a cat named Luna.", 1),
            _said("Melanie", "Our newest pet is a dog called Oliver.", 2),
            _said("Melanie", "Pets bring so much joy to a family.", 3)]
    assert _span("What pet does Melanie love most?", *pets) == ["Cat named Luna"]
    many = answer_spans("What pets does Melanie have?", pets, key_stems("What pets does Melanie have?"))
    # "Pets bring so much joy" names no pet: a list's further items must be of the asked kind
    assert [s.text for s in many] == ["Cat named Luna", "Dog called Oliver"]
    assert [s.record.id for s in many] == ["m1", "m2"]


def test_a_yes_no_question_and_a_memory_with_nothing_new_get_no_span():
    rec = _said("Melanie", "Yeah, I made this bowl in my class.")
    assert _span("Did Melanie make the bowl in her class?", rec) == []
    assert _span("What did Melanie make in her class?", _said("Melanie", "Thanks, Caroline!")) == []


def test_a_count_or_a_length_of_time_must_hold_a_number():
    married = question_form("How long have Mel and her husband been married?")
    assert not of_the_asked_kind("9 June 2023", married)  # a date is no length of time
    assert of_the_asked_kind("5 years", married) and of_the_asked_kind("Five years", married)
    assert not of_the_asked_kind("A lot", question_form("How many kids does she have?"))
    assert of_the_asked_kind("Pottery", question_form("What does she do to relax?"))  # other kinds: not judged


def test_a_span_after_a_key_word_does_not_start_with_its_clitic():
    family = _said("Melanie", "Yeah, my family's awesome and supportive.")
    assert _span("What is Melanie's family?", family) == ["Awesome and supportive"]


def test_the_words_after_a_key_word_that_start_elsewhere_are_no_answer():
    # "been a great experience" / "recently" / "you recommended ...": the sentence goes on about something else
    family = _said("Melanie", "Yeah, Caroline, my family's been great - their love really helped me.", 1)
    assert _span("What did Melanie and her family do while camping?", family) == []
    book = _said("Melanie", "Been reading that book you recommended a while ago.", 2)
    assert _span("What book did Caroline recommend to Melanie?", book) == []
    # the next memory is tried
    often = _said("Melanie", "We went to the beach recently.", 3)
    usual = _said("Melanie", "We don't go to the beach often, usually only once or twice a year.", 4)
    assert _span("How often does Melanie go to the beach?", often, usual) == ["Once or twice a year"]
