"""Conversation importers: each format parses, detection picks it, bad files say what to fix."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from app.importers import detect_format, load_conversation, parse_conversation, parse_locomo_time
from engine import InvalidInputError

LOCOMO_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo-dev"
SAMPLE = Path(__file__).resolve().parents[2] / "app" / "data" / "sample_conversation.json"


def test_mem0_list_of_messages():
    text = json.dumps([{"role": "user", "content": "I love hiking"},
                       {"role": "assistant", "content": "Nice!", "name": "Bot"}])
    conv = parse_conversation(text)
    assert conv.format == "mem0"
    assert [m["role"] for m in conv.sessions[0].messages] == ["user", "assistant"]
    assert conv.message_count == 2


def test_jsonl_skips_blank_lines_and_names_bad_line():
    conv = parse_conversation('{"role": "user", "content": "a"}\n\n{"role": "assistant", "content": "b"}\n')
    assert conv.format == "jsonl" and conv.message_count == 2
    with pytest.raises(InvalidInputError, match="Line 2"):
        parse_conversation('{"role": "user", "content": "a"}\n{oops\n', "jsonl")


def test_transcript_first_human_is_user_and_continuations_join():
    conv = parse_conversation("Assistant: Hello!\nMaya: I moved to Oslo\nlast spring.\nAssistant: Nice.")
    msgs = conv.sessions[0].messages
    assert detect_format("Maya: hi") == "transcript"
    assert [m["role"] for m in msgs] == ["assistant", "user", "assistant"]
    assert msgs[1]["content"] == "I moved to Oslo\nlast spring."
    assert conv.user_id == "maya"


def test_transcript_without_speaker_says_how_to_fix():
    with pytest.raises(InvalidInputError, match="Name: what they said"):
        parse_conversation("just some text", "transcript")


def test_locomo_sessions_times_and_roles():
    data = {"speaker_a": "Caroline", "speaker_b": "Melanie",
            "session_2_date_time": "8:00 am on 9 May, 2023",
            "session_2": [{"speaker": "Melanie", "dia_id": "D2:1", "text": "Hi"}],
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": "Caroline", "dia_id": "D1:1", "text": "Hey Mel!"},
                          {"speaker": "Melanie", "dia_id": "D1:2", "text": "Hey!"}]}
    conv = parse_conversation(json.dumps(data))
    assert conv.format == "locomo"
    assert [s.run_id for s in conv.sessions] == ["session_1", "session_2"]
    assert conv.sessions[0].timestamp == datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    assert [m["role"] for m in conv.sessions[0].messages] == ["user", "assistant"]
    assert conv.user_id == "caroline"


def test_locomo_time_parse():
    assert parse_locomo_time("10:37 am on 27 June, 2023") == datetime(2023, 6, 27, 10, 37, tzinfo=timezone.utc)
    with pytest.raises(InvalidInputError, match="session time"):
        parse_locomo_time("someday")


def test_sample_conversation_loads():
    conv = load_conversation(SAMPLE)
    assert conv.format == "loci" and conv.user_id == "maya" and len(conv.sessions) >= 2
    assert conv.sessions[0].timestamp is not None and conv.sessions[0].run_id


def test_bad_json_names_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('[{"role": "user", "content": "a"},\n oops]')
    with pytest.raises(InvalidInputError, match="x.json is not valid JSON .line 2"):
        load_conversation(p, "mem0")


def test_missing_file():
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_conversation("/nonexistent/conv.json")


def test_real_locomo_file():
    path = LOCOMO_DIR / "26.json"
    if not path.exists():
        pytest.skip("LoCoMo dev data not present")
    conv = load_conversation(path)
    assert conv.format == "locomo"
    assert len(conv.sessions) > 5
    assert all(s.timestamp is not None for s in conv.sessions)
    assert conv.speakers == ("Caroline", "Melanie")
