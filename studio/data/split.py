"""The train/validation split, shared by Studio and the exported ``train.py``.

The exported package gets a copy of this file, so it imports nothing but numpy: the same project
and seed give the same split whether Studio or the package trains.
"""

from __future__ import annotations

import numpy as np


def split_indices(y: np.ndarray, fraction: float, seed: int, stratify: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices; stratified so every class keeps its share."""
    rng = np.random.RandomState(seed)
    n = len(y)
    if fraction <= 0:
        return rng.permutation(n), np.array([], dtype=np.int64)
    if not stratify:
        perm = rng.permutation(n)
        k = min(max(1, round(n * fraction)), n - 1)  # a fraction < 1 leaves one to train on
        return np.sort(perm[k:]), np.sort(perm[:k])
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = round(len(idx) * fraction)
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train_mask = np.ones(n, dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx
