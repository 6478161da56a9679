"""Run ▸ Find Learning Rate: the range test on a snapshot of the project, in a worker thread,
plotted as it runs (loss against rate, log x), with the suggestion marked and one button that
sets it as the optimizer's rate (one undo step)."""

from __future__ import annotations

import contextlib
import math
import threading
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .training.traces import faint, role_colour, style_plot

if TYPE_CHECKING:  # pragma: no cover
    from studio.core.project import Project
    from studio.training.lr_find import LrFind

    from .editor import Editor


class _Test(QObject):
    """The test in a thread; its progress and its end as signals (queued to the GUI)."""

    progress = Signal(int, int)
    finished = Signal(object)  # an LrFind
    failed = Signal(str)

    def __init__(self, project: Project, base_dir: Any) -> None:
        super().__init__()
        self.project, self.base_dir = project, base_dir
        self.cancel = threading.Event()
        self.worker = threading.Thread(target=self._run, name="lr-find", daemon=True)

    def _run(self) -> None:
        from studio.core.errors import first_line
        from studio.training.lr_find import lr_find
        from studio.training.trainer import Trainer

        try:
            t = Trainer(self.project, base_dir=self.base_dir, default_callbacks=False)
            t.setup()
            result = lr_find(t, progress=lambda i, n: self._emit(self.progress, i, n),
                             cancelled=self.cancel.is_set)
        except Exception as exc:  # the dialog says it; the window lives on
            self._emit(self.failed, first_line(exc))
            return
        self._emit(self.finished, result)

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the dialog closed meanwhile
            signal.emit(*args)


class LrFindDialog(QDialog):
    """Runs the test at once; ``found`` holds it when done."""

    def __init__(self, editor: Editor, base_dir: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Find learning rate")
        self.resize(640, 460)
        self.editor = editor
        self.found: LrFind | None = None
        pal = self.palette()
        self.plot = style_plot(pg.PlotWidget(), pal)
        p = self.plot.getPlotItem()
        p.setLogMode(x=True, y=False)
        p.setLabel("bottom", "learning rate")
        p.setLabel("left", "training loss (smoothed)")
        p.showGrid(x=True, y=True, alpha=0.2)
        self.raw_curve = p.plot([], [], pen=pg.mkPen(faint(role_colour("step", pal), 80)))
        self.curve = p.plot([], [], pen=pg.mkPen(role_colour("step", pal), width=2))
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(role_colour("val", pal), width=2))
        self.marker.hide()
        p.addItem(self.marker, ignoreBounds=True)
        self.marker_text = pg.TextItem(color=role_colour("val", pal), anchor=(-0.05, 0))
        self.marker_text.hide()
        p.addItem(self.marker_text, ignoreBounds=True)
        self.status = QLabel("Training a few steps with the rate growing from 1e-7 to 10…")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.method = QComboBox()
        self.method.addItem("valley: 2/3 down the longest fall", "valley")
        self.method.addItem("steepest: where the loss falls fastest", "steepest")
        self.method.currentIndexChanged.connect(self._show_suggestion)
        self.use = QPushButton("Use")
        self.use.setEnabled(False)
        self.use.setDefault(True)
        self.use.clicked.connect(self._use)
        self.close_button = QPushButton("Cancel")
        self.close_button.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("suggestion"))
        row.addWidget(self.method, 1)
        row.addWidget(self.use)
        row.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.bar)
        lay.addWidget(self.plot, 1)
        lay.addLayout(row)
        from studio.core.project import Project

        # a snapshot: edits made while the test runs do not reach it
        self.test = _Test(Project.loads(editor.project.dumps()), base_dir)
        self.test.progress.connect(self._progress)
        self.test.finished.connect(self._finished)
        self.test.failed.connect(self._failed)
        self.test.worker.start()

    def _progress(self, i: int, n: int) -> None:
        self.bar.setRange(0, n)
        self.bar.setValue(i)

    def _finished(self, result: LrFind) -> None:
        self.found = result
        self.bar.setValue(self.bar.maximum())
        self.raw_curve.setData(result.lrs, result.raw)
        self.curve.setData(result.lrs, result.losses)
        top = min(max(result.losses[:5]) * 1.6, max(result.losses))  # the climb, not its end
        self.plot.getPlotItem().setYRange(min(result.losses) * 0.9, top, padding=0.02)
        ended = ("the loss diverged at {:.2g}" if result.stopped == "diverged"
                 else "the range ended at {:.2g}").format(result.lrs[-1])
        self.status.setText(f"{len(result.lrs)} steps; {ended}. The model and its random "
                            "state were put back as they were.")
        self.close_button.setText("Close")
        self._show_suggestion()

    def _failed(self, text: str) -> None:
        self.status.setText(f"<b>The test could not run:</b> {text}")
        self.close_button.setText("Close")

    def suggestion(self) -> float | None:
        if self.found is None:
            return None
        return self.found.valley if self.method.currentData() == "valley" \
            else self.found.steepest

    def _show_suggestion(self) -> None:
        lr = self.suggestion()
        if lr is None:
            return
        self.marker.setValue(math.log10(lr))  # log mode: the axis holds log10 of the rate
        top = self.plot.getPlotItem().viewRange()[1][1]
        self.marker_text.setText(f"{lr:.1e}")
        self.marker_text.setPos(math.log10(lr), top)
        self.marker.show()
        self.marker_text.show()
        self.use.setText(f"Use {lr:.1e}")
        self.use.setEnabled(True)

    def _use(self) -> None:
        lr = self.suggestion()
        if lr is None:
            return
        lr = float(f"{lr:.2g}")  # a rate people can read and type
        if self.editor.set_values({"training.optimizer.lr": lr},
                                  f"Learning rate {lr:g} (range test)"):
            self.accept()

    def done(self, code: int) -> None:
        self.test.cancel.set()  # a test still running stops at its next step
        super().done(code)
