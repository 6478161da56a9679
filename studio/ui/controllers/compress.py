"""Model ▸ Compress… and the distillation teacher: the window's side of ``studio prune``,
``studio quantize`` and ``training.distill``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from ..compress_dialog import CompressDialog
    from ..main_window import MainWindow


class CompressController(QObject):
    """Opens the Compress dialog, opens its pruned projects beside this window, and sets the
    teacher a distilled run learns from."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: CompressDialog | None = None
        self.beside: list[MainWindow] = []  # windows opened on a compressed result

    def open_dialog(self) -> None:
        from ..compress_dialog import CompressDialog

        w = self.window
        evaluated = w.runs.evaluated[1] if w.runs.evaluated is not None else None
        self.dialog = CompressDialog(w.project, w.runs_dir(), w.project_dir(), w,
                                     weights=evaluated)
        self.dialog.opened.connect(self.open_beside)
        self.dialog.finished_work.connect(
            lambda ok, text: w.show_status(("compressed: report " if ok else
                                            "compression failed: ") + text))
        self.dialog.open()

    def open_beside(self, path: Path) -> None:
        """A result in a window of its own, so the two can be compared side by side."""
        other = type(self.window)(path, settings=self.window.settings)  # no import cycle
        other.show()
        self.beside.append(other)

    def choose_teacher(self) -> None:
        """The inspector's Choose Teacher…: a run's weights, checked against this network
        (same samples, as many outputs), set as one undo step."""
        from studio.training.distill import check_teacher

        w = self.window
        path = w.files.ask_weights_file()
        if path is None:
            return
        if w.analysis is None or w.analysis.errors:
            w.show_status("fix the network's problems first (see the Problems list)")
            return
        try:
            check_teacher(path, w.analysis)
        except StudioError as exc:
            w.show_error("Cannot learn from this teacher", str(exc))
            return
        value = str(path)
        if w.project.path is not None:
            with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
                value = os.path.relpath(path, w.project.path.parent)
        old = w.project.training.distill
        kept = old.model_dump() if old is not None else {}
        w.editor.set_setting("training", "distill", {**kept, "teacher": value})
        w.show_status(f"distilling from {path.parent.name}/{path.name}")
