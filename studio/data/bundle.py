"""From named dataset to training tensors: split, normalise, fit to the network's Input."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.errors import DatasetError
from studio.core.project import DataSettings

from .arrays import Arrays
from .sources import load_arrays
from .split import feature_stats, fill_missing, split_parts


@dataclass
class DataBundle:
    """Tensors ready for batching plus what the editor and exporters need to know."""

    task: str
    classes: list[str]
    sample_shape: tuple[int, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    image: bool = False
    #: input (x - mean) / std, applied already: the training part's mean and std, or its
    #: minimum and range when "scaling" is "minmax"
    norm: dict[str, Any] = field(default_factory=dict)
    target_norm: tuple[float, float] | None = None  # regression targets (mean, std)
    messages: list[str] = field(default_factory=list)
    files: Any = None  # lazy.ImageFiles: samples stay on disk, x_* are empty
    #: where each part's rows sit in the dataset as loaded (before the split): row k of
    #: x_val is sample val_idx[k]; test_idx is None for a dataset's own test set
    train_idx: np.ndarray | None = None
    val_idx: np.ndarray | None = None
    test_idx: np.ndarray | None = None
    columns: list[str] = field(default_factory=list)  # a table's feature names, when known
    #: an image's [C, H, W] when the Input reads it reshaped (an MLP on flat pixels), so
    #: that it can still be drawn and explained as a picture
    picture_shape: tuple[int, ...] | None = None

    @property
    def n_train(self) -> int:
        if self.files is None:
            return len(self.x_train)
        assert self.train_idx is not None, "a bundle of image files keeps its split indices"
        return len(self.train_idx)

    @property
    def n_val(self) -> int:
        if self.files is None:
            return len(self.x_val)
        assert self.val_idx is not None, "a bundle of image files keeps its split indices"
        return len(self.val_idx)

    @property
    def n_test(self) -> int:
        """Samples in the test part: the dataset's own test set or ``data.test_fraction``'s."""
        if self.files is not None:
            return 0 if self.test_idx is None else len(self.test_idx)
        return 0 if self.y_test is None else len(self.y_test)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def target_width(self) -> int:
        return 1 if self.y_train.dim() == 1 else int(self.y_train.shape[1])

    def to(self, device: torch.device | str) -> DataBundle:
        def mv(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=True)
        return replace(self, x_train=mv(self.x_train), y_train=mv(self.y_train),
                       x_val=mv(self.x_val), y_val=mv(self.y_val),
                       x_test=None if self.x_test is None else mv(self.x_test),
                       y_test=None if self.y_test is None else mv(self.y_test),
                       messages=list(self.messages))

    def reshape_samples(self, shape: tuple[int, ...]) -> None:
        """Present samples as ``shape`` (same number of values), e.g. [64] → [8, 8]."""
        def rs(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(len(t), *shape)
        self.messages.append(f"samples reshaped from {list(self.sample_shape)} to "
                             f"{list(shape)} to match the Input")
        if self.image and len(self.sample_shape) == 3 and self.picture_shape is None:
            self.picture_shape = tuple(self.sample_shape)
        self.x_train, self.x_val = rs(self.x_train), rs(self.x_val)
        self.x_test = None if self.x_test is None else rs(self.x_test)
        self.sample_shape = tuple(shape)


def pack_uint8(b: DataBundle) -> tuple[DataBundle, torch.Tensor, torch.Tensor] | None:
    """The bundle with its images as uint8 plus (a, b) with normalised = pixel · a + b, or
    None when the samples are not exactly 8-bit images (then they stay float)."""
    if not b.image or b.files is not None or b.x_train.dim() != 4 or not len(b.x_train):
        return None
    c = b.x_train.shape[1]
    norm = b.norm or {"mean": [0.0] * c, "std": [1.0] * c, "scale": 255.0}
    if norm.get("scale") != 255.0 or len(norm["mean"]) != c or len(norm["std"]) != c:
        return None
    mean = torch.tensor(norm["mean"], dtype=torch.float64).reshape(1, c, 1, 1)
    std = torch.tensor(norm["std"], dtype=torch.float64).reshape(1, c, 1, 1)

    def pack(x: torch.Tensor) -> torch.Tensor | None:
        pixels = (x.double() * std + mean) * 255.0
        raw = pixels.round()
        if len(x) and ((raw - pixels).abs().max() > 1e-2 or raw.min() < 0 or raw.max() > 255):
            return None  # not 8-bit pixels: keep the floats
        return raw.to(torch.uint8)

    x_train = pack(b.x_train)
    if x_train is None:
        return None
    x_val = pack(b.x_val)
    if x_val is None:
        return None
    x_test = None
    if b.x_test is not None:
        x_test = pack(b.x_test)
        if x_test is None:
            return None
    a = (1.0 / (255.0 * std)).float()
    off = (-mean / std).float()
    return replace(b, messages=list(b.messages), x_train=x_train, x_val=x_val,
                   x_test=x_test), a, off


def load_data(settings: DataSettings, base_dir: str | Path | None = None, seed: int = 0
              ) -> DataBundle:
    """Load, split and normalise the project's dataset (CPU tensors; move them with ``to``)."""
    base = Path(base_dir) if base_dir is not None else None
    arrays = load_arrays(settings.dataset, settings.options, base)
    return prepare(arrays, settings.val_fraction, settings.normalize, seed, settings.scaling,
                   settings.test_fraction)


