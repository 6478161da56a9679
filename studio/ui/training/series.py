"""Growing buffers of a curve's points, with a bounded view to plot.

A point has one y and several x coordinates (step, epoch, wall time), so switching the x axis
is a column choice, not a rebuild. The bounded view keeps row indices, not values: every axis
reads the same selected points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Series:
    """A growing (x, y) buffer with amortised O(1) appends, and a bounded view to plot.

    A plot cannot show more points than it has pixels, but handing it a million costs a
    million: ``plot_data`` gives at most about ``LIMIT`` points — the minimum and maximum of
    each bucket of consecutive points, in order, so spikes stay visible — kept up to date
    incrementally (bucket size doubles as the run grows), so a redraw costs the same at the
    millionth step as at the thousandth.
    """

    LIMIT = 2048

    def __init__(self, capacity: int = 1024, axes: int = 1) -> None:
        self.x = np.empty((capacity, axes))
        self.y = np.empty(capacity)
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self._reset_view(1)

    def _reset_view(self, bucket: int) -> None:
        self.bucket = bucket
        self._done = 0  # raw points folded into buckets
        self._vi = np.empty(self.LIMIT + 2, dtype=np.int64)
        self._vn = 0

    def _grow(self, need: int) -> None:
        size = len(self.y)
        if need <= size:
            return
        while size < need:
            size *= 2
        self.x = np.resize(self.x, (size, self.x.shape[1]))
        self.y = np.resize(self.y, size)

    def append(self, x: float, y: float, *more_x: float) -> None:
        """One point: ``x`` on the first axis, ``more_x`` on the others (in order)."""
        if self.n == len(self.y):
            self._grow(self.n + 1)
        row = self.x[self.n]
        row[0] = x
        for i, v in enumerate(more_x, 1):
            row[i] = v
        self.y[self.n] = y
        self.n += 1
        if y < self.lo:
            self.lo = y
        if y > self.hi:
            self.hi = y

    def extend(self, x: np.ndarray | Sequence[Sequence[float]], y: np.ndarray | Sequence[float]
               ) -> None:
        """Many points at once: ``x`` is (points, axes), ``y`` (points,)."""
        ya = np.asarray(y, dtype=float)
        if not ya.size:
            return
        self._grow(self.n + ya.size)
        self.x[self.n:self.n + ya.size] = np.asarray(x, dtype=float).reshape(ya.size, -1)
        self.y[self.n:self.n + ya.size] = ya
        self.n += ya.size
        self.lo, self.hi = min(self.lo, float(ya.min())), max(self.hi, float(ya.max()))

    def clear(self) -> None:
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self._reset_view(1)

    def data(self, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n, axis], self.y[:self.n]

    def plot_data(self, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
        if self.n <= self.LIMIT:
            return self.data(axis)
        if self.bucket == 1:
            self._reset_view(2 * max(1, self.n // self.LIMIT))
        self._fold()
        rows = np.concatenate([self._vi[:self._vn], np.arange(self._done, self.n)])
        return self.x[rows, axis], self.y[rows]

    def nearest(self, x: float, axis: int = 0) -> int | None:
        """The row whose x is closest to ``x`` (x grows along a series), or None when empty."""
        if not self.n:
            return None
        xs = self.x[:self.n, axis]
        i = int(np.searchsorted(xs, x))
        if i >= self.n:
            return self.n - 1
        if i > 0 and x - xs[i - 1] <= xs[i] - x:
            return i - 1
        return i

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
        starts = lo + np.arange(k) * b
        i_min, i_max = ys.argmin(1), ys.argmax(1)
        self._vi[self._vn:self._vn + 2 * k:2] = starts + np.minimum(i_min, i_max)
        self._vi[self._vn + 1:self._vn + 2 * k:2] = starts + np.maximum(i_min, i_max)
        self._vn += 2 * k
        self._done = hi
