"""Other runs drawn over the current one: their per-epoch histories as traces on every chart.

A history is what ``metrics.jsonl`` holds, one mapping per epoch. Overlays have no per-step
points, so they are not smoothed; their training curves are dashed, their validation curves
solid, all in the run's one colour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PySide6.QtGui import QColor

from .charts import Chart
from .traces import Trace


def positions(rows: Sequence[Mapping[str, Any]], steps_per_epoch: int) -> np.ndarray:
    """(epochs, 3): each epoch's step, epoch and elapsed seconds. The step is the entry's own
    when it has one (else the epoch times ``steps_per_epoch``), the time its ``elapsed_s``
    (else the sum of ``time_s`` so far)."""
    epochs = np.array([float(h["epoch"]) for h in rows])
    spe = steps_per_epoch or 1
    steps = np.array([float(h.get("step", e * spe)) for h, e in zip(rows, epochs, strict=True)])
    summed = np.cumsum([float(h.get("time_s") or 0.0) for h in rows])
    times = np.array([float(h.get("elapsed_s", t)) for h, t in zip(rows, summed, strict=True)])
    return np.column_stack([steps, epochs, times]) if rows else np.empty((0, 3))


def add_overlay(charts: Mapping[str, Chart], name: str, history: Sequence[Mapping[str, Any]],
                colour: QColor, metric: str, steps_per_epoch: int) -> list[tuple[str, str]]:
    """Add run ``name``'s traces to the charts; returns their (chart, key)s. ``metric`` is the
    current run's (accuracy or mae); a run of the other task shows its own."""
    rows = [h for h in history if isinstance(h.get("epoch"), int | float)]
    xs = positions(rows, steps_per_epoch)
    if rows and metric not in rows[0] and f"val_{metric}" not in rows[0]:
        metric = "mae" if metric == "accuracy" else "accuracy"
    placed = []
    for chart, src, label, dashed in (
            ("loss", "loss", "train", True), ("loss", "val_loss", "val", False),
            ("metric", metric, "train", True), ("metric", f"val_{metric}", "val", False),
            ("lr", "lr", "lr", False)):
        keep = [i for i, h in enumerate(rows)
                if isinstance(h.get(src), int | float) and math.isfinite(h[src])]
        if not keep:
            continue
        key = f"{name}/{src if chart != 'metric' else label}"
        trace = charts[chart].add(key, Trace(charts[chart].plot, label, colour, smooth=False,
                                             markers=True, dashed=dashed, run=name))
        trace.extend(xs[keep], [float(rows[i][src]) for i in keep])
        placed.append((chart, key))
    return placed
