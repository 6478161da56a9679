"""One curve of one run on one chart: its points, its smoothed copy and the items drawing them.

The raw points are drawn faint beneath the smoothed line (TensorBoard's look); with smoothing
off the raw line is drawn at full strength and the smoothed item is hidden. The smoothed copy
is kept up to date one point at a time (``Ema``), so a redraw never recomputes it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from .series import Series
from .smoothing import Ema

#: the x axes every point carries, in column order
AXES = ("step", "epoch", "time")

#: beyond this many points the markers go: drawing them grows with the run
MARKERS_UP_TO = 60

# the same hues in both themes, lighter on a dark background
_HUES = {  # role: (light theme, dark theme)
    "step": ("#1f77b4", "#5aa9e6"), "train": ("#2a9d3a", "#5fd068"),
    "val": ("#e8710a", "#ffa04d"), "lr": ("#8757c7", "#b994ec"),
    # the two parts of a distilled run's loss
    "teacher": ("#b8860b", "#e6c35c"), "labels": ("#5f7d8c", "#a7c0cd"),
}
_RUN_HUES = (("#d62728", "#ff6b6b"), ("#0fa3b1", "#4dd8e6"), ("#8c564b", "#c99a8c"),
             ("#d44fb0", "#f39ad6"), ("#9a9b14", "#d6d64a"), ("#5c5c5c", "#b8b8b8"),
             ("#3949ab", "#8c9eff"))


def is_dark(pal: QPalette) -> bool:
    return pal.base().color().lightness() < 128


def role_colour(role: str, pal: QPalette) -> QColor:
    """The current run's colour for a role (step, train, val, lr) in this theme."""
    return QColor(_HUES[role][is_dark(pal)])


def run_colour(index: int, pal: QPalette) -> QColor:
    """The colour of the ``index``-th overlaid run: the same on every chart."""
    return QColor(_RUN_HUES[index % len(_RUN_HUES)][is_dark(pal)])


def dim(pal: QPalette) -> QColor:
    """Secondary text: between the text and the background, opaque (rich text and style
    sheets drop the alpha of the palette's placeholder colour)."""
    t, b = pal.text().color(), pal.base().color()
    return QColor(round(0.55 * t.red() + 0.45 * b.red()),
                  round(0.55 * t.green() + 0.45 * b.green()),
                  round(0.55 * t.blue() + 0.45 * b.blue()))


def style_plot(widget: pg.PlotWidget, pal: QPalette) -> pg.PlotWidget:
    """A plot in the theme's colours (pyqtgraph draws black by default): the field colour
    behind, axes in the text colour, numbers without SI prefixes ("0.95", not "950 ×0.001")."""
    widget.setBackground(pal.base().color())
    fg = pal.text().color()
    plot = widget.getPlotItem()
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(faint(fg, 150))
        axis.setTextPen(fg)
        axis.enableAutoSIPrefix(False)
    return widget


def faint(colour: QColor, alpha: int = 70) -> QColor:
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


class Reading(NamedTuple):
    """A trace's point nearest the cursor: where it is, what was measured, what is drawn."""

    x: float
    raw: float
    smoothed: float


class Trace:
    """The points of one quantity of one run (``run`` None: the current run) on a plot."""

    def __init__(self, plot: pg.PlotItem, label: str, colour: QColor, *, smooth: bool = True,
                 markers: bool = False, dashed: bool = False, width: float = 2.0,
                 run: str | None = None, weight: float = 0.0, optional: bool = False
                 ) -> None:
        self.plot, self.label, self.colour, self.run = plot, label, colour, run
        self.optional = optional  # kept out of the legend until it has a point
        self.markers, self.dashed, self.width = markers, dashed, width
        self.series = Series(axes=len(AXES))
        self.smoothed = Series(axes=len(AXES)) if smooth else None
        self.ema = Ema(weight) if smooth else None
        # the dense per-step curves are most of the paint time; antialiasing them costs more
        # than it shows
        self.raw_item = plot.plot([], [], antialias=markers)
        self.smooth_item = plot.plot([], [], antialias=markers) if smooth else None
        self.dirty = True
        self._style()

    @property
    def weight(self) -> float:
        return self.ema.weight if self.ema is not None else 0.0

    @property
    def smoothing(self) -> bool:
        """Whether a smoothed line is drawn over a faint raw one."""
        return self.ema is not None and self.ema.weight > 0.0

    def _style(self) -> None:
        style = Qt.PenStyle.DashLine if self.dashed else Qt.PenStyle.SolidLine
        raw_pen = (pg.mkPen(faint(self.colour), width=1) if self.smoothing
                   else pg.mkPen(self.colour, width=self.width, style=style))
        self.raw_item.setPen(raw_pen)
        self._set_markers(self.markers and self.series.n <= MARKERS_UP_TO)
        if self.smooth_item is not None:
            self.smooth_item.setPen(pg.mkPen(self.colour, width=self.width, style=style))
            self.smooth_item.setVisible(self.smoothing)

    def _set_markers(self, on: bool) -> None:
        if on:
            self.raw_item.setSymbol("o")
            self.raw_item.setSymbolSize(5)
            self.raw_item.setSymbolBrush(self.colour)
            self.raw_item.setSymbolPen(None)
        else:
            self.raw_item.setSymbol(None)

    def append(self, y: float, step: float, epoch: float, time: float) -> None:
        self.series.append(step, y, epoch, time)
        if self.smoothed is not None and self.ema is not None:
            self.smoothed.append(step, self.ema.push(y), epoch, time)
        self.dirty = True

    def extend(self, xs: Any, ys: Any) -> None:
        """Many points: ``xs`` is (points, 3) in ``AXES`` order."""
        self.series.extend(xs, ys)
        self.set_weight(self.weight)

    def clear(self) -> None:
        self.series.clear()
        if self.smoothed is not None and self.ema is not None:
            self.smoothed.clear()
            self.ema.clear()
        self._style()
        self.dirty = True

    def set_weight(self, weight: float) -> None:
        """Re-smooth every point with a new weight (when the slider moves)."""
        if self.smoothed is None or self.ema is None:
            return
        n = self.series.n
        ys = self.ema.restart(self.series.y[:n], weight)
        self.smoothed.clear()
        self.smoothed.extend(self.series.x[:n], ys)
        self._style()
        self.dirty = True

    def draw(self, axis: int) -> None:
        """Hand the items their bounded views (what one redraw costs)."""
        if self.markers:
            many = self.series.n > MARKERS_UP_TO
            if many == (self.raw_item.opts["symbol"] is not None):
                self._set_markers(not many)
        self.raw_item.setData(*self.series.plot_data(axis))
        if self.smooth_item is not None and self.smoothed is not None and self.smoothing:
            self.smooth_item.setData(*self.smoothed.plot_data(axis))
        self.dirty = False

    def reading(self, x: float | None, axis: int) -> Reading | None:
        """The point nearest ``x`` (the newest when ``x`` is None)."""
        s = self.series
        i = (s.n - 1 if s.n else None) if x is None else s.nearest(x, axis)
        if i is None:
            return None
        raw = float(s.y[i])
        smooth = float(self.smoothed.y[i]) if self.smoothed is not None and self.smoothing \
            else raw
        return Reading(float(s.x[i, axis]), raw, smooth)

    def remove(self) -> None:
        self.plot.removeItem(self.raw_item)
        if self.smooth_item is not None:
            self.plot.removeItem(self.smooth_item)
