"""The train/validation/test split and what is learnt from its training part (feature scaling,
fill-in values for missing cells), shared by Studio and the exported ``train.py``.

The exported package gets a copy of this file, so it imports nothing but numpy: the same project
and seed give the same split and the same numbers whether Studio or the package trains.
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


def split_parts(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                stratify: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices, disjoint and covering every sample.

    The test part is drawn first, from a random stream of its own, and the validation part from
    the rest with ``split_indices`` at the share that keeps it ``val_fraction`` of the whole:
    a project without a test part (``test_fraction`` 0) splits exactly as before it existed.
    Every class keeps at least one training sample where it has two or more.
    """
    if test_fraction <= 0:
        train, val = split_indices(y, val_fraction, seed, stratify)
        return train, val, np.array([], dtype=np.int64)
    rest, test = split_indices(y, test_fraction, (seed + 1_000_003) % 2**32, stratify)
    rest = np.sort(rest)
    share = min(val_fraction / (1.0 - test_fraction), 0.999) if val_fraction > 0 else 0.0
    train, val = split_indices(y[rest], share, seed, stratify)
    return rest[train], rest[val], test


def feature_stats(x: np.ndarray, rows: np.ndarray, axes: tuple[int, ...], scaling: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) of ``x[rows]`` over ``axes`` so that (x - offset) / scale is standardised
    ("standard": mean, std) or spans 0…1 ("minmax": min, max - min) on the training part.

    Summed in float64 a chunk of rows at a time: in float32 the squares of values near 1e18
    overflow, and a float64 copy of all of x would double the memory of a large image set.
    A constant feature gets scale 1 rather than a division by zero.
    """
    per_row = int(np.prod([x.shape[a] for a in axes[1:]], dtype=np.int64))
    step = max(1, 2**22 // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    chunks = [rows[i:i + step] for i in range(0, len(rows), step)]
    if scaling == "minmax":
        lo = np.min([x[c].min(axis=axes, keepdims=True) for c in chunks], axis=0)
        hi = np.max([x[c].max(axis=axes, keepdims=True) for c in chunks], axis=0)
        lo, span = lo.astype(np.float64), hi.astype(np.float64) - lo
        return lo, np.where(span < 1e-8, 1.0, span)
    n = len(rows) * per_row
    mean = sum(x[c].sum(axis=axes, keepdims=True, dtype=np.float64) for c in chunks) / n
    square = sum(np.square(x[c] - mean).sum(axis=axes, keepdims=True) for c in chunks)
    std = np.sqrt(square / n)
    return mean, np.where(std < 1e-8, 1.0, std)


def fill_missing(x: np.ndarray, rows: np.ndarray, how: str) -> list[tuple[int, int, float]]:
    """Fill the NaN cells of each column of the 2-d ``x`` in place with the column's mean,
    median or most frequent value ("most_frequent", the smallest on a tie) in the training
    ``rows``, so that no validation value leaks into training. Returns (column, cells filled,
    value) per filled column; the value is NaN where the training part holds none."""
    filled = []
    for col in np.flatnonzero(np.isnan(x).any(axis=0)):
        gaps = np.isnan(x[:, col])
        known = x[rows, col][~np.isnan(x[rows, col])].astype(np.float64)
        if not len(known):
            value = float("nan")
        elif how == "median":
            value = float(np.median(known))
        elif how == "most_frequent":
            values, counts = np.unique(known, return_counts=True)
            value = float(values[np.argmax(counts)])
        else:
            value = float(known.mean())
        x[gaps, col] = value
        filled.append((int(col), int(gaps.sum()), value))
    return filled
