"""The main window: builds the palette, canvas, inspector, Summary/Problems, training and
evaluation widgets, actions and menus, hands the centre to the views (Design, Train, Evaluate)
and wires it all to the controllers that do the work (files, editing, runs, recovery)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QToolBar,
    QWidget,
)

from studio.core.doctor import diagnose
from studio.core.findings import Finding, problem_list
from studio.core.project import Project, default_sample, sample_header, sample_paths
from studio.core.shapes import Analysis, analyze

from .canvas import CanvasScene
from .controllers.blocks import BlocksController
from .controllers.compress import CompressController
from .controllers.editing import EditingController
from .controllers.files import FilesController
from .controllers.recovery import RecoveryController
from .controllers.runs import RUN_WHERE, RunsController
from .controllers.sweeps import SweepController
from .editor import Editor
from .inspector import Inspector
from .palette import Palette
from .summary import ProblemsPanel, SummaryPanel
from .view import CanvasView
from .views import RunsBox, Views

if TYPE_CHECKING:  # built at first need: see MainWindow.training_views
    from .training.dashboard import Dashboard
    from .training.evaluation import EvaluationView
    from .training.runs import RunsPanel
    from .training.sweep_view import SweepView

RESOURCES = Path(str(files("studio.resources")))


def icon(name: str) -> QIcon:
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))


class TrainingViews(NamedTuple):
    dashboard: Dashboard
    evaluation: EvaluationView
    runs_panel: RunsPanel
    sweep: SweepView


class MainWindow(QMainWindow):
    """One project at a time; everything the user changes goes through ``self.editor``."""

    analysed = Signal(object)  # the Analysis after each re-validation

    def __init__(self, path: Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("Studio", "Studio")
        self.setWindowIcon(icon("studio"))
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.analysis: Analysis | None = None
        self.shown_analysis: Analysis | None = None  # the canvas's: the network or a block's
        self.findings: list[Finding] = []  # what the Problems list shows, doctor's included
        self.run_findings: list[Finding] = []  # the run-time doctor's, from live statistics
        # messages go through these so tests can see them
        self.show_error: Callable[[str, str], None] = self._show_error
        self.show_info: Callable[[str, str], None] = self._show_info
        self.layer_palette = Palette()  # not self.palette: that is QWidget.palette()
        self.summary = SummaryPanel()
        self.problems = ProblemsPanel()
        self._training: TrainingViews | None = None
        self.views = Views(self, self.settings, self.training_views)
        self.setCentralWidget(self.views.stack)
        self.files = FilesController(self)
        self.editing = EditingController(self)
        self.runs = RunsController(self)
        self.sweeps = SweepController(self)
        self.compress = CompressController(self)
        self.blocks = BlocksController(self)
        self.recovery = RecoveryController(self)
        self._docks()
        self._actions()
        self._wire()
        self._analysis_timer = QTimer(self, singleShot=True, interval=0)
        self._analysis_timer.timeout.connect(self.reanalyse)
        self.set_project(self.files.load_or_none(path or default_sample()) or Project())
        self.recovery.start()
        self.views.restore()  # size, docks and the last view

    # -- layout ---------------------------------------------------------------------------

    def _docks(self) -> None:
        """Design's docks, at their first-launch share of the window; each scrolls its own
        content, so a tall form never makes the window taller."""
        A = Qt.DockWidgetArea

        def dock(title: str, name: str, widget: QWidget | None, area: Qt.DockWidgetArea,
                 share: float, lo: int, hi: int) -> QDockWidget:
            d = QDockWidget(title, self)
            d.setObjectName(name)
            if widget is not None:  # the inspector's comes with the first project
                d.setWidget(widget)
            return self.views.add_dock("design", d, area, share, lo, hi)

        # the side docks run the full height: the inspector's form is the tallest thing here
        self.setCorner(Qt.Corner.BottomLeftCorner, A.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, A.RightDockWidgetArea)
        self.palette_dock = dock("Layers", "palette", self.layer_palette, A.LeftDockWidgetArea,
                                 0.15, 170, 260)
        self.palette_dock.setMinimumWidth(150)
        self.inspector_dock = dock("Inspector", "inspector", None, A.RightDockWidgetArea,
                                   0.24, 300, 380)  # its form is laid out for 300 px
        self.inspector_dock.setMinimumWidth(240)
        tabs = QTabWidget()
        tabs.addTab(self.summary, "Summary")
        tabs.addTab(self.problems, "Problems")
        self.bottom_tabs = tabs
        self.bottom_dock = dock("Model", "bottom", tabs, A.BottomDockWidgetArea, 0.26, 130, 240)
        self.bottom_dock.setMinimumHeight(110)

    def _action(self, text: str, slot: Callable[[], object],
                shortcut: QKeySequence.StandardKey | str | None = None,
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
        fc, ed, rc = self.files, self.editing, self.runs
        self.act_new = self._action("&New", fc.new_project, K.New, "new")
        self.act_open = self._action("&Open…", fc.open_dialog, K.Open, "open")
        self.act_save = self._action("&Save", fc.save, K.Save, "save")
        self.act_save_as = self._action("Save &As…", fc.save_as, K.SaveAs)
        self.act_revert = self._action("&Revert", fc.revert)
        self.act_export = self._action("&Export…", fc.export_dialog, "Ctrl+E")
        self.act_import_tv = self._action("Import &torchvision Model…", fc.import_torchvision)
        self.act_init_weights = self._action("Start From &Weights…", fc.start_from_weights)
        self.act_quit = self._action("&Quit", self.close, K.Quit)
        self.act_copy = self._action("&Copy", ed.copy_selection, K.Copy)
        self.act_paste = self._action("&Paste", ed.paste, K.Paste)
        self.act_duplicate = self._action("D&uplicate", ed.duplicate, "Ctrl+D")
        self.act_delete = self._action("&Delete", ed.delete_selection, K.Delete, "delete")
        self.act_select_all = self._action("Select &All", ed.select_all, K.SelectAll)
        self.act_zoom_in = self._action("Zoom &In", lambda: self.view.zoom_by(1.25), K.ZoomIn,
                                        "zoom-in")
        self.act_zoom_out = self._action("Zoom &Out", lambda: self.view.zoom_by(0.8), K.ZoomOut,
                                         "zoom-out")
        self.act_fit = self._action("&Fit to View", lambda: self.view.fit(), "Ctrl+0", "fit")
        self.act_layout = self._action("Auto &Layout", ed.auto_layout, "Ctrl+L", "layout")
        self.act_train = self._action("&Train", rc.train, "F5")
        self.act_pause = self._action("&Pause", rc.toggle_pause, "F6")
        self.act_stop = self._action("&Stop", rc.stop, "Shift+F5")
        self.act_lr_find = self._action("Find &Learning Rate…", rc.find_learning_rate,
                                        "Ctrl+Shift+L")
        self.act_sweep = self._action("S&weep", self.sweeps.start, "Ctrl+F5")
        self.act_compress = self._action("&Compress…", self.compress.open_dialog, "Ctrl+Shift+K")
        self.act_teacher = self._action("Learn From a &Teacher…", self.compress.choose_teacher)
        self.act_sweep.setStatusTip("Run the project's hyperparameter sweep (add fields with "
                                    "right-click ▸ Sweep this… in the inspector)")
        self.act_stop_sweep = self._action("Stop Swee&p", self.sweeps.stop)
        self.act_show_training = QAction("Show Training When a Run &Starts", self)
        self.act_show_training.setCheckable(True)
        self.samples_menu = QMenu("Open &Sample", self)
        self.samples_menu.aboutToShow.connect(self._fill_samples_menu)  # read when first opened
        self.recent_menu = QMenu("Open &Recent", self)
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
        self.edit_menu = mb.addMenu("&Edit")  # filled by _undo_actions for each project
        self.blocks.add_menu(mb)
        self.view_menu = mb.addMenu("&View")
        self.view_menu.addActions(self.views.group.actions())
        self.view_menu.addSeparator()
        zoom = (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_layout)
        self.view_menu.addActions(zoom)
        self.act_minimap = QAction("&Minimap", self)
        self.act_minimap.setCheckable(True)
        self.view_menu.addAction(self.act_minimap)
        self.view_menu.addSeparator()
        for d in (self.palette_dock, self.inspector_dock, self.bottom_dock):
            self.view_menu.addAction(d.toggleViewAction())
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.views.reset_action)
        self.views.design_actions = [self.act_copy, self.act_paste, self.act_duplicate,
                                     self.act_delete, self.act_select_all, *zoom]
        run = mb.addMenu("&Run")
        for a in (self.act_train, self.act_pause, self.act_stop):
            run.addAction(a)
        run.addSeparator()
        run.addAction(self.act_lr_find)
        run.addAction(self.act_sweep)
        run.addAction(self.act_stop_sweep)
        run.addSeparator()
        run.addAction(self.act_show_training)
        model = mb.addMenu("&Model")
        model.addAction(self.act_compress)
        model.addAction(self.act_teacher)
        self.run_where = run.addMenu("Run &Where")
        self.run_where_group = QActionGroup(self)
        for n, text in RUN_WHERE:
            a = self.run_where.addAction(text)
            a.setCheckable(True)
            a.setData(n)
            self.run_where_group.addAction(a)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.progress.hide()
        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("toolbar")
        self.views.add_toolbar(self.toolbar)
        self.views.add_toolbar(self.views.toolbar)  # the mode bar, beside it
        for a in (self.act_new, self.act_open, self.act_save):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        self._undo_slot = self.toolbar.addSeparator()
        for a in (self.act_delete, self.act_fit, self.act_layout):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        for a in (self.act_train, self.act_pause, self.act_stop):
            self.toolbar.addAction(a)

    def _wire(self) -> None:
        """The views' own signals, to the controllers that act on them."""
        self.recent_menu.aboutToShow.connect(self.files.fill_recent_menu)
        self.files.saved.connect(lambda _path: self.runs.show_runs_folder())
        self.run_where_group.triggered.connect(self.runs.remember_run_where)
        self.runs.restore_run_where()
        self.act_show_training.setChecked(self.runs.show_training_setting())
        self.act_show_training.toggled.connect(self.runs.remember_show_training)
        self.runs.update_actions()
        self.layer_palette.tree.activated_layer.connect(self.editing.append_layer)
        self.problems.node_clicked.connect(self.editing.select_in_network)
        self.problems.fix_requested.connect(self.editing.apply_fix)

    # -- Train and Evaluate, built at first need ------------------------------------------

    def training_views(self) -> TrainingViews:
        """The dashboard, evaluation view and runs list, built the first time anything asks
        (the app asks right after the window shows): their plotting library takes about half
        a second to import, which the window's first appearance does not wait for."""
        if self._training is not None:
            return self._training
        from .training.dashboard import Dashboard
        from .training.evaluation import EvaluationView
        from .training.runs import RunsPanel
        from .training.sweep_view import SweepView

        dashboard = Dashboard()
        panel = RunsPanel(dashboard)
        self._training = TrainingViews(dashboard, EvaluationView(), panel, SweepView())
        self.views.attach(dashboard, self._training.evaluation, RunsBox(panel),
                          self._training.sweep)
        self.sweeps.connect_view(self._training.sweep)
        panel.confirm_delete = self.runs.confirm_delete
        panel.evaluate_requested.connect(self.runs.evaluate_weights)
        self._training.evaluation.split_requested.connect(self.runs.evaluate_split)
        panel.resume_requested.connect(self.runs.resume)
        self.runs.connect_dashboard()
        self.runs.show_runs_folder()
        if self.analysis is not None:
            dashboard.set_network(self.editor.network, self.analysis)
        return self._training

    @property
    def training_views_built(self) -> bool:
        return self._training is not None

    @property
    def dashboard(self) -> Dashboard:
        return self.training_views().dashboard

    @property
    def evaluation(self) -> EvaluationView:
        return self.training_views().evaluation

    @property
    def runs_panel(self) -> RunsPanel:
        return self.training_views().runs_panel

    # -- the project ----------------------------------------------------------------------

    def set_project(self, project: Project) -> None:
        """Show a project: a fresh editor, scene and inspector; the old ones are dropped."""
        old = getattr(self, "editor", None)
        if getattr(self, "runs", None) is not None:
            self.runs.forget_health()
        self.editor = Editor(project, self)
        self.show_graph()
        self.editor.changed.connect(self._analysis_timer.start)
        self.editor.settings_changed.connect(lambda *_: self._analysis_timer.start())  # doctor
        self.editor.scope_changed.connect(self.blocks.scope_changed)
        self.editor.definitions_changed.connect(self.blocks.definitions_changed)
        self.blocks.definitions_changed()
        # bound methods, not lambdas: Qt drops them with the window, so a stack torn down
        # after it cannot call into a deleted window
        self.editor.stack.cleanChanged.connect(self.update_title)
        self.editor.stack.cleanChanged.connect(self.recovery.clean_changed)
        self.editor.stack.indexChanged.connect(self.update_title)
        self._undo_actions()
        if old is not None:
            old.deleteLater()
        self.reanalyse()
        self.update_title()
        self.runs.show_runs_folder()
        self.views.when_design_shows(self.view.fit)

    def show_graph(self) -> None:
        """A scene and an inspector for ``editor.graph``: the network, or the block opened
        in it. The old ones stop following their graph (the network outlives them)."""
        old_scene = getattr(self, "scene", None)
        if old_scene is not None:
            old_scene.selectionChanged.disconnect(self.editing.selection_changed)
            old_scene.detach()
        old_inspector = getattr(self, "inspector", None)
        if old_inspector is not None:
            old_inspector.detach()
            old_inspector.deleteLater()
        self.scene = CanvasScene(self.editor, self)
        if self.editor.scope:  # health is kept by path: ``stage1.0.conv1``
            self.scene.path_prefix = self.blocks.path_of("")
        if getattr(self, "view", None) is None:
            self.view = CanvasView(self.scene)
            self.view.context_requested.connect(self.editing.context_menu)
            self.views.set_design(self.view)
            self.act_minimap.setChecked(self.view.minimap_visible())
            self.act_minimap.toggled.connect(self.view.set_minimap_visible)
            self.view.minimap_toggled.connect(self.act_minimap.setChecked)
        else:
            self.view.setScene(self.scene)  # the view follows its new scene
        self.inspector = Inspector(self.editor)
        self.inspector.sweep_requested.connect(self.sweeps.add_field)
        self.inspector.teacher_requested.connect(self.compress.choose_teacher)
        self.inspector_dock.setWidget(self.inspector)
        self.scene.selectionChanged.connect(self.editing.selection_changed)
        self.scene.message.connect(self.show_status)
        self.blocks.show_scope()
        if old_scene is not None:
            old_scene.deleteLater()

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

    def project_dir(self) -> Path | None:
        """Where the project's relative paths (data, initial weights) start from."""
        return self.project.path.parent if self.project.path else None

    def runs_dir(self) -> Path:
        """Runs live beside the project; samples and unsaved projects use the user folder."""
        from studio.training.run_folder import runs_dir

        return runs_dir(self.project.path)

    def reanalyse(self) -> None:
        a = analyze(self.editor.network)
        self.analysis = a
        self.findings = problem_list(self.editor.network, a, diagnose(self.project, a))
        if self.editor.scope:  # the instance opened: its own shapes and problems
            self.shown_analysis = self.blocks.scope_analysis(a)
            self.scene.show_analysis(self.shown_analysis)
        else:
            self.shown_analysis = a
            self.scene.show_analysis(a, self.findings)
        self.summary.show_analysis(self.editor.network, a)
        page = getattr(self, "inspector", None) and self.inspector.widget()
        getattr(page, "analysis_changed", lambda: None)()  # a block's page: its sizes
        self.show_problems()
        self.analysed.emit(a)

    def show_problems(self) -> None:
        """The Problems list: the project's findings, then the run-time doctor's on the
        latest run (which never block F5: the next run may be healthy)."""
        shown = self.findings + [f for f in self.run_findings if f.node in self.editor.network]
        self.problems.show_problems(shown)
        n = len(shown)
        self.bottom_tabs.setTabText(1, f"Problems ({n})" if n else "Problems")

    def _fill_samples_menu(self) -> None:
        """Each sample's name and its one-line description, read from the file's header."""
        if self.samples_menu.actions():
            return
        for path in sample_paths():
            name, description = sample_header(path)
            text = f"{name} — {description}" if description else name
            action = self.samples_menu.addAction(text.replace("&", "&&"),
                                                 partial(self.files.open_path, path))
            action.setStatusTip(str(path))

    def has_problems(self) -> bool:
        """True, with the first problem in the status bar, when the graph cannot be built or
        the doctor found an error (a run would fail once the data is loaded)."""
        errors = [f.message for f in self.findings if f.severity == "error"]
        if self.analysis is not None:
            errors += [p.message for p in self.analysis.errors]
        if not errors:
            return False
        self.show_status("fix the problems first: " + errors[0])
        return True

    def is_modified(self) -> bool:
        return not self.editor.stack.isClean()

    def update_title(self, *_: object) -> None:
        p = self.project
        where = str(p.path) if p.path else "unsaved"
        self.setWindowTitle(f"{p.name} — {where} [*] — Studio")
        self.setWindowModified(self.is_modified())

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.runs.may_close() or not self.files.maybe_save():
            event.ignore()
            return
        self.scene.selectionChanged.disconnect(self.editing.selection_changed)
        self.runs.shutdown()  # the Explain tab's worker: no question left to answer
        self.sweeps.shutdown()
        self.views.save()
        self.settings.sync()
        self.recovery.close()
        event.accept()

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _show_info(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)
