"""Losses, optimizers and schedulers from resolved settings (``studio.core.settings``).

Shared by the trainer and the exported ``train.py``, which gets a copy of this file: it
imports nothing but torch, so the exported package runs without Studio installed.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn


def make_loss(spec: dict[str, Any]) -> nn.Module:
    """``spec`` is ``{"type": torch.nn loss name, **arguments}``."""
    kw = {k: v for k, v in spec.items() if k != "type"}
    return cast(nn.Module, getattr(nn, spec["type"])(**kw))


def make_optimizer(spec: dict[str, Any], params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """``spec`` is ``{"type": torch.optim class name, **arguments}``."""
    kw = {k: v for k, v in spec.items() if k != "type"}
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    return cast(torch.optim.Optimizer, getattr(torch.optim, spec["type"])(params, **kw))


def make_scheduler(spec: dict[str, Any] | None, optimizer: torch.optim.Optimizer,
                   epochs: int, steps_per_epoch: int) -> tuple[Any, Any]:
    """(per-epoch scheduler, per-batch scheduler), either or both None.

    ``epochs`` are those after the warm-up. OneCycleLR steps per batch; the others per epoch
    (ReduceLROnPlateau on ``spec["monitor"]``, which the caller reads from the epoch's logs).
    """
    if spec is None:
        return None, None
    kind = spec["type"]
    kw = {k: v for k, v in spec.items() if k not in ("type", "warmup_epochs", "monitor")}
    sched = torch.optim.lr_scheduler
    epochs = max(epochs, 1)
    if kind == "CosineAnnealingLR":
        kw["T_max"] = kw.get("T_max") or epochs
    if kind == "OneCycleLR":
        kw["max_lr"] = kw.get("max_lr") or [10 * g["lr"] for g in optimizer.param_groups]
        total = epochs * max(steps_per_epoch, 1)
        pct = float(kw.get("pct_start", 0.3))
        if pct * total == 1.0:  # the rise would end at step 0: torch divides 0 by 0 there
            kw["pct_start"] = pct * (1 + 1e-9)
        return None, sched.OneCycleLR(optimizer, total_steps=total, **kw)
    return getattr(sched, kind)(optimizer, **kw), None


def step_scheduler(scheduler: Any, spec: dict[str, Any] | None, logs: dict[str, Any]) -> None:
    """The end-of-epoch step: ReduceLROnPlateau reads its monitored metric from ``logs``
    (the training loss when the run has no such metric)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        monitor = (spec or {}).get("monitor", "val_loss")
        scheduler.step(logs[monitor] if monitor in logs else logs["loss"])
    else:
        scheduler.step()


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up of the learning rate over the first ``warmup_steps`` optimizer steps."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
