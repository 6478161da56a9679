"""Writes docs/images/dashboard.png: the window mid-run on the MNIST CNN sample."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from studio.ui.app import apply_theme
from studio.ui.main_window import MainWindow

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "dashboard.png"


def main() -> None:
    app = QApplication([])
    apply_theme(app, False)
    w = MainWindow(settings=QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"),
                                      QSettings.Format.IniFormat))
    w.resize(1500, 1000)
    w.resizeDocks([w.bottom_dock], [520], Qt.Orientation.Vertical)
    w.show()
    w.editor.set_setting("training", "epochs", 6)
    w.train()
    deadline = time.time() + 300
    while time.time() < deadline and not (w.dashboard.series["val_loss"].n >= 4):
        app.processEvents()
        time.sleep(0.01)
    w.dashboard.redraw()
    app.processEvents()
    w.grab().save(str(OUT))
    w.runs.shutdown()
    w.editor.stack.setClean()
    w.close()


if __name__ == "__main__":
    main()
