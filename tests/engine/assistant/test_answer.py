"""engine/assistant/answer.py and Memory.answer: cited memories, dates made absolute, the real model end to end."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine import Memory
from engine.assistant.answer import Answer, read_reply
from engine.assistant.grounding import check
from engine.inference.llm import LlamaCppLLM
from engine.records import MemoryRecord, Scope

WHEN = "2023-05-08T13:56:00Z"


class ReplayLLM:
    """Implements `complete` by replaying recorded replies, and keeps the prompts it was given."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 stop: list[str] | None = None) -> str:
        self.calls.append(messages)
        assert max_tokens > 0
        return self.replies[min(len(self.calls), len(self.replies)) - 1]


@pytest.fixture
def store(tmp_path, embedder):
    with Memory(tmp_path / "store", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Maria", "content": "I met Jean at the pottery class yesterday."},
                 {"role": "user", "name": "John", "content": "My dog Max loves the beach."}],
                user_id="u", timestamp=WHEN)
        yield mem


def _line_of(llm: ReplayLLM, needle: str) -> int:
    prompt = llm.calls[0][-1]["content"]
    for line in prompt.split("\n"):
        if needle in line and line.startswith("["):
            return int(line[1:line.index("]")])
    raise AssertionError(f"{needle!r} not in the prompt:\n{prompt}")


def test_answer_returns_the_memories_the_model_cites(store):
    probe = ReplayLLM("She met Pierre at the market")
    unchecked = store.answer("Who did Maria meet?", user_id="u", llm=probe)
    assert not unchecked.supported and unchecked.text == "Jean"  # the name cut from the memory
    n = _line_of(probe, "Jean")
    llm = ReplayLLM(f"Jean [{n}] [99]")
    result = store.answer("Who did Maria meet?", user_id="u", llm=llm)
    assert isinstance(result, Answer) and result.text == "Jean"
    (cited,) = result.memory_ids
    assert "Jean" in store.get_record(cited).memory and cited in result.context_ids
    assert 0 < result.context_words <= 300
    assert "Question: Who did Maria meet?" in llm.calls[0][-1]["content"]


def test_without_marks_the_lines_sharing_the_answers_words_are_cited(store):
    result = store.answer("What does John's dog love?", user_id="u", llm=ReplayLLM("the beach"))
    assert result.memory_ids and all("beach" in store.get_record(i).memory for i in result.memory_ids)


def test_a_relative_date_in_the_answer_is_resolved_from_when_it_was_said():
    t = datetime(2023, 5, 8, tzinfo=timezone.utc)
    rec = MemoryRecord(id="a", memory="I met Jean yesterday", hash="a", scope=Scope(user_id="u"),
                       created_at=t, updated_at=t, timestamp=t)
    from engine.assistant.answer import absolute_dates

    text, cited = read_reply("yesterday [1]", [rec])
    assert cited == [rec] and absolute_dates(text, rec.timestamp) == "7 May 2023"


def test_the_budget_bounds_the_context_and_an_empty_store_says_so(store, tmp_path, embedder):
    small = store.answer("Who did Maria meet?", user_id="u", budget_words=12, llm=ReplayLLM("Jean"))
    assert small.context_words <= 12
    nothing = store.answer("Who did Maria meet?", user_id="nobody", llm=ReplayLLM("Jean"))
    assert nothing.memory_ids == () and nothing.abstained and nothing.text == "I don't have a memory of that."


def test_the_real_model_answers_from_the_memories(store):
    result = store.answer("Who did Maria meet at the pottery class?", user_id="u", llm=LlamaCppLLM())
    assert result.text and result.context_ids
    assert set(result.memory_ids) <= set(result.context_ids)


def test_a_time_question_is_answered_with_just_the_date():
    from engine.assistant.answer import date_answer

    t = datetime(2023, 5, 8, tzinfo=timezone.utc)
    rec = MemoryRecord(id="a", memory="I met Jean yesterday", hash="a", scope=Scope(user_id="u"),
                       created_at=t, updated_at=t, timestamp=t, event_date="2023-05-07")
    assert date_answer("Maria met Jean on June 26, 2023.", rec) == "26 June 2023"
    assert date_answer("Maria met Jean yesterday.", rec) == "7 May 2023"
    assert date_answer("The answer is: 2023-07-16", rec) == "16 July 2023"
    assert date_answer("at the pottery class", rec) == "7 May 2023"