def prepare(a: Arrays, val_fraction: float, normalize: bool, seed: int,
            scaling: str = "standard", test_fraction: float = 0.0) -> DataBundle:
    """Split, fill missing cells and scale the inputs with the training part's statistics
    (``scaling``: "standard" or "minmax"); regression targets are standardised whenever
    ``normalize`` is on, whatever the scaling, since the trainer undoes it for its metrics.
    A dataset with its own test set keeps it and ignores ``test_fraction`` (with a note)."""
    if len(a) < 2:
        raise DatasetError(f"only {len(a)} sample(s); at least two are needed",
                           "data.dataset")
    if a.files is not None:
        if normalize and scaling == "minmax":
            raise DatasetError("min-max scaling needs the images in memory; this folder is "
                               "read from disk as needed, use scaling \"standard\"",
                               "data.scaling")
        return _prepare_lazy(a, val_fraction, normalize, seed, test_fraction)
    if a.y.dtype.kind == "f" and not np.all(np.isfinite(a.y)):
        raise DatasetError("targets contain NaN or infinite values", "data.dataset")
    stratify = a.task == "classification"
    messages = list(a.messages)
    if test_fraction > 0 and a.x_test is not None:
        messages.append(f"the dataset has its own test set of {len(a.x_test):,} samples; "
                        "data.test_fraction is ignored")
        test_fraction = 0.0
    tr, va, te = split_parts(a.y, val_fraction, test_fraction, seed, stratify)
    if len(tr) == 0:
        raise DatasetError("the validation fraction leaves no training samples",
                           "data.val_fraction")
    x = _as_float(a.x, a.image)
    if a.fill:
        messages += _fill(x, tr, a)
    if not np.all(np.isfinite(x)):
        raise DatasetError("features contain NaN, infinite values or values beyond the range "
                           "of 32-bit floats; clean the data first", "data.dataset")
    norm: dict[str, Any] = {}
    if normalize:
        axes = (0, 2, 3) if a.image and x.ndim == 4 else (0,)
        mean, std = feature_stats(x, tr, axes, scaling)
        x = _standardize(x, mean, std)
        norm = {"mean": mean.reshape(-1).tolist(), "std": std.reshape(-1).tolist(),
                "per": "channel" if len(axes) == 3 else "feature", "scale": 255.0 if a.image
                else 1.0, **({"scaling": "minmax"} if scaling == "minmax" else {})}
    x_test = None
    if a.x_test is not None:
        x_test = _as_float(a.x_test, a.image)
        if norm:
            x_test = _standardize(x_test, mean, std)
    elif len(te):
        x_test = x[te]  # filled and scaled with the training part's statistics, as x was
    y = a.y
    target_norm = None
    y_test = a.y_test
    if a.task == "regression":
        with np.errstate(over="ignore"):
            y = y.astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise DatasetError("targets hold values beyond the range of 32-bit floats "
                               "(±3.4e38); rescale them", "data.dataset")
        if normalize:
            yt = y[tr]
            m = float(yt.mean(dtype=np.float64))
            s = float(yt.std(dtype=np.float64)) or 1.0
            target_norm = (m, s)
            y = ((y - m) / s).astype(np.float32)
            if y_test is not None:
                y_test = ((y_test.astype(np.float64) - m) / s).astype(np.float32)
    if a.x_test is None and len(te):
        y_test = y[te]
    t = torch.from_numpy
    return DataBundle(
        task=a.task, classes=a.classes, sample_shape=a.sample_shape,
        x_train=t(np.ascontiguousarray(x[tr], dtype=np.float32)), y_train=t(y[tr].copy()),
        x_val=t(np.ascontiguousarray(x[va], dtype=np.float32)), y_val=t(y[va].copy()),
        x_test=None if x_test is None else t(np.ascontiguousarray(x_test, dtype=np.float32)),
        y_test=None if y_test is None else t(np.asarray(y_test).copy()),
        image=a.image, norm=norm, target_norm=target_norm, messages=messages,
        train_idx=tr, val_idx=va, test_idx=te if len(te) else None, columns=list(a.columns),
    )


