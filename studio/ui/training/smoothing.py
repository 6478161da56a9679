"""TensorBoard's smoothing: an exponential moving average, debiased.

``s_t = a·s_{t-1} + (1-a)·x_t`` from ``s_0 = 0``, shown as ``s_t / (1 - a^t)`` so the first
points are not pulled towards zero. ``Ema`` adds one point in O(1) as a run reports; ``ema``
recomputes a whole series (vectorised) when the user moves the slider.
"""

from __future__ import annotations

import numpy as np

DEFAULT_WEIGHT = 0.6


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """The debiased EMA of ``values`` (the same as pushing them one by one into ``Ema``)."""
    x = np.asarray(values, dtype=float)
    if not x.size or weight <= 0.0:
        return x.copy()
    from scipy.signal import lfilter  # only when the slider moves: scipy loads slowly

    biased = lfilter([1.0 - weight], [1.0, -weight], x)
    return np.asarray(biased / (1.0 - weight ** np.arange(1, x.size + 1)))


class Ema:
    """The running debiased EMA of one series."""

    def __init__(self, weight: float = DEFAULT_WEIGHT) -> None:
        self.weight = weight
        self.clear()

    def clear(self) -> None:
        self._s = 0.0  # the biased average
        self._power = 1.0  # weight ** points seen

    def push(self, x: float) -> float:
        a = self.weight
        self._s = a * self._s + (1.0 - a) * x
        self._power *= a
        return self._s / (1.0 - self._power) if self._power != 1.0 else x

    def restart(self, values: np.ndarray, weight: float) -> np.ndarray:
        """Smooth ``values`` with a new weight and go on from their end; returns them smoothed."""
        self.weight = weight
        self.clear()
        out = ema(values, weight)
        if out.size:
            self._power = weight ** out.size
            self._s = float(out[-1]) * (1.0 - self._power)
        return out
