"""The real main window against a real store: browse, search, edit, delete, import, settings."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.gui.main_window import TAB_ENTITIES, TAB_TIMELINE
from app.gui.models import EntityTableModel, MemoryTableModel
from app.gui.models.memory_table import COL_MEMORY, COL_SCORE, RecordRole, SortRole
from app.importers import parse_conversation
from engine import Entity, MemoryRecord, Scope
from gui_helpers import row_texts, select_row

FACTS = ["I am vegetarian and love mushroom risotto", "My sister Ingrid lives in Bergen",
         "I started a new job at Nordlys Energy", "I bought a road bike to cycle to work",
         "I am allergic to cats"]


def seed(window, texts=FACTS, user="maya"):
    window.bridge.memory.add([{"role": "user", "content": t} for t in texts], user_id=user, infer=False)
    refresh(window)


def refresh(window):
    """Refresh the window and wait for the rows (read in a worker)."""
    from PySide6.QtCore import QEventLoop

    loop, shown = QEventLoop(), []
    window.table_updated.connect(loop.quit)
    window.table_updated.connect(lambda: shown.append(1))
    QTimer.singleShot(10_000, loop.quit)
    window.refresh()
    if not shown:
        loop.exec()
    window.table_updated.disconnect(loop.quit)
    assert shown, "the table was not refreshed within 10 s"


def test_first_run_shows_empty_state_and_imports_sample(qtbot, gui):
    assert gui.table_stack.currentWidget() is gui.empty_state
    qtbot.waitUntil(lambda: gui.status.model_label.text() == "Model: ready", timeout=5000)
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000) as finished:
        qtbot.mouseClick(gui.empty_state.sample_button, Qt.MouseButton.LeftButton)
    assert finished.args[0]["error"] is None and finished.args[0]["added"] > 5
    qtbot.waitUntil(lambda: gui.table_stack.currentWidget() is gui.table and gui.model.rowCount() > 5, timeout=3000)
    top = [gui.sidebar.topLevelItem(i).text(0) for i in range(gui.sidebar.topLevelItemCount())]
    assert top[:2] == ["All memories", "Users"]
    assert any("vegetarian" in t for t in row_texts(gui))
    # the sample's sessions keep their own dates and session ids
    rec = gui.model.record(0)
    assert rec.scope.user_id == "maya" and rec.scope.run_id.startswith("chat-") and rec.timestamp.year == 2024


def test_search_shows_scores_with_signal_breakdown_and_esc_clears(qtbot, gui):
    seed(gui)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.find_action.trigger()
        qtbot.keyClicks(gui.search_bar.box, "where does my sister live")
    assert gui.mode == "search"
    assert "Ingrid" in row_texts(gui)[0]
    assert not gui.table.isColumnHidden(COL_SCORE)
    tip = gui.proxy.data(gui.proxy.index(0, COL_SCORE), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("<b>Score") and "semantic" in tip and "weight" in tip
    assert "context: the best score of the messages said just before and after" in tip
    scores = [gui.proxy.index(r, COL_SCORE).data(SortRole) for r in range(gui.proxy.rowCount())]
    assert all(0.0 <= s <= 1.0 for s in scores)
    # the products shown add up to the score shown
    import re
    products = [float(x) for x in re.findall(r"= (\d\.\d+)</td>", tip)]
    assert abs(sum(products) - scores[0]) < 0.005
    with qtbot.waitSignal(gui.table_updated, timeout=3000):
        gui.clear_search_action.trigger()
    assert gui.mode == "browse" and gui.proxy.rowCount() == len(FACTS) and gui.table.isColumnHidden(COL_SCORE)


def test_search_is_debounced(qtbot, gui):
    seed(gui)
    calls = []
    gui.search_bar.query_changed.connect(calls.append)
    qtbot.keyClicks(gui.search_bar.box, "bike")
    assert calls == []  # nothing fires while typing
    qtbot.waitUntil(lambda: calls == ["bike"], timeout=2000)


def test_select_edit_save_shows_history_and_undo_restores(qtbot, gui):
    seed(gui)
    rec = select_row(qtbot, gui, 0)
    assert gui.detail.editor.toPlainText() == rec.memory
    assert "ADD" in gui.detail.history.toPlainText()
    gui.detail.editor.setPlainText("I am vegan now")
    assert gui.detail.save_button.isEnabled()
    with qtbot.waitSignal(gui.detail_updated, timeout=30_000):
        gui.save_action.trigger()
    assert gui.bridge.memory.get_record(rec.id).memory == "I am vegan now"
    history = gui.detail.history.toPlainText()
    assert "UPDATE" in history and rec.memory in history and "I am vegan now" in history
    assert gui.undo_stack.canUndo()
    gui.undo_action.trigger()
    assert gui.detail.editor.toPlainText() == rec.memory  # shown at once, stored moments later
    qtbot.waitUntil(lambda: gui.bridge.memory.get_record(rec.id).memory == rec.memory, timeout=30_000)
    qtbot.waitUntil(lambda: "UPDATE" in gui.detail.history.toPlainText()
                    and gui.detail.history.toPlainText().count("UPDATE") == 2, timeout=30_000)


def test_delete_then_undo_and_redo(qtbot, gui, monkeypatch):
    seed(gui)
    rec = select_row(qtbot, gui, 1)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    gui.delete_action.trigger()  # a single delete asks too
    assert asked and asked[0].startswith("Delete this memory?") and rec.memory in asked[0]
    assert gui.bridge.memory.count() == len(FACTS)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.delete_action.trigger()
    assert gui.bridge.memory.count() == len(FACTS) - 1 and rec.memory not in row_texts(gui)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.undo_action.trigger()
    assert gui.bridge.memory.get_record(rec.id).memory == rec.memory
    assert rec.memory in row_texts(gui)
    # history reads ADD, DELETE, RESTORE: no second identical ADD
    assert [e.event for e in gui.bridge.memory.history_records(rec.id)] == ["ADD", "DELETE", "RESTORE"]
    gui.select_id(rec.id)
    qtbot.waitUntil(lambda: gui.detail.record is not None and gui.detail.record.id == rec.id)
    qtbot.waitUntil(lambda: "RESTORE" in gui.detail.history.toPlainText())  # read in a worker
    assert gui.detail.history.toPlainText().count("ADD") == 1
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.redo_action.trigger()
    assert gui.bridge.memory.count() == len(FACTS) - 1


def test_bulk_delete_asks_first(qtbot, gui, monkeypatch):
    seed(gui)
    gui.table.selectAll()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    gui.delete_action.trigger()
    assert asked and f"Delete {len(FACTS)} memories?" in asked[0]
    assert gui.bridge.memory.count() == len(FACTS)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.delete_action.trigger()
    assert gui.bridge.memory.count() == 0


def _record(i, text, entities, user="maya"):
    now = datetime(2024, 5, i + 1, tzinfo=timezone.utc)
    return MemoryRecord(id=f"00000000-0000-0000-0000-00000000000{i}", memory=text, hash=f"h{i}",
                        scope=Scope(user_id=user), created_at=now, updated_at=now, timestamp=now,
                        memory_type="fact", event_date=now.date().isoformat(), entities=tuple(entities))


def test_filter_by_entity_from_detail_link_and_entities_view(qtbot, gui):
    mem = gui.bridge.memory
    for i, (text, ents) in enumerate([("Ingrid turned 34", ["Ingrid"]), ("Tomas is my manager", ["Tomas"]),
                                      ("Ingrid and Tomas met in Bergen", ["Ingrid", "Tomas", "Bergen"])]):
        mem.restore_record(_record(i, text, ents))
    gui.refresh()
    qtbot.waitUntil(lambda: gui.model.rowCount() == 3, timeout=3000)
    row = next(r for r in range(3) if gui.proxy.data(gui.proxy.index(r, COL_MEMORY)) == "Tomas is my manager")
    select_row(qtbot, gui, row)
    assert "Tomas" in gui.detail.entities.text()
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.detail.entities.linkActivated.emit("Tomas")
    assert gui.mode == "filter" and gui.search_bar.entity_box.text() == "Tomas"
    assert sorted(row_texts(gui)) == ["Ingrid and Tomas met in Bergen", "Tomas is my manager"]
    # entities view: counts, then the memories of the chosen entity
    view = gui.entities_view
    with qtbot.waitSignal(view.model.modelReset, timeout=5000):
        gui.tabs.setCurrentIndex(TAB_ENTITIES)
    counts = {view.model.entity(r).name: view.model.entity(r).memory_count for r in range(view.model.rowCount())}
    assert counts["Ingrid"] == 2 and counts["Bergen"] == 1
    bergen = next(r for r in range(view.proxy.rowCount()) if view.proxy.index(r, 0).data() == "Bergen")
    with qtbot.waitSignal(view.memories.modelReset, timeout=5000):
        view.table.setCurrentIndex(view.proxy.index(bergen, 0))
    assert view.memories.rowCount() == 1 and "Bergen" in view.memories.record(0).memory
    # timeline groups by month of the event date
    gui.tabs.setCurrentIndex(TAB_TIMELINE)
    qtbot.waitUntil(lambda: gui.timeline_view.tree.topLevelItemCount() == 1, timeout=3000)
    assert gui.timeline_view.tree.topLevelItem(0).text(0) == "May 2024"


def test_import_conversation_worker_updates_table(qtbot, gui):
    conv = parse_conversation("Maya: I moved to Oslo in March\nAssistant: Exciting!\nMaya: I work as a nurse")
    progress = []
    gui.bridge.import_progressed.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000) as done:
        gui.start_import(conv, Scope(user_id="maya", run_id="t1"), infer=False)
        assert gui.status.progress.isVisible() and gui.status.cancel_button.isVisible()
    assert done.args[0] == {"added": 3, "cancelled": False, "error": None}
    assert progress[-1] == (3, 3)
    qtbot.waitUntil(lambda: gui.model.rowCount() == 3, timeout=3000)
    assert not gui.status.progress.isVisible()
    assert gui.bridge.memory.source_messages(gui.model.record(0).id)[0].name in ("Maya", "Assistant")


def test_import_cancel_stops_between_sessions(qtbot, gui):
    sessions = [{"run_id": f"s{i}", "messages": [{"role": "user", "content": f"fact number {i}"}]}
                for i in range(40)]
    conv = parse_conversation(json.dumps({"sessions": sessions}))
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000) as done:
        gui.start_import(conv, Scope(user_id="maya"), infer=False)
        gui.status.cancel_button.click()
    assert done.args[0]["cancelled"] is True and done.args[0]["added"] < 40


def test_event_loop_stays_responsive_during_import(qtbot, gui):
    messages = [{"role": "user", "content": f"Memory {i}: I visited place number {i} and liked the food there."}
                for i in range(160)]
    conv = parse_conversation(json.dumps({"sessions": [{"run_id": f"r{j}", "messages": messages[j::4]}
                                                       for j in range(4)]}))
    qtbot.waitUntil(lambda: gui.bridge.model_state == "ready", timeout=20_000)
    clock, gaps = QElapsedTimer(), []
    clock.start()
    last = [clock.elapsed()]

    def beat():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=20)
    timer.timeout.connect(beat)
    timer.start()
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=60_000) as done:
        gui.start_import(conv, Scope(user_id="busy"), infer=False)
    timer.stop()
    assert done.args[0]["added"] == 160
    assert len(gaps) > 5
    print(f"heartbeat: {len(gaps)} beats, worst delay {max(gaps) - 20} ms")
    # A blocked loop stalls for the whole import (seconds); the 100 ms goal is bench/gui_bench.py's.
    assert max(gaps) - 20 < 1000, f"heartbeat was late by {max(gaps) - 20} ms"


def test_store_locked_by_another_holder_is_shown_and_app_stays_open(qtbot, store):
    from app.gui.application import build

    window, bridge, messages = build(data_dir=store.data_dir)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(bridge.store_failed, timeout=10_000) as failed:
        bridge.start()
    assert "already open" in failed.args[0]
    assert window.banner.isVisible() and "already open" in window.banner.text
    assert window.isVisible() and not bridge.is_open
    window.refresh()  # browsing an unopened store is harmless
    assert window.model.rowCount() == 0
    bridge.close()


def test_settings_bad_model_path_shows_error(qtbot, gui, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    dialog = gui.open_settings()
    qtbot.addWidget(dialog)
    dialog.model_path.setText(str(bad))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and dialog.error.isVisible()
    assert "broken.gguf" in dialog.error.text()
    dialog.model_path.setText(str(tmp_path / "missing.gguf"))
    assert not dialog.validate() and "missing.gguf" in dialog.error.text()
    good = tmp_path / "ok.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 64)
    dialog.model_path.setText("")
    dialog.threads.setValue(2)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert not dialog.isVisible()
    assert gui.bridge.memory.config.llm.n_threads == 2
    assert gui.bridge.config_path.exists()


def test_settings_name_the_found_model_that_answers_better(qtbot, gui, tmp_path):
    from dataclasses import replace

    from engine.inference.model_catalog import discover_models

    dialog = gui.open_settings()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.found_models.isEnabled, timeout=10_000)  # the search of this computer is done
    default = discover_models(home=tmp_path / "nobody", env={})
    dialog.set_models(default)  # only the packaged model: say what to add
    assert dialog.better_note.isVisible() and "add a 1.5B-3B instruct model" in dialog.better_note.text()
    bigger = replace(default[0], name="qwen2.5:3b-instruct", path=tmp_path / "blob", source="Ollama",
                     parameters="3B", size_bytes=1_900_000_000)
    dialog.set_models([*default, bigger])
    assert dialog.better_note.text().startswith("Better answers: qwen2.5:3b-instruct (Ollama, ")
    assert dialog.found_models.count() == 3  # "2 models found: pick one…" and the two


def test_export_and_restore_round_trip(qtbot, gui, tmp_path, monkeypatch):
    seed(gui)
    out = tmp_path / "backup.json"
    with qtbot.waitSignal(gui.messages.shown, timeout=5000):
        gui.bridge.export_json(out)
    data = json.loads(out.read_text())
    assert len(data["memories"]) == len(FACTS)
    gui.bridge.memory.reset()
    refresh(gui)
    assert gui.model.rowCount() == 0
    monkeypatch.setattr(type(gui), "ask_restore_mode", lambda self, exported, name, counts: "merge")
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=10_000):
        gui.import_export(str(out))
    qtbot.waitUntil(lambda: sorted(row_texts(gui)) == sorted(FACTS), timeout=5000)


def _answer_restore_dialog(qtbot, button_text, then=None, clicked=None):
    """Click a button of the next modal message box (and of the one after it, if given); the
    returned list gets the text of each button clicked."""
    clicked = [] if clicked is None else clicked

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        button = next(b for b in box.buttons() if b.text().replace("&", "").startswith(button_text))
        if then:
            _answer_restore_dialog(qtbot, then, clicked=clicked)
        clicked.append(button_text)
        button.click()
    QTimer.singleShot(20, click)
    return clicked


def test_restore_twice_asks_merge_or_replace_and_keeps_the_count(qtbot, gui, tmp_path):
    seed(gui)
    out = tmp_path / "backup.json"
    with qtbot.waitSignal(gui.messages.shown, timeout=5000):
        gui.bridge.export_json(out)
    for _ in range(2):
        _answer_restore_dialog(qtbot, "Merge")
        with qtbot.waitSignal(gui.bridge.import_finished, timeout=10_000):
            gui.import_export(str(out))
        qtbot.waitUntil(lambda: gui.bridge.import_token is None)
        assert gui.bridge.memory.count() == len(FACTS)
    assert "skipped" in gui.status.currentMessage() or gui.bridge.memory.count() == len(FACTS)
    # replace asks again before deleting; No keeps everything
    clicked = _answer_restore_dialog(qtbot, "Replace", then="No")
    gui.import_export(str(out))  # the dialog opens once the file is compared with the store (in a worker)
    qtbot.waitUntil(lambda: clicked == ["Replace", "No"], timeout=10_000)
    assert gui.bridge.import_token is None and gui.bridge.memory.count() == len(FACTS)
    gui.bridge.memory.add("one more", user_id="maya", infer=False)
    _answer_restore_dialog(qtbot, "Replace", then="Yes")
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=10_000):
        gui.import_export(str(out))
    assert gui.bridge.memory.count() == len(FACTS)


def test_restore_shows_progress_in_the_status_bar(qtbot, gui, tmp_path, monkeypatch):
    seed(gui)
    out = tmp_path / "backup.json"
    with qtbot.waitSignal(gui.messages.shown, timeout=5000):
        gui.bridge.export_json(out)
    gui.bridge.memory.reset()
    monkeypatch.setattr(type(gui), "ask_restore_mode", lambda self, exported, name, counts: "merge")
    steps, shown = [], []
    gui.bridge.import_progressed.connect(lambda d, t: steps.append((d, t)))
    gui.bridge.import_progressed.connect(
        lambda d, t: shown.append(gui.status.progress.isVisible() and gui.status.cancel_button.isVisible()))
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=10_000):
        gui.import_export(str(out))
    assert shown and all(shown)  # the bar and Cancel showed while it ran
    assert steps[-1] == (len(FACTS), len(FACTS)) and not gui.status.progress.isVisible()


def test_add_note_without_inference(qtbot, gui):
    with qtbot.waitSignal(gui.table_updated, timeout=10_000):
        gui.bridge.add_note("Remember: dentist on Friday", Scope(user_id="me"), infer=False)
    assert row_texts(gui) == ["Remember: dentist on Friday"]


def test_column_choice_is_remembered(qtbot, store, tmp_path):
    from PySide6.QtCore import QSettings

    from app.gui.application import build
    from app.gui.models.memory_table import COL_SESSION

    settings = QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)
    window, bridge, _m = build(store, settings=settings)
    qtbot.addWidget(window)
    window.column_actions[COL_SESSION].setChecked(False)
    again, bridge2, _m2 = build(store, settings=settings)
    qtbot.addWidget(again)
    assert again.table.isColumnHidden(COL_SESSION) and not again.column_actions[COL_SESSION].isChecked()


def test_paged_model_asks_for_pages_and_shows_them_when_delivered(qtmodeltester):
    records = [_record(i % 9, f"memory {i}", []) for i in range(1000)]
    model = MemoryTableModel()
    asked = []

    def request(offset, limit, deliver):  # the window reads in a worker and delivers later
        asked.append((offset, deliver))

    model.set_source(request, len(records), {0: records[:200]})
    assert model.rowCount() == 1000 and asked == []  # nothing read until a row is looked at
    assert model.data(model.index(5, COL_MEMORY)) == "memory 5"  # read with the list: shown at once
    assert model.data(model.index(999, COL_MEMORY)) == "Loading…" and model.record(999) is None
    assert model.data(model.index(950, COL_MEMORY)) == "Loading…"
    assert [offset for offset, _ in asked] == [800]  # one request per page, however often it is looked at
    changed = []
    model.dataChanged.connect(lambda first, last: changed.append((first.row(), last.row())))
    asked[0][1](records[800:1000])
    assert changed == [(800, 999)] and model.data(model.index(999, COL_MEMORY)) == "memory 999"
    # a page of an older list is dropped: a reset means a newer read is on its way
    model.data(model.index(500, COL_MEMORY))
    model.set_source(request, 3, {0: records[:3]})
    asked[-1][1](records[400:600])
    assert model.rowCount() == 3 and model.record(2).memory == "memory 2"
    qtmodeltester.check(model, force_py=True)


def test_table_models_pass_qtmodeltester(qtmodeltester):
    from engine import ScoredMemory

    model = MemoryTableModel()
    model.set_rows([ScoredMemory(_record(1, "a", ["X"]), 0.8, {"semantic": 0.7, "keyword": 0.1}),
                    _record(2, "b", [])])
    qtmodeltester.check(model, force_py=True)
    assert model.has_scores
    entities = EntityTableModel()
    entities.set_rows([Entity("Ingrid", "PERSON", 3), Entity("Bergen", "GPE", 1), Entity("Nordlys", "ORG", 1)])
    qtmodeltester.check(entities, force_py=True)
    assert [entities.index(r, 1).data() for r in range(3)] == ["Person", "Place", "Organisation"]


def test_import_dialog_previews_file_for_the_apps_user(qtbot, tmp_path):
    from app.gui.views.import_dialog import ImportDialog

    path = tmp_path / "chat.txt"
    path.write_text("Maya: I love skiing\nAssistant: Great!\nMaya: Thanks, good night!\n")
    dialog = ImportDialog(None, path=str(path))
    qtbot.addWidget(dialog)
    assert "3 messages in 1 session" in dialog.preview.text()
    assert "2 messages are small talk and will be skipped" in dialog.preview.text()
    assert dialog.scope_fields.scope().user_id == "default"  # the app's user, not the first speaker
    dialog.accept()
    conv, scope, infer = dialog.values()
    assert conv.message_count == 1 and scope.user_id == "default" and infer is False
    assert conv.sessions[0].messages[0]["name"] == "Maya"  # the speaker keeps their name
    assert conv.sessions[0].messages[0]["content"] == "I love skiing"
    dialog.skip_small_talk.setChecked(False)
    assert dialog.values()[0].message_count == 3
    path.write_text("no speaker here")
    assert not dialog._load_preview() and "Name: what they said" in dialog.error.text()


def test_restoring_a_bad_export_file_shows_a_clear_error(qtbot, gui, tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"something": 1}')
    with qtbot.waitSignal(gui.messages.shown, timeout=5000) as shown:
        gui.import_export(str(bad))
    assert shown.args == ["error", "notes.json is not a Loci export: it has no 'memories' list."]
    assert gui.banner.isVisible()


def test_many_void_qt_calls_do_not_abort_the_process(qapp):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void call; the app guards it."""
    import sys

    from app.gui.qt_compat import keep_none_alive, none_refcount_leaks

    keep_none_alive()
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(200_000):
        timer.stop()
    assert sys.getrefcount(None) > 0
    if none_refcount_leaks():
        assert before > 1 << 39  # the ballast is in place


