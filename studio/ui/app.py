"""Start-up: the window first, torch later.

Importing torch takes seconds; it is loaded after the window has been shown (and is only
needed when training starts), so the window appears within a second even on two cores.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Qt is imported when the window starts, not when this module loads
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

T0 = time.perf_counter()


def apply_theme(app: QApplication, dark: bool | None = None) -> None:
    """Fusion with a light or dark palette; ``None`` follows the system colour scheme."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    if dark is None:
        dark = app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    pal = QPalette()
    if dark:
        R = QPalette.ColorRole
        for role, colour in ((R.Window, "#2b2d31"), (R.WindowText, "#e6e6e6"),
                             (R.Base, "#1e1f22"), (R.AlternateBase, "#2b2d31"),
                             (R.Text, "#e6e6e6"), (R.Button, "#36383d"),
                             (R.ButtonText, "#e6e6e6"), (R.Highlight, "#3574f0"),
                             (R.HighlightedText, "#ffffff"), (R.ToolTipBase, "#3c3f44"),
                             (R.ToolTipText, "#e6e6e6"), (R.PlaceholderText, "#8c8c8c")):
            pal.setColor(role, QColor(colour))
        off = QPalette.ColorGroup.Disabled  # greyed out, or a disabled Pause reads as live
        for role in (R.WindowText, R.Text, R.ButtonText):
            pal.setColor(off, role, QColor("#77797e"))
        pal.setColor(off, R.Base, QColor("#26272b"))
        pal.setColor(off, R.Button, QColor("#303236"))
    else:
        pal = app.style().standardPalette()
    app.setPalette(pal)
    app.setProperty("studio_dark", dark)


def run_app(path: str | Path | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    running = QApplication.instance()
    if running is not None and not isinstance(running, QApplication):
        raise RuntimeError(f"a {type(running).__name__} is already running; the window needs "
                           "a QApplication")
    app = running if running is not None else QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    theme = os.environ.get("STUDIO_THEME")
    apply_theme(app, None if theme is None else theme == "dark")
    window = MainWindow(Path(path) if path else None)
    window.show()
    probe = os.environ.get("STUDIO_STARTUP_PROBE")
    if probe:  # for the start-up test and benchmark: report, then leave
        def report() -> None:
            print(json.dumps({"visible": window.isVisible(),
                              "seconds": time.perf_counter() - T0,
                              "torch_loaded": "torch" in sys.modules,
                              "pyqtgraph_loaded": "pyqtgraph" in sys.modules}), flush=True)
            app.quit()
        QTimer.singleShot(0, report)
    else:
        QTimer.singleShot(0, window.recovery.offer)
        QTimer.singleShot(50, window.training_views)  # before anyone asks for them
        QTimer.singleShot(200, lambda: _load_torch(window))
    return app.exec()


def _load_torch(window: MainWindow) -> None:
    """After the window is up: bring torch in and offer the devices it finds."""
    from studio.training.trainer import available_devices

    window.inspector.set_devices(available_devices())
