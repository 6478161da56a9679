"""One chart of the Train view: a plot under a header row that holds its title, its legend,
a log-y toggle and a full-screen toggle.

The legend lives in the header row, outside the data area, so it can never cover a curve and
wraps instead of being cut. It doubles as the crosshair's read-out: with the cursor over any
chart (their x axes are linked) each legend entry shows its curve's value under the cursor,
and otherwise the newest value.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .traces import AXES, Reading, Trace, dim, faint

AXIS_WIDTH = 58  # the same for every chart: stacked charts line up
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200,
               86400)


def clock(seconds: float) -> str:
    """``1:05`` or ``2:01:05``."""
    s = round(seconds)
    h, m = divmod(s, 3600)
    return f"{h}:{m // 60:02d}:{m % 60:02d}" if h else f"{m // 60}:{m % 60:02d}"


def number(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def x_text(x: float, axis: str) -> str:
    if axis == "time":
        return clock(x)
    if axis == "step":
        return f"step {x:,.0f}"
    return f"epoch {x:.2f}".rstrip("0").rstrip(".")


def corners_icon(colour: QColor, inward: bool) -> QIcon:
    """Four corners pointing out (fill the area) or in (back), in the theme's text colour:
    the style's title-bar icons are drawn for light themes only."""
    pix = QPixmap(32, 32)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(colour, 3.0))
    a, b = (11.0, 4.0) if inward else (4.0, 11.0)  # the corner's point, its arms' ends
    for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        def at(x: float, y: float, sx: int = sx, sy: int = sy) -> QPointF:
            return QPointF(16 + sx * (16 - x), 16 + sy * (16 - y))
        p.drawPolyline([at(b, a), at(a, a), at(a, b)])
    p.end()
    return QIcon(pix)


