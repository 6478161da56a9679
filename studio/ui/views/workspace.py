"""Which view fills the centre of the window, the docks that go with it, and what is kept.

Design is the canvas with the palette, inspector and Summary/Problems docks; Train is the
dashboard and Evaluate the evaluation view, each above the one runs list (a widget has one
parent, so the list moves to whichever of the two is shown). Leaving a view notes what it
showed — its docks, the split between it and the runs list, the canvas's zoom and pan — so
coming back finds it as it was; closing the window writes the same to the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import (
    QByteArray,
    QObject,
    QPointF,
    QRect,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence, QTransform
from PySide6.QtWidgets import (
    QDockWidget,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from .modebar import ModeBar

#: (name, title, key) of each view, in the order of the mode bar and the View menu
MODES: tuple[tuple[str, str, str], ...] = (
    ("design", "Design", "Ctrl+1"), ("train", "Train", "Ctrl+2"),
    ("evaluate", "Evaluate", "Ctrl+3"), ("sweep", "Sweep", "Ctrl+4"))
#: of a view's height, for the runs list below it: in Train the charts take the room
RUNS_SHARE = {"train": 0.15, "evaluate": 0.3, "sweep": 0.25}
SIDE = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)


def first_launch_geometry(available: QRect, share: float = 0.9) -> QRect:
    """``share`` of the screen's free area, centred: room to work, and the desktop's own bars
    and the window frame still fit."""
    rect = QRect(0, 0, round(available.width() * share), round(available.height() * share))
    rect.moveCenter(available.center())
    return rect


class Centre(QStackedWidget):
    """The views' pages. Only the page shown says how small the window may get: a hidden
    one (Train with its runs list) must not squeeze the docks of the one in view."""

    def __init__(self) -> None:
        super().__init__()
        self.currentChanged.connect(lambda _i: self.updateGeometry())

    def minimumSizeHint(self) -> QSize:
        page = self.currentWidget()
        if page is None:
            return super().minimumSizeHint()
        return page.minimumSizeHint().expandedTo(page.minimumSize())

    def sizeHint(self) -> QSize:
        page = self.currentWidget()
        return super().sizeHint() if page is None else page.sizeHint()


@dataclass
class CanvasPlace:
    """Where the canvas looked when Design was left: enough to put it back exactly."""

    scene: QGraphicsScene | None
    transform: QTransform
    scroll: tuple[int, int]
    viewport: QSize
    centre: QPointF

    @classmethod
    def of(cls, view: QGraphicsView) -> CanvasPlace:
        return cls(view.scene(), view.transform(),
                   (view.horizontalScrollBar().value(), view.verticalScrollBar().value()),
                   view.viewport().size(), view.mapToScene(view.viewport().rect().center()))

    def restore(self, view: QGraphicsView) -> None:
        if view.scene() is not self.scene:  # another project since: it was fitted anew
            return
        view.setTransform(self.transform)
        if view.viewport().size() == self.viewport:  # the same size: to the pixel
            view.horizontalScrollBar().setValue(self.scroll[0])
            view.verticalScrollBar().setValue(self.scroll[1])
        else:  # the window was resized meanwhile: the same point in the middle
            view.centerOn(self.centre)


@dataclass
class DockDefault:
    """A dock's view, its first-launch area, and its size there: ``share`` of the window's
    width (side docks) or height (top and bottom ones), within ``lo``..``hi`` pixels."""

    mode: str
    area: Qt.DockWidgetArea
    share: float
    lo: int
    hi: int


class Views(QObject):
    """The centre of ``window``: ``show(name)`` switches, ``current`` says which is shown."""

    changed = Signal(str)  # the view now shown

    def __init__(self, window: QMainWindow, settings: QSettings,
                 build: Callable[[], object]) -> None:
        """``build`` makes the Train and Evaluate pages and hands them to ``attach``: they
        come after the window first shows (their plotting library alone takes about half a
        second to import), or at once when one of them is asked for."""
        super().__init__(window)
        self.window = window
        self.settings = settings
        self._build = build
        self.runs: QWidget | None = None  # the runs list, once built
        self.canvas: QGraphicsView | None = None
        self.stack = Centre()
        self._blank = QWidget()
        self.stack.addWidget(self._blank)
        self.pages: dict[str, QWidget] = {}
        self.splits: dict[str, QSplitter] = {}
        for name in ("train", "evaluate", "sweep"):
            split = QSplitter(Qt.Orientation.Vertical)
            split.setObjectName(f"{name}_split")
            split.setChildrenCollapsible(False)
            waiting = QLabel("Loading…")
            waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
            split.addWidget(waiting)
            self.splits[name] = split
            self._add_page(name, split)
        self.docks: dict[QDockWidget, DockDefault] = {}
        self.toolbars: list[QToolBar] = []
        self.design_actions: list[QAction] = []  # they act on the canvas: off elsewhere
        self.current = ""
        self._shown: dict[str, set[str]] = {}  # per view: its docks left open
        self._split_state: dict[str, QByteArray] = {}
        self._fresh = {name for name, *_ in MODES}  # views whose docks want default sizes
        self._canvas_place: CanvasPlace | None = None
        self._on_design: Callable[[], object] | None = None
        self.group = QActionGroup(self)
        self.actions: dict[str, QAction] = {}
        for name, text, key in MODES:
            a = QAction(f"&{text}", window)
            a.setShortcut(QKeySequence(key))
            a.setCheckable(True)
            a.setStatusTip(f"Show the {text} view")
            a.triggered.connect(lambda _=False, n=name: self.show(n))
            self.group.addAction(a)
            self.actions[name] = a
        self.reset_action = QAction("&Reset Layout", window)
        self.reset_action.triggered.connect(lambda _=False: self.reset_layout())
        self.bar = ModeBar([(n, t, QKeySequence(k)) for n, t, k in MODES])
        self.bar.chosen.connect(self.show)
        self.toolbar = QToolBar("Views")
        self.toolbar.setObjectName("views")
        self.toolbar.setMovable(False)
        self.toolbar.toggleViewAction().setVisible(False)  # the views stay within reach
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.toolbar.addWidget(spacer)
        self.toolbar.addWidget(self.bar)

    # -- building -------------------------------------------------------------------------

    def _add_page(self, name: str, page: QWidget) -> None:
        self.pages[name] = page
        self.stack.addWidget(page)

    def attach(self, train: QWidget, evaluate: QWidget, runs: QWidget, sweep: QWidget) -> None:
        """The built Train, Evaluate and Sweep pages take the place of their stand-ins."""
        for name, page in (("train", train), ("evaluate", evaluate), ("sweep", sweep)):
            old = self.splits[name].replaceWidget(0, page)
            if old is not None:
                old.deleteLater()
        self.runs = runs
        self.splits["train"].addWidget(runs)  # owned by the window from the start
        if self.current in self.splits:
            self._place_runs(self.current)

    def set_design(self, canvas: QGraphicsView) -> None:
        """The canvas (it comes with the first project)."""
        self.canvas = canvas
        canvas.setMinimumSize(240, 160)
        self.pages["design"] = canvas
        self.stack.insertWidget(0, canvas)
        self.stack.setCurrentWidget(canvas)  # until the settings say otherwise

    def add_dock(self, mode: str, dock: QDockWidget, area: Qt.DockWidgetArea, share: float,
                 lo: int, hi: int) -> QDockWidget:
        self.window.addDockWidget(area, dock)
        self.docks[dock] = DockDefault(mode, area, share, lo, hi)
        return dock

    def add_toolbar(self, toolbar: QToolBar) -> None:
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.toolbars.append(toolbar)

    def when_design_shows(self, fn: Callable[[], object]) -> None:
        """``fn`` (fit a new project, say) once the canvas is in view at its own size: at the
        next turn of the event loop in Design, else on the next return to Design."""
        self._on_design = fn
        QTimer.singleShot(0, self, self._design_shown)

    def _design_shown(self) -> None:
        fn, self._on_design = self._on_design, None
        if fn is None:
            return
        if self.current == "design":
            fn()
        else:
            self._on_design = fn

    # -- switching ------------------------------------------------------------------------

    def show(self, name: str) -> None:
        if name not in self.pages:
            raise ValueError(f"no view {name!r}: the views are {', '.join(self.pages)}")
        if name != self.current:
            self._note()
            self._enter(name)

    def _note(self) -> None:
        """What the view now shown looks like, to put back when it is shown again."""
        name = self.current
        if not name:
            return
        self._shown[name] = {d.objectName() for d, spec in self.docks.items()
                             if spec.mode == name and not d.isHidden()}
        split = self.splits.get(name)
        if split is not None and split.count() == 2:
            self._split_state[name] = split.saveState()
        if name == "design" and self.canvas is not None:
            self._canvas_place = CanvasPlace.of(self.canvas)

    def _enter(self, name: str, defer_build: bool = False) -> None:
        w = self.window
        if name in self.splits and self.runs is None:
            if defer_build:  # the window shows first, the page a moment later
                QTimer.singleShot(0, self, self._build)
            else:
                self._build()
        self.current = name
        mine = [d for d, spec in self.docks.items() if spec.mode == name]
        shown = self._shown.get(name, {d.objectName() for d in mine})
        # the docks change while an empty page stands in: no page is resized on the way
        # (the canvas comes back at the very size it left with), and no page's minimum size
        # plus the wrong docks ever add up to more than the window (Qt would shrink the
        # docks or grow the window)
        self.stack.setCurrentWidget(self._blank)
        for d in self.docks:
            d.toggleViewAction().setVisible(d in mine)  # menus offer this view's docks only
            d.setVisible(d in mine and d.objectName() in shown)
        layout = w.layout()
        if layout is not None:  # sizes now, not at the next turn of the event loop
            layout.activate()
        if name in self.splits:
            self._place_runs(name)
        self.stack.setCurrentWidget(self.pages[name])
        if name in self._fresh:
            self._fresh.discard(name)
            self._default_sizes(name)
        if name == "design" and self.canvas is not None:
            if self._canvas_place is not None:
                self._canvas_place.restore(self.canvas)
                self._canvas_place = None
            if self._on_design is not None:
                QTimer.singleShot(0, self, self._design_shown)
            self.canvas.setFocus()
        for a in self.design_actions:
            a.setEnabled(name == "design")
        self.actions[name].setChecked(True)
        self.bar.set_current(name)
        self.changed.emit(name)

    def _place_runs(self, name: str) -> None:
        """The runs list moves below this view, at the split it had here."""
        split = self.splits[name]
        if self.runs is None:
            return
        if self.runs.parentWidget() is not split:
            split.addWidget(self.runs)
        self.runs.show()
        state = self._split_state.get(name)
        if state is None or not split.restoreState(state):
            h = max(self.stack.height(), 400)
            share = RUNS_SHARE[name]
            split.setSizes([round(h * (1 - share)), round(h * share)])

    def _default_sizes(self, name: str) -> None:
        w = self.window
        sizes = {}
        for d, spec in self.docks.items():
            if spec.mode == name and not d.isHidden():
                extent = w.width() if w.dockWidgetArea(d) in SIDE else w.height()
                sizes[d] = int(min(max(extent * spec.share, spec.lo), spec.hi))
        for orientation in (Qt.Orientation.Horizontal, Qt.Orientation.Vertical):
            side = orientation == Qt.Orientation.Horizontal
            these = {d: n for d, n in sizes.items()
                     if not d.isFloating() and (w.dockWidgetArea(d) in SIDE) == side}
            if these:
                w.resizeDocks(list(these), list(these.values()), orientation)

    def reset_layout(self) -> None:
        """Every dock and toolbar back where a first launch puts them; the view stays."""
        w = self.window
        for tb in self.toolbars:
            w.removeToolBar(tb)
            w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
            tb.show()
        for d, spec in self.docks.items():
            d.setFloating(False)
            w.removeDockWidget(d)
            w.addDockWidget(spec.area, d)
        self._shown.clear()
        self._split_state.clear()
        self._fresh = {name for name, *_ in MODES}
        self._canvas_place = None
        name, self.current = self.current, ""
        self._enter(name or "design")

    # -- the settings ---------------------------------------------------------------------

    def restore(self) -> None:
        """The window's place, docks and last view from the settings; a first launch gets
        about 90% of the screen, centred."""
        w, s = self.window, self.settings
        geometry = s.value("geometry")
        if not (isinstance(geometry, QByteArray) and w.restoreGeometry(geometry)):
            screen = w.screen() or QGuiApplication.primaryScreen()
            w.setGeometry(first_launch_geometry(screen.availableGeometry()))
        state = s.value("windowState")
        if isinstance(state, QByteArray) and w.restoreState(state):
            self._fresh.clear()
        for name, *_ in MODES:
            docks = s.value(f"views/{name}/docks")
            if isinstance(docks, str | list):  # a list: how an INI file reads "a,b" back
                names = docks.split(",") if isinstance(docks, str) else docks
                self._shown[name] = {str(n) for n in names if n}
            split = s.value(f"views/{name}/split")
            if isinstance(split, QByteArray):
                self._split_state[name] = split
        last = s.value("view", "design")
        self._enter(last if isinstance(last, str) and last in self.pages else "design",
                    defer_build=True)

    def save(self) -> None:
        self._note()
        w, s = self.window, self.settings
        s.setValue("geometry", w.saveGeometry())
        s.setValue("windowState", w.saveState())
        s.setValue("view", self.current)
        for name, shown in self._shown.items():
            s.setValue(f"views/{name}/docks", ",".join(sorted(shown)))
        for name, state in self._split_state.items():
            s.setValue(f"views/{name}/split", state)
