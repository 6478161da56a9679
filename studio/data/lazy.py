"""Image folders too large for memory: read from disk by DataLoader workers.

Small datasets are sliced from device-resident tensors (``batches.Batches``); this path is for
the rest. Workers decode and resize to uint8; conversion to float, normalisation and
augmentation happen batch-wide on the training device, as for in-memory data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from studio.core.errors import DatasetError

from .batches import Augmenter


@dataclass
class ImageFiles(Dataset):
    """One image file per sample, decoded on demand to [C, H, W] uint8."""

    files: list[Path]
    labels: np.ndarray
    size: tuple[int, int]
    gray: bool

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.files[i]) as im:
                im = im.convert("L" if self.gray else "RGB").resize(self.size[::-1])
                a = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"cannot read image: {exc}", str(self.files[i])) from None
        a = a[None] if self.gray else a.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(a)), int(self.labels[i])

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (1 if self.gray else 3, *self.size)


class LoaderBatches:
    """The ``Batches`` interface over a DataLoader of image files."""

    def __init__(self, files: ImageFiles, indices: np.ndarray, batch_size: int, *,
                 shuffle: bool, device: torch.device, mean: Sequence[float],
                 std: Sequence[float], generator: torch.Generator | None = None,
                 augment: Augmenter | None = None, workers: int | None = None,
                 shard: Any = None) -> None:
        self.files, self.indices = files, np.asarray(indices)
        self.shard = shard
        self.batch_size, self.shuffle = batch_size, shuffle
        self.device, self.generator, self.augment = device, generator, augment
        self.mean = torch.tensor(mean, device=device).reshape(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).reshape(1, -1, 1, 1) * 255.0
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers

    def set_epoch(self, epoch: int) -> None:
        if self.shard is not None:
            self.shard.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.shard) if self.shard is not None else len(self.indices)
        return math.ceil(n / self.batch_size) if n else 0

    def epoch(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices
        if self.shard is not None:
            order = order[self.shard.positions().numpy()]
        elif self.shuffle:
            order = order[torch.randperm(len(order), generator=self.generator).numpy()]
        order = order[start * self.batch_size:]
        if not len(order):
            return
        loader = DataLoader(self.files, batch_size=self.batch_size, sampler=order.tolist(),
                            num_workers=self.workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        for xb, yb in loader:
            xb = xb.to(self.device, non_blocking=True).float().sub_(self.mean).div_(self.std)
            yield (self.augment(xb) if self.augment else xb), yb.to(self.device)


def estimate_stats(files: ImageFiles, indices: np.ndarray, limit: int = 512, seed: int = 0
                   ) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (of pixels scaled to [0, 1]) from up to ``limit`` images."""
    rng = np.random.RandomState(seed)
    pick = indices if len(indices) <= limit else rng.choice(indices, limit, replace=False)
    xs = np.stack([files[int(i)][0].numpy() for i in pick]).astype(np.float64) / 255.0
    mean = xs.mean(axis=(0, 2, 3))
    std = np.maximum(xs.std(axis=(0, 2, 3)), 1e-8)
    return mean.tolist(), std.tolist()