def test_search_results_open_at_the_top_best_first_after_scrolling(qtbot, gui):
    filler = [f"Note {i}: bought {n} at the market" for i, n in
              enumerate(["apples", "pears", "bread", "cheese", "milk", "eggs", "rice", "beans"] * 8)]
    seed(gui, [*FACTS, *filler])
    gui.resize(900, 500)
    qtbot.waitUntil(lambda: gui.model.rowCount() == len(FACTS) + len(filler))
    bar = gui.table.verticalScrollBar()
    last = gui.proxy.rowCount() - 1
    select_row(qtbot, gui, last)  # a filler row far down: the view scrolls to it
    gui.table.scrollToBottom()
    assert bar.value() > 0
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.search_bar.box.setText("where does my sister live")
        gui.search_bar.query_changed.emit("where does my sister live")
    assert gui.mode == "search"
    scores = [gui.proxy.index(r, COL_SCORE).data(SortRole) for r in range(gui.proxy.rowCount())]
    assert scores == sorted(scores, reverse=True)
    assert bar.value() == 0 and gui.table.rowAt(0) == 0
    assert "Ingrid" in row_texts(gui)[0]
    # sorting by score ascending, then searching again, still opens best first
    gui.proxy.sort(COL_SCORE, Qt.SortOrder.AscendingOrder)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.search_bar.query_changed.emit("sister Bergen")
    assert "Ingrid" in row_texts(gui)[0] and bar.value() == 0