def test_when_is_answered_from_the_stored_event_date_without_the_model(store):
    llm = ReplayLLM("20 August 2023")  # what a small model invents
    result = store.answer("When did Maria meet Jean?", user_id="u", llm=llm)
    assert result.text == "7 May 2023" and llm.calls == []  # "yesterday", said on 8 May 2023
    assert "Jean" in store.get_record(result.memory_ids[0]).memory


def test_a_date_said_relative_to_a_day_is_answered_as_said_anchored_to_that_day(tmp_path, embedder):
    with Memory(tmp_path / "rel", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Caroline", "content": "Caroline: I gave a talk at a school last week."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: Last Friday I went to a pride parade."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: We went biking this past weekend."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: Yesterday I adopted a cat."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: I got my tattoo a few years ago."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: I came to Oslo ten years ago."}],
                user_id="u", timestamp="2023-06-09T10:00:00Z", infer=False)  # a Friday
        llm = ReplayLLM("20 August 2023")
        # "last week" is no precise range: said on 9 June 2023, it is the week before that day
        talk = mem.answer("When did Caroline give a talk at a school?", user_id="u", llm=llm)
        assert talk.text == "The week before 9 June 2023"
        assert check(talk.text, "When did Caroline give a talk at a school?",
                     [mem.get_record(i) for i in talk.memory_ids]).supported  # the check reads it as those days
        assert mem.answer("When did Caroline go biking?", user_id="u", llm=llm).text == "The weekend before 9 June 2023"
        assert mem.answer("When did Caroline go to a pride parade?", user_id="u", llm=llm).text == "Friday 2 June 2023"
        assert mem.answer("When did Caroline adopt a cat?", user_id="u", llm=llm).text == "8 June 2023"
        assert mem.answer("When did Caroline get her tattoo?", user_id="u", llm=llm).text == \
            "A few years before 9 June 2023"  # no year was named
        assert mem.answer("When did Caroline come to Oslo?", user_id="u", llm=llm).text == "2013"
        assert llm.calls == []


def test_memory_silent_on_a_topic_or_a_person_says_so(store):
    llm = ReplayLLM("Paris")
    unknown = store.answer("What is Maria's favourite opera?", user_id="u", llm=llm)
    assert unknown.abstained and unknown.text == "I don't have a memory of that." and unknown.memory_ids == ()
    other_person = store.answer("Who did John meet at the pottery class?", user_id="u", llm=llm)
    assert other_person.abstained  # Maria met Jean there, not John
    assert llm.calls == []


def test_a_memory_that_only_addresses_the_person_asked_about_is_not_about_them(tmp_path, embedder):
    with Memory(tmp_path / "s2", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie",
                  "content": "Melanie: Hey Caroline, I ran a charity race for mental health last Saturday!"}],
                user_id="u", timestamp=WHEN, infer=False)
        llm = ReplayLLM("self-care is important")
        assert mem.answer("What did Caroline realize after her charity race?", user_id="u", llm=llm).abstained
        assert not mem.answer("What did Melanie run for mental health?", user_id="u", llm=llm).abstained


def _said(actor: str, text: str, k: int = 0) -> MemoryRecord:
    t = datetime(2023, 5, 8, tzinfo=timezone.utc)
    return MemoryRecord(id=f"m{k}", memory=f"{actor}: {text}", hash=f"m{k}", scope=Scope(user_id="u"),
                        created_at=t, updated_at=t, timestamp=t, actor=actor)


def test_what_a_speaker_says_to_someone_else_is_not_about_the_speaker():
    from engine.assistant.answer import relevant_memories

    cheer = _said("Caroline", "That charity race sounds great, Mel! I'm so glad it went well.", 1)
    sympathy = _said("Caroline", "Oops, sorry about the accident! Thank goodness your son is okay.", 2)
    own = _said("Caroline", "My son was scared after the accident, but he is fine now.", 3)
    assert relevant_memories("What did Caroline realize after her charity race?", [cheer]) == []
    assert relevant_memories("How did Caroline's son handle the accident?", [sympathy, own]) == [own]
    # spoken to a person the question also names: the "you" is someone it asks about
    recommend = _said("Melanie", "Thanks, Caroline! Been reading that book you recommended.", 4)
    assert relevant_memories("What book did Caroline recommend to Melanie?", [recommend]) == [recommend]


