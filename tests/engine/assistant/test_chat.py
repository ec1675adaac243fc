"""engine/assistant/chat.py: a chat turn retrieves, fits the context, streams, and remembers once (or never)."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine import CancelToken, InvalidInputError, Memory
from engine.assistant.chat import CHAT_PREFIX, Assistant, ChatConfig, ChatTurn, Conversation

T = datetime(2024, 5, 10, 9, 0, tzinfo=timezone.utc)


class ReplayedLLM:
    """Plays back a fixed reply piece by piece and records every prompt it was given.

    Tokens are counted as words (close enough for budgets); complete_json answers extraction
    with "keep nothing", so the extractor stores informative messages as they were said.
    """

    name = "replayed"

    def __init__(self, reply: str = "Your sister Ingrid lives in Bergen.", context_length: int = 1024) -> None:
        self.reply = reply
        self.context_length = context_length
        self.prompts: list[list[dict[str, str]]] = []
        self.streamed = threading.Event()
        self.extraction_calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, cancel: Any = None) -> Iterator[str]:
        self.prompts.append(messages)
        for i, word in enumerate(self.reply.split()[:max_tokens]):
            if cancel is not None and cancel.is_cancelled:
                return
            yield word if i == 0 else " " + word

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        self.extraction_calls += 1
        return '{"keep": []}'


@pytest.fixture
def llm() -> ReplayedLLM:
    return ReplayedLLM()


@pytest.fixture
def mem(tmp_path: Path, embedder: Any, llm: ReplayedLLM) -> Iterator[Memory]:
    m = Memory(tmp_path / "store", embedder=embedder, llm=llm)
    m.add([{"role": "user", "content": "My sister Ingrid lives in Bergen", "name": "Maya"},
           {"role": "user", "content": "I am allergic to peanuts", "name": "Maya"},
           {"role": "user", "content": "I started a new job at the Oslo library", "name": "Maya"}],
          user_id="maya", run_id="import-1", timestamp="2024-04-01T10:00:00Z", infer=False)
    m.add("Tom likes sailing", user_id="tom", infer=False)
    yield m
    m.close()


def _system(prompt: list[dict[str, str]]) -> str:
    """Everything the model was told besides the conversation turns: system text and the notes."""
    return prompt[0]["content"] + "\n" + prompt[-1]["content"]


def test_reply_streams_and_cites_the_memories_it_was_given(mem: Memory, llm: ReplayedLLM) -> None:
    bot = Assistant(mem)
    conv = Conversation(user_id="maya")
    pieces: list[str] = []
    reply = bot.chat(conv, "Where does my sister live?", on_token=pieces.append, now=T)
    bot.close()
    assert "".join(pieces).strip() == llm.reply
    assert reply.memory_ids, "memories were retrieved"
    sister = next(r for r in reply.memories if "Ingrid" in r.memory)
    assert reply.memory_ids[0] == sister.id  # the relevant memory ranks first
    assert reply.supported and reply.cited_ids == (sister.id,) and reply.text == llm.reply + " [1]"
    system = _system(llm.prompts[0])
    assert "[1 April 2024] Maya: My sister Ingrid lives in Bergen" in system  # date and speaker
    assert "Tom likes sailing" not in system  # another user's memories never leak in
    assert set(reply.memory_ids) <= {r.id for r in mem.list_records(filters={"user_id": "maya"})}
    assert conv.turns[-1].role == "assistant" and conv.turns[-1].memory_ids == reply.cited_ids
    assert reply.first_token_s is not None and reply.first_token_s <= reply.seconds


def test_prompt_stays_within_the_context_budget(mem: Memory, llm: ReplayedLLM) -> None:
    llm.context_length = 600
    bot = Assistant(mem, config=ChatConfig(reply_tokens=100))
    conv = Conversation(user_id="maya", remember=False)
    long_turn = " ".join(["word"] * 120)
    for i in range(10):
        conv.turns += [ChatTurn("user", f"question {i} {long_turn}", T), ChatTurn("assistant", f"answer {i}", T)]
    prompt = bot.prepare(conv, "What do you remember about my sister?", now=T)
    total = sum(llm.count_tokens(m["content"]) + 8 for m in prompt.messages)
    assert prompt.budget == 600 - 100 - 16
    assert total <= prompt.budget and prompt.tokens <= prompt.budget
    assert 0 < prompt.turns_kept < 20  # the newest turns fit, the oldest were left out
    kept = [m["content"] for m in prompt.messages[1:-1]]
    assert kept[-1] == "answer 9" and not any(c.startswith("question 0 ") for c in kept)
    assert prompt.messages[1]["role"] == "user"  # the kept history starts with the user
    assert prompt.memories  # memories still got their share
    assert prompt.memory_tokens <= int(prompt.budget * 0.4)
    bot.close()


def test_too_long_message_is_refused_with_advice(mem: Memory, llm: ReplayedLLM) -> None:
    llm.context_length = 200
    bot = Assistant(mem, config=ChatConfig(reply_tokens=50))
    with pytest.raises(InvalidInputError, match="too long for the model's context"):
        bot.chat(Conversation(user_id="maya"), "word " * 500)
    bot.close()


def test_a_stated_fact_is_stored_in_the_users_words_but_not_the_reply(mem: Memory, llm: ReplayedLLM,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    real_add = mem.add

    def spy(messages: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append({"messages": messages, **kwargs})
        return real_add(messages, **kwargs)

    monkeypatch.setattr(mem, "add", spy)
    bot = Assistant(mem)
    conv = Conversation(user_id="maya")
    reply = bot.chat(conv, "I adopted a cat called Pixel last week", now=T)
    assert reply.remembered is not None
    remembered = reply.remembered.result(timeout=60)
    bot.close()
    assert len(calls) == 1
    call = calls[0]
    assert call["infer"] is True and call["run_id"] == conv.id and call["user_id"] == "maya"
    assert conv.id.startswith(CHAT_PREFIX)
    assert call["messages"] == [{"role": "user", "content": "I adopted a cat called Pixel last week"}]
    assert remembered.all_ids and any("Pixel" in t for t in remembered.texts)
    stored = mem.list_records(filters={"run_id": conv.id})
    assert {r.id for r in stored} == set(remembered.all_ids)
    assert not any(llm.reply in r.memory for r in stored)  # the model's words are not a memory
    texts = [m.content for m in mem.messages({"run_id": conv.id})]
    assert texts == ["I adopted a cat called Pixel last week"]
    # the chat log keeps both turns: the conversation reopens whole
    reopened = Assistant(mem).open_conversation(conv.id, "maya")
    assert [(t.role, t.content) for t in reopened.turns] == [("user", "I adopted a cat called Pixel last week"),
                                                             ("assistant", llm.reply)]


@pytest.mark.parametrize("question", ["What do you know about Caroline?", "Tell me about my sister",
                                      "When is my appointment", "thanks, that's great!"])
def test_questions_requests_and_small_talk_stay_in_the_chat_log_only(mem: Memory, llm: ReplayedLLM,
                                                                     question: str) -> None:
    before = mem.count()
    bot = Assistant(mem)
    conv = Conversation(user_id="maya")
    reply = bot.chat(conv, question, now=T)
    assert reply.remembered is not None
    got = reply.remembered.result(timeout=60)
    bot.close()
    assert got.all_ids == () and mem.count() == before
    assert [t.content for t in bot.open_conversation(conv.id, "maya").turns] == [question, reply.text]
    assert [c.id for c in bot.conversations("maya")] == [conv.id]


def test_every_stored_statement_is_announced_even_without_a_new_fact(mem: Memory) -> None:
    bot = Assistant(mem)
    announced = []
    for text in ("My dog is called Pixel", "My cat is called Miso", "My cat is called Miso",
                 "Remember that the spare key is under the blue pot"):
        reply = bot.chat(Conversation(user_id="maya"), text, now=T)
        assert reply.remembered is not None
        got = reply.remembered.result(timeout=60)
        assert got.all_ids and got.texts, text  # something was stored: "Forget that" is offered
        assert set(got.all_ids) <= {r.id for r in mem.list_records(filters={"user_id": "maya"})}
        announced.append(" ".join(got.texts))
    bot.close()
    assert "Miso" in announced[1] and "Miso" in announced[2]
    assert announced[3].startswith("The spare key is under the blue pot")
    assert any(r.memory.startswith("The spare key") for r in mem.list_records(filters={"user_id": "maya"}))


def test_incognito_chat_stores_nothing(mem: Memory, llm: ReplayedLLM) -> None:
    before = mem.count()
    bot = Assistant(mem)
    conv = Conversation(user_id="maya", remember=False)
    reply = bot.chat(conv, "My bank PIN is 4711, keep it secret", now=T)
    bot.chat(conv, "And my password is hunter2", now=T)
    bot.close()
    assert reply.remembered is None
    assert mem.count() == before
    assert mem.messages({"run_id": conv.id}) == []
    assert llm.extraction_calls == 0
    assert len(conv.turns) == 4  # the chat itself still has its turns on screen


def test_stop_keeps_the_partial_reply_in_the_log_only(mem: Memory, llm: ReplayedLLM) -> None:
    llm.reply = "one two three four five six seven eight"
    bot = Assistant(mem)
    token = CancelToken()
    seen: list[str] = []

    def on_token(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            token.cancel()

    conv = Conversation(user_id="maya")
    reply = bot.chat(conv, "I count sheep to fall asleep", on_token=on_token, cancel=token, now=T)
    assert reply.cancelled and reply.text == "one two three"
    assert reply.remembered is not None
    reply.remembered.result(timeout=60)
    bot.close()
    assert [m.content for m in mem.messages({"run_id": conv.id})] == ["I count sheep to fall asleep"]
    assert [t.content for t in bot.open_conversation(conv.id, "maya").turns][-1] == "one two three"


def test_memory_off_sends_no_memories(mem: Memory, llm: ReplayedLLM) -> None:
    bot = Assistant(mem, config=ChatConfig(use_memory=False))
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my sister live?", now=T)
    bot.close()
    assert reply.memory_ids == () and "Ingrid" not in _system(llm.prompts[0])


def test_forget_removes_what_was_remembered_and_old_chats_reopen(mem: Memory, llm: ReplayedLLM) -> None:
    bot = Assistant(mem)
    conv = Conversation(user_id="maya")
    reply = bot.chat(conv, "I bought a red bicycle yesterday", now=T)
    assert reply.remembered is not None
    got = reply.remembered.result(timeout=60)
    assert bot.forget(got.all_ids) == len(got.all_ids) > 0
    assert mem.list_records(filters={"run_id": conv.id}) == []
    second = Conversation(user_id="maya", id=conv.id + "-2")
    bot.chat(second, "My favourite colour is green", now=T.replace(hour=10))
    bot.wait()
    listed = bot.conversations("maya")
    assert [c.id for c in listed] == [second.id, conv.id]  # forgetting the memory keeps the chat log
    assert [t.role for t in listed[0].turns] == ["user", "assistant"]
    assert listed[0].title == "My favourite colour is green"
    assert bot.conversations("tom") == []
    bot.close()


def test_empty_message_is_refused(mem: Memory) -> None:
    bot = Assistant(mem)
    with pytest.raises(InvalidInputError, match="Type a message"):
        bot.chat(Conversation(user_id="maya"), "   ")
    bot.close()


def test_the_assistants_own_replies_are_never_given_back_as_memories(mem: Memory, llm: ReplayedLLM) -> None:
    # a store written by an earlier version holds a reply as a message of role "assistant"
    mem.add([{"role": "user", "content": "Where does my sister live?"},
             {"role": "assistant", "content": "Your sister Ingrid lives in Bergen."}],
            user_id="maya", run_id=CHAT_PREFIX + "old", infer=False)
    said = {r.id for r in mem.list_records(filters={"user_id": "maya", "role": "assistant"})}
    assert said
    bot = Assistant(mem)
    second = bot.chat(Conversation(user_id="maya"), "Where does my sister live?", now=T)
    bot.close()
    assert second.memory_ids and not said & set(second.memory_ids)
    old = bot.open_conversation(CHAT_PREFIX + "old", "maya")  # old chats still reopen
    assert [t.role for t in old.turns] == ["user", "assistant"]


def test_an_invented_reply_is_replaced_by_what_the_memory_says(mem: Memory, llm: ReplayedLLM) -> None:
    llm.reply = "Your sister Ingrid lives in Paris with her husband Pierre since 2019."
    bot = Assistant(mem)
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my sister live?", now=T)
    bot.close()
    assert not reply.supported and reply.draft == llm.reply
    # not the model's words, nor the whole memory: the part of it that answers, with who said it and when
    assert reply.text == "Bergen, from what Maya said on 1 April 2024 [1]"
    (claim,) = reply.claims
    assert {"Paris", "Pierre"} <= set(claim.unsupported)
    assert reply.cited_ids == (reply.memories[0].id,)


def test_an_invented_reply_gets_a_second_look_at_the_best_memory_alone(mem: Memory, llm: ReplayedLLM) -> None:
    invented = "Your sister Ingrid lives in Paris."
    replies = iter([invented, "Bergen [1]"])
    original = llm.stream

    def stream(messages: list[dict[str, str]], **kw: Any) -> Iterator[str]:
        llm.reply = next(replies)
        return original(messages, **kw)

    llm.stream = stream  # type: ignore[method-assign]
    bot = Assistant(mem)
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my sister live?", now=T)
    bot.close()
    assert reply.text == "Bergen [1]" and reply.draft == invented
    assert reply.cited_ids == (reply.memories[0].id,) and "Bergen" in reply.memories[0].memory
    second_prompt = llm.prompts[-1][-1]["content"]
    assert "[1] Maya: My sister Ingrid lives in Bergen" in second_prompt and "peanuts" not in second_prompt


def test_a_question_with_only_a_near_miss_in_memory_is_declined(mem: Memory, llm: ReplayedLLM) -> None:
    bot = Assistant(mem)
    for invented in ("Your brother Lars lives in Paris.", "Ingrid lives in Bergen."):  # the second is grounded
        llm.reply = invented
        reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my brother live?",
                         now=T)  # the memory of the sister holds "live" but not "brother": half the key words
        assert reply.text == "I don't have a memory of that." and reply.cited_ids == ()
    bot.close()
    assert llm.prompts == []  # not asked: whatever it said would be about the sister


def test_when_is_answered_from_the_event_date_and_an_unknown_topic_is_declined(mem: Memory,
                                                                               llm: ReplayedLLM) -> None:
    mem.add([{"role": "user", "content": "My appointment is on Friday", "name": "Maya"}], user_id="maya",
            timestamp="2024-05-08T10:00:00Z", infer=False)  # a Wednesday
    bot = Assistant(mem)
    conv = Conversation(user_id="maya", remember=False)
    when = bot.chat(conv, "When is my appointment?", now=T)
    unknown = bot.chat(conv, "What is my favourite opera?", now=T)
    bot.close()
    assert when.text.startswith("10 May 2024: \u201cMy appointment is on Friday\u201d, said by Maya on 8 May 2024")
    assert llm.prompts == [] and when.cited_ids  # neither needed the model
    assert unknown.text == "I don't have a memory of that." and unknown.cited_ids == ()


def test_the_other_speaker_of_an_imported_conversation_is_memory(tmp_path: Path, embedder: Any) -> None:
    """An import gives the second person's turns the role "assistant"; they are still memories,
    unlike the replies Loci's own assistant gave in its chats."""
    with Memory(tmp_path / "two", embedder=embedder) as m:
        m.add([{"role": "user", "name": "Caroline", "content": "Caroline: Is this your own painting?"},
               {"role": "assistant", "name": "Melanie",
                "content": "Melanie: Yeah, I painted that lake sunrise last year! It's special to me."}],
              user_id="me", run_id="session_1", timestamp="2023-05-08T13:56:00Z", infer=False)
        m.add([{"role": "assistant", "content": "Melanie painted a mountain sunrise in 2019."}],
              user_id="me", run_id=CHAT_PREFIX + "old", infer=False)
        bot = Assistant(m, llm=ReplayedLLM("I don't know"))
        reply = bot.chat(Conversation(user_id="me", remember=False), "When did Melanie paint a sunrise?", now=T)
        bot.close()
        texts = [r.memory for r in reply.memories]
        assert any("lake sunrise" in t for t in texts) and not any("mountain" in t for t in texts)
        assert reply.text.startswith("2022") and reply.cited_ids