def test_settings_refuses_an_embedding_folder_that_does_not_exist(qtbot, gui, tmp_path):
    dialog = gui.open_settings()
    qtbot.addWidget(dialog)
    saved = []
    gui.bridge.messages.shown.connect(lambda level, text: saved.append(text))
    dialog.embedder_path.setText(str(tmp_path / "no-such-model"))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and dialog.error.isVisible()
    assert "no-such-model does not exist" in dialog.error.text()
    assert gui.bridge.config.embedder.path is None and not saved  # nothing was saved or applied
    empty = tmp_path / "empty"
    empty.mkdir()
    dialog.embedder_path.setText(str(empty))
    assert not dialog.validate() and "does not hold a sentence-transformers model" in dialog.error.text()
    dialog.embedder_path.setText("")
    assert dialog.validate() and not dialog.error.isVisible()


def test_installed_app_settings_ask_for_a_folder_with_an_onnx_export(qtbot, gui, tmp_path, monkeypatch):
    import shutil
    import sys

    from engine.inference.embeddings import DEFAULT_EMBEDDER, packaged_model_dir

    folder = tmp_path / "model"
    shutil.copytree(packaged_model_dir(DEFAULT_EMBEDDER), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    dialog = gui.open_settings()
    qtbot.addWidget(dialog)
    dialog.embedder_path.setText(str(folder))
    assert dialog.validate()  # from source, the model is exported to ONNX on first use
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert not dialog.validate() and "onnx/model.onnx" in dialog.error.text()
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"an export")
    assert dialog.validate() and not dialog.error.isVisible()


