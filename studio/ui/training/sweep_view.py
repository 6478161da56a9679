"""A sweep as it runs: the trials table, the optimisation history, a parallel-coordinates plot
and the parameters' importances, all redrawn from the sweep's ``sweep.json`` (the file the
sweep keeps current, whichever process or machine finished the trial).

Display only: starting, stopping and resuming are the controller's (``controllers/sweeps``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .traces import dim, faint, is_dark, role_colour, style_plot

EMPTY = ("No sweep yet. Add parameters to the search space (right-click a field in the "
         "inspector ▸ Sweep this…), then Run ▸ Sweep.")
STATE_HUES = {"complete": ("#2a9d3a", "#5fd068"), "pruned": ("#8a8a8a", "#9a9a9a"),
              "failed": ("#d62728", "#ff6b6b"), "running": ("#1f77b4", "#5aa9e6")}
_VALUE_MAP = pg.colormap.get("viridis")


def _short(path: str) -> str:
    """``graph.nodes.fc1.params.out_features`` → ``fc1.out_features``; settings keep their
    last two parts (``optimizer.lr``)."""
    parts = path.split(".")
    if parts[:2] == ["graph", "nodes"] and len(parts) >= 5:
        return f"{parts[2]}.{parts[-1]}"
    return ".".join(parts[-2:])


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—" if v is None else str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class _NumberItem(QTableWidgetItem):
    """Sorts by the number it holds, not its text."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if isinstance(a, float | int) and isinstance(b, float | int):
            return a < b
        return super().__lt__(other)