def test_a_turn_reacting_to_the_listener_is_not_about_the_speaker():
    from engine.assistant.answer import relevant_memories

    reaction = _said("Caroline", "Sounds special, those beach trips! Do you have other summer traditions?", 1)
    sorry = _said("Caroline", "Oops, sorry 'bout the accident! Must have been scary for you guys.", 2)
    assert relevant_memories("How often does Caroline go to the beach?", [reaction]) == []
    assert relevant_memories("How did Caroline feel after the accident?", [sorry]) == []
    # one's own news, the subject left out, closed by a short question back: still the speaker's
    news = _said("Jon", "Thanks, Gina. Still working on opening a dance studio. How about you?", 3)
    assert relevant_memories("What is Jon working on opening?", [news]) == [news]


def test_a_short_name_finds_the_speaker_who_goes_by_it():
    from engine.assistant.answer import relevant_memories

    married = _said("Melanie", "We have been married for five years and my husband still makes me laugh.", 1)
    other = _said("Caroline", "My husband and I got married in Sweden.", 2)
    assert relevant_memories("How long have Mel and her husband been married?", [other, married]) == [married]


def test_generic_question_words_are_not_key_words():
    from engine.assistant.answer import key_stems

    assert key_stems("What is Melanie's reason for getting into running?") == {"run"}
    assert key_stems("What did Mel do after the pottery workshop recently?") == {"potter", "worksh"}
    # a date is matched against when a memory was said, not its words; "describe" frames what was said
    assert key_stems("What painting did Melanie show to Caroline on October 13, 2023?") == {"paint", "show"}
    assert key_stems("How does Gina describe the studio that Jon opened?") == {"studio", "open"}


def test_with_only_a_near_miss_in_memory_it_says_it_does_not_know(tmp_path, embedder):
    with Memory(tmp_path / "s3", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Caroline",
                  "content": "Caroline: This necklace is a gift from my grandma in Sweden."}],
                user_id="u", timestamp=WHEN, infer=False)
        for reply in ("A watch from his workshop", "A necklace [1]"):  # invented, or grounded in the near miss
            llm = ReplayLLM(reply)
            near = mem.answer("What was grandpa's gift to Caroline?", user_id="u", llm=llm)  # 1 of 2 key words
            assert near.abstained and near.text == "I don't have a memory of that." and near.memory_ids == ()
            assert llm.calls == []  # the model is not asked: its reply could only be about the grandma's gift
        invented = ReplayLLM("A watch from his workshop")
        close = mem.answer("What gift did Caroline get from her grandma?", user_id="u", llm=invented)
        assert not close.abstained and close.text == "Necklace"  # what the memory says the gift is


def test_a_reply_that_only_repeats_the_question_is_no_answer(tmp_path, embedder):
    with Memory(tmp_path / "s4", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Caroline",
                  "content": "Caroline: Last Friday I went to an LGBTQ+ counseling workshop. "
                             "It was so enlightening."}], user_id="u", timestamp=WHEN, infer=False)
        vague = mem.answer("What workshop did Caroline go to?", user_id="u", llm=ReplayLLM("A workshop [1]"))
        assert not vague.supported and vague.text == "LGBTQ+ counseling workshop"
        useful = mem.answer("What workshop did Caroline go to?", user_id="u",
                            llm=ReplayLLM("An LGBTQ+ counseling workshop [1]"))
        assert useful.supported and useful.text == "An LGBTQ+ counseling workshop"


def test_a_short_quoted_sentence_brings_the_next_one():
    from engine.assistant.answer import adds_nothing, found_reply

    t = datetime(2023, 7, 15, tzinfo=timezone.utc)
    rec = MemoryRecord(id="m", memory="Melanie: Last Fri I finally took my kids to a pottery workshop. "
                       "We all made our own pots, it was fun! Then we went home.", hash="m",
                       scope=Scope(user_id="u"), created_at=t, updated_at=t, timestamp=t, actor="Melanie")
    quoted = found_reply(rec, "What did Melanie's kids make at the pottery workshop?")
    assert "pottery workshop. We all made our own pots, it was fun! …" in quoted
    assert "Then we went home" not in quoted and quoted.endswith("said by Melanie on 15 July 2023.")
    assert adds_nothing("Pottery workshop", "What did Melanie's kids make at the pottery workshop?")
    assert not adds_nothing("Pots [1]", "What did Melanie's kids make at the pottery workshop?")