def test_sessions_sort_naturally_and_blank_event_dates_sort_last(qtbot, gui):
    mem = gui.bridge.memory
    for n in (10, 2, 1):
        mem.add(f"note of session {n}", user_id="maya", run_id=f"session_{n}", infer=False)
    mem.add("Ingrid visited on 2024-05-03", user_id="maya", run_id="session_2", infer=False)
    mem.restore_record(_record(7, "dated later", []))
    refresh(gui)
    sessions = gui.sidebar.topLevelItem(gui.sidebar.topLevelItemCount() - 1)
    assert [sessions.child(i).text(0) for i in range(sessions.childCount())] == \
        ["session_1", "session_2", "session_10"]
    from app.gui.models.memory_table import COL_EVENT_DATE, COL_SESSION

    gui._sort_clicked(COL_SESSION)
    column = [gui.proxy.index(r, COL_SESSION).data() for r in range(gui.proxy.rowCount())]
    assert column == ["session_1", "session_2", "session_2", "session_10", ""]
    for _ in range(2):  # ascending, then descending: blanks stay at the bottom
        gui._sort_clicked(COL_EVENT_DATE)
        dates = [gui.proxy.index(r, COL_EVENT_DATE).data() for r in range(gui.proxy.rowCount())]
        assert dates[:2] != ["", ""] and dates[-1] == "" and dates.count("") == 3
    assert dates[0] > dates[1]