class XAxis(pg.AxisItem):  # type: ignore[misc]
    """The shared x axis: plain numbers for steps and epochs, ``m:ss`` for wall time."""

    def __init__(self) -> None:
        super().__init__(orientation="bottom")
        self.mode = "epoch"
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> Any:
        if self.mode != "time":
            return super().tickSpacing(minVal, maxVal, size)
        want = (maxVal - minVal) / max(size / 90.0, 1.0)  # a label every ~90 px
        major = next((s for s in _TIME_STEPS if s >= want), _TIME_STEPS[-1])
        return [(float(major), 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float
                    ) -> list[str]:
        if self.mode == "time":
            return [clock(v) for v in values]
        return list(super().tickStrings(values, scale, spacing))


class Chart(QWidget):
    """A plot with its header row; ``traces`` are drawn in insertion order (current run
    first, then overlaid runs)."""

    cursor_moved = Signal(object)  # x in data units, or None when the cursor left the plot
    full_toggled = Signal(bool)

    def __init__(self, title: str) -> None:
        super().__init__()
        pal = self.palette()
        self.title = QLabel(f"<b>{html.escape(title)}</b>")
        self.legend = QLabel()
        self.legend.setWordWrap(True)  # grows a line rather than being cut
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setToolTip("Each curve's value under the cursor (the newest otherwise); "
                               "when smoothing, the smoothed value first, the measured one in "
                               "brackets")
        small = QFont(self.legend.font())
        small.setPointSizeF(max(7.5, small.pointSizeF() * 0.9))
        self.legend.setFont(small)
        self.log_button = QToolButton()
        self.log_button.setText("log")
        self.log_button.setCheckable(True)
        self.log_button.setToolTip("Logarithmic y axis")
        self.log_button.setAutoRaise(True)
        self.full_button = QToolButton()
        self.full_button.setCheckable(True)
        self.full_button.setAutoRaise(True)
        self._set_full_icon(False)
        row = QHBoxLayout()
        row.setContentsMargins(6, 2, 2, 0)
        row.setSpacing(8)
        row.addWidget(self.title, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.legend, 1)
        row.addWidget(self.log_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.full_button, 0, Qt.AlignmentFlag.AlignTop)

        self.x_axis = XAxis()
        self.widget = pg.PlotWidget(axisItems={"bottom": self.x_axis},
                                    background=pal.base().color())
        self.plot: pg.PlotItem = self.widget.getPlotItem()
        p = self.plot
        p.showGrid(x=False, y=False)  # grid lines cost ~7 ms per axis redraw
        p.layout.setContentsMargins(2, 8, 10, 2)  # room for the end ticks' labels
        left = p.getAxis("left")
        left.enableAutoSIPrefix(False)  # "0.95", not "950 (×0.001)"
        left.setWidth(AXIS_WIDTH)
        fg = pal.text().color()
        for ax in (left, self.x_axis):
            ax.setPen(faint(fg, 150))
            ax.setTextPen(fg)
        p.setDownsampling(auto=True, mode="peak")
        p.setClipToView(True)
        p.getViewBox().setDefaultPadding(0.03)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(faint(fg, 110)))
        # a scatter, not a curve item: the plot would clip a curve's points to the view and
        # leave its per-point colours behind
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(pal.base().color(), width=1.5))
        for item in (self.vline, self.dots):
            item.setVisible(False)
            item.setZValue(20)
            p.addItem(item, ignoreBounds=True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(row)
        lay.addWidget(self.widget, 1)

        self.traces: dict[str, Trace] = {}
        self.axis = 1  # index into AXES
        self.cursor_x: float | None = None
        self.readings: dict[str, Reading] = {}
        self._legend_html = ""
        self._dim = dim(pal).name()
        self.widget.scene().sigMouseMoved.connect(self._mouse_moved)
        self.widget.viewport().installEventFilter(self)
        self.log_button.toggled.connect(self.set_log_y)
        self.full_button.toggled.connect(self._full)

    # -- curves ---------------------------------------------------------------------------

    def add(self, key: str, trace: Trace) -> Trace:
        self.traces[key] = trace
        return trace

    def remove(self, key: str) -> None:
        trace = self.traces.pop(key, None)
        if trace is not None:
            trace.remove()

    def redraw(self) -> None:
        """Draw what changed; refresh the legend's newest values unless the cursor reads."""
        changed = False
        for t in self.traces.values():
            if t.dirty:
                t.draw(self.axis)
                changed = True
        if changed and self.cursor_x is None:
            self.show_cursor(None)

    def set_axis(self, axis: int) -> None:
        self.axis = axis
        self.x_axis.mode = AXES[axis]
        self.x_axis.picture = None  # the tick labels change with the mode
        for t in self.traces.values():
            t.dirty = True

    def set_log_y(self, on: bool) -> None:
        if self.log_button.isChecked() != on:
            self.log_button.setChecked(on)  # comes back here through toggled
            return
        self.plot.setLogMode(x=False, y=on)
        self.plot.enableAutoRange(axis="y")

    @property
    def log_y(self) -> bool:
        return bool(self.plot.getAxis("left").logMode)

    # -- full screen ----------------------------------------------------------------------

    def _set_full_icon(self, full: bool) -> None:
        self.full_button.setIcon(corners_icon(self.palette().text().color(), inward=full))
        self.full_button.setToolTip("Back to all charts" if full else
                                    "Fill the plot area with this chart")

    def _full(self, on: bool) -> None:
        self._set_full_icon(on)
        self.full_toggled.emit(on)

    def mark_full(self, on: bool) -> None:
        """Show whether this chart fills the area, without asking for it again."""
        self.full_button.blockSignals(True)
        self.full_button.setChecked(on)
        self.full_button.blockSignals(False)
        self._set_full_icon(on)

    # -- the crosshair --------------------------------------------------------------------

    def _mouse_moved(self, pos: QPointF) -> None:
        vb = self.plot.getViewBox()
        if vb.sceneBoundingRect().contains(pos):
            self.cursor_moved.emit(float(vb.mapSceneToView(pos).x()))
        elif self.cursor_x is not None:
            self.cursor_moved.emit(None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave and self.cursor_x is not None:
            self.cursor_moved.emit(None)
        return False

    def show_cursor(self, x: float | None) -> None:
        """Read every visible curve at ``x`` (None: their newest points, no crosshair)."""
        self.cursor_x = x
        self.readings = {}
        xs: list[float] = []
        ys: list[float] = []
        brushes: list[QBrush] = []
        for key, t in self.traces.items():
            r = t.reading(x, self.axis) if t.raw_item.isVisible() else None
            if r is None:
                continue
            self.readings[key] = r
            if x is not None:  # a scatter has no log mode: its y goes to log space here
                y = r.smoothed
                if self.log_y:
                    y = math.log10(y) if y > 0 else math.nan
                xs.append(r.x)
                ys.append(y)
                brushes.append(pg.mkBrush(t.colour))
        self.vline.setVisible(x is not None)
        self.dots.setVisible(x is not None)
        if x is not None:
            self.vline.setPos(x)
            self.dots.setData(xs, ys, brush=brushes)
        self._set_legend(x)

    def _set_legend(self, x: float | None) -> None:
        parts: list[str] = []
        if x is not None:
            parts.append(f"<span style='color:{self._dim}'>"
                         f"{html.escape(x_text(x, AXES[self.axis]))}</span>")
        runs: dict[str, list[str]] = {}
        colours: dict[str, str] = {}
        for key, t in self.traces.items():
            r = self.readings.get(key)
            if t.optional and not t.series.n:
                continue
            value = "–" if r is None else number(r.smoothed)
            if r is not None and t.smoothing and number(r.raw) != value:
                value += f" <span style='color:{self._dim}'>({number(r.raw)})</span>"
            line = "╺╸╺╸" if t.dashed else "━━"
            if t.run is None:
                parts.append(f"<span style='color:{t.colour.name()}'>{line}</span>&nbsp;"
                             f"{_unbroken(t.label)}&nbsp;<b>{value}</b>")
            else:
                runs.setdefault(t.run, []).append(
                    f"<span style='color:{t.colour.name()}'>{line}</span>&nbsp;"
                    f"{_unbroken(t.label)}&nbsp;<b>{value}</b>")
                colours[t.run] = t.colour.name()
        for run, entries in runs.items():
            name = html.escape(run).replace("-", "-&#8203;")  # long names break at a dash
            parts.append(f"<span style='color:{colours[run]}'>■</span>&nbsp;{name}: "
                         + " ".join(entries))
        text = "&nbsp;&nbsp; ".join(parts)
        if text != self._legend_html:  # a label's text change costs a layout pass
            self._legend_html = text
            self.legend.setText(text)


class ChartArea(QSplitter):
    """The charts, laid out for the room there is: ``grid`` (loss large on the left, the
    metric over the learning rate on the right) or, in a short view, ``row`` (side by side,
    each the full height); any one of them can fill the area (``set_full``)."""

    #: below this height two stacked charts cannot both keep a 180 px data area
    STACK_FROM = 500

    def __init__(self, charts: dict[str, Chart]) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.charts = charts
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.addWidget(charts["loss"])
        self.addWidget(self.right)
        self.layout_name = ""
        self.full: str | None = None  # the chart filling the area, if one does
        self.arrange("grid")
        for key, chart in charts.items():
            chart.full_toggled.connect(lambda on, k=key: self.set_full(k if on else None))

    def arrange(self, name: str) -> None:
        if name == self.layout_name:
            return
        self.layout_name = name
        metric, lr = self.charts["metric"], self.charts["lr"]
        if name == "grid":
            self.right.addWidget(metric)
            self.right.addWidget(lr)
            self.setSizes([11_000, 9_000])
        else:
            self.addWidget(metric)
            self.addWidget(lr)
            self.setSizes([4_000, 0, 3_000, 3_000])  # the emptied right column: hidden
        self.set_full(self.full)

    def set_full(self, name: str | None) -> None:
        """One chart fills the area (None: all charts again)."""
        for key, chart in self.charts.items():
            chart.setVisible(name is None or key == name)
            chart.mark_full(key == name)
        self.full = name
        self.right.setVisible(self.layout_name == "grid" and name in (None, "metric", "lr"))

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.arrange("grid" if event.size().height() >= self.STACK_FROM else "row")
        super().resizeEvent(event)


def _unbroken(label: str) -> str:
    """A curve's name for the legend's rich text: it wraps between entries, never inside one
    ("label part" stays on one line)."""
    return html.escape(label).replace(" ", "&nbsp;")
