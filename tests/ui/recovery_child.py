"""A real window with unsaved edits, for the crash-recovery test to kill (not a test module).

Run: python -m tests.ui.recovery_child PROJECT SETTINGS.ini — prints "ready" once the edits
are in the recovery file, then waits in the event loop to be killed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from studio.ui.main_window import MainWindow


def main() -> None:
    app = QApplication(sys.argv[:1])
    w = MainWindow(Path(sys.argv[1]),
                   settings=QSettings(sys.argv[2], QSettings.Format.IniFormat))
    w.show()
    w.editor.set_params("dense1", {"out_features": 77})  # the user's unsaved work
    w.editor.set_setting("training", "epochs", 9)
    said = []

    def poll() -> None:
        session = w.recovery.session
        if not said and session is not None and session.written_at is not None:
            print("ready", flush=True)
            said.append(True)

    timer = QTimer(interval=20)
    timer.timeout.connect(poll)
    timer.start()
    app.exec()


if __name__ == "__main__":
    main()