def test_imported_conversations_are_listed_and_shown_by_their_titles(qtbot, gui):
    from app.gui.models.memory_table import COL_SESSION

    mem = gui.bridge.memory
    for run, title in (("chatgpt-9f2", "Trip to Lisbon"), ("chatgpt-1ab", "Bread baking")):
        mem.add([{"role": "user", "content": f"a message about {title.lower()}"}], user_id="maya", run_id=run,
                metadata={"source": "chatgpt", "conversation": title}, infer=False)
    mem.add("a note of my own", user_id="maya", run_id="notes", infer=False)
    refresh(gui)
    sessions = gui.sidebar.topLevelItem(gui.sidebar.topLevelItemCount() - 1)
    rows = [sessions.child(i) for i in range(sessions.childCount())]
    assert [r.text(0) for r in rows] == ["Bread baking", "notes", "Trip to Lisbon"]
    assert "chatgpt-9f2" in rows[2].toolTip(0) and "Trip to Lisbon" in rows[2].toolTip(0)
    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        gui.sidebar.setCurrentItem(rows[2])  # picks the session by its id
    assert gui.model.rowCount() == 1
    shown = gui.proxy.index(0, COL_SESSION)
    assert shown.data() == "Trip to Lisbon" and shown.data(Qt.ItemDataRole.ToolTipRole) == "Session chatgpt-9f2"