def test_replies_loci_composed_are_not_shown_to_the_model_again(mem: Memory, llm: ReplayedLLM) -> None:
    """A small model copies a quoted memory from the history as its reply to whatever comes next."""
    llm.reply = "Your sister Ingrid lives in Paris with Pierre."
    bot = Assistant(mem)
    conv = Conversation(user_id="maya", remember=False)
    first = bot.chat(conv, "Where does my sister live?", now=T)
    assert first.text.startswith("Bergen, from what Maya said on 1 April 2024")
    llm.reply = "That sounds lovely."
    bot.chat(conv, "I had tea with my neighbour Ola today", now=T)
    bot.close()
    shown = "\n".join(m["content"] for m in llm.prompts[-1])
    assert "from what Maya said" not in shown and "Where does my sister live?" not in shown
    assert len(conv.turns) == 4  # the conversation itself keeps every turn


def test_a_streamed_answer_is_shown_as_answer_shows_it(mem: Memory, llm: ReplayedLLM) -> None:
    mem.add([{"role": "user", "name": "Melanie",
              "content": "Melanie: We celebrated my daughter's birthday last weekend with a cake."}],
            user_id="maya", timestamp="2024-05-06T10:00:00Z", infer=False)
    llm.reply = "Melanie: My daughter's birthday."  # the speaker's line prefix and first person, copied
    bot = Assistant(mem)
    pieces: list[str] = []
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Whose birthday did Melanie celebrate recently?",
                     on_token=pieces.append, now=T)
    bot.close()
    assert reply.streamed == "".join(pieces).strip() == llm.reply
    assert reply.text.startswith("Melanie's daughter's birthday.") and reply.supported and reply.cited_ids
    assert reply.retold and not reply.draft  # a front end shows the text in place of what was streamed
    assert mem.answer("Whose birthday did Melanie celebrate recently?", user_id="maya",
                      llm=_Replay(llm.reply)).text == "Melanie's daughter's birthday."  # the same words
    llm.reply = "Her daughter's birthday, Melanie told me."  # the assistant speaking as itself: left as said
    bot = Assistant(mem)
    own = bot.chat(Conversation(user_id="maya", remember=False), "Whose birthday did Melanie celebrate recently?",
                   now=T)
    bot.close()
    assert own.text.startswith(llm.reply) and not own.retold


