"""app/chat_exports.py: ChatGPT and Claude exports read from the JSON or the .zip, streamed."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from app.chat_exports import read_conversations, sniff, summarize
from engine import InvalidInputError

DATA = Path(__file__).resolve().parents[1] / "data"
CHATGPT = DATA / "chatgpt_conversations.json"
CLAUDE = DATA / "claude_conversations.json"


def _zip(tmp_path: Path, source: Path, member: str = "conversations.json") -> Path:
    out = tmp_path / "export.zip"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("chat.html", "<html></html>")
        z.write(source, member)
    return out


def test_chatgpt_follows_the_active_branch_and_skips_system_tool_and_empty_nodes() -> None:
    convs = list(read_conversations(CHATGPT))
    assert [c.id for c in convs] == ["c-oslo", "c-untitled"]  # the conversation with no message is left out
    oslo = convs[0]
    assert oslo.title == "Moving to Oslo" and oslo.run_id == "chatgpt-c-oslo"
    assert [m["role"] for m in oslo.messages] == ["user", "assistant", "user", "assistant"]
    text = " ".join(m["content"] for m in oslo.messages)
    assert "DISCARDED" not in text and "REGENERATED" not in text and "tool output" not in text
    assert oslo.messages[2]["content"] == "Here is the flat plan, the rent is 14 000 kr.\n[attached: flat-plan.png]"
    assert oslo.attachments == ("flat-plan.png",)
    assert oslo.messages[0]["timestamp"] == "2024-04-13T08:01:00+00:00"
    assert oslo.timestamp is not None and oslo.timestamp.isoformat() == "2024-04-13T08:00:00+00:00"
    assert oslo.messages[-1]["content"] == "That is a fair rent for Grünerløkka."


def test_chatgpt_untitled_conversation_keeps_non_ascii_and_drops_tool_calls() -> None:
    untitled = list(read_conversations(CHATGPT))[1]
    assert untitled.title == "Untitled conversation"
    assert [m["content"] for m in untitled.messages] == [
        "Jeg liker kaffe fra Tim Wendelboe ☕ — café crème, naïve résumé."]


def test_claude_messages_in_order_with_attachments_and_empty_ones_skipped() -> None:
    convs = list(read_conversations(CLAUDE))
    assert [c.id for c in convs] == ["k-bikes", "k-untitled"]
    bikes = convs[0]
    assert bikes.run_id == "claude-k-bikes" and bikes.title == "Bike shopping"
    assert [m["role"] for m in bikes.messages] == ["user", "assistant", "user"]
    assert bikes.messages[0]["content"].endswith("[attached: receipt.pdf]")  # named once, not per list
    assert bikes.messages[1]["content"] == "Nice choice! Gravel bikes are versatile."
    assert bikes.messages[2]["content"] == "Ride it to work on Mondays, I will."  # plain "text" when no blocks
    assert convs[1].title == "Untitled conversation"
    assert convs[1].messages[0]["content"] == "Mein Lieblingsessen ist Käsespätzle – 日本語もOK."


def test_claude_branches_follow_the_newest_message(tmp_path: Path) -> None:
    msgs = [{"uuid": "a", "parent_message_uuid": "root", "sender": "human", "text": "first question"},
            {"uuid": "b", "parent_message_uuid": "a", "sender": "assistant", "text": "old answer"},
            {"uuid": "c", "parent_message_uuid": "a", "sender": "assistant", "text": "retried answer"},
            {"uuid": "d", "parent_message_uuid": "c", "sender": "human", "text": "thanks, and more"}]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([{"uuid": "x", "name": "t", "chat_messages": msgs}]), encoding="utf-8")
    conv = next(read_conversations(path))
    assert [m["content"] for m in conv.messages] == ["first question", "retried answer", "thanks, and more"]


@pytest.mark.parametrize("source,kind", [(CHATGPT, "chatgpt"), (CLAUDE, "claude")])
def test_zip_and_json_read_the_same(tmp_path: Path, source: Path, kind: str) -> None:
    archive = _zip(tmp_path, source, "export-2024/conversations.json")
    assert sniff(source) == kind and sniff(archive) == kind
    assert list(read_conversations(archive)) == list(read_conversations(source))


def test_summary_counts_conversations_messages_and_dates() -> None:
    summary = summarize(CHATGPT)
    assert summary.kind == "chatgpt"
    assert [(c.id, c.messages, c.user_messages) for c in summary.conversations] == [("c-oslo", 4, 2),
                                                                                    ("c-untitled", 1, 1)]
    assert summary.messages == 5
    assert summary.first is not None and summary.first.date().isoformat() == "2024-04-13"
    assert summary.last is not None and summary.last.date().isoformat() == "2024-04-24"


def test_only_the_chosen_conversations_are_read() -> None:
    assert [c.id for c in read_conversations(CLAUDE, only={"k-untitled"})] == ["k-untitled"]


def test_a_file_that_is_neither_names_what_was_expected(tmp_path: Path) -> None:
    other = tmp_path / "notes.json"
    other.write_text('[{"role": "user", "content": "hi"}]', encoding="utf-8")
    assert sniff(other) is None
    with pytest.raises(InvalidInputError, match="ChatGPT export .*'mapping'.*Claude export .*'chat_messages'"):
        summarize(other)
    bad_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("a.txt", "x")
    with pytest.raises(InvalidInputError, match="without conversations.json"):
        list(read_conversations(bad_zip))
    with pytest.raises(InvalidInputError, match="does not exist"):
        summarize(tmp_path / "missing.json")


def test_a_loci_export_is_recognised_and_sent_to_restore(tmp_path: Path) -> None:
    loci = tmp_path / "backup.json"
    loci.write_text(json.dumps({"format": "loci-export", "version": 2, "memories": []}), encoding="utf-8")
    assert sniff(loci) == "loci-export"
    with pytest.raises(InvalidInputError, match="Loci export"):
        summarize(loci)


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_bytes(b"\xef\xbb\xbf" + CLAUDE.read_bytes())
    assert sniff(path) == "claude" and len(list(read_conversations(path))) == 2