def test_counts_say_1_memory_and_about_shows_version_and_data_folder(qtbot, gui):
    import importlib.metadata

    with qtbot.waitSignal(gui.table_updated, timeout=5000):
        seed(gui, ["only one"])
    assert gui.status.currentMessage() == "1 memory"
    gui.bridge.measure_store()
    qtbot.waitUntil(lambda: gui.status.store_label.text().startswith("1 memory ·"), timeout=5000)
    text = gui.about_text()
    assert importlib.metadata.version("loci") in text and str(gui.bridge.data_dir) in text


def _fits(label):
    """A wrapped label shows all its lines and ends inside its window."""
    right = label.mapTo(label.window(), label.rect().topRight()).x()
    return label.height() >= label.heightForWidth(label.width()) and right <= label.window().width()


def test_at_800x600_scope_names_are_readable_and_details_not_cut_off(qtbot, gui):
    from app.gui.main_window import SAMPLE_FILE
    from app.importers import load_conversation

    conv = load_conversation(SAMPLE_FILE)
    with qtbot.waitSignal(gui.bridge.import_finished, timeout=20_000):
        gui.start_import(conv, Scope(conv.user_id, conv.agent_id), infer=False)
    gui.refresh()
    gui.resize(800, 600)
    qtbot.waitUntil(lambda: gui.width() == 800 and gui.model.rowCount() > 5)
    select_row(qtbot, gui, 0)
    qtbot.wait(50)
    tree = gui.sidebar
    metrics = tree.fontMetrics()
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        for item in [group, *(group.child(j) for j in range(group.childCount()))]:
            rect = tree.visualItemRect(item)
            room = tree.columnWidth(0) - rect.x()
            assert metrics.horizontalAdvance(item.text(0)) <= room, f"{item.text(0)!r} is cut off"
    detail = gui.detail
    for key, label in detail._labels.items():
        assert _fits(label), f"{key} is cut off"
    assert _fits(detail.entities)
    pane_right = detail.mapTo(gui, detail.rect().topRight()).x()
    assert pane_right <= gui.width()
    assert detail.id_field.text() == detail.record.id and detail.id_field.toolTip() == detail.record.id


def test_a_50000_character_note_keeps_the_details_usable(qtbot, gui):
    from engine.search.entities import MAX_MENTIONS

    names = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Ivy", "Jack", "Karen", "Liam",
             "Nora", "Oscar", "Paula", "Quinn", "Rosa", "Sam", "Tara", "Uma"]
    cities = ["Paris", "Berlin", "Madrid", "Rome", "Oslo", "Vienna", "Prague", "Lisbon", "Dublin", "Athens"]
    text = " ".join(f"{n} met {c} friends at the pottery class." for n in names for c in cities)
    text = (text * 20)[:50_000]
    with qtbot.waitSignal(gui.table_updated, timeout=30_000):
        gui.bridge.add_note(text, Scope(user_id="maya"), infer=False)
    gui.resize(800, 600)
    select_row(qtbot, gui, 0)
    qtbot.waitUntil(lambda: gui.detail.record is not None and bool(gui.detail.record.entities), timeout=30_000)
    rec = gui.detail.record  # the entities arrive once the linker has read the note
    assert len(rec.memory) == 50_000
    assert 10 <= len(rec.entities) <= MAX_MENTIONS
    assert sum(e.memory_count for e in gui.bridge.memory.entities()) <= MAX_MENTIONS
    assert f"and {len(rec.entities) - 12} more" in gui.detail.entities.text()
    qtbot.waitUntil(lambda: _fits(gui.detail.entities), timeout=2000)
    assert gui.detail.past.height() >= 100
    assert len(gui.detail.history.toPlainText()) < 3000  # the editor holds the full text
    assert gui.detail.editor.toPlainText() == text
def test_a_store_repaired_on_open_says_so_and_gets_its_daily_backup(qtbot, tmp_path, embedder, monkeypatch):
    import shutil

    from app.gui.application import build
    from engine import Memory
    from engine.store.backup import list_snapshots

    monkeypatch.setattr("engine.memory.default_embedder", lambda *a, **k: embedder)
    with Memory(tmp_path / "s", embedder=embedder) as mem:
        mem.add("My sister lives in Oslo", user_id="maya", infer=False)
    shutil.rmtree(tmp_path / "s" / "chroma")
    window, bridge, messages = build(data_dir=tmp_path / "s")
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    window.show()
    shown: list[tuple[str, str]] = []
    messages.shown.connect(lambda level, text: shown.append((level, text)))
    with qtbot.waitSignal(bridge.store_opened, timeout=20_000):
        bridge.start()
    assert any("repaired when it opened: rebuilt 1 vectors" in text for _, text in shown)
    qtbot.waitUntil(lambda: bool(list_snapshots(tmp_path / "s")), timeout=10_000)
    assert list_snapshots(tmp_path / "s")[0].reason == "daily"
    bridge.close()


