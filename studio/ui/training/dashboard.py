"""Live training plots: one persistent curve per series, redrawn by a timer at 10 Hz.

Points arrive as queued signals and go into growing numpy buffers; the timer hands each curve
its buffer with ``setData`` only when it changed. Downsampling (peak mode) and clip-to-view keep
the redraw cost flat as points accumulate. Ten redraws a second look continuous and leave
the CPU to the run: on a 2-core machine every millisecond the window paints is one the
trainer's threads wait for.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

SMOOTHING = 0.9


class Series:
    """A growing (x, y) buffer with amortised O(1) appends, and a bounded view to plot.

    A plot cannot show more points than it has pixels, but handing it a million costs a
    million: ``plot_data`` gives at most about ``LIMIT`` points — the minimum and maximum of
    each bucket of consecutive points, in order, so spikes stay visible — kept up to date
    incrementally (bucket size doubles as the run grows), so a redraw costs the same at the
    millionth step as at the thousandth.
    """

    LIMIT = 2048

    def __init__(self, capacity: int = 1024) -> None:
        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self._reset_view(1)

    def _reset_view(self, bucket: int) -> None:
        self.bucket = bucket
        self._done = 0  # raw points folded into buckets
        self._vx = np.empty(self.LIMIT + 2)
        self._vy = np.empty(self.LIMIT + 2)
        self._vn = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n] = x
        self.y[self.n] = y
        self.n += 1
        if y < self.lo:
            self.lo = y
        if y > self.hi:
            self.hi = y

    def clear(self) -> None:
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self._reset_view(1)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]

    def plot_data(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n <= self.LIMIT:
            return self.data()
        if self.bucket == 1:
            self._reset_view(2 * max(1, self.n // self.LIMIT))
        self._fold()
        tail = slice(self._done, self.n)
        return (np.concatenate([self._vx[:self._vn], self.x[tail]]),
                np.concatenate([self._vy[:self._vn], self.y[tail]]))

    def _fold(self) -> None:
        b = self.bucket
        k = (self.n - 1 - self._done) // b  # the newest point stays raw: always drawn
        if k == 0:
            return
        if self._vn + 2 * k > self.LIMIT:  # full: twice the bucket, rebuilt from the raw data
            self._reset_view(b * 2)
            self._fold()
            return
        lo, hi = self._done, self._done + k * b
        ys = self.y[lo:hi].reshape(k, b)
        rows = np.arange(k)
        i_min, i_max = ys.argmin(1), ys.argmax(1)
        first = np.minimum(i_min, i_max)
        second = np.maximum(i_min, i_max)
        idx = np.empty(2 * k, dtype=np.int64)
        idx[0::2] = lo + rows * b + first
        idx[1::2] = lo + rows * b + second
        self._vx[self._vn:self._vn + 2 * k] = self.x[idx]
        self._vy[self._vn:self._vn + 2 * k] = self.y[idx]
        self._vn += 2 * k
        self._done = hi


class Dashboard(QWidget):
    """Loss, the task's metric and the learning rate, plus a log of the trainer's messages."""

    CURVES: ClassVar[dict[str, tuple[str, tuple[int, int, int], int, str | None]]] = {
        # name: (plot, colour, width, symbol)
        "batch_loss": ("loss", (150, 150, 150), 1, None),
        "smoothed_loss": ("loss", (31, 119, 180), 2, None),
        "loss": ("loss", (255, 127, 14), 2, "o"),
        "val_loss": ("loss", (44, 160, 44), 2, "o"),
        "metric": ("metric", (255, 127, 14), 2, "o"),
        "val_metric": ("metric", (44, 160, 44), 2, "o"),
        "lr": ("lr", (148, 103, 189), 2, None),
    }

    def __init__(self, redraw_hz: float = 10.0) -> None:
        super().__init__()
        pal = self.palette()  # follow the light or dark theme
        pg.setConfigOptions(antialias=True, foreground=pal.text().color())
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(pal.base().color())
        self.plots: dict[str, pg.PlotItem] = {}
        for row, (name, title, ylabel) in enumerate((
                ("loss", "Loss", "loss"), ("metric", "Accuracy", "accuracy"),
                ("lr", "Learning rate", "lr"))):
            p = self.graphics.addPlot(row=row, col=0, title=title)
            p.showGrid(x=False, y=False)  # grid lines cost ~7 ms per axis redraw
            p.setLabel("bottom", "epoch")
            p.setLabel("left", ylabel)
            p.getAxis("left").enableAutoSIPrefix(False)  # "0.95", not "950 (×0.001)"
            p.getAxis("left").setWidth(64)  # the same for all three: their epochs line up
            p.addLegend(offset=(-10, 10))
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            self.plots[name] = p
        self.plots["metric"].setXLink(self.plots["loss"])
        self.plots["lr"].setXLink(self.plots["loss"])
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.series: dict[str, Series] = {}
        labels = {"batch_loss": "batch", "smoothed_loss": "smoothed", "loss": "train",
                  "val_loss": "validation", "metric": "train", "val_metric": "validation",
                  "lr": "lr"}
        for key, (plot, colour, width, symbol) in self.CURVES.items():
            kw: dict[str, Any] = {"pen": pg.mkPen(colour, width=width), "name": labels[key],
                                  # the dense per-step curves are most of the paint time;
                                  # antialiasing them costs more than it shows
                                  "antialias": symbol is not None}
            if symbol:
                kw.update(symbol=symbol, symbolSize=6, symbolBrush=colour, symbolPen=None)
            self.curves[key] = self.plots[plot].plot([], [], **kw)
            self.series[key] = Series()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        split = QSplitter()
        split.setOrientation(pg.QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.graphics)
        split.addWidget(self.log)
        split.setSizes([600, 120])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self._dirty: set[str] = set()
        self._ema: float | None = None
        self.metric_name = "accuracy"
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / redraw_hz))
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    # -- events ---------------------------------------------------------------------------

    def reset(self, info: dict[str, Any] | None = None) -> None:
        for s in self.series.values():
            s.clear()
        self._dirty = set(self.series)
        self._ema = None
        classification = (info or {}).get("task", "classification") == "classification"
        self.metric_name = "accuracy" if classification else "mae"
        self.plots["metric"].setTitle("Accuracy" if classification else "Mean absolute error")
        self.plots["metric"].setLabel("left", self.metric_name)
        epochs = (info or {}).get("epochs")
        loss = self.plots["loss"]  # the others follow it (linked x)
        if epochs:  # the whole run's length from the start: a fixed x axis is not re-laid
            loss.setXRange(0, float(epochs), padding=0.02)  # out on every redraw
            loss.disableAutoRange(axis="x")
        else:
            loss.enableAutoRange(axis="x")
        self.redraw()

    def add_progress(self, logs: dict[str, Any]) -> None:
        loss = logs.get("loss")
        if loss is None or not math.isfinite(loss):
            return
        x = logs["step"] / max(logs["batches"], 1)  # in epochs
        self._ema = loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
        self._add("batch_loss", x, loss)
        self._add("smoothed_loss", x, self._ema)
        self._add("lr", x, logs["lr"])

    def add_epoch(self, logs: dict[str, Any]) -> None:
        e = float(logs["epoch"])
        for key, src in (("loss", "loss"), ("val_loss", "val_loss"),
                         ("metric", self.metric_name), ("val_metric", f"val_{self.metric_name}")):
            v = logs.get(src)
            if isinstance(v, float | int) and math.isfinite(v):
                self._add(key, e, float(v))

    def add_message(self, text: str) -> None:
        self.log.appendPlainText(text)

    def _add(self, key: str, x: float, y: float) -> None:
        self.series[key].append(x, y)
        self._dirty.add(key)

    #: beyond this many epochs the per-epoch markers go: drawing them grows with the run
    MARKERS_UP_TO = 60

    def redraw(self) -> None:
        for key in self._dirty:
            curve, series = self.curves[key], self.series[key]
            if self.CURVES[key][3] is not None:
                many = series.n > self.MARKERS_UP_TO
                if many == (curve.opts["symbol"] is not None):
                    curve.setSymbol(None if many else self.CURVES[key][3])
            curve.setData(*series.plot_data())
            if key == "lr" and series.n:
                self._fit_lr(series)
        self._dirty.clear()

    def _fit_lr(self, series: Series) -> None:
        """A constant learning rate is a flat line at its value, not one centred in an axis
        that runs negative; a changing one auto-ranges as usual."""
        plot = self.plots["lr"]
        if series.lo == series.hi:
            top = abs(series.hi) * 2 or 1.0
            plot.setYRange(0.0, top, padding=0.05)
            plot.disableAutoRange(axis="y")
        elif not plot.vb.autoRangeEnabled()[1]:
            plot.enableAutoRange(axis="y")
