"""The Train view: a run's header, its curves given the space, a map of the network, a log.

Points arrive as queued signals and go into growing buffers (``Series``); a 10 Hz timer hands
each changed curve its bounded view with ``setData`` and refreshes the header's figures. Ten
redraws a second look continuous and leave the CPU to the run: on a 2-core machine every
millisecond the window paints is one the trainer's threads wait for.

Runs chosen in the runs list are overlaid on every chart (``set_overlays``), one colour per
run everywhere; the current run keeps its own colours.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .charts import Chart, ChartArea
from .header import FoldingLog, RunHeader
from .netmap import LayerPanel, NetworkMap
from .overlays import add_overlay
from .series import Series
from .smoothing import DEFAULT_WEIGHT
from .traces import AXES, Trace, role_colour, run_colour

if TYPE_CHECKING:
    from studio.core.graph import Graph
    from studio.core.health import LayerHealth
    from studio.core.shapes import Analysis

__all__ = ["Dashboard", "Series"]

#: the current run's curves: key → (chart, legend label, colour role, smoothed, markers).
#: Only per-step curves are smoothed: a per-epoch value is already a mean over an epoch, and
#: an EMA over a handful of epochs would draw the line epochs behind its own markers.
CURVES: dict[str, tuple[str, str, str, bool, bool]] = {
    "batch_loss": ("loss", "batch", "step", True, False),
    "loss": ("loss", "train", "train", False, True),
    "val_loss": ("loss", "val", "val", False, True),
    "metric": ("metric", "train", "train", False, True),
    "val_metric": ("metric", "val", "val", False, True),
    "lr": ("lr", "lr", "lr", False, False),
    # a distilled run's loss in its two parts (training.distill): shown only when logged
    "distill_loss": ("loss", "teacher part", "teacher", False, True),
    "label_loss": ("loss", "label part", "labels", False, True),
}
OPTIONAL = ("distill_loss", "label_loss")
X_CHOICES = (("step", "Step"), ("epoch", "Epoch"), ("time", "Wall time"))


class Dashboard(QWidget):
    """The Train view. The window feeds it ``reset``/``add_progress``/``add_epoch``/
    ``add_message``, drives its header with ``set_run_state``/``finish`` and listens to
    ``pause_clicked``, ``stop_clicked`` and ``node_selected``."""

    pause_clicked = Signal()
    stop_clicked = Signal()
    node_selected = Signal(str)

    def __init__(self, redraw_hz: float = 10.0) -> None:
        super().__init__()
        pal = self.palette()  # follow the light or dark theme
        pg.setConfigOptions(antialias=True, foreground=pal.text().color())
        self.clock: Callable[[], float] = time.monotonic  # tests replay runs on their own clock
        self.header = RunHeader()
        self.header.pause_clicked.connect(self.pause_clicked)
        self.header.stop_clicked.connect(self.stop_clicked)

        self.charts = {"loss": Chart("Loss"), "metric": Chart("Accuracy"),
                       "lr": Chart("Learning rate")}
        self.plots: dict[str, pg.PlotItem] = {k: c.plot for k, c in self.charts.items()}
        self.plots["metric"].setXLink(self.plots["loss"])
        self.plots["lr"].setXLink(self.plots["loss"])
        self.chart_area = ChartArea(self.charts)
        for chart in self.charts.values():
            chart.cursor_moved.connect(self._cursor)

        self.weight = DEFAULT_WEIGHT
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 999)
        self.smoothing_slider.setValue(round(self.weight * 1000))
        self.smoothing_slider.setToolTip("Exponential moving average of the per-step loss, "
                                         "debiased as TensorBoard does; the raw curve stays "
                                         "faint beneath (per-epoch values are already means)")
        self.smoothing_value = QLabel(f"{self.weight:.2f}")
        self.smoothing_value.setMinimumWidth(self.fontMetrics().horizontalAdvance("0.000"))
        self.x_axis_box = QComboBox()
        for name, text in X_CHOICES:
            self.x_axis_box.addItem(text, name)
        self.x_axis_box.setCurrentIndex(1)
        self.map_title = QLabel("<b>Network</b>")
        self.map = NetworkMap()
        self.layer_panel = LayerPanel()
        self.side = self._side_column()

        self.fold = FoldingLog()
        self.log = self.fold.text
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(6)
        body.addWidget(self.chart_area, 1)
        body.addWidget(self.side)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.header)
        lay.addLayout(body, 1)
        lay.addWidget(self.fold)

        self.traces: dict[str, Trace] = {}
        for key, (where, label, role, smooth, markers) in CURVES.items():
            self.traces[key] = self.charts[where].add(key, Trace(
                self.plots[where], label, role_colour(role, pal), smooth=smooth,
                markers=markers, weight=self.weight, optional=key in OPTIONAL))
        self.curves: dict[str, pg.PlotDataItem] = {k: t.raw_item for k, t in self.traces.items()}
        self.series: dict[str, Series] = {k: t.series for k, t in self.traces.items()}
        self.overlays: dict[str, list[tuple[str, str]]] = {}  # run → its (chart, key)s
        self.run_colours: dict[str, QColor] = {}
        self.graph: Graph | None = None
        self.health: LayerHealth | None = None  # live layer statistics of the latest run
        self.analysis: Analysis | None = None
        self.metric_name = "accuracy"
        self.axis = 1
        self._t0: float | None = None
        self._running = False
        self._steps_per_epoch = 0
        self._epochs = 0
        self._last_step = 0.0
        self._progress: dict[str, Any] | None = None
        self._resmooth = False
        self._x_hi = 0.0

        self.smoothing_slider.valueChanged.connect(lambda v: self.set_smoothing(v / 1000))
        self.x_axis_box.currentIndexChanged.connect(
            lambda i: self.set_x_axis(self.x_axis_box.itemData(i)))
        self.map.node_selected.connect(self._node_clicked)
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / redraw_hz))
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _side_column(self) -> QWidget:
        side = QWidget()
        controls = QFormLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.smoothing_slider, 1)
        slider_row.addWidget(self.smoothing_value)
        controls.addRow("Smoothing", slider_row)
        controls.addRow("X axis", self.x_axis_box)
        col = QVBoxLayout(side)
        col.setContentsMargins(4, 4, 6, 4)
        col.addLayout(controls)
        col.addSpacing(6)
        col.addWidget(self.map_title)
        self.map.setMinimumHeight(140)  # five layers stay in view when a layer shows its health
        col.addWidget(self.map, 1)
        col.addWidget(self.layer_panel)
        return side

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        w = self.width()  # the map column: a fifth of the view at most, the charts the rest
        self.side.setFixedWidth(max(min(int(0.19 * w), 360), min(220, int(0.25 * w))))

    # -- events from the run ---------------------------------------------------------------

    def reset(self, info: dict[str, Any] | None = None) -> None:
        """A new run (``info``: the trainer's run-start figures, or None while it starts)."""
        for t in self.traces.values():
            t.clear()
        info = info or {}
        classification = info.get("task", "classification") == "classification"
        self.metric_name = "accuracy" if classification else "mae"
        self.charts["metric"].title.setText(
            "<b>Accuracy</b>" if classification else "<b>Mean absolute error</b>")
        self._epochs = int(info.get("epochs") or 0)
        self._steps_per_epoch = int(info.get("steps_per_epoch") or 0)
        self._last_step = 0.0
        self._progress = None
        self._t0 = self.clock()
        self.header.clear()
        if info:
            self.header.set_info(info)
            self.set_run_state(True, False)
        else:
            self.header.set_status("starting", "")
        self._fit_x(force=True)
        self.redraw()

    def add_progress(self, logs: dict[str, Any]) -> None:
        self._progress = logs  # the header shows the newest at the next redraw
        loss = logs.get("loss")
        if loss is None or not math.isfinite(loss):
            return
        step = float(logs["step"])
        self._steps_per_epoch = int(logs.get("batches") or self._steps_per_epoch)
        self._last_step = step
        epoch = step / max(self._steps_per_epoch, 1)
        now = self.elapsed()
        self.traces["batch_loss"].append(float(loss), step, epoch, now)
        if "lr" in logs:
            self.traces["lr"].append(float(logs["lr"]), step, epoch, now)

    def add_epoch(self, logs: dict[str, Any]) -> None:
        e = float(logs["epoch"])
        step = e * self._steps_per_epoch if self._steps_per_epoch else self._last_step
        now = self.elapsed()
        for key, src in (("loss", "loss"), ("val_loss", "val_loss"),
                         ("metric", self.metric_name), ("val_metric", f"val_{self.metric_name}"),
                         ("distill_loss", "distill_loss"), ("label_loss", "label_loss")):
            v = logs.get(src)
            if isinstance(v, float | int) and math.isfinite(v):
                self.traces[key].append(float(v), step, e, now)
        self.header.set_epoch(logs)

    def add_message(self, text: str) -> None:
        self.fold.append(text)

    def elapsed(self) -> float:
        return self.clock() - self._t0 if self._t0 is not None else 0.0

    # -- the header, driven by the window -------------------------------------------------

    def set_run_state(self, running: bool, paused: bool) -> None:
        """Pause/Resume and Stop follow the run; the status shows running or paused."""
        self._running = running
        self.header.set_run_state(running, paused)

    def finish(self, status: str, message: str) -> None:
        """The run ended: ``status`` is completed, stopped or failed."""
        self.redraw()
        self.header.set_elapsed(self.elapsed())
        self._running = False
        self.header.finish(status, message)
        if status == "failed":
            self.fold.set_folded(False)  # the reason is in the log

    # -- what the user chooses ------------------------------------------------------------

    def set_smoothing(self, weight: float) -> None:
        """The EMA weight of every measured curve (0: off), applied at the next redraw."""
        self.weight = min(max(float(weight), 0.0), 0.999)
        self.smoothing_value.setText(f"{self.weight:.2f}")
        if self.smoothing_slider.value() != round(self.weight * 1000):
            self.smoothing_slider.blockSignals(True)
            self.smoothing_slider.setValue(round(self.weight * 1000))
            self.smoothing_slider.blockSignals(False)
        self._resmooth = True  # a slider drag would otherwise re-smooth at every pixel

    def set_x_axis(self, name: str) -> None:
        """``step``, ``epoch`` or ``time`` (wall time since the run started)."""
        self.axis = AXES.index(name)
        if self.x_axis_box.currentIndex() != self.axis:
            self.x_axis_box.setCurrentIndex(self.axis)  # comes back here
            return
        for chart in self.charts.values():
            chart.set_axis(self.axis)
        self._fit_x(force=True)
        self.redraw()

    def set_full(self, name: str | None) -> None:
        """One chart fills the plot area (None: all charts again)."""
        self.chart_area.set_full(name)

    # -- overlays and the network ---------------------------------------------------------

    def set_overlays(self, runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Overlay other runs' per-epoch histories (``metrics.jsonl`` lines) on every chart.

        An entry's x is its ``epoch``, its ``step`` when given (else the epoch times this
        run's steps per epoch) and its ``elapsed_s`` when given (else the sum of ``time_s``).
        """
        for name in list(self.overlays):
            for chart, key in self.overlays.pop(name):
                self.charts[chart].remove(key)
            if name not in runs:
                self.run_colours.pop(name, None)
        pal = self.palette()
        for name, history in runs.items():
            if name not in self.run_colours:
                used = {c.name() for c in self.run_colours.values()}
                i = next(i for i in range(len(self.run_colours) + 1)
                         if run_colour(i, pal).name() not in used)
                self.run_colours[name] = run_colour(i, pal)
            self.overlays[name] = add_overlay(self.charts, name, history,
                                              self.run_colours[name], self.metric_name,
                                              self._steps_per_epoch)
        self._fit_x(force=True)
        self.redraw()
        self._fit_lr()  # an overlaid run may have trained at another rate

    def overlay_trace(self, run: str, key: str = "val_loss") -> Trace | None:
        """An overlaid run's trace: ``loss``, ``val_loss``, ``train``/``val`` (the metric) or
        ``lr``."""
        chart = {"loss": "loss", "val_loss": "loss", "train": "metric", "val": "metric",
                 "lr": "lr"}[key]
        return self.charts[chart].traces.get(f"{run}/{key}")

    def set_network(self, graph: Graph, analysis: Analysis | None) -> None:
        """Draw the network read-only; the window calls this whenever the project changes."""
        self.graph, self.analysis = graph, analysis
        self.map.set_network(graph, analysis)
        self.map.show_health(self.health)  # the new boxes keep the run's marks
        total = f" · {analysis.total_params:,} parameters" if analysis else ""
        self.map_title.setText(f"<b>Network</b>{total}")
        self._show_layer(self.map.selected)

    def _node_clicked(self, node_id: str) -> None:
        self._show_layer(node_id)
        self.node_selected.emit(node_id)

    def _show_layer(self, node_id: str | None) -> None:
        g, a = self.graph, self.analysis
        node = g.nodes.get(node_id) if g is not None and node_id is not None else None
        info = a.nodes.get(node_id) if a is not None and node_id is not None else None
        self.layer_panel.show_layer(node_id, node, info)
        self.layer_panel.show_health(node_id if node is not None else None, self.health)

    def set_health(self, health: LayerHealth | None) -> None:
        """The run's live layer health: the map's marks and the selected layer's figures."""
        self.health = health
        self.map.show_health(health)
        self.layer_panel.show_health(self.map.selected, health)

    # -- drawing --------------------------------------------------------------------------

    def _cursor(self, x: float | None) -> None:
        for chart in self.charts.values():  # linked x: one crosshair reads every chart
            chart.show_cursor(x)

    def _tick(self) -> None:
        if self.isVisible():  # behind another view a run costs no painting; shown, it catches up
            self.redraw()

    def redraw(self) -> None:
        if self._resmooth:
            self._resmooth = False
            for chart in self.charts.values():
                for t in chart.traces.values():
                    t.set_weight(self.weight)
        lr_changed = self.traces["lr"].dirty
        for chart in self.charts.values():
            chart.redraw()
        if lr_changed:
            self._fit_lr()
        if self._progress is not None:
            self.header.set_progress(self._progress)
            self._progress = None
        if self._running:
            self.header.set_elapsed(self.elapsed())
        self._fit_x()

    def _x_extent(self) -> tuple[float, float]:
        """How far the x axis must reach: (the run's planned length on the step and epoch
        axes, the furthest point of any curve, overlays included)."""
        planned = 0.0
        if self.axis == 0:
            planned = float(self._epochs * self._steps_per_epoch)
        elif self.axis == 1:
            planned = float(self._epochs)
        data = 0.0
        for chart in self.charts.values():
            for t in chart.traces.values():
                if t.series.n:
                    data = max(data, float(t.series.x[t.series.n - 1, self.axis]))
        return planned, data

    def _fit_x(self, force: bool = False) -> None:
        """A fixed x range, widened by a quarter when the curves outgrow it: an axis that
        moves on every redraw is laid out again (all three charts) on every redraw."""
        planned, data = self._x_extent()
        hi = max(planned, data)
        loss = self.plots["loss"]  # the others follow it (linked x)
        if hi <= 0.0:
            self._x_hi = 0.0
            loss.enableAutoRange(axis="x")
            return
        if not force and hi <= self._x_hi:
            return
        self._x_hi = hi if force or data <= planned else hi * 1.25
        loss.setXRange(0.0, self._x_hi, padding=0.02)
        loss.disableAutoRange(axis="x")

    def _fit_lr(self) -> None:
        """A constant learning rate is a flat line at its value, not one centred in an axis
        that runs negative; a changing one (or runs overlaid at other rates) auto-ranges."""
        plot = self.plots["lr"]
        drawn = [t.series for t in self.charts["lr"].traces.values() if t.series.n]
        lo = min((s.lo for s in drawn), default=0.0)
        hi = max((s.hi for s in drawn), default=0.0)
        if drawn and lo == hi and not self.charts["lr"].log_y:
            top = abs(hi) * 2 or 1.0
            plot.setYRange(0.0, top, padding=0.05)
            plot.disableAutoRange(axis="y")
        elif not plot.vb.autoRangeEnabled()[1]:
            plot.enableAutoRange(axis="y")