def test_a_saved_edit_and_its_undo_show_at_once_before_the_store_answers(qtbot, gui):
    seed(gui)
    rec = select_row(qtbot, gui, 0)
    gui.bridge.write_pool.setMaxThreadCount(1)
    gate = __import__("threading").Event()
    gui.bridge.write_pool.start(lambda: gate.wait(30))  # the store is busy: our write waits behind this
    gui.detail.editor.setPlainText("I am vegan now")
    gui.save_action.trigger()
    # shown in the list and the details, Save disabled, while the write has not run yet
    assert gui.bridge.memory.get_record(rec.id).memory == rec.memory
    assert "I am vegan now" in row_texts(gui)
    assert gui.detail.editor.toPlainText() == "I am vegan now" and not gui.detail.save_button.isEnabled()
    gui.undo_action.trigger()
    assert rec.memory in row_texts(gui) and "I am vegan now" not in row_texts(gui)
    assert gui.detail.editor.toPlainText() == rec.memory
    gate.set()
    qtbot.waitUntil(lambda: [e.event for e in gui.bridge.memory.history_records(rec.id)] == ["ADD", "UPDATE", "UPDATE"],
                    timeout=10_000)
    assert gui.bridge.memory.get_record(rec.id).memory == rec.memory


def test_an_edit_the_store_refuses_is_rolled_back_with_a_message(qtbot, gui, monkeypatch):
    from engine import StoreError

    seed(gui)
    rec = select_row(qtbot, gui, 0)

    def full_disk(*_a, **_k):
        raise StoreError("Could not save: the disk is full. Free some space and try again; nothing was changed.")
    monkeypatch.setattr(gui.bridge.memory, "update_record", full_disk)
    shown = []
    gui.messages.shown.connect(lambda level, text: shown.append((level, text)))
    gui.detail.editor.setPlainText("I am vegan now")
    gui.save_action.trigger()
    assert "I am vegan now" in row_texts(gui)  # optimistic
    qtbot.waitUntil(lambda: any(level == "error" for level, _ in shown), timeout=10_000)
    assert ("error", "The edit was not saved: Could not save: the disk is full. Free some space and try again; "
            "nothing was changed.") in shown
    assert "I am vegan now" not in row_texts(gui) and rec.memory in row_texts(gui)
    assert gui.detail.editor.toPlainText() == rec.memory


def test_a_delete_and_its_undo_show_at_once(qtbot, gui, monkeypatch):
    seed(gui)
    rec = select_row(qtbot, gui, 1)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    gate = __import__("threading").Event()
    gui.bridge.write_pool.start(lambda: gate.wait(30))
    gui.delete_action.trigger()
    assert rec.memory not in row_texts(gui) and gui.proxy.rowCount() == len(FACTS) - 1
    gui.undo_action.trigger()
    assert row_texts(gui)[1] == rec.memory and gui.proxy.rowCount() == len(FACTS)
    gate.set()
    qtbot.waitUntil(lambda: [e.event for e in gui.bridge.memory.history_records(rec.id)]
                    == ["ADD", "DELETE", "RESTORE"], timeout=10_000)
    qtbot.waitUntil(lambda: rec.memory in row_texts(gui), timeout=5000)


def test_results_show_who_said_it_and_when_and_the_details_explain_the_score(qtbot, gui):
    from app.gui.models.memory_table import COL_CREATED, COL_SAID, COL_SAID_BY, HEADERS

    said = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    gui.bridge.memory.add([{"role": "user", "name": "Caroline", "content": "I went to the LGBTQ support group "
                            "yesterday and it was so powerful."}], user_id="maya", infer=False,
                          timestamp=said.isoformat())
    refresh(gui)
    header = gui.table.horizontalHeader()
    assert [HEADERS[header.logicalIndex(v)] for v in range(3)] == ["Memory", "Said by", "Said"]
    assert gui.table.isColumnHidden(COL_CREATED) and not gui.table.isColumnHidden(COL_SAID_BY)
    assert gui.proxy.index(0, COL_SAID_BY).data() == "Caroline"
    assert gui.proxy.index(0, COL_SAID).data() == said.astimezone().strftime("%Y-%m-%d")
    with qtbot.waitSignal(gui.table_updated, timeout=30_000):
        gui.find_action.trigger()
        qtbot.keyClicks(gui.search_bar.box, "support group")
    assert gui.status.currentMessage() == "1 result"  # how many came back, not the cut-off
    select_row(qtbot, gui, 0)
    assert gui.detail.past.currentWidget() is gui.detail.score_page
    why = gui.detail.score_page.toPlainText()
    assert why.startswith("Score") and "semantic" in why and "weight" in why and "meaning:" in why
    assert "powerful." in gui.detail.editor.toPlainText()  # the whole text, however narrow the column


def test_the_first_window_says_what_is_loading(qtbot, tmp_path):
    from app.gui.application import build

    window, bridge, _messages = build(data_dir=tmp_path / "store")
    qtbot.addWidget(window)
    window.show()
    bridge.start()  # opens the store in a worker: the window is already up and says so
    assert window.status.store_label.text() == "Opening the store…"
    assert window.status.jobs_label.text() == "Open store…"
    qtbot.waitUntil(lambda: bridge.is_open, timeout=120_000)
    qtbot.waitUntil(lambda: window.status.store_label.text().startswith("0 memories"), timeout=120_000)
    qtbot.waitUntil(lambda: window.status.model_label.text() == "Model: ready", timeout=120_000)
    bridge.close()


def test_a_closed_window_no_longer_hears_its_bridge(qtbot, store):
    """Quitting closes the bridge while reads are in flight, then the window goes: nothing that
    arrives afterwards may reach a deleted widget (pytest-qt fails on any exception in a slot)."""
    import shiboken6

    from app.gui.application import build

    window, bridge, messages = build(store)
    messages.crash_dialogs_enabled = False
    window.show()
    bridge.start()  # opens the store and reads the first page in workers...
    bridge.close()  # ...the app quits (aboutToQuit -> close) before they are delivered
    assistant = window.assistant_view
    shiboken6.delete(window)
    assert not shiboken6.isValid(assistant)
    qtbot.wait(300)  # the finished jobs' queued results are delivered now
    bridge.jobs_changed.emit(1)
    bridge.model_state_changed.emit("ready")
    bridge.store_failed.emit("gone")
    bridge.import_finished.emit({"added": 0, "cancelled": False, "error": None})
    qtbot.wait(50)


