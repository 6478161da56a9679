"""A dataset in memory before it is split, and what every loader of user files shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import human_bytes

#: the largest magnitude a float32 holds; training tensors are float32
F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Arrays:
    """A dataset in memory before splitting: ``x`` samples, ``y`` targets."""

    x: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    classes: list[str] = field(default_factory=list)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    image: bool = False  # x is [N, C, H, W] uint8 pixels
    files: Any = None  # lazy.ImageFiles when the images stay on disk (x is then empty)
    messages: list[str] = field(default_factory=list)  # what the loader changed or skipped
    #: missing feature cells are NaN in ``x``, filled after the split from the training part
    #: with this statistic (split.fill_missing); ``columns`` names x's columns for the note
    fill: str = ""
    columns: list[str] = field(default_factory=list)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)


def check_memory(need: int, what: str, where: str) -> None:
    """Refuse before allocating ``need`` bytes that free memory cannot hold."""
    import torch

    from studio.core.memory import free_memory

    free = free_memory(torch.device("cpu"))
    if free is not None and need > free:
        raise DatasetError(f"{what} {human_bytes(need)}, but only {human_bytes(free)} of "
                           "memory is free", where)


def user_path(options: dict[str, Any], base: Path | None) -> Path:
    raw = options.get("path") or ""
    if not raw:
        raise DatasetError("no file given; set the dataset option 'path'", "data.options.path")
    p = Path(raw).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    try:
        found = p.exists()
    except (OSError, ValueError):  # a name the system refuses, e.g. with a NUL in it
        found = False
    if not found:
        raise DatasetError(f"{p} does not exist", "data.options.path")
    return p


def task_of(y: np.ndarray, want: str) -> str:
    if want != "auto":
        return want
    with np.errstate(invalid="ignore"):  # inf and nan are simply not whole numbers
        whole = y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0))
    if y.dtype.kind in "iub" or (whole and len(np.unique(y)) <= max(20, len(y) // 20)):
        return "classification"
    return "regression" if y.dtype.kind == "f" else "classification"


def label_names(labels: np.ndarray) -> list[str]:
    if labels.dtype.kind == "f":
        return [number_name(float(v)) for v in labels]
    if labels.dtype.kind == "S":
        return [bytes(v).decode("utf-8", "replace") for v in labels]
    return [str(v) for v in labels]


def number_name(v: float) -> str:
    """How a numeric label reads as a class name: 1.0 → "1", 2.5 → "2.5"."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
