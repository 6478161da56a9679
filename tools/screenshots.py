"""Writes docs/images/main-window-{light,dark}.png (python tools/screenshots.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from studio.ui.app import apply_theme
from studio.ui.main_window import MainWindow

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    app = QApplication([])
    OUT.mkdir(parents=True, exist_ok=True)
    for theme in ("light", "dark"):
        apply_theme(app, theme == "dark")
        ini = Path(tempfile.mkdtemp()) / "s.ini"
        w = MainWindow(settings=QSettings(str(ini), QSettings.Format.IniFormat))
        w.resize(1500, 950)
        w.show()
        w.select_node("conv2")
        for _ in range(5):
            app.processEvents()
        w.view.fit()
        app.processEvents()
        w.grab().save(str(OUT / f"main-window-{theme}.png"))
        w.editor.stack.setClean()
        w.close()


if __name__ == "__main__":
    main()
