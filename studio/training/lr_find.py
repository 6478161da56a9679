"""The learning-rate range test (Leslie Smith's, as fastai's ``lr_find`` runs it): train a few
steps while the learning rate grows exponentially, watch the smoothed loss, and suggest a rate
from the curve; then put the model, optimizer and every random state back exactly, so a run
after the test trains as if it never happened.

The steps are the run's own (its loss, optimizer, precision and gradient clipping) on its
training batches; L1/L2 penalties are left out (they measure the weights, not the data).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

START, END = 1e-7, 10.0
#: 100 steps cover 1e-7 → 10 at ~20 points per decade: enough to place a valley, and a
#: fraction of an epoch on most datasets
STEPS = 100
BETA = 0.98  # the loss's moving average, debiased (fastai's)
DIVERGED = 4.0  # stop once the smoothed loss is this many times its best
METHODS = ("valley", "steepest")


@dataclass
class LrFind:
    """The curve and the suggestions; ``suggestion`` is the chosen ``method``'s."""

    lrs: list[float]
    losses: list[float]  # smoothed
    raw: list[float]
    method: str
    suggestion: float
    valley: float
    steepest: float
    stopped: str  # why the test ended: "end" of the range, or "diverged"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    def write(self, out_dir: Path) -> Path:
        from studio.core.project import atomic_write

        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "lr_find.json"
        atomic_write(path, (json.dumps(self.to_json(), indent=1) + "\n").encode())
        return path


def lr_find(t: Trainer, *, start: float = START, end: float = END, steps: int = STEPS,
            method: str = "valley", progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> LrFind:
    """Run the test on a set-up trainer (``Trainer.setup``) and restore it afterwards."""
    if method not in METHODS:
        raise TrainingError(f"unknown method {method!r}; use valley or steepest", "method")
    if not 0 < start < end or steps < 5:
        raise TrainingError("the range needs 0 < start < end and at least 5 steps", "lr-find")
    saved = _snapshot(t)
    try:
        lrs, smooth, raw, stopped = _sweep(t, start, end, steps, progress, cancelled)
    finally:
        _restore(t, saved)
    if len(smooth) < 5:
        raise TrainingError(f"the loss diverged after {len(smooth)} step(s), from "
                            f"{start:g}: the network or data give no usable curve; check "
                            "them, or start the range lower", "training.optimizer.lr")
    valley, steepest = suggest_valley(lrs, smooth), suggest_steepest(lrs, smooth)
    return LrFind(lrs, smooth, raw, method, valley if method == "valley" else steepest,
                  valley, steepest, stopped)


def _sweep(t: Trainer, start: float, end: float, steps: int,
           progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None
           ) -> tuple[list[float], list[float], list[float], str]:
    opt = t.optimizer
    ratios = [g["lr"] / t.base_lrs[0] if t.base_lrs[0] else 1.0 for g in opt.param_groups]
    factor = (end / start) ** (1 / (steps - 1))
    t.model.train()
    epoch = 0
    t.batches.set_epoch(epoch)
    batches = t.batches.epoch(0)
    lrs: list[float] = []
    smooth: list[float] = []
    raw: list[float] = []
    avg, best = 0.0, math.inf
    for i in range(steps):
        if cancelled is not None and cancelled():
            raise TrainingError("the learning-rate test was cancelled", "lr-find")
        batch = next(batches, None)
        if batch is None:  # an epoch is shorter than the test: the next one
            epoch += 1
            t.batches.set_epoch(epoch)
            batches = t.batches.epoch(0)
            batch = next(batches)
        lr = start * factor ** i
        for g, r in zip(opt.param_groups, ratios, strict=True):
            g["lr"] = lr * r
        xb, yb = batch
        with t.precision.forward_context():
            loss = t.loss_fn(t.forward(xb), yb)
        opt.zero_grad(set_to_none=True)
        t.precision.backward_step(loss, opt, t.model.parameters(), t.settings.grad_clip)
        value = float(loss.detach())
        if not math.isfinite(value):
            return lrs, smooth, raw, "diverged"
        avg = BETA * avg + (1 - BETA) * value
        s = avg / (1 - BETA ** (i + 1))
        lrs.append(lr)
        smooth.append(s)
        raw.append(value)
        if progress is not None:
            progress(i + 1, steps)
        if s > DIVERGED * best:
            return lrs, smooth, raw, "diverged"
        best = min(best, s)
    return lrs, smooth, raw, "end"


def suggest_valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's "valley": the longest stretch over which the loss keeps falling, and a rate
    two thirds of the way down it — far enough to learn fast, short of where it turns."""
    n = len(losses)
    # longest decreasing subsequence ending at each point, O(n²) on ~100 points
    length = [1] * n
    back = list(range(n))
    for i in range(1, n):
        for j in range(i):
            if losses[j] > losses[i] and length[j] + 1 > length[i]:
                length[i], back[i] = length[j] + 1, j
    end = max(range(n), key=lambda i: length[i])
    begin = end
    while back[begin] != begin:
        begin = back[begin]
    pick = begin + round(2 * (end - begin) / 3)
    return float(lrs[pick])


def suggest_steepest(lrs: list[float], losses: list[float]) -> float:
    """Where the loss falls fastest against log(rate), skipping the first and last few
    points (the average is still settling at the start and turning at the end)."""
    logs = [math.log10(x) for x in lrs]
    lo, hi = max(1, len(lrs) // 10), len(lrs) - max(1, len(lrs) // 20)
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1])
              for i in range(lo, max(lo + 1, hi - 1))]
    i = min(range(len(slopes)), key=lambda k: slopes[k])
    return float(lrs[lo + i])


def _snapshot(t: Trainer) -> dict[str, Any]:
    state = {
        "model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
        "scaler": t.precision.state_dict(), "rng": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if t.device.type == "cuda" else [],
        "shuffle": t.shuffle_gen.get_state(), "augment": t.aug_gen.get_state(),
        "training": t.model.training,
    }
    return copy.deepcopy(state)  # the state dicts hold the live tensors


def _restore(t: Trainer, s: dict[str, Any]) -> None:
    t.model.load_state_dict(s["model"])
    t.optimizer.load_state_dict(s["optimizer"])
    if s["scaler"] is not None:
        t.precision.load_state_dict(s["scaler"])
    torch.set_rng_state(s["rng"])
    if s["cuda"]:
        torch.cuda.set_rng_state_all(s["cuda"])
    t.shuffle_gen.set_state(s["shuffle"])
    t.aug_gen.set_state(s["augment"])
    t.batches.set_epoch(0)
    t.model.train(s["training"])
