"""Dashboard redraw cost with 10⁶ points stored (target ≤ 8 ms per redraw).

Run: python -m tests.bench.plot_redraw
Fills the batch-loss curve with 10⁶ points (raw and smoothed, as a run of that length has),
then appends one point at a time and times ``Dashboard.redraw`` (setData on the changed curves)
plus a synchronous repaint of the three charts, for 60 redraws; also at 10⁴ points, to show
the cost stays flat.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtWidgets import QApplication

from studio.ui.training.dashboard import Dashboard


def measure(n: int, app: QApplication, weight: float = 0.6) -> float:
    d = Dashboard(redraw_hz=1)
    d.set_smoothing(weight)
    d.timer.stop()
    d.resize(1200, 700)
    d.show()
    rng = np.random.default_rng(0)
    trace = d.traces["batch_loss"]
    ys = np.abs(rng.standard_normal(n)).cumsum()[::-1] / n
    steps = np.arange(n, dtype=float)
    trace.extend(np.column_stack([steps, steps / 1000, steps / 100]), ys)  # step, epoch, time
    d.redraw()
    app.processEvents()
    ms = timed_redraws(d, lambda i: trace.append(0.1, n + i, (n + i) / 1000, (n + i) / 100), 60)
    d.close()
    return ms


def timed_redraws(d: Dashboard, add: Callable[[int], object], rounds: int) -> float:
    """Median ms of ``rounds`` times: add a point with ``add(i)``, then ``redraw`` and a
    synchronous repaint, what one tick of the dashboard's timer costs."""
    times = []
    for i in range(rounds):
        add(i)
        t0 = time.perf_counter()
        d.redraw()
        for chart in d.charts.values():
            chart.widget.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    app = QApplication.instance() or QApplication([])
    small, big = measure(10_000, app), measure(1_000_000, app)
    print(f"dashboard redraw (setData + repaint): 10⁴ points {small:.2f} ms, 10⁶ points "
          f"{big:.2f} ms (median of 60; target 8 ms)")
    small, big = measure(10_000, app, 0.0), measure(1_000_000, app, 0.0)
    print(f"  smoothing off (the raw curve only): 10⁴ points {small:.2f} ms, 10⁶ points "
          f"{big:.2f} ms")


if __name__ == "__main__":
    main()