def test_a_reply_streamed_as_shown_is_not_retold(mem: Memory, llm: ReplayedLLM) -> None:
    bot = Assistant(mem)
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my sister live?", now=T)
    bot.close()
    assert reply.text == llm.reply + " [1]" and not reply.retold  # only the citation mark added


def test_a_reply_whose_citation_was_renumbered_is_retold(mem: Memory, llm: ReplayedLLM) -> None:
    # seen in `loci chat`: "Miso is a cat. [2]" streamed, the memory it rests on listed as [1]
    llm.reply = llm.reply + " [2]"
    bot = Assistant(mem)
    reply = bot.chat(Conversation(user_id="maya", remember=False), "Where does my sister live?", now=T)
    bot.close()
    assert reply.streamed.endswith("[2]") and reply.text.endswith("[1]") and reply.retold


class _Replay:
    """answer.Completer replaying one reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None = None) -> str:
        return self.reply


def test_a_near_miss_search_ranks_first_is_answered_in_chat_too(mem: Memory, llm: ReplayedLLM) -> None:
    mem.add([{"role": "user", "name": "Caroline",
              "content": "Caroline: This necklace is super special to me. It stands for love, faith and strength."}],
            user_id="maya", timestamp="2024-05-06T10:00:00Z", infer=False)
    llm.reply = "Love, faith and strength."
    bot = Assistant(mem)
    conv = Conversation(user_id="maya", remember=False)
    symbol = bot.chat(conv, "What does Caroline's necklace symbolize?", now=T)  # "stands for": other words
    grandpa = bot.chat(conv, "Where is Caroline's grandpa's necklace?", now=T)  # someone else's necklace
    bot.close()
    assert symbol.text.startswith("Love, faith and strength.") and symbol.cited_ids and len(llm.prompts) == 1
    assert grandpa.text == "I don't have a memory of that." and grandpa.cited_ids == ()