def _search(qtbot, window, query: str) -> None:
    with qtbot.waitSignal(window.table_updated, timeout=30_000):
        window.search_bar.box.setText(query)
        window.search_bar.box.returnPressed.emit()


def _why_shown(window) -> bool:
    return window.detail.past.indexOf(window.detail.score_page) >= 0


def test_why_this_result_goes_when_the_search_is_cleared_below_the_first_page(qtbot, gui):
    """The shown memory's row is past the first 200 of the browse list: clearing the search must
    not leave the last search's score breakdown beside it."""
    texts = ["The zebra played a xylophone at the harbour festival"] + \
        [f"Ordinary note number {i} about groceries and the weather" for i in range(240)]
    seed(gui, texts)  # added in order: the zebra is the oldest, the last row of the browse list
    _search(qtbot, gui, "zebra xylophone")
    hit = select_row(qtbot, gui, 0)
    assert "zebra" in hit.memory and _why_shown(gui)
    with qtbot.waitSignal(gui.table_updated, timeout=30_000):
        gui.clear_search_action.trigger()
    assert gui.mode == "browse" and gui.model.rowCount() == 241
    assert gui.detail.record is not None and gui.detail.record.id == hit.id  # still shown
    assert gui.model.row_of(hit.id) >= gui.model.PAGE
    assert not _why_shown(gui), gui.detail.score_page.toPlainText()
    current = gui.table.selectionModel().currentIndex()  # and its row selected again, far down
    assert current.isValid() and gui.proxy.data(current, RecordRole).id == hit.id
    assert gui.table.rowAt(0) == 0  # the browse list opens at its top, as before the search


def test_why_this_result_goes_when_a_new_search_misses_the_shown_memory(qtbot, gui):
    """The same query in another user's memories: the shown memory is no hit of it any more."""
    seed(gui)
    seed(gui, ["Tom plays the trumpet in a brass band"], user="tom")
    _search(qtbot, gui, "vegetarian risotto")
    hit = select_row(qtbot, gui, 0)
    assert "risotto" in hit.memory and _why_shown(gui)
    with qtbot.waitSignal(gui.table_updated, timeout=30_000):
        gui.sidebar.scope_selected.emit({"user_id": "tom"})
    assert gui.mode == "search" and [r.scope.user_id for r in map(gui.model.record, range(gui.model.rowCount()))] \
        == ["tom"]
    assert gui.detail.record is not None and gui.detail.record.id == hit.id
    assert not _why_shown(gui), gui.detail.score_page.toPlainText()


def test_ctrl_z_in_the_editor_undoes_typing_then_the_saved_edit(qtbot, gui):
    """Type, Ctrl+S, Ctrl+Z with the cursor still in the editor: the save is undone (the editor's
    own undo has nothing left after a save); while typing, Ctrl+Z undoes the typing."""
    seed(gui)
    rec = select_row(qtbot, gui, 0)
    editor = gui.detail.editor
    gui.activateWindow()
    editor.setFocus()
    qtbot.waitUntil(editor.hasFocus, timeout=3000)
    editor.moveCursor(editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(editor, " x")
    assert editor.toPlainText() == rec.memory + " x"
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the typing
    assert editor.toPlainText() == rec.memory and not gui.undo_stack.canUndo()
    qtbot.keyClicks(editor, " (edited)")
    with qtbot.waitSignal(gui.detail_updated, timeout=30_000):
        qtbot.keyClick(editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert gui.undo_stack.canUndo() and not editor.document().isUndoAvailable()
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the saved edit
    assert editor.toPlainText() == rec.memory and gui.undo_stack.canRedo()
    qtbot.waitUntil(lambda: gui.bridge.memory.get_record(rec.id).memory == rec.memory, timeout=30_000)
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert editor.toPlainText() == rec.memory + " (edited)"


def test_an_older_store_is_sped_up_in_the_background_with_progress_shown(qtbot, tmp_path, embedder, monkeypatch):
    """A store built with the fp32 embedder moves to int8 after opening; the status bar says so."""
    import engine.store.reembed as reembed
    from app.gui.application import build
    from engine import Memory

    monkeypatch.setattr(reembed, "START_DELAY_S", 0.0)
    with Memory(tmp_path / "old", embedder=embedder) as mem:  # fp32: how stores were built before
        mem.add([{"role": "user", "content": t} for t in FACTS], user_id="maya", infer=False)
    window, bridge, messages = build(data_dir=tmp_path / "old")
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    states: list[tuple[str, int, int]] = []
    bridge.reembed_progressed.connect(lambda s: states.append((s.state, s.done, s.total)))
    shown: list[str] = []
    window.status.messageChanged.connect(shown.append)
    window.show()
    try:
        bridge.start()
        qtbot.waitUntil(lambda: any(s[0] == "done" for s in states), timeout=120_000)
        assert any(s[0] == "running" for s in states) and states[-1] == ("done", len(FACTS), len(FACTS))
        assert not window.status.reembed_label.isVisible()
        assert any(m.startswith("Search is faster now: 5 memories re-embedded") for m in shown)
        assert "@int8" in bridge.memory.embedder.name
    finally:
        bridge.close()
