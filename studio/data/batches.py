"""Batches by slicing device-resident tensors, with image augmentation done batch-wide.

A per-sample DataLoader costs 10–30% on small models; slicing a shuffled index on the device
costs almost nothing. Augmentations draw independent random parameters for every sample but
run as a few batched tensor ops, on the GPU when the data is there.

An epoch of training never ends on a batch of one sample: BatchNorm cannot train on one, so
that sample joins the batch before it (``batch_spans``). Evaluation cuts plain batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F


def batch_spans(n: int, batch_size: int) -> list[slice]:
    """Where an epoch of ``n`` training samples is cut into batches: every ``batch_size``,
    except that a last batch of a single sample joins the one before (``batch_size + 1``).
    BatchNorm fails on one sample in training mode, and dropping it would lose data."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n % batch_size == 1:
        starts.pop()
    return [slice(a, a + batch_size) for a in starts[:-1]] + [slice(a, n) for a in starts[-1:]]


class Batches:
    """Mini-batches of (x, y); ``start`` resumes an epoch part-way through. Shuffled batches
    are training batches, cut by ``batch_spans``; unshuffled ones (evaluation) are plain.

    With a ``shard`` (a data-parallel run) the epoch's order and this process's part of it
    come from the shard's ``DistributedSampler``; call ``set_epoch`` before each epoch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                 generator: torch.Generator | None = None,
                 augment: Augmenter | None = None, shard: Any = None,
                 affine: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.x, self.y = x, y
        self.affine = affine  # uint8 samples: normalised = x · a + b, per batch
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.augment = augment
        self.shard = shard

    def set_epoch(self, epoch: int) -> None:
        if self.shard is not None:
            self.shard.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.shard) if self.shard is not None else len(self.x)
        if self.shard is None and not self.shuffle:
            return math.ceil(n / self.batch_size)
        return len(batch_spans(n, self.batch_size))

    def epoch(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bs = self.batch_size
        if self.shard is not None:
            order = self.shard.positions().to(self.x.device)
        elif self.shuffle:
            order = torch.randperm(len(self.x), generator=self.generator).to(self.x.device)
        else:
            for i in range(start * bs, len(self.x), bs):
                yield self._float(self.x[i:i + bs]), self.y[i:i + bs]
            return
        x, y, augment = self.x, self.y, self.augment
        spans = batch_spans(len(order), bs)[start:]
        if self.affine is None and augment is None:  # the common case, kept lean (measured)
            for span in spans:
                idx = order[span]
                yield x[idx], y[idx]
            return
        for span in spans:
            idx = order[span]
            xb = self._float(x[idx])
            yield (augment(xb) if augment else xb), y[idx]

    def _float(self, xb: torch.Tensor) -> torch.Tensor:
        if self.affine is None:
            return xb
        a, b = self.affine
        return torch.addcmul(b, xb.float(), a)


class Augmenter:
    """Random crop with padding, horizontal flip, rotation and affine, per sample.

    Inputs are already normalised, so padding fills with the normalised value of black, as
    torchvision's transforms would give before normalisation.
    """

    def __init__(self, steps: Sequence[dict[str, Any]], fill: torch.Tensor,
                 generator: torch.Generator) -> None:
        self.steps = [dict(s) for s in steps]
        self.fill = fill.reshape(1, -1, 1, 1)
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return x
        for step in self.steps:
            kind = step["type"]
            if kind == "random_crop" and step.get("padding", 4) > 0:
                x = self._crop(x, int(step.get("padding", 4)))
            elif kind == "hflip":
                x = self._flip(x, float(step.get("p", 0.5)))
            elif kind == "rotation":
                x = self._affine(x, float(step.get("degrees", 10.0)), 0.0, 0.0)
            elif kind == "affine":
                x = self._affine(x, float(step.get("degrees", 0.0)),
                                 float(step.get("translate", 0.1)), float(step.get("scale", 0.1)))
        return x

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.generator.device
                          ).to(self.fill.device)

    def _crop(self, x: torch.Tensor, pad: int) -> torch.Tensor:
        n, c, h, w = x.shape
        fill = self.fill.to(x.dtype)
        padded = fill.expand(n, c, h + 2 * pad, w + 2 * pad).clone()
        padded[:, :, pad:pad + h, pad:pad + w] = x
        oy = (self._rand(n) * (2 * pad + 1)).long().clamp_(max=2 * pad)
        ox = (self._rand(n) * (2 * pad + 1)).long().clamp_(max=2 * pad)
        dev = x.device
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        return padded[torch.arange(n, device=dev)[:, None, None, None],
                      torch.arange(c, device=dev)[None, :, None, None], rows, cols]

    def _flip(self, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = (self._rand(x.shape[0]) < p)[:, None, None, None]
        return torch.where(mask, x.flip(3), x)

    def _affine(self, x: torch.Tensor, degrees: float, translate: float, scale: float
                ) -> torch.Tensor:
        n = x.shape[0]
        ang = (self._rand(n) * 2 - 1) * math.radians(degrees)
        s = 1 + (self._rand(n) * 2 - 1) * scale
        tx = (self._rand(n) * 2 - 1) * translate * 2  # grid units span [-1, 1]
        ty = (self._rand(n) * 2 - 1) * translate * 2
        cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        fill = self.fill.to(x.dtype)
        return F.grid_sample(x - fill, grid, align_corners=False, padding_mode="zeros") + fill
