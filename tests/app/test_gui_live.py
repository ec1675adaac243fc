"""The desktop app follows a store other programs write to, and hands it over when it closes."""
from __future__ import annotations

import threading
import time

import httpx

from app.gui.models.memory_table import COL_MEMORY
from service_helpers import Served


def _shown(window):
    return [window.proxy.data(window.proxy.index(r, COL_MEMORY)) for r in range(window.proxy.rowCount())]


def test_app_shows_api_adds_live_and_hands_over_on_close(qtbot, tmp_path, embedder):
    from app.gui.application import build
    from engine.service import ServedMemory

    folder = tmp_path / "store"
    owner = ServedMemory(folder, embedder=embedder)  # the app opened first: it owns the store
    window, bridge, messages = build(owner)
    messages.crash_dialogs_enabled = False
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.table_updated, timeout=10_000):
        bridge.start()
    served = Served(folder).wait_ready()  # another program: becomes a client of the app
    try:
        auth = {"Authorization": f"Token {served.key}"}
        r = httpx.post(f"{served.url}/v3/memories/add/", headers=auth, timeout=60, json={
            "messages": [{"role": "user", "content": "Remember the dentist on Friday"}],
            "user_id": "maya", "infer": False})
        assert r.status_code == 200
        start = time.monotonic()
        qtbot.waitUntil(lambda: "Remember the dentist on Friday" in _shown(window), timeout=2000)
        assert time.monotonic() - start < 2.0

        acknowledged: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        def keep_adding() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"note {n}"
                try:
                    resp = httpx.post(f"{served.url}/v3/memories/add/", headers=auth, timeout=120, json={
                        "messages": [{"role": "user", "content": text}], "user_id": "maya", "infer": False})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if resp.status_code == 200:
                    acknowledged.append(text)
                else:
                    failures.append(resp.text)
        writer = threading.Thread(target=keep_adding)
        writer.start()
        qtbot.waitUntil(lambda: len(acknowledged) >= 3, timeout=20_000)
        bridge.close()  # the person quits the app: the API process takes the store over
        window.close()
        before = len(acknowledged)
        deadline = time.monotonic() + 90
        while len(acknowledged) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        writer.join(timeout=120)
        assert len(acknowledged) >= before + 3, failures  # still serving after the app closed
        listed = httpx.post(f"{served.url}/v3/memories/?page_size=1000", headers=auth, timeout=60,
                            json={"filters": {"user_id": "maya"}}).json()
        stored = {r["memory"] for r in listed["results"]}
        assert set(acknowledged) <= stored  # no acknowledged write was lost in the hand-over
        assert failures == []  # the hand-over is invisible to the API client: no error, no "locked"
    finally:
        served.stop()
        bridge.close()


def test_app_opened_second_is_a_client_and_follows_changes(qtbot, tmp_path, embedder):
    from app.gui.application import build
    from engine.service import RemoteMemory, ServedMemory

    folder = tmp_path / "store"
    with ServedMemory(folder, embedder=embedder) as owner:  # e.g. `loci mcp` opened the store first
        owner.add("Written before the app opened", user_id="maya", infer=False)
        window, bridge, messages = build(data_dir=folder)
        messages.crash_dialogs_enabled = False
        qtbot.addWidget(window)
        window.show()
        bridge.start()
        qtbot.waitUntil(lambda: "Written before the app opened" in _shown(window), timeout=30_000)
        assert isinstance(bridge.memory, RemoteMemory)  # no "store is locked": the app joined the owner
        owner.add("Written while the app is open", user_id="maya", infer=False)
        qtbot.waitUntil(lambda: "Written while the app is open" in _shown(window), timeout=2000)
        bridge.close()
