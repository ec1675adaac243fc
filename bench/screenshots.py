"""Start the app on a sample store (under Xvfb when available) and save screenshots to docs/.

    python bench/screenshots.py [--out docs]

The sample conversation is imported through the GUI's own import worker (infer off, so no
LLM is needed); then each main view is shown and grabbed: empty state, the memory table
with a memory's details, search results with scores, entities, timeline, settings, the
Assistant after a question and a statement (at 1280x800 and 800x600, replies by the packaged
model) and the window at 800x600.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wait(app, condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.01)


def settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def take(out: Path) -> None:
    """Runs inside the display: drive the real window and grab each view."""
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Loci")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from app.gui.application import app_icon, build
    from app.gui.main_window import TAB_ASSISTANT, TAB_ENTITIES, TAB_MEMORIES, TAB_TIMELINE

    app.setWindowIcon(app_icon())
    window, bridge, messages = build()
    messages.crash_dialogs_enabled = False
    window.resize(1400, 820)
    window.show()
    updates = []
    window.table_updated.connect(lambda: updates.append(1))
    bridge.start()
    wait(app, lambda: updates and bridge.is_open)
    settle(app)
    shots = []

    def grab(name: str, widget=None) -> None:
        settle(app)
        path = out / f"screenshot-{name}.png"
        (widget or window).grab().save(str(path))
        shots.append(path)

    grab("empty-state")
    finished = []
    bridge.import_finished.connect(finished.append)
    window.import_sample()
    wait(app, lambda: finished, timeout=180)
    if finished[0].get("error"):
        raise SystemExit(f"sample import failed: {finished[0]['error']}")
    wait(app, lambda: window.model.rowCount() > 0)
    wait(app, lambda: bridge.model_state in ("ready", "error"), timeout=120)
    updates.clear()
    window.sidebar.select_scope({"user_id": "maya"})
    wait(app, lambda: updates)  # the scope's rows are read in a worker
    row = next((r for r in range(window.proxy.rowCount())
                if "Ingrid" in (window.proxy.index(r, 0).data() or "")), 0)
    details: list[int] = []
    window.detail_updated.connect(lambda: details.append(1))
    window.table.selectRow(row)
    wait(app, lambda: details)  # its history and sources too
    grab("memories")

    updates.clear()
    window.search_bar.box.setText("what food does Maya eat")
    wait(app, lambda: updates and window.mode == "search")
    window.table.selectRow(0)
    grab("search")
    window.search_bar.clear_search()

    window.tabs.setCurrentIndex(TAB_ENTITIES)
    view = window.entities_view
    wait(app, lambda: view.model.rowCount() > 0 or "No entities" in view.status.text(), timeout=30)
    if view.proxy.rowCount():
        view.table.selectRow(0)
        wait(app, lambda: view.memories.rowCount() > 0, timeout=10)
        view.memory_table.selectRow(0)
    grab("entities")

    window.tabs.setCurrentIndex(TAB_TIMELINE)
    wait(app, lambda: window.timeline_view.tree.topLevelItemCount() > 0, timeout=30)
    tree = window.timeline_view.tree
    tree.setCurrentItem(tree.topLevelItem(0).child(0))
    grab("timeline")

    window.tabs.setCurrentIndex(TAB_MEMORIES)
    dialog = window.open_settings()
    settle(app)
    grab("settings", dialog)
    dialog.reject()

    window.tabs.setCurrentIndex(TAB_ASSISTANT)
    window.resize(1280, 800)
    chat = window.assistant_view
    chat.set_user("maya")
    replies: list[int] = []
    remembered: list[int] = []
    chat.reply_shown.connect(lambda: replies.append(1))
    chat.remembered_shown.connect(lambda: remembered.append(1))
    for n, said in enumerate(("Where does my sister live?", "My neighbour Tomas is teaching me to play the cello."),
                             start=1):
        chat.input.setPlainText(said)
        chat.send()
        wait(app, lambda n=n: len(replies) >= n, timeout=300)
    wait(app, lambda: len(remembered) >= 2, timeout=60)  # the statement is remembered, and says so
    grab("assistant")
    window.resize(800, 600)  # the smallest size the window is laid out for
    grab("assistant-small-window")

    window.tabs.setCurrentIndex(TAB_MEMORIES)
    window.table.selectRow(row)
    grab("small-window")
    bridge.close()
    for p in shots:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)


def run_child(out: Path, env: dict[str, str]) -> bool:
    result = subprocess.run([sys.executable, __file__, "--child", "--out", str(out)], env=env, timeout=600)
    return result.returncode == 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.child:
        take(out)
        return 0
    home = Path(tempfile.mkdtemp(prefix="loci-screens-"))
    env = {**os.environ, "LOCI_HOME": str(home)}
    try:
        xvfb = shutil.which("Xvfb")
        if xvfb:
            display = f":{90 + os.getpid() % 9}"
            server = subprocess.Popen([xvfb, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.0)
                if server.poll() is None and run_child(out, {**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}):
                    return 0
                print("Xvfb run failed; taking the screenshots offscreen instead", file=sys.stderr)
            finally:
                server.terminate()
                server.wait(10)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        return 0 if run_child(out, {**env, "QT_QPA_PLATFORM": "offscreen"}) else 1
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
