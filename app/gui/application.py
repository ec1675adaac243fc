"""Start-up: the QApplication, icon, messages, bridge and main window; `main()` runs it."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine.service.heap import cap_malloc_arenas

log = logging.getLogger(__name__)

ICON_DIRS = (Path(__file__).resolve().parent / "resources",  # inside the installed package
             Path(__file__).resolve().parents[2] / "assets" / "icons")  # a source checkout


def app_icon() -> QIcon:
    """The Loci icon (PNG renditions of assets/loci.svg), or an empty icon when not shipped."""
    icon = QIcon()
    for folder in ICON_DIRS:
        for size in (16, 24, 32, 48, 64, 128, 256, 512):
            png = folder / f"loci-{size}.png"
            if png.exists():
                icon.addFile(str(png))
        if not icon.isNull():
            break
    return icon


def ui_settings() -> QSettings:
    """Window geometry and column choice, kept beside the config file."""
    from engine.paths import default_config_file

    return QSettings(str(default_config_file().parent / "gui.ini"), QSettings.Format.IniFormat)


def build(memory: Any = None, *, data_dir: str | Path | None = None, settings: QSettings | None = None,
          store_process: bool = False):
    """Create messages, bridge and window (shared by main, tests and the screenshot script).
    store_process: the store's owner runs in a child process (what the app does; see EngineBridge)."""
    from engine import LociConfig, LociError
    from engine.paths import default_config_file

    from .engine_bridge import EngineBridge
    from .main_window import MainWindow
    from .messages import Messages
    from .qt_compat import keep_none_alive

    # Workers run Python-heavy engine code (Chroma, spaCy, BM25); a short GIL switch interval
    # lets the GUI thread in quickly so the event loop stays responsive.
    sys.setswitchinterval(0.001)
    keep_none_alive()
    messages = Messages()
    config_path = default_config_file()
    config_problem = None
    if memory is None:
        try:
            config = LociConfig.load(config_path)
        except LociError as exc:
            config, config_problem = LociConfig(), f"{exc.user_message} Using the default settings."
    else:
        config = memory.config
    bridge = EngineBridge(messages, memory, data_dir=data_dir, config=config, config_path=config_path,
                          store_process=store_process)
    window = MainWindow(bridge, messages, settings)
    if config_problem:
        messages.error(config_problem)
    return window, bridge, messages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loci-gui", description="Loci's desktop memory browser.")
    parser.add_argument("--data-dir", help="store folder (default: $LOCI_HOME or the platform data dir)")
    args, qt_args = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    cap_malloc_arenas()  # before any thread starts (the store's own process caps its arenas too)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Loci")
    app.setOrganizationName("Loci")
    app.setWindowIcon(app_icon())
    # LOCI_STORE_PROCESS=0 keeps the store in this process (for troubleshooting)
    window, bridge, messages = build(data_dir=args.data_dir, settings=ui_settings(),
                                     store_process=os.environ.get("LOCI_STORE_PROCESS", "1") != "0")

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        messages.crash(f"{kind.__name__}: {exc}", "".join(traceback.format_exception(kind, exc, tb)))

    sys.excepthook = excepthook
    app.aboutToQuit.connect(bridge.close)
    window.show()
    QTimer.singleShot(0, bridge.start)  # open the store and load the model after the window shows
    return app.exec()