def test_an_unsupported_reply_is_asked_again_on_the_best_memory_alone(tmp_path, embedder):
    with Memory(tmp_path / "s5", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Jon",
                  "content": "Jon: I'm after Marley flooring, which is what dance studios usually use."}],
                user_id="u", timestamp=WHEN, infer=False)
        llm = ReplayLLM("Oak parquet [1]", "Marley flooring")
        got = mem.answer("What kind of flooring is Jon after?", user_id="u", llm=llm)
        assert got.text == "Marley flooring" and got.supported and not got.abstained
        assert got.claims and all(c.supported for c in got.claims)  # the claims of the answer shown
        assert len(llm.calls) == 2 and "[1] Jon: I'm after Marley flooring" in llm.calls[1][-1]["content"]
        assert "Marley" in mem.get_record(got.memory_ids[0]).memory
        invented_twice = mem.answer("What kind of flooring is Jon after?", user_id="u",
                                    llm=ReplayLLM("Oak parquet [1]"))
        assert not invented_twice.supported and invented_twice.text == "Marley flooring"
        assert invented_twice.memory_ids == got.memory_ids


def test_a_reply_may_repeat_the_question_but_not_the_part_memory_lacks(tmp_path, embedder):
    with Memory(tmp_path / "s6", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Caroline",
                  "content": "Caroline: Seeing my mentee's face light up when they saw the support was the best."}],
                user_id="u", timestamp=WHEN, infer=False)
        q = "What setback did Caroline face recently?"  # half its key words: face, but no setback
        got = mem.answer(q, user_id="u", llm=ReplayLLM("A setback when my mentee's face lit up [1]"))
        assert got.abstained and got.text == "I don't have a memory of that."


def test_who_is_not_answered_with_the_person_spoken_to(tmp_path, embedder):
    with Memory(tmp_path / "s11", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie", "content": "Melanie: Thanks, Caroline! It was Matt Patterson "
                  "who performed at the concert, he is so talented!"}], user_id="u", timestamp=WHEN, infer=False)
        got = mem.answer("Who performed at Melanie's concert?", user_id="u", llm=ReplayLLM("Caroline [1]"))
        assert got.text == "Matt Patterson" and got.memory_ids  # cut from the memory: the one who performed
        said = mem.answer("Who performed at Melanie's concert?", user_id="u", llm=ReplayLLM("Matt Patterson [1]"))
        assert said.text == "Matt Patterson" and said.supported


def test_a_reply_copying_a_speakers_words_is_told_in_the_third_person(tmp_path, embedder):
    with Memory(tmp_path / "s10", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie", "content": "Melanie: We celebrated my daughter's birthday "
                  "with a concert last night."}], user_id="u", timestamp=WHEN, infer=False)
        q = "Whose birthday did Melanie celebrate with a concert?"
        got = mem.answer(q, user_id="u", llm=ReplayLLM("My daughter's birthday [1]"))
        assert got.text == "Melanie's daughter's birthday" and got.supported  # not the user's daughter
        prefixed = mem.answer(q, user_id="u", llm=ReplayLLM("Melanie: my daughter's birthday"))
        assert prefixed.text == "Melanie's daughter's birthday"  # a copied line prefix is no answer


def test_a_reply_that_restates_the_question_is_cut_to_its_answer(tmp_path, embedder):
    from engine.assistant.answer import without_restatement

    q = "What did the charity race raise awareness for?"
    assert without_restatement("A charity race raised awareness for mental health", q) == "Mental health"
    assert without_restatement("Mental health", q) == "Mental health"
    # one word of the question is no restatement ("Melanie's daughter" to "Whose birthday did Melanie ...")
    assert without_restatement("Melanie's daughter", "Whose birthday did Melanie celebrate?") == "Melanie's daughter"
    assert without_restatement("The charity race", q) == "The charity race"  # nothing new left: kept whole
    with Memory(tmp_path / "s7", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie", "content": "Melanie: I ran a charity race to raise awareness "
                  "for mental health last Saturday."}], user_id="u", timestamp=WHEN, infer=False)
        got = mem.answer(q, user_id="u", llm=ReplayLLM("The charity race raised awareness for mental health [1]"))
        assert got.text == "Mental health" and got.supported and got.memory_ids


