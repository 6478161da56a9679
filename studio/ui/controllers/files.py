"""Files: new, open, save, revert and the recent list; a weights file opened as its project; a
torchvision import; starting from another run's weights; the export dialog."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from studio.core.errors import StudioError
from studio.core.project import Project, samples_dir

if TYPE_CHECKING:
    from ..export_dialog import ExportDialog
    from ..main_window import MainWindow

MAX_RECENT = 10
FILE_FILTER = ("Studio projects (*.studio.json);;Trained weights with their project "
               "(*.safetensors);;JSON files (*.json);;All files (*)")


class FilesController(QObject):
    """The project's file: what opens it, what writes it, and what may drop it unsaved."""

    saved = Signal(Path)  # after the project was written there (its path may be new)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        #: the weights file the project was opened from; the export dialog preselects it
        self.opened_weights: Path | None = None
        self.exporter: ExportDialog | None = None
        # questions go through these so tests can answer them
        self.ask_save: Callable[[], QMessageBox.StandardButton] = self._ask_save
        self.ask_architecture: Callable[[], str | None] = self._ask_architecture
        self.ask_weights_file: Callable[[], Path | None] = self._ask_weights_file

    # -- reading --------------------------------------------------------------------------

    def load_or_none(self, path: Path) -> Project | None:
        """The project in a file, or None after showing the loader's message."""
        try:
            if path.suffix == ".safetensors":  # a weights file carries its project
                return self._project_from_weights(path)
            return Project.load(path)
        except StudioError as exc:
            self.window.show_error("Could not open the project", str(exc))
            return None

    def _project_from_weights(self, path: Path) -> Project:
        from studio.training.checkpoint import embedded_project, load_weights

        _state, meta = load_weights(path)
        project = embedded_project(meta, path)
        project.path = None  # saved under a new name; the weights stay where they are
        self.opened_weights = path
        return project

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project (saved, discarded, or clean)."""
        if not self.window.is_modified():
            return True
        answer = self.ask_save()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_project(self) -> None:
        if self.maybe_save():
            self.window.set_project(Project())

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        project = self.window.project
        start = str(project.path.parent) if project.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", start, FILE_FILTER)
        if path:
            self.open_path(Path(path), ask=False)

    def open_path(self, path: Path, ask: bool = True) -> bool:
        """Open a file; on failure show the loader's message and keep the current project."""
        if ask and not self.maybe_save():
            return False
        project = self.load_or_none(Path(path))
        if project is None:
            return False
        self.window.set_project(project)
        self._add_recent(Path(path))
        return True

    def revert(self) -> None:
        path = self.window.project.path
        if path is not None:
            project = self.load_or_none(path)
            if project is not None:
                self.window.set_project(project)

    # -- writing --------------------------------------------------------------------------

    def save(self) -> bool:
        path = self.window.project.path
        if path is None or path.parent == samples_dir():
            return self.save_as()  # never overwrite a shipped sample silently
        return self.save_to(path)

    def save_as(self) -> bool:
        start = str(self.window.project.path or Path.home() / "untitled.studio.json")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += ".studio.json"
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        w = self.window
        try:
            w.project.save(path)
        except (OSError, StudioError) as exc:
            w.show_error("Could not save the project", f"{path}: {exc}")
            return False
        w.editor.stack.setClean()
        self._add_recent(path)
        w.update_title()
        self.saved.emit(path)
        w.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    # -- the recent list ------------------------------------------------------------------

    def recent_files(self) -> list[str]:
        value = self.window.settings.value("recentFiles", [])
        if isinstance(value, str):  # a list of one may come back as its one string
            return [value]
        if not isinstance(value, (list, tuple)):  # none kept yet, or not a list of ours
            return []
        return [v for v in value if isinstance(v, str)]

    def _add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.window.settings.setValue("recentFiles", files[:MAX_RECENT])

    def fill_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        files = self.recent_files()
        if not files:
            menu.addAction("(none)").setEnabled(False)
        for f in files:
            menu.addAction(f, partial(self.open_path, Path(f)))

    # -- other ways in and out ------------------------------------------------------------

    def import_torchvision(self) -> None:
        """A torchvision architecture as a new, unsaved project laid out on the canvas."""
        if not self.maybe_save():
            return
        name = self.ask_architecture()
        if not name:
            return
        from studio.export.torchvision_import import import_torchvision

        w = self.window
        w.show_status(f"importing {name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            result = import_torchvision(name)
        except StudioError as exc:
            w.show_error("Could not import", str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.opened_weights = None
        w.set_project(result.project)
        w.view.fit()
        w.show_status(result.summary())

    def start_from_weights(self) -> None:
        """Train from another run's weights: check which layers fit, then set
        ``training.init_weights`` as one undoable step and show what loads and what does not."""
        path = self.ask_weights_file()
        if path is None:
            return
        w = self.window
        if w.has_problems():
            return
        from studio.training.transfer import check

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            report = check(w.project, path)
        except StudioError as exc:
            w.show_error("Could not use these weights", str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        value = str(path)
        if w.project.path is not None:
            with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
                value = os.path.relpath(path, w.project.path.parent)
        w.editor.set_setting("training", "init_weights", value)
        w.show_status("initial weights: " + report.summary())
        w.show_info("Initial weights", "\n".join([report.summary() + ".", *report.lines()]))

    def export_dialog(self) -> None:
        from ..export_dialog import ExportDialog

        w = self.window
        if w.has_problems():
            return
        self.exporter = ExportDialog(w.project, w.runs_dir(), w.project_dir(), w,
                                     weights=self.opened_weights)
        self.exporter.show()

    # -- the questions, as dialogs --------------------------------------------------------

    def _ask_save(self) -> QMessageBox.StandardButton:
        B = QMessageBox.StandardButton
        return QMessageBox.question(
            self.window, "Unsaved changes",
            f"Save the changes to “{self.window.project.name}” before closing it?",
            B.Save | B.Discard | B.Cancel, B.Save)

    def _ask_architecture(self) -> str | None:
        from studio.export.torchvision_import import ARCHITECTURES

        name, ok = QInputDialog.getItem(self.window, "Import torchvision model", "Architecture",
                                        list(ARCHITECTURES), 0, False)
        return name if ok else None

    def _ask_weights_file(self) -> Path | None:
        start = self.window.runs_dir()
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Start from the weights of another run",
            str(start if start.exists() else Path.home()),
            "Weights and checkpoints (*.safetensors *.ckpt)")
        return Path(path) if path else None
