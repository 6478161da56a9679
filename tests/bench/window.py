"""The real main window for GUI benchmarks, with throwaway settings."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings

from studio.ui.main_window import MainWindow


def bench_window(path: Path | None = None) -> MainWindow:
    ini = Path(tempfile.mkdtemp()) / "settings.ini"
    w = MainWindow(path, settings=QSettings(str(ini), QSettings.Format.IniFormat))
    w.resize(1500, 950)
    w.show()
    return w