def test_a_date_is_no_answer_to_how_long(tmp_path, embedder):
    with Memory(tmp_path / "s8", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie", "content": "Melanie: My husband and I have been married "
                  "for 5 years and he still makes me laugh."}], user_id="u", timestamp=WHEN, infer=False)
        llm = ReplayLLM("8 May 2023 [1]")  # grounded (the day it was said) but not a length of time
        got = mem.answer("How long have Melanie and her husband been married?", user_id="u", llm=llm)
        assert got.text == "5 years" and not got.supported and got.memory_ids


def test_a_list_question_gathers_what_other_memories_name(tmp_path, embedder):
    with Memory(tmp_path / "s9", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie", "content": "Melanie: The clarinet is the instrument I play most."},
                 {"role": "user", "name": "Melanie", "content": "Melanie: The violin is my other instrument, "
                  "I play it every evening."}],
                user_id="u", timestamp=WHEN, infer=False)
        # the model invents; the answer is cut from both memories, each cited
        got = mem.answer("What instruments does Melanie play?", user_id="u", llm=ReplayLLM("The trumpet [1]"))
        assert not got.supported and not got.abstained
        assert "clarinet" in got.text.casefold() and "violin" in got.text.casefold()
        cited = {mem.get_record(i).memory for i in got.memory_ids}
        assert any("clarinet" in m for m in cited) and any("violin" in m for m in cited)


def test_the_answers_type_noun_need_not_be_in_the_memory_that_answers(tmp_path, embedder):
    with Memory(tmp_path / "s9", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Melanie",
                  "content": "Melanie: Yeah, I play clarinet! Started when I was young and it's been great."}],
                user_id="u", timestamp=WHEN, infer=False)
        llm = ReplayLLM("Clarinet [1]")
        played = mem.answer("What instruments does Melanie play?", user_id="u", llm=llm)  # "instrument" unsaid
        assert not played.abstained and played.text == "Clarinet" and played.memory_ids
        # the type noun is what the answer names; every other key word, and the person, must still match
        for other in ("What instruments does Melanie repair?", "What instruments does Caroline play?"):
            asked = ReplayLLM("Clarinet [1]")
            assert mem.answer(other, user_id="u", llm=asked).abstained and asked.calls == []


def test_a_near_miss_search_ranks_first_answers_when_it_lacks_only_other_words_for_the_action(tmp_path, embedder):
    with Memory(tmp_path / "s10", {"extraction": {"mode": "off"}}, embedder=embedder) as mem:
        mem.add([{"role": "user", "name": "Caroline",
                  "content": "Caroline: This necklace is super special to me. It stands for love, faith and strength."},
                 {"role": "user", "name": "Caroline", "content": "Caroline: I went hiking with friends last weekend."}],
                user_id="u", timestamp=WHEN, infer=False)
        llm = ReplayLLM("Love, faith and strength [1]")
        got = mem.answer("What does Caroline's necklace symbolize?", user_id="u", llm=llm)  # "stands for"
        assert not got.abstained and got.text == "Love, faith and strength" and len(llm.calls) == 1
        assert "necklace" in mem.get_record(got.memory_ids[0]).memory
        # lacking who it is about is no other words for the same thing: another person's necklace
        asked = ReplayLLM("At home [1]")
        assert mem.answer("Where is Caroline's grandpa's necklace?", user_id="u", llm=asked).abstained
        assert asked.calls == []


def test_a_memory_naming_the_answers_type_ranks_above_one_only_holding_the_other_words():
    t = datetime(2023, 1, 29, tzinfo=timezone.utc)
    from engine.assistant.answer import relevant_memories

    def said(i: str, text: str) -> MemoryRecord:
        return MemoryRecord(id=i, memory=text, hash=i, scope=Scope(user_id="u"), created_at=t, updated_at=t,
                            timestamp=t, actor="Jon")

    upbeat = said("a", "Jon: Things are looking up at the dance studio!")
    marley = said("b", "Jon: I'm after Marley flooring, which is what dance studios usually use.")
    found = relevant_memories("What kind of flooring is Jon looking for in his dance studio?", [upbeat, marley])
    assert found == [marley, upbeat]
