"""Autosave and crash recovery: unsaved edits kept in a recovery file, offered back after a crash.

The edits go to the file every 30 s (and when a run starts), beside a lock the OS drops if this
process dies; the next launch finds the unlocked file and offers it back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.recovery import Recovered, RecoverySession

    from ..main_window import MainWindow


class RecoveryController(QObject):
    """This session's recovery file (``session``), written by a timer, cleared when clean."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.session: RecoverySession | None = None  # None: autosave is off
        ms = int(os.environ.get("STUDIO_AUTOSAVE_MS", "30000"))
        self.timer = QTimer(self, interval=max(ms, 50))
        self.timer.timeout.connect(self.autosave)
        # the question goes through this so tests can answer it
        self.ask_restore: Callable[[Recovered], str] = self._ask_restore

    def start(self) -> None:
        """Open this session's recovery file and start the timer that writes it."""
        from studio.core.recovery import RecoverySession

        try:
            self.session = RecoverySession()
        except OSError as exc:
            self.session = None
            self.window.show_status(
                f"autosave is off: the recovery folder cannot be written ({exc})")
        self.timer.start()

    def autosave(self) -> None:
        if self.session is None:
            return
        try:
            if self.window.is_modified():
                self.session.write(self.window.project)
            else:
                self.session.clear()
        except OSError as exc:  # a full disk must not interrupt editing: say it, go on
            self.window.show_status(f"autosave failed: {exc.strerror or exc}")

    def clean_changed(self, clean: bool) -> None:
        if clean and self.session is not None:
            self.session.clear()

    def close(self) -> None:
        """A clean exit: nothing left behind to offer at the next launch."""
        if self.session is not None:
            self.session.close()

    def offer(self) -> bool:
        """After a crash: offer the newest unsaved work left behind; True if restored."""
        from studio.core.recovery import orphans

        w = self.window
        try:
            found = orphans(self.session.folder if self.session else None)
        except OSError:
            return False
        for rec in found:
            answer = self.ask_restore(rec)
            if answer == "discard":
                rec.discard()
                continue
            if answer != "restore":
                continue  # later: offered again at the next launch
            if not w.files.maybe_save():
                return False
            try:
                project = rec.load()
            except StudioError as exc:
                w.show_error("Could not restore", str(exc))
                continue
            w.files.opened_weights = None
            w.set_project(project)
            w.editor.stack.resetClean()  # restored edits are unsaved edits
            w.update_title()
            self.autosave()  # now this session's to keep safe
            rec.discard()
            when = time.strftime("%H:%M", time.localtime(rec.saved_at))
            w.show_status(f"restored unsaved changes to “{rec.name}” from {when}")
            return True
        return False

    def _ask_restore(self, rec: Recovered) -> str:
        B = QMessageBox.StandardButton
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.saved_at))
        where = f" ({rec.original})" if rec.original else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved changes",
                          f"Studio did not close normally. Unsaved changes to “{rec.name}”"
                          f"{where} from {when} were kept.", B.NoButton, self.window)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "restore" if clicked is restore else "discard" if clicked is discard else "later"
