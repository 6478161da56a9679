"""The main window: palette, canvas, inspector, summary and problems, menus and files."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QTabWidget,
)

from studio.core.errors import StudioError
from studio.core.graph import Edge, Node
from studio.core.layout import layered_positions
from studio.core.project import (
    Project,
    default_sample,
    sample_paths,
    samples_dir,
)
from studio.core.shapes import Analysis, analyze

from .canvas import NODE_H, CanvasScene, NodeItem
from .commands import Editor, MoveNodes
from .inspector import Inspector
from .palette import Palette
from .summary import ProblemsPanel, SummaryPanel
from .training.dashboard import Dashboard
from .training.evaluation import EvaluationView
from .training.runs import RunsPanel
from .training.worker import RunController
from .view import CanvasView

RESOURCES = Path(str(files("studio.resources")))
MAX_RECENT = 10
RUN_WHERE = ((0, "In This Process (a Thread)"), (1, "In a Separate Process"),
             (2, "On 2 Processes (Data-Parallel)"), (4, "On 4 Processes (Data-Parallel)"))
FILE_FILTER = ("Studio projects (*.studio.json);;Trained weights with their project "
               "(*.safetensors);;JSON files (*.json);;All files (*)")


def icon(name: str) -> QIcon:
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))


class MainWindow(QMainWindow):
    """One project at a time; everything the user changes goes through ``self.editor``."""

    analysed = Signal(object)  # the Analysis after each re-validation

    def __init__(self, path: Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("Studio", "Studio")
        self.setWindowIcon(icon("studio"))
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self._clipboard: tuple[list[Node], list[Edge]] = ([], [])
        self.analysis: Analysis | None = None
        # dialogs go through these so tests can answer them
        self.ask_save: Callable[[], QMessageBox.StandardButton] = self._ask_save
        self.show_error: Callable[[str, str], None] = self._show_error
        self.ask_architecture: Callable[[], str | None] = self._ask_architecture
        self.ask_weights_file: Callable[[], Path | None] = self._ask_weights_file
        self.show_info: Callable[[str, str], None] = self._show_info
        self.opened_weights: Path | None = None
        self.palette = Palette()
        self.summary = SummaryPanel()
        self.problems = ProblemsPanel()
        self.dashboard = Dashboard()
        self.evaluation = EvaluationView()
        self.runs_panel = RunsPanel(self.dashboard.plots["loss"])
        self.runs_panel.confirm_delete = self._confirm_delete
        self.runs_panel.evaluate_requested.connect(self.evaluate_weights)
        self.runs_panel.resume_requested.connect(
            lambda info: self.train(resume_from=info.path / "last.ckpt",
                                    snapshot=info.path / "project.studio.json"))
        self.runs = RunController(self)
        self.runs.ended.connect(self._run_ended)
        self.last_result = None
        self.ask_stop_run: Callable[[], bool] = self._ask_stop_run
        self._docks()
        self._actions()
        self._analysis_timer = QTimer(self, singleShot=True, interval=0)
        self._analysis_timer.timeout.connect(self.reanalyse)
        self.palette.tree.activated_layer.connect(self.append_layer)
        self.problems.node_clicked.connect(self.select_node)
        self.problems.itemDoubleClicked.connect(
            lambda item: self.quick_fix(item.data(Qt.ItemDataRole.UserRole)))
        project = self._load_or_none(path or default_sample()) or Project()
        self.set_project(project)
        self._start_autosave()
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        self.resizeDocks([self.bottom_dock], [220], Qt.Orientation.Vertical)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [220, 330],
                         Qt.Orientation.Horizontal)
        state = self.settings.value("windowState")
        if isinstance(state, QByteArray):
            self.restoreState(state)

    # -- layout ---------------------------------------------------------------------------

    def _docks(self) -> None:
        def dock(title: str, name: str, widget, area: Qt.DockWidgetArea) -> QDockWidget:
            d = QDockWidget(title, self)
            d.setObjectName(name)
            d.setWidget(widget)
            self.addDockWidget(area, d)
            return d

        self.palette_dock = dock("Layers", "palette", self.palette,
                                 Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = dock("Inspector", "inspector", None,
                                   Qt.DockWidgetArea.RightDockWidgetArea)
        tabs = QTabWidget()
        tabs.addTab(self.summary, "Summary")
        tabs.addTab(self.problems, "Problems")
        tabs.addTab(self.dashboard, "Training")
        tabs.addTab(self.evaluation, "Evaluation")
        tabs.addTab(self.runs_panel, "Runs")
        self.bottom_tabs = tabs
        self.bottom_dock = dock("Model", "bottom", tabs, Qt.DockWidgetArea.BottomDockWidgetArea)

    def _action(self, text: str, slot: Callable[[], object], shortcut=None,
                icon_name: str | None = None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if icon_name:
            a.setIcon(icon(icon_name))
        a.triggered.connect(lambda _=False: slot())
        return a

    def _actions(self) -> None:
        K = QKeySequence.StandardKey
        self.act_new = self._action("&New", self.new_project, K.New, "new")
        self.act_open = self._action("&Open…", self.open_dialog, K.Open, "open")
        self.act_save = self._action("&Save", self.save, K.Save, "save")
        self.act_save_as = self._action("Save &As…", self.save_as, K.SaveAs)
        self.act_revert = self._action("&Revert", self.revert)
        self.act_export = self._action("&Export…", self.export_dialog, "Ctrl+E")
        self.act_import_tv = self._action("Import &torchvision Model…", self.import_torchvision)
        self.act_init_weights = self._action("Start From &Weights…", self.start_from_weights)
        self.act_quit = self._action("&Quit", self.close, K.Quit)
        self.act_copy = self._action("&Copy", self.copy_selection, K.Copy)
        self.act_paste = self._action("&Paste", self.paste, K.Paste)
        self.act_duplicate = self._action("D&uplicate", self.duplicate, "Ctrl+D")
        self.act_delete = self._action("&Delete", self.delete_selection, K.Delete, "delete")
        self.act_select_all = self._action("Select &All", self.select_all, K.SelectAll)
        self.act_zoom_in = self._action("Zoom &In", lambda: self.view.zoom_by(1.25), K.ZoomIn,
                                        "zoom-in")
        self.act_zoom_out = self._action("Zoom &Out", lambda: self.view.zoom_by(0.8), K.ZoomOut,
                                         "zoom-out")
        self.act_fit = self._action("&Fit to View", lambda: self.view.fit(), "Ctrl+0", "fit")
        self.act_layout = self._action("Auto &Layout", self.auto_layout, "Ctrl+L", "layout")
        self.act_train = self._action("&Train", self.train, "F5")
        self.act_pause = self._action("&Pause", self.toggle_pause, "F6")
        self.act_stop = self._action("&Stop", self.stop_run, "Shift+F5")
        self.samples_menu = QMenu("Open &Sample", self)
        for p in sample_paths():
            self.samples_menu.addAction(p.name.removesuffix(".studio.json"),
                                        lambda p=p: self.open_path(p))
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_new, self.act_open):
            f.addAction(a)
        f.addMenu(self.samples_menu)
        f.addMenu(self.recent_menu)
        f.addSeparator()
        for a in (self.act_save, self.act_save_as, self.act_revert):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_import_tv)
        f.addAction(self.act_init_weights)
        f.addAction(self.act_export)
        f.addSeparator()
        f.addAction(self.act_quit)
        self.edit_menu = mb.addMenu("&Edit")
        self.view_menu = mb.addMenu("&View")
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_layout):
            self.view_menu.addAction(a)
        self.view_menu.addSeparator()
        for d in (self.palette_dock, self.inspector_dock, self.bottom_dock):
            self.view_menu.addAction(d.toggleViewAction())
        run = mb.addMenu("&Run")
        for a in (self.act_train, self.act_pause, self.act_stop):
            run.addAction(a)
        run.addSeparator()
        self.run_where = run.addMenu("Run &Where")
        self.run_where_group = QActionGroup(self)
        for n, text in RUN_WHERE:
            a = self.run_where.addAction(text)
            a.setCheckable(True)
            a.setData(n)
            self.run_where_group.addAction(a)
        self.run_where_group.triggered.connect(
            lambda a: self.settings.setValue("run/processes", a.data()))
        self.set_run_processes(self._setting_int("run/processes", 1))
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.progress.hide()
        self._update_run_actions()
        self.toolbar = self.addToolBar("Main")
        self.toolbar.setObjectName("toolbar")
        for a in (self.act_new, self.act_open, self.act_save):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        self._undo_slot = self.toolbar.addSeparator()
        for a in (self.act_delete, self.act_fit, self.act_layout):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        for a in (self.act_train, self.act_pause, self.act_stop):
            self.toolbar.addAction(a)

    # -- the project ----------------------------------------------------------------------

    def set_project(self, project: Project) -> None:
        """Show a project: a fresh editor, scene and inspector; the old ones are dropped."""
        old = getattr(self, "editor", None)
        old_scene = getattr(self, "scene", None)
        if old_scene is not None:
            old_scene.selectionChanged.disconnect(self._selection_changed)
        self.editor = Editor(project, self)
        self.scene = CanvasScene(self.editor, self)
        if getattr(self, "view", None) is None:
            self.view = CanvasView(self.scene)
            self.view.context_requested.connect(self._context_menu)
            self.setCentralWidget(self.view)
        else:
            self.view.setScene(self.scene)
            self.view.canvas = self.scene
        self.inspector = Inspector(self.editor)
        self.inspector_dock.setWidget(self.inspector)
        g = self.editor.graph
        for sig in (g.node_added, g.node_removed, g.node_changed, g.edge_added, g.edge_removed):
            sig.connect(lambda *_: self._analysis_timer.start())
        # bound methods, not lambdas: Qt drops them with the window, so a stack torn down
        # after it cannot call into a deleted window
        self.editor.stack.cleanChanged.connect(self._update_title)
        self.editor.stack.cleanChanged.connect(self._clean_changed)
        self.editor.stack.indexChanged.connect(self._update_title)
        self.scene.selectionChanged.connect(self._selection_changed)
        self.scene.message.connect(self._status)
        self._undo_actions()
        if old is not None:
            old.deleteLater()
        if old_scene is not None:
            old_scene.deleteLater()
        self.reanalyse()
        self._update_title()
        self.runs_panel.set_folder(self.runs_dir())
        QTimer.singleShot(0, self.view.fit)

    def _undo_actions(self) -> None:
        for a in getattr(self, "_undo_pair", ()):
            self.edit_menu.removeAction(a)
            self.toolbar.removeAction(a)
        undo = self.editor.stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        undo.setIcon(icon("undo"))
        redo = self.editor.stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        redo.setIcon(icon("redo"))
        self._undo_pair = (undo, redo)
        self.edit_menu.clear()
        for a in (undo, redo):
            self.edit_menu.addAction(a)
        self.edit_menu.addSeparator()
        for a in (self.act_copy, self.act_paste, self.act_duplicate, self.act_delete,
                  self.act_select_all):
            self.edit_menu.addAction(a)
        self.toolbar.insertActions(self._undo_slot, [undo, redo])

    @property
    def project(self) -> Project:
        return self.editor.project

    def reanalyse(self) -> None:
        a = analyze(self.editor.graph)
        self.analysis = a
        self.scene.show_analysis(a)
        self.summary.show_analysis(self.editor.graph, a)
        self.problems.show_analysis(a)
        n = len(a.errors)
        self.bottom_tabs.setTabText(1, f"Problems ({n})" if n else "Problems")
        self.analysed.emit(a)

    def _status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def is_modified(self) -> bool:
        return not self.editor.stack.isClean()

    def _update_title(self, *_: object) -> None:
        p = self.project
        where = str(p.path) if p.path else "unsaved"
        self.setWindowTitle(f"{p.name} — {where} [*] — Studio")
        self.setWindowModified(self.is_modified())

    # -- files ----------------------------------------------------------------------------

    def _load_or_none(self, path: Path) -> Project | None:
        try:
            if path.suffix == ".safetensors":  # a weights file carries its project
                return self._project_from_weights(path)
            return Project.load(path)
        except StudioError as exc:
            self.show_error("Could not open the project", str(exc))
            return None

    def _project_from_weights(self, path: Path) -> Project:
        from studio.training.checkpoint import embedded_project, load_weights

        _state, meta = load_weights(path)
        project = embedded_project(meta, path)
        project.path = None  # saved under a new name; the weights stay where they are
        self.opened_weights = path
        return project

    def _has_problems(self) -> bool:
        """True, with the first problem in the status bar, when the graph cannot be built."""
        if self.analysis is not None and self.analysis.errors:
            self._status("fix the problems first: " + self.analysis.errors[0].message)
            return True
        return False

    def project_dir(self) -> Path | None:
        """Where the project's relative paths (data, initial weights) start from."""
        return self.project.path.parent if self.project.path else None

    def export_dialog(self) -> None:
        from .export_dialog import ExportDialog

        if self._has_problems():
            return
        base = self.project_dir()
        self.exporter = ExportDialog(self.project, self.runs_dir(), base, self,
                                     weights=self.opened_weights)
        self.exporter.show()

    def _ask_architecture(self) -> str | None:
        from PySide6.QtWidgets import QInputDialog

        from studio.export.torchvision_import import ARCHITECTURES

        name, ok = QInputDialog.getItem(self, "Import torchvision model", "Architecture",
                                        list(ARCHITECTURES), 0, False)
        return name if ok else None

    def import_torchvision(self) -> None:
        """A torchvision architecture as a new, unsaved project laid out on the canvas."""
        if not self.maybe_save():
            return
        name = self.ask_architecture()
        if not name:
            return
        from studio.export.torchvision_import import import_torchvision

        self._status(f"importing {name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            result = import_torchvision(name)
        except StudioError as exc:
            self.show_error("Could not import", str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.opened_weights = None
        self.set_project(result.project)
        self.view.fit()
        self._status(result.summary())

    def _ask_weights_file(self) -> Path | None:
        start = self.runs_dir()
        path, _ = QFileDialog.getOpenFileName(
            self, "Start from the weights of another run", str(start if start.exists() else
                                                              Path.home()),
            "Weights and checkpoints (*.safetensors *.ckpt)")
        return Path(path) if path else None

    def start_from_weights(self) -> None:
        """Train from another run's weights: check which layers fit, then set
        ``training.init_weights`` as one undoable step and show what loads and what does not."""
        path = self.ask_weights_file()
        if path is None:
            return
        if self._has_problems():
            return
        from studio.training.transfer import check

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            report = check(self.project, path)
        except StudioError as exc:
            self.show_error("Could not use these weights", str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        value = str(path)
        if self.project.path is not None:
            import contextlib
            import os

            with contextlib.suppress(ValueError):  # another drive on Windows: keep it absolute
                value = os.path.relpath(path, self.project.path.parent)
        self.editor.set_setting("training", "init_weights", value)
        self._status("initial weights: " + report.summary())
        self.show_info("Initial weights", "\n".join([report.summary() + ".", *report.lines()]))

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project (saved, discarded, or clean)."""
        if not self.is_modified():
            return True
        answer = self.ask_save()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_project(self) -> None:
        if self.maybe_save():
            self.set_project(Project())

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(self.project.path.parent) if self.project.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, FILE_FILTER)
        if path:
            self.open_path(Path(path), ask=False)

    def open_path(self, path: Path, ask: bool = True) -> bool:
        """Open a file; on failure show the loader's message and keep the current project."""
        if ask and not self.maybe_save():
            return False
        project = self._load_or_none(Path(path))
        if project is None:
            return False
        self.set_project(project)
        self._add_recent(Path(path))
        return True

    def save(self) -> bool:
        if self.project.path is None or self.project.path.parent == samples_dir():
            return self.save_as()  # never overwrite a shipped sample silently
        return self._save_to(self.project.path)

    def save_as(self) -> bool:
        start = str(self.project.path or Path.home() / "untitled.studio.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += ".studio.json"
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            self.project.save(path)
        except (OSError, StudioError) as exc:
            self.show_error("Could not save the project", f"{path}: {exc}")
            return False
        self.editor.stack.setClean()
        self._add_recent(path)
        self._update_title()
        self.runs_panel.set_folder(self.runs_dir())
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def revert(self) -> None:
        if self.project.path is not None:
            project = self._load_or_none(self.project.path)
            if project is not None:
                self.set_project(project)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in value or [] if isinstance(v, str)]

    def _add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.settings.setValue("recentFiles", files[:MAX_RECENT])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for f in files:
            self.recent_menu.addAction(f, lambda f=f: self.open_path(Path(f)))

    # -- autosave and crash recovery -------------------------------------------------------

    def _start_autosave(self) -> None:
        """Unsaved edits go to a recovery file every 30 s (and when a run starts), beside a
        lock the OS drops if this process dies; the next launch offers them back."""
        import os

        from studio.core.recovery import RecoverySession

        self.ask_restore: Callable[[Any], str] = self._ask_restore
        try:
            self.recovery: RecoverySession | None = RecoverySession()
        except OSError as exc:
            self.recovery = None
            self._status(f"autosave is off: the recovery folder cannot be written ({exc})")
        ms = int(os.environ.get("STUDIO_AUTOSAVE_MS", "30000"))
        self.autosave_timer = QTimer(self, interval=max(ms, 50))
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

    def autosave(self) -> None:
        if self.recovery is None:
            return
        try:
            if self.is_modified():
                self.recovery.write(self.project)
            else:
                self.recovery.clear()
        except OSError as exc:  # a full disk must not interrupt editing: say it, go on
            self._status(f"autosave failed: {exc.strerror or exc}")

    def _clean_changed(self, clean: bool) -> None:
        if clean and getattr(self, "recovery", None) is not None:
            self.recovery.clear()

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest unsaved work left behind; True if restored."""
        from studio.core.recovery import orphans

        try:
            found = orphans(self.recovery.folder if self.recovery else None)
        except OSError:
            return False
        for rec in found:
            answer = self.ask_restore(rec)
            if answer == "discard":
                rec.discard()
                continue
            if answer != "restore":
                continue  # later: offered again at the next launch
            if not self.maybe_save():
                return False
            try:
                project = rec.load()
            except StudioError as exc:
                self.show_error("Could not restore", str(exc))
                continue
            self.opened_weights = None
            self.set_project(project)
            self.editor.stack.resetClean()  # restored edits are unsaved edits
            self._update_title()
            self.autosave()  # now this session's to keep safe
            rec.discard()
            when = time.strftime("%H:%M", time.localtime(rec.saved_at))
            self._status(f"restored unsaved changes to “{rec.name}” from {when}")
            return True
        return False

    def _ask_restore(self, rec: Any) -> str:
        B = QMessageBox.StandardButton
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.saved_at))
        where = f" ({rec.original})" if rec.original else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved changes",
                          f"Studio did not close normally. Unsaved changes to “{rec.name}”"
                          f"{where} from {when} were kept.", B.NoButton, self)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "restore" if clicked is restore else "discard" if clicked is discard else "later"

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.runs.running:
            if not self.ask_stop_run():
                event.ignore()
                return
            self.runs.shutdown()
        if not self.maybe_save():
            event.ignore()
            return
        self.scene.selectionChanged.disconnect(self._selection_changed)
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        self.settings.sync()
        if self.recovery is not None:
            self.recovery.close()
        event.accept()

    def _ask_save(self) -> QMessageBox.StandardButton:
        B = QMessageBox.StandardButton
        return QMessageBox.question(
            self, "Unsaved changes",
            f"Save the changes to “{self.project.name}” before closing it?",
            B.Save | B.Discard | B.Cancel, B.Save)

    def _ask_stop_run(self) -> bool:
        B = QMessageBox.StandardButton
        return QMessageBox.question(
            self, "A run is going", "Stop the training run and close? The last checkpoint "
            "is kept.", B.Yes | B.No, B.No) == B.Yes

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _show_info(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)

    # -- editing --------------------------------------------------------------------------

    def selected_ids(self) -> list[str]:
        return [i.node_id for i in self.scene.selectedItems() if isinstance(i, NodeItem)]

    def select_node(self, node_id: str) -> None:
        item = self.scene.nodes.get(node_id)
        if item is None:
            return
        self.scene.clearSelection()
        item.setSelected(True)
        self.view.centerOn(item)

    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        self.inspector.show_node(ids[0] if len(ids) == 1 else None)

    def append_layer(self, layer_type: str) -> str | None:
        """Palette double-click/Enter: place below the selected node and wire it."""
        ids = self.selected_ids()
        after = ids[0] if len(ids) == 1 else None
        if after is not None:
            x, y = self.editor.graph.nodes[after].pos
            pos = (x, y + NODE_H + 46)
        else:
            rect = self.scene.itemsBoundingRect()
            pos = (rect.left() if rect.isValid() else 0.0,
                   rect.bottom() + 46 if rect.isValid() else 0.0)
        nid = self.editor.add_layer(layer_type, pos, after=after)
        if nid is not None:
            self.select_node(nid)
        return nid

    def delete_selection(self) -> None:
        ids = self.selected_ids()
        edges = [i.edge for i in self.scene.selectedItems() if hasattr(i, "edge")]
        stack = self.editor.stack
        stack.beginMacro("Delete selection")
        for e in edges:
            if e.src not in ids and e.dst not in ids:
                self.editor.disconnect(e)
        self.editor.delete(ids)
        stack.endMacro()

    def select_all(self) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)

    def copy_selection(self) -> None:
        ids = set(self.selected_ids())
        nodes = [self.editor.graph.nodes[i].copy() for i in self.editor.graph.nodes if i in ids]
        edges = [e for e in self.editor.graph.edges if e.src in ids and e.dst in ids]
        self._clipboard = (nodes, edges)

    def paste(self) -> None:
        nodes, edges = self._clipboard
        if nodes:
            new = self.editor.paste(copy.deepcopy(nodes), list(edges))
            self.scene.clearSelection()
            for nid in new:
                self.scene.nodes[nid].setSelected(True)

    def duplicate(self) -> None:
        self.copy_selection()
        self.paste()

    def auto_layout(self) -> None:
        g = self.editor.graph
        try:
            positions = layered_positions(g)
        except StudioError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            return
        moves = {nid: (g.nodes[nid].pos, p) for nid, p in positions.items()
                 if g.nodes[nid].pos != p}
        if moves:
            self.editor.stack.push(MoveNodes(g, moves, mergeable=False, text="Auto layout"))
        self.view.fit()

    def context_actions(self, node_id: str) -> list[QAction]:
        """What right-clicking a node (or the background) offers."""
        actions: list[QAction] = []
        fix = self._fix_for(node_id) if node_id else None
        if fix:
            actions.append(self._action(f"Insert {fix} here", lambda: self.quick_fix(node_id)))
        if node_id:
            actions += [self.act_duplicate, self.act_copy, self.act_delete]
        else:
            actions += [self.act_paste, self.act_select_all, self.act_layout, self.act_fit]
        return actions

    def _context_menu(self, node_id: str, global_pos) -> None:
        menu = QMenu(self)
        menu.addActions(self.context_actions(node_id))
        menu.exec(global_pos)

    def _fix_for(self, node_id: str) -> str | None:
        if self.analysis is None:
            return None
        return next((p.fix for p in self.analysis.problems_for(node_id) if p.fix), None)

    def quick_fix(self, node_id: str | None) -> bool:
        """'Insert Flatten here' and the like: insert the suggested layer before the node."""
        if not node_id:
            return False
        fix = self._fix_for(node_id)
        g = self.editor.graph
        ins = g.in_edges(node_id) if node_id in g else []
        if fix is None or len(ins) != 1:
            return False
        edge = ins[0]
        x, y = g.nodes[node_id].pos
        stack = self.editor.stack
        stack.beginMacro(f"Insert {fix} before {node_id}")
        self.editor.disconnect(edge)
        nid = self.editor.add_layer(fix, (x, y - NODE_H / 2), after=edge.src)
        if nid is not None:
            self.editor.connect(nid, node_id, edge.port)
        stack.endMacro()
        return nid is not None


    # -- training -------------------------------------------------------------------------

    def _setting_int(self, key: str, default: int) -> int:
        try:
            return int(self.settings.value(key, default))
        except (TypeError, ValueError):
            return default

    @property
    def run_processes(self) -> int:
        """0: a thread of this process; 1: a child process; N > 1: N processes (DDP)."""
        a = self.run_where_group.checkedAction()
        return int(a.data()) if a is not None else 1

    def set_run_processes(self, n: int) -> None:
        for a in self.run_where_group.actions():
            a.setChecked(a.data() == n)
        if self.run_where_group.checkedAction() is None:
            self.run_where_group.actions()[1].setChecked(True)

    def runs_dir(self) -> Path:
        """Runs live beside the project; samples and unsaved projects use the user folder."""
        from studio.training.run_folder import runs_dir

        return runs_dir(self.project.path)

    def train(self, resume_from: Path | None = None, snapshot: Path | None = None) -> bool:
        """Train a snapshot of the project on a worker thread (F5); with ``resume_from``,
        continue a stopped run from its own project snapshot."""
        if self.runs.running:
            return False
        self.autosave()  # a run is when a machine is most likely to fall over
        project = self.project
        if snapshot is not None:
            loaded = self._load_or_none(snapshot)
            if loaded is None:
                return False
            project = loaded
        elif self._has_problems():
            self.bottom_tabs.setCurrentWidget(self.problems)
            return False

        out = resume_from.parent if resume_from is not None else None
        if out is None:
            from studio.training.run_folder import new_run_dir

            try:
                out = new_run_dir(self.project.path)
            except StudioError as exc:
                self.show_error("Could not start the run", str(exc))
                return False
        self.dashboard.reset()
        self.dashboard.add_message(f"run folder: {out}")
        base = self.project_dir()
        worker = self.runs.start(project, out, resume_from, base,
                                 processes=self.run_processes)
        worker.started_run.connect(self._run_started)
        worker.progress.connect(self._run_progress)
        worker.epoch_end.connect(self._run_epoch)
        worker.message.connect(self.dashboard.add_message)
        self.run_dir = out
        self.bottom_tabs.setCurrentWidget(self.dashboard)
        self.progress.setValue(0)
        self.progress.show()
        self._progress_shown = 0.0
        self._update_run_actions()
        return True

    def toggle_pause(self) -> None:
        w = self.runs.worker
        if not self.runs.running or w is None:
            return
        if w.paused:
            w.resume()
        else:
            w.pause()
        self._update_run_actions()

    def stop_run(self) -> None:
        if self.runs.running and self.runs.worker is not None:
            self.runs.worker.stop()
            self._status("stopping after this batch…")

    def _update_run_actions(self) -> None:
        running = self.runs.running
        self.act_train.setEnabled(not running)
        self.act_pause.setEnabled(running)
        self.act_stop.setEnabled(running)
        paused = running and self.runs.worker is not None and self.runs.worker.paused
        self.act_pause.setText("&Resume" if paused else "&Pause")

    def _run_started(self, info: dict) -> None:
        self.dashboard.reset(info)
        self.dashboard.add_message(f"data: {info['data']}")
        where = info["device"]
        if info.get("processes", 1) > 1:
            where = f"{info['processes']} data-parallel processes ({where})"
        self.dashboard.add_message(f"model: {info['params']:,} parameters on {where}")
        self._epochs = info["epochs"]

    def _run_progress(self, logs: dict) -> None:
        self.dashboard.add_progress(logs)
        now = time.monotonic()  # the status bar at 4 Hz: each repaint costs the run CPU
        if now - self._progress_shown < 0.25 and logs["batch"] < logs["batches"]:
            return
        self._progress_shown = now
        total = logs["epochs"] * logs["batches"]
        self.progress.setMaximum(total)
        self.progress.setValue(min(logs["step"], total))
        eta = logs.get("eta_s")
        eta_text = "?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        self.progress_label.setText(
            f"epoch {logs['epoch']}/{logs['epochs']} · step {logs['batch']}/{logs['batches']}"
            f" · {logs['samples_per_s']:,.0f} samples/s · ETA {eta_text}")

    def _run_epoch(self, logs: dict) -> None:
        self.dashboard.add_epoch(logs)
        from studio.training.console import format_logs

        self.dashboard.add_message(f"epoch {logs['epoch']}: {format_logs(logs)}")

    def evaluate_weights(self, run: Any, weights: Path) -> None:
        """The evaluation views for one checkpoint of a run, computed in a child process."""
        from .training.process import EvaluationJob

        out = run.path / f"evaluation-{weights.stem}.npz"
        base = self.project_dir()
        job = EvaluationJob(run.path / "project.studio.json", weights, out, base, parent=self)
        self.evaluation_job = job
        self._status(f"evaluating {run.name}/{weights.name}…")

        def done(pred: dict, logs: dict) -> None:
            from studio.training.console import format_logs

            self.evaluation.show_predictions(pred, logs)
            self.bottom_tabs.setCurrentWidget(self.evaluation)
            self.dashboard.add_message(f"{run.name}/{weights.name}: {format_logs(logs)}")
            self._status(f"evaluated {run.name}/{weights.name}")

        def failed(text: str) -> None:
            self.dashboard.add_message(f"evaluation failed: {text}")
            self._status(f"evaluation failed: {text}")

        job.done.connect(done)
        job.failed.connect(failed)
        job.start()

    def _confirm_delete(self, names: list[str]) -> bool:
        B = QMessageBox.StandardButton
        return QMessageBox.question(self, "Delete runs", "Delete " + ", ".join(names) +
                                    " and their checkpoints?", B.Yes | B.No, B.No) == B.Yes

    def _run_ended(self, result) -> None:
        self.last_result = result
        self.runs_panel.refresh()
        self.dashboard.redraw()
        self.progress.hide()
        self.progress_label.setText("")
        self._update_run_actions()
        self.dashboard.add_message(result.message)
        if result.status == "failed":
            self.dashboard.add_message(f"FAILED: {result.message}")
            self._status(f"training failed: {result.message}")
            return
        self._status(f"training {result.message}")
        preds = getattr(result, "predictions", None)
        if preds:
            self.evaluation.show_predictions(preds, result.logs)
