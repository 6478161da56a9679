"""Image folders too large for memory: read from disk by DataLoader workers.

Small datasets are sliced from device-resident tensors (``batches.Batches``); this path is for
the rest. Workers decode and resize to uint8; conversion to float, normalisation and
augmentation happen batch-wide on the training device, as for in-memory data.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from studio.core.errors import DatasetError
from studio.core.files import open_regular

from .batches import Augmenter, batch_spans

#: what Pillow may decode: the formats of image-folder's suffixes, and none that runs a helper
#: program (EPS would start Ghostscript) whatever the file's name says
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # JPEG covers MPO
#: Pillow's default MAX_IMAGE_PIXELS (256 MiB as RGB): larger images are refused, since a PNG
#: of a few KB can declare billions of pixels
MAX_PIXELS = 89_478_485


def decode_image(path: Path, size: tuple[int, int], gray: bool) -> np.ndarray:
    """One image file as [C, H, W] uint8, or DatasetError naming the file.

    Pillow only warns above its pixel limit and raises only above twice that; here both are
    errors, and the limit holds even where Pillow's was switched off.
    """
    from PIL import Image, UnidentifiedImageError

    where = str(path)
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    bomb = DatasetError(f"has more than {limit:,} pixels, the limit that guards against "
                        "decompression bombs; resize it", where)
    with open_regular(path, DatasetError) as fp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(fp, formats=IMAGE_FORMATS) as im:
                    if im.width * im.height > limit:
                        raise bomb
                    small = im.convert("L" if gray else "RGB").resize(size[::-1])
                    a = np.array(small, dtype=np.uint8)  # a writable copy, for torch
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise bomb from None
        except DatasetError:
            raise
        except UnidentifiedImageError:
            raise DatasetError("is damaged or not an image in a format read here (PNG, JPEG, "
                               "BMP, GIF, WebP, TIFF)", where) from None
        except Exception as exc:  # damaged files fail inside Pillow in many ways
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            raise DatasetError(f"cannot read image ({detail})", where) from None
    return np.ascontiguousarray(a[None] if gray else a.transpose(2, 0, 1))


@dataclass
class ImageFiles(Dataset[tuple[torch.Tensor, int, str]]):
    """One image file per sample, decoded on demand to [C, H, W] uint8."""

    files: list[Path]
    labels: np.ndarray
    size: tuple[int, int]
    gray: bool

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        """Sample ``i`` as [C, H, W] uint8; raises DatasetError naming the file."""
        return decode_image(self.files[i], self.size, self.gray)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        """For DataLoader workers, which must not raise: an exception there reaches the main
        process as its traceback. A bad file gives zeros and the error's text instead, which
        ``LoaderBatches.epoch`` raises as a DatasetError."""
        try:
            return torch.from_numpy(self.read(i)), int(self.labels[i]), ""
        except Exception as exc:  # a DatasetError; anything else is reported the same way
            text = exc.message if isinstance(exc, DatasetError) else \
                f"cannot read image ({type(exc).__name__})"
            return torch.zeros(self.sample_shape, dtype=torch.uint8), int(self.labels[i]), text

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (1 if self.gray else 3, *self.size)


class LoaderBatches:
    """The ``Batches`` interface over a DataLoader of image files; shuffled (training)
    batches are cut by ``batch_spans`` as in memory, unshuffled ones plainly."""

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
        return len(self._spans(n))

    def _spans(self, n: int) -> list[slice]:
        if self.shard is None and not self.shuffle:
            return [slice(i, i + self.batch_size) for i in range(0, n, self.batch_size)]
        return batch_spans(n, self.batch_size)

    def epoch(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices
        if self.shard is not None:
            order = order[self.shard.positions().numpy()]
        elif self.shuffle:
            order = order[torch.randperm(len(order), generator=self.generator).numpy()]
        batches = [order[span].tolist() for span in self._spans(len(order))[start:]]
        if not batches:
            return
        loader = DataLoader(self.files, batch_sampler=batches, num_workers=self.workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        for k, (xb, yb, problems) in enumerate(loader):
            bad = next((j for j, text in enumerate(problems) if text), None)
            if bad is not None:  # batch k holds ``batches[k]``: the file is known by position
                i = batches[k][bad]
                raise DatasetError(problems[bad], str(self.files.files[i]))
            xb = xb.to(self.device, non_blocking=True).float().sub_(self.mean).div_(self.std)
            yield (self.augment(xb) if self.augment else xb), yb.to(self.device)


def estimate_stats(files: ImageFiles, indices: np.ndarray, limit: int = 512, seed: int = 0
                   ) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (of pixels scaled to [0, 1]) from up to ``limit`` images."""
    rng = np.random.RandomState(seed)
    pick = indices if len(indices) <= limit else rng.choice(indices, limit, replace=False)
    xs = np.stack([files.read(int(i)) for i in pick]).astype(np.float64) / 255.0
    mean = xs.mean(axis=(0, 2, 3))
    std = np.maximum(xs.std(axis=(0, 2, 3)), 1e-8)
    return mean.tolist(), std.tolist()
