"""The window as the GUI tests open it: its own settings file, dialogs answered by the test."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from studio.ui.main_window import MainWindow


def open_window(qtbot, tmp_path: Path, path: Path | None = None) -> MainWindow:
    """Shown, with errors collected in ``w.errors`` and "discard" as the answer to "save?"."""
    w = MainWindow(path=path,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.errors = []
    w.show_error = lambda title, text: w.errors.append(text)
    w.files.ask_save = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    return w