def _fill(x: np.ndarray, train: np.ndarray, a: Arrays) -> list[str]:
    """Fill missing feature cells from the training part; one note per filled column."""
    what = {"mean": "mean", "median": "median", "most_frequent": "most frequent value"}[a.fill]
    notes = []
    for col, count, value in fill_missing(x, train, a.fill):
        name = a.columns[col] if col < len(a.columns) else f"feature {col}"
        if np.isnan(value):  # nothing to learn the value from
            raise DatasetError(f"column {name!r} has no value in the training part to fill its "
                               f"{count} missing cell(s) from; set missing to \"drop\" or fill "
                               "them in the file", "data.options.missing")
        notes.append(f"column {name!r}: {count:,} missing cell(s) filled with the training "
                     f"part's {what}, {value:g}")
    return notes


def _standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std, in place on ``x`` (a float32 copy of its own)."""
    with np.errstate(over="ignore", invalid="ignore"):
        x -= mean.astype(np.float32)
        x /= std.astype(np.float32)
    if not np.all(np.isfinite(x)):
        feature = int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=0))[0])
        raise DatasetError(f"feature {feature} spans more than 32-bit floats can hold once "
                           "centred; rescale it", "data.dataset")
    return x


def _prepare_lazy(a: Arrays, val_fraction: float, normalize: bool, seed: int,
                  test_fraction: float) -> DataBundle:
    from .lazy import estimate_stats

    tr, va, te = split_parts(a.y, val_fraction, test_fraction, seed, stratify=True)
    c = a.files.sample_shape[0]
    mean, std = estimate_stats(a.files, tr, seed=seed) if normalize else ([0.0] * c, [1.0] * c)
    empty = torch.empty((0, *a.files.sample_shape))
    y = torch.from_numpy(a.y)
    return DataBundle(
        task=a.task, classes=a.classes, sample_shape=a.files.sample_shape,
        x_train=empty, y_train=y[tr], x_val=empty, y_val=y[va], image=True,
        y_test=y[te] if len(te) else None,
        norm={"mean": mean, "std": std, "per": "channel", "scale": 255.0},
        messages=[f"{len(a.y):,} images are read from disk as they are needed", *a.messages],
        files=a.files, train_idx=tr, val_idx=va, test_idx=te if len(te) else None)


def _as_float(x: np.ndarray, image: bool) -> np.ndarray:
    with np.errstate(over="ignore"):  # values float32 cannot hold become inf: refused after
        x = x.astype(np.float32)
    return x / 255.0 if image else x


def describe(bundle: DataBundle) -> str:
    # a test part cut from the dataset counts among its samples; an official test set never did
    n = bundle.n_train + bundle.n_val + (bundle.n_test if bundle.test_idx is not None else 0)
    what = (f"{bundle.num_classes} classes" if bundle.task == "classification"
            else f"regression, {bundle.target_width} target(s)")
    return (f"{n:,} samples of shape {list(bundle.sample_shape)} ({what}); "
            f"{bundle.n_train:,} train, {bundle.n_val:,} validation"
            + (f", {bundle.n_test:,} test" if bundle.n_test else ""))
