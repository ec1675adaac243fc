"""The Assistant view in the real main window: send, stream, stop, "forget that", incognito."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from PySide6.QtCore import QPoint, Qt

from engine import Memory
from engine.inference.llm import LoadedModel, ModelKey

TAB_ASSISTANT = 3


class SlowReplayedLLM:
    """Plays a fixed reply back one word every `delay` seconds; extraction keeps nothing extra."""

    def __init__(self, reply: str, delay: float = 0.02, name: str = "replayed-chat") -> None:
        self.reply, self.delay = reply, delay
        self.context_length = 2048
        self.prompts: list[list[dict[str, str]]] = []
        self.info = LoadedModel(ModelKey(Path(f"/models/{name}.gguf"), 2048, 2, 0), "replayed", "CPU",
                                None, 30, 0)
        self.streaming = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, cancel: Any = None) -> Iterator[str]:
        self.prompts.append(messages)
        for i, word in enumerate(self.reply.split()[:max_tokens]):
            if cancel is not None and cancel.is_cancelled:
                return
            self.streaming.set()
            time.sleep(self.delay)
            yield word if i == 0 else " " + word

    def complete_json(self, messages: list[dict[str, str]], schema: dict, *, max_tokens: int) -> str:
        return '{"keep": []}'


@pytest.fixture
def llm(request) -> SlowReplayedLLM:
    return SlowReplayedLLM("Your sister Ingrid lives in Bergen, and you told me so in April.",
                           name=getattr(request, "param", "replayed-chat"))


def _started(qtbot, mem: Memory):
    """The real main window over `mem`, started, with the first table load done."""
    from app.gui.application import build

    win, bridge, messages = build(mem)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.table_updated, timeout=30_000):
        bridge.start()
    return win, bridge


@pytest.fixture
def window(qtbot, tmp_path: Path, embedder: Any, llm: SlowReplayedLLM):
    mem = Memory(tmp_path / "s", embedder=embedder, llm=llm)
    mem.add([{"role": "user", "content": "My sister Ingrid lives in Bergen", "name": "Maya"},
             {"role": "user", "content": "I am allergic to peanuts", "name": "Maya"}],
            user_id="maya", run_id="import-1", timestamp="2024-04-01T10:00:00Z", infer=False)
    win, bridge = _started(qtbot, mem)
    win.tabs.setCurrentIndex(TAB_ASSISTANT)
    view = win.assistant_view
    qtbot.waitUntil(lambda: view.model_label.full_text() == f"Language model: {llm.info.key.path.stem} · CPU",
                    timeout=30_000)
    view.set_user("maya")
    yield win
    view.close_chat()
    bridge.close()
    mem.close()


def type_and_send(qtbot, view, text: str) -> None:
    view.input.setFocus()
    qtbot.keyClicks(view.input, text)
    qtbot.keyClick(view.input, Qt.Key.Key_Return)


def bubbles(view) -> list:
    from app.gui.views.assistant_view import MessageBubble

    return [view.transcript_layout.itemAt(i).widget() for i in range(view.transcript_layout.count())
            if isinstance(view.transcript_layout.itemAt(i).widget(), MessageBubble)]


def test_send_streams_the_reply_and_shows_the_memories_used(qtbot, window, llm) -> None:
    view = window.assistant_view
    type_and_send(qtbot, view, "Where does my sister live?")
    assert view.input.toPlainText() == "" and view.stop_button.isEnabled() and not view.send_button.isEnabled()
    qtbot.waitUntil(lambda: len(bubbles(view)) == 2 and "Ingrid" in bubbles(view)[1].text, timeout=30_000)
    assert view.controller.is_streaming  # words show up while the reply is still being written
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    user, reply = bubbles(view)
    assert user.text == "Where does my sister live?" and reply.text == llm.reply + " [1]"
    strip = reply.memories_label.text()
    assert "Memories used (1)" in strip and "Maya: My sister Ingrid lives in" in strip  # dated, attributed
    assert "[1] <a href=" in strip  # numbered as the reply cites them
    assert "[1 April 2024] Maya: My sister Ingrid lives in Bergen" in reply.memories_label.toolTip()
    assert not view.stop_button.isEnabled() and view.send_button.isEnabled()
    assert view.chat_list.count() == 1 and view.chat_list.item(0).text() == "Where does my sister live?"
    assert view.chat_list.item(0).toolTip().startswith("Where does my sister live?\n")  # whole when elided
    assert view.chat_list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    # clicking a memory shows it in the browser
    memory_id = reply.reply.memory_ids[0]
    with qtbot.waitSignal(window.detail_updated, timeout=30_000):
        reply.memories_label.linkActivated.emit(memory_id)
    assert window.tabs.currentIndex() == 0 and window.detail.record.id == memory_id


def test_stop_ends_the_reply_early_and_keeps_what_was_written(qtbot, window, llm) -> None:
    llm.reply = " ".join(f"word{i}" for i in range(200))
    view = window.assistant_view
    type_and_send(qtbot, view, "Tell me a long story")
    qtbot.waitUntil(lambda: "word3" in bubbles(view)[-1].text, timeout=30_000)
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    reply = bubbles(view)[-1]
    assert reply.reply.cancelled and reply.text.endswith("[stopped]")
    assert "word199" not in reply.text
    assert view.send_button.isEnabled()


def test_remembered_note_and_forget_that(qtbot, window, llm) -> None:
    view = window.assistant_view
    with qtbot.waitSignal(view.remembered_shown, timeout=30_000):
        type_and_send(qtbot, view, "I adopted a cat called Pixel last week")
    reply = bubbles(view)[-1]
    note = reply.remembered_label
    assert note.isVisible() and "Remembered:" in note.text() and "Pixel" in note.text()
    ids = reply.remembered_ids
    mem = window.bridge.memory
    assert ids and all(mem.get_record(i) for i in ids)
    note.linkActivated.emit("forget")
    qtbot.waitUntil(lambda: "Forgotten" in note.text(), timeout=30_000)
    assert mem.list_records(filters={"run_id": view.conversation.id}) == []


def test_the_remembered_note_shows_when_storing_ends_before_the_reply_is_shown(qtbot, window, llm) -> None:
    # a busy window: the statement is stored in the background before the finished reply reaches the view
    view = window.assistant_view
    llm.delay = 0.0
    mem = window.bridge.memory
    before = mem.count()
    type_and_send(qtbot, view, "I adopted a cat called Pixel last week")
    deadline = time.monotonic() + 30
    while mem.count() == before and time.monotonic() < deadline:
        time.sleep(0.05)  # no events processed meanwhile
    assert mem.count() > before
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: bubbles(view)[-1].remembered_label.isVisible(), timeout=5000)
    assert "Pixel" in bubbles(view)[-1].remembered_label.text()


def test_incognito_chat_stores_nothing(qtbot, window, llm) -> None:
    view = window.assistant_view
    mem = window.bridge.memory
    before = mem.count()
    qtbot.mouseClick(view.incognito, Qt.MouseButton.LeftButton, pos=QPoint(8, view.incognito.height() // 2))
    assert view.incognito.isChecked() and not view.conversation.remember
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        type_and_send(qtbot, view, "My bank PIN is 4711")
    view.controller.close()  # wait for anything pending in the background
    assert mem.count() == before and mem.messages({"run_id": view.conversation.id}) == []
    assert not bubbles(view)[-1].remembered_label.isVisible()
    assert view.chat_list.item(0).text().endswith("(not remembered)")
    assert not view.incognito.isEnabled() or view.incognito.isChecked()  # cannot be turned back on mid-chat


def test_real_model_loads_once_and_replies(qtbot, gui) -> None:
    view = gui.assistant_view
    gui.bridge.memory.add("My sister Ingrid lives in Bergen", user_id="default", infer=False)
    qtbot.waitUntil(lambda: view.controller.model_state == "ready", timeout=60_000)
    assert view.model_label.full_text() == "Language model: SmolLM2-135M-Instruct.Q4_1 · CPU"
    with qtbot.waitSignal(view.reply_shown, timeout=60_000):
        type_and_send(qtbot, view, "Where does my sister live?")
    reply = bubbles(view)[-1]
    assert reply.text.strip() and reply.text != "[no reply]"
    assert "Ingrid" in reply.memories_label.text()
    view.close_chat()


def test_settings_pick_a_found_model_and_threads_apply_to_the_next_reply(qtbot, gui, tmp_path: Path,
                                                                         monkeypatch) -> None:
    import shutil

    from engine.inference.llm import loaded_model
    from engine.inference.models import default_llm_path

    folder = tmp_path / "home" / ".lmstudio" / "models" / "me" / "smol"
    folder.mkdir(parents=True)
    shutil.copy(default_llm_path(), folder / "my-smol-Q4_1.gguf")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # discovery looks in ~/.lmstudio/models
    dialog = gui.open_settings()
    qtbot.waitUntil(lambda: dialog.found_models.isEnabled(), timeout=30_000)
    labels = [dialog.found_models.itemText(i) for i in range(dialog.found_models.count())]
    assert any(t.startswith("my-smol-Q4_1 · ") and t.endswith("(LM Studio)") for t in labels)
    assert "CPU only" in dialog.gpu_note.text() or "GPU" in dialog.gpu_note.text()
    index = next(i for i, t in enumerate(labels) if t.startswith("my-smol-Q4_1"))
    dialog.found_models.setCurrentIndex(index)
    dialog.found_models.activated.emit(index)
    assert dialog.model_path.text() == str(folder / "my-smol-Q4_1.gguf")
    dialog.threads.setValue(1)
    dialog.accept()
    view = gui.assistant_view
    with qtbot.waitSignal(view.reply_shown, timeout=60_000):
        type_and_send(qtbot, view, "Hello!")
    model = loaded_model()
    assert model is not None and model.key.path == (folder / "my-smol-Q4_1.gguf").resolve()
    assert model.key.n_threads == 1  # no restart needed
    qtbot.waitUntil(lambda: "my-smol-Q4_1" in view.model_label.full_text(), timeout=30_000)
    view.close_chat()


def test_a_new_chat_is_with_the_user_whose_memories_the_store_holds(qtbot, tmp_path: Path, embedder: Any,
                                                                   llm: SlowReplayedLLM) -> None:
    mem = Memory(tmp_path / "s", embedder=embedder, llm=llm)
    mem.add("My sister Ingrid lives in Bergen", user_id="maya", infer=False)
    win, bridge = _started(qtbot, mem)
    view = win.assistant_view
    qtbot.waitUntil(lambda: view.conversation.user_id == "maya", timeout=10_000)
    assert view.user_box.currentText() == "maya"  # not "default", who has no memories
    view.close_chat()
    bridge.close()
    mem.close()


def test_an_untouched_chat_follows_the_first_import_to_its_user(qtbot, tmp_path: Path, embedder: Any,
                                                               llm: SlowReplayedLLM) -> None:
    # a newcomer opens an empty store, imports the sample conversation (Maya's), then opens the Assistant
    mem = Memory(tmp_path / "s", embedder=embedder, llm=llm)
    win, bridge = _started(qtbot, mem)
    view = win.assistant_view
    assert view.conversation.user_id == "default"
    mem.add("My sister Ingrid lives in Bergen", user_id="maya", infer=False)
    bridge.changes.note()  # what the import job does when memories land
    qtbot.waitUntil(lambda: view.conversation.user_id == "maya", timeout=10_000)
    assert view.user_box.currentText() == "maya"
    view.close_chat()
    bridge.close()
    mem.close()


def test_citations_are_clickable_and_unsupported_parts_are_marked(qtbot, window, llm) -> None:
    view = window.assistant_view
    type_and_send(qtbot, view, "Where does my sister live?")
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    good = bubbles(view)[-1]
    assert good.reply.supported and good.text.endswith("[1]")
    cited = good.reply.cited_ids[0]
    assert f"<a href='{cited}'>[1]</a>" in good.text_label.text() and not good.draft_label.isVisible()
    with qtbot.waitSignal(window.detail_updated, timeout=30_000):
        good.text_label.linkActivated.emit(cited)  # the [1] in the reply opens the memory
    assert window.detail.record.id == cited
    window.tabs.setCurrentIndex(TAB_ASSISTANT)

    llm.reply = "Your sister Ingrid moved to Paris with Pierre."
    type_and_send(qtbot, view, "Where does my sister live now?")
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    bad = bubbles(view)[-1]
    assert bad.text.startswith("Bergen, from what Maya said on 1 April 2024")
    draft = bad.draft_label.text()
    assert bad.draft_label.isVisible() and "Not shown as fact" in draft
    assert "<s style='color:#b3261e'>Paris</s>" in draft and "<s style='color:#b3261e'>Pierre</s>" in draft
    assert "<s style='color:#b3261e'>Ingrid</s>" not in draft  # supported words are not struck


def test_a_question_the_memories_cannot_answer_is_declined(qtbot, window, llm) -> None:
    view = window.assistant_view
    type_and_send(qtbot, view, "What is my favourite opera?")
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    assert bubbles(view)[-1].text == "I don't have a memory of that." and llm.prompts == []


LONG_NAME = "Meta-Llama-3.1-8B-Instruct-abliterated-Q4_K_M"


def _inside(widget) -> bool:
    """The widget shows all its lines and ends inside its window."""
    right = widget.mapTo(widget.window(), widget.rect().topRight()).x()
    whole = widget.height() >= widget.heightForWidth(widget.width()) if widget.hasHeightForWidth() else \
        widget.height() >= widget.minimumSizeHint().height()
    return whole and widget.isVisible() and right <= widget.window().width()


def _one_line(label) -> bool:
    return label.height() < 2 * label.fontMetrics().lineSpacing()


def test_at_800x600_the_model_name_reads_on_one_line_and_nothing_is_cut(qtbot, window, llm) -> None:
    view = window.assistant_view
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800 and view.chat_pane.width() > 0)
    label = view.model_label
    qtbot.waitUntil(lambda: label.text() == "Language model: replayed-chat · CPU")
    assert _one_line(label) and _inside(label)
    assert "replayed-chat · CPU" in label.toolTip() and label.accessibleName() == label.full_text()
    assert not window.detail.isVisible()  # the memory's details give their room to the chat
    type_and_send(qtbot, view, "Where does my sister live now?")
    with qtbot.waitSignal(view.reply_shown, timeout=30_000):
        pass
    qtbot.wait(50)
    user, reply = bubbles(view)
    for chat_width in (None, 260):  # as it opens, then with the conversation list dragged wider
        if chat_width:
            view.splitter.setSizes([view.splitter.width() - chat_width, chat_width])
            qtbot.wait(50)
        for part in (user.text_label, reply.text_label, reply.memories_label, view.input, view.chat_list,
                     view.send_button, view.model_label):
            assert _inside(part), f"{part.accessibleName() or part.objectName() or part} is cut off"
        if chat_width:  # wrapped, every line shown
            assert user.text_label.height() > user.text_label.fontMetrics().lineSpacing()
    # the citation opens the memory in the browser, where the details come back at their width
    with qtbot.waitSignal(window.detail_updated, timeout=30_000):
        reply.memories_label.linkActivated.emit(reply.reply.memory_ids[0])
    assert window.detail.isVisible() and window.detail.width() >= window.detail.minimumWidth()
    assert window.detail.mapTo(window, window.detail.rect().topRight()).x() <= window.width()


@pytest.mark.parametrize("llm", [LONG_NAME], indirect=True)
def test_a_long_model_name_keeps_its_start_and_device_and_is_whole_in_the_tooltip(qtbot, window, llm) -> None:
    view = window.assistant_view
    label = view.model_label
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    qtbot.waitUntil(lambda: label.text() == f"Language model: {LONG_NAME} · CPU")
    row = view.user_box.geometry()
    assert abs(label.geometry().center().y() - row.center().y()) <= 4  # beside "Chat as"
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800)
    qtbot.waitUntil(lambda: label.geometry().top() >= row.bottom())  # on a line of its own
    assert _one_line(label) and _inside(label)
    view.splitter.setSizes([500, 100])  # the conversation list dragged wide: little room is left
    qtbot.waitUntil(lambda: "…" in label.text())
    shown = label.text()
    assert shown.startswith("Meta-") and shown.endswith("_M · CPU")  # which model and where it runs
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert _one_line(label) and _inside(label)
    assert label.toolTip().startswith(f"Language model: {LONG_NAME} · CPU\n")


def test_the_model_label_drops_its_prefix_then_elides_the_middle_of_the_name(qtbot) -> None:
    from app.gui.views.assistant_view import ModelLabel

    label = ModelLabel()
    qtbot.addWidget(label)
    label.show()
    label.set_model(LONG_NAME, " · GPU (CUDA): 31 of 31 layers")
    metrics = label.fontMetrics()
    full = label.full_text()
    label.resize(metrics.horizontalAdvance(full) + 10, 20)
    assert label.text() == full and label.sizeHint().width() >= metrics.horizontalAdvance(full)
    label.resize(metrics.horizontalAdvance(full) - 20, 20)
    assert label.text() == LONG_NAME + " · GPU (CUDA): 31 of 31 layers"
    label.resize(metrics.horizontalAdvance(" · GPU (CUDA): 31 of 31 layers") + 120, 20)
    assert label.text().startswith("Meta") and "…" in label.text() and label.text().endswith("31 of 31 layers")
    label.resize(60, 20)
    assert label.text() and metrics.horizontalAdvance(label.text()) <= 60
    assert label.minimumSizeHint().width() < 100 and label.full_text() == full