class SweepView(QWidget):
    """One sweep's figures; ``stop_requested``/``resume_requested``/``apply_requested`` are
    the buttons, for the controller."""

    stop_requested = Signal()
    resume_requested = Signal()
    apply_requested = Signal()
    run_chosen = Signal(str)  # a trial's run folder, double-clicked in the table

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self.direction = "maximize"
        self.objective = ""
        self.headline = QLabel(EMPTY)
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.apply_button = QPushButton("Apply best")
        self.apply_button.setToolTip("Write the best trial's values into the project (one undo "
                                     "step)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.apply_button.clicked.connect(self.apply_requested)
        head = QHBoxLayout()
        head.addWidget(self.headline, 1)
        for b in (self.stop_button, self.resume_button, self.apply_button):
            head.addWidget(b)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(self._row_chosen)
        self.history = pg.PlotWidget()
        self.history.setLabel("bottom", "trial")
        self.history.showGrid(x=True, y=True, alpha=0.2)
        self.coords = pg.PlotWidget()
        self.coords.hideAxis("left")
        self.coords.setMouseEnabled(x=False, y=False)
        self.coords.setMenuEnabled(False)
        self.importance = pg.PlotWidget()
        self.importance.setMouseEnabled(x=False, y=False)
        self.importance.setLabel("bottom", "importance (share of the objective's variance)")
        for plot in (self.history, self.coords, self.importance):
            style_plot(plot, self.palette())
        self.plots = QTabWidget()
        self.plots.addTab(self.history, "History")
        self.plots.addTab(self.coords, "Parallel coordinates")
        self.plots.addTab(self.importance, "Importance")
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.plots)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(head)
        lay.addWidget(split, 1)
        self.set_running(False)

    def set_running(self, running: bool, resumable: bool = False) -> None:
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and resumable)

    # -- figures --------------------------------------------------------------------------

    def show_sweep(self, data: dict[str, Any], metric: str = "", direction: str = "maximize",
                   total: int | None = None) -> None:
        """Redraw from a ``sweep.json`` dict (``{"best": …, "trials": […]}``); an empty one
        (no sweep run yet) shows what to do."""
        self.data, self.objective, self.direction = data, metric, direction
        trials = list(data.get("trials", []))
        if not data and not self.stop_button.isEnabled():
            self.headline.setText(EMPTY)
            self.apply_button.setEnabled(False)
            self.table.setRowCount(0)
            for plot in (self.history, self.coords, self.importance):
                plot.getPlotItem().clear()
            return
        best = data.get("best") or None
        counts = {s: sum(t.get("state") == s for t in trials) for s in STATE_HUES}
        done = " · ".join(f"{n} {s}" for s, n in counts.items() if n)
        of = f" of {total}" if total else ""
        if best:
            params = ", ".join(f"{_short(k)} {_fmt(v)}" for k, v in best["params"].items())
            self.headline.setText(f"<b>{len(trials)}{of} trials</b> ({done or 'none yet'}) · "
                                  f"best {metric} <b>{_fmt(best['value'])}</b> (trial "
                                  f"{best['number']}: {params})")
        else:
            self.headline.setText(f"<b>{len(trials)}{of} trials</b> ({done or 'none yet'}) · "
                                  "no finished trial yet")
        self.apply_button.setEnabled(bool(best))
        names = sorted({k for t in trials for k in t.get("params", {})})
        self._fill_table(trials, names, best)
        self._draw_history(trials)
        self._draw_coords(trials, names)
        self._draw_importance(data.get("importances") or {})

    def _fill_table(self, trials: list[dict[str, Any]], names: list[str],
                    best: dict[str, Any] | None) -> None:
        t = self.table
        t.setSortingEnabled(False)
        heads: list[str] = ["#", "state", self.objective or "value", *map(_short, names),
                            "time"]
        t.setColumnCount(len(heads))
        t.setHorizontalHeaderLabels(heads)
        t.setRowCount(len(trials))
        pal = self.palette()
        for r, trial in enumerate(trials):
            value = trial.get("value")
            state = str(trial.get("state", ""))
            cells = [_NumberItem(str(trial["number"]), trial["number"]),
                     QTableWidgetItem(state),
                     _NumberItem(_fmt(value), value if value is not None else math.nan)]
            cells[1].setForeground(QColor(STATE_HUES.get(state, ("#888", "#aaa"))[
                is_dark(pal)]))
            for name in names:
                v = trial.get("params", {}).get(name)
                cells.append(_NumberItem(_fmt(v), v) if isinstance(v, int | float)
                             and not isinstance(v, bool) else QTableWidgetItem(_fmt(v)))
            secs = trial.get("duration_s")
            cells.append(_NumberItem(f"{secs:.0f} s" if secs is not None else "—",
                                     secs if secs is not None else math.nan))
            cells[0].setData(Qt.ItemDataRole.ToolTipRole, trial.get("run", ""))
            for c, item in enumerate(cells):
                if best and trial["number"] == best["number"]:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                t.setItem(r, c, item)
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        t.setSortingEnabled(True)

    def _row_chosen(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None and item.toolTip():
            self.run_chosen.emit(item.toolTip())

    def _draw_history(self, trials: list[dict[str, Any]]) -> None:
        plot = self.history.getPlotItem()
        plot.clear()
        plot.setLabel("left", self.objective or "objective")
        pal = self.palette()
        done = [t for t in trials if t.get("value") is not None]
        if not done:
            return
        done.sort(key=lambda t: t["number"])
        for state, (light, dark) in STATE_HUES.items():
            pts = [t for t in done if t.get("state") == state]
            if pts:
                colour = QColor(dark if is_dark(pal) else light)
                plot.plot([t["number"] for t in pts], [t["value"] for t in pts], pen=None,
                          symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=None,
                          name=state)
        complete = [t for t in done if t.get("state") == "complete"]
        if complete:  # the best so far, as steps: it holds until a trial beats it
            pick = max if self.direction == "maximize" else min
            xs: list[float] = []
            ys: list[float] = []
            best = None
            for t in complete:
                best = t["value"] if best is None else pick(best, t["value"])
                if ys:
                    xs.append(t["number"])
                    ys.append(ys[-1])
                xs.append(t["number"])
                ys.append(best)
            xs.append(done[-1]["number"])
            ys.append(ys[-1])
            plot.plot(xs, ys, pen=pg.mkPen(role_colour("val", pal), width=2),
                      name="best so far")

    def _draw_coords(self, trials: list[dict[str, Any]], names: list[str]) -> None:
        """One vertical axis per parameter and one for the objective, each scaled to its own
        range (log where the values span decades, categories spaced evenly); a line per
        finished trial, coloured by its value."""
        plot = self.coords.getPlotItem()
        plot.clear()
        pal = self.palette()
        done = [t for t in trials if t.get("value") is not None]
        axes = [*names, "value"]
        if not done or not names:
            return
        columns = [_axis([t.get("params", {}).get(n) for t in done]) for n in names]
        columns.append(_axis([t["value"] for t in done]))
        values = np.array([t["value"] for t in done], float)
        lo, hi = float(values.min()), float(values.max())
        for i, t in enumerate(done):
            ys = [col[0][i] for col in columns]
            good = (values[i] - lo) / (hi - lo) if hi > lo else 1.0
            if self.direction == "minimize":
                good = 1.0 - good
            # the map's darkest quarter would vanish on a dark background
            colour = _VALUE_MAP.map(0.25 + 0.75 * good, mode="qcolor")
            if t.get("state") != "complete":
                colour = faint(colour, 90)
            plot.plot(list(range(len(axes))), ys, pen=pg.mkPen(colour, width=1.6))
        text = dim(pal)
        for x, col in enumerate(columns):
            plot.addItem(pg.InfiniteLine(x, angle=90, pen=pg.mkPen(faint(text, 120))))
            for y, label in ((0.0, col[1]), (1.0, col[2])):
                item = pg.TextItem(label, color=text, anchor=(0.5, 1.2 if y else -0.2))
                item.setPos(x, y)
                plot.addItem(item)
        bottom = plot.getAxis("bottom")
        bottom.setTicks([[(i, _short(a) if a != "value" else (self.objective or "value"))
                          for i, a in enumerate(axes)]])
        plot.setXRange(-0.3, len(axes) - 0.7, padding=0)
        plot.setYRange(-0.15, 1.15, padding=0)

    def _draw_importance(self, importances: dict[str, float]) -> None:
        plot = self.importance.getPlotItem()
        plot.clear()
        if not importances:
            plot.setTitle("needs a few finished trials")
            return
        plot.setTitle(None)
        pairs = sorted(importances.items(), key=lambda kv: kv[1])
        ys = np.arange(len(pairs))
        plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=[v for _k, v in pairs],
                                     brush=role_colour("step", self.palette())))
        plot.getAxis("left").setTicks([[(int(y), _short(k)) for y, (k, _v) in
                                        zip(ys, pairs, strict=True)]])
        plot.setYRange(-0.6, len(pairs) - 0.4, padding=0)
        plot.setXRange(0, 1, padding=0.02)

    def changeEvent(self, event: Any) -> None:  # a theme change redraws in its colours
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange:
            for plot in (self.history, self.coords, self.importance):
                style_plot(plot, self.palette())
            if self.data:
                self.show_sweep(self.data, self.objective, self.direction)


def _axis(raw: list[Any]) -> tuple[list[float], str, str]:
    """Values placed on [0, 1], with the labels of the bottom and the top."""
    numbers = [v for v in raw if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(raw):
        xs = np.asarray(numbers, float)
        lo, hi = float(xs.min()), float(xs.max())
        log = lo > 0 and hi / lo >= 100  # values that span decades: a learning rate
        if log:
            xs, a, b = np.log10(xs), math.log10(lo), math.log10(hi)
        else:
            a, b = lo, hi
        ys = ((xs - a) / (b - a)).tolist() if b > a else [0.5] * len(raw)
        return ys, _fmt(lo), _fmt(hi)
    cats = sorted({_fmt(v) for v in raw})
    pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
    return [pos[_fmt(v)] for v in raw], cats[0], cats[-1]
