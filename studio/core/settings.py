"""The resolve step: a project's training choices as the exact arguments torch is given.

A project file stores only what differs from the defaults (``{"type": "SGD"}``). Resolving
fills every parameter from the allow-list's schema, maps Studio's names onto torch's
(``beta1``/``beta2`` → ``betas``, ``mode: auto`` → ``min``/``max``), and checks combinations
torch would refuse only at run time. The trainer and the exported ``train.py`` both build
from the resolved form (``studio/training/builders.py``), so a default is written down once
and ``studio validate`` accepts exactly what ``studio train`` can run.
"""

from __future__ import annotations

from typing import Any

from .choices import LOSSES, OPTIMIZERS, SCHEDULERS, WARMUP


def better_mode(monitor: str, mode: str = "auto") -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("acc", "f1", "precision", "recall", "r2")) \
        else "min"


def resolve_loss(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"type": name, **every torch argument}``."""
    kind = spec["type"]
    return {"type": kind, **LOSSES[kind].resolve(_params(spec))}


def resolve_optimizer(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"type": torch.optim class name, **its keyword arguments}``; raises ValueError for a
    combination torch refuses."""
    kind = spec["type"]
    kw = OPTIMIZERS[kind].resolve(_params(spec))
    if "beta1" in kw:
        kw["betas"] = [kw.pop("beta1"), kw.pop("beta2")]
    if kind == "SGD" and kw["nesterov"] and (kw["momentum"] <= 0 or kw["dampening"] != 0):
        raise ValueError("nesterov: Nesterov momentum needs momentum > 0 and dampening 0")
    return {"type": kind, **kw}


def resolve_scheduler(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"type": name, "warmup_epochs": n, **torch arguments}``; ReduceLROnPlateau also
    keeps ``monitor`` (the metric it steps on) with ``mode`` decided from it."""
    if spec is None:
        return None
    kind = spec["type"]
    params = _params(spec)
    warmup = params.pop(WARMUP.name, WARMUP.default)
    kw = SCHEDULERS[kind].resolve(params)
    if kind == "ReduceLROnPlateau":
        kw["mode"] = better_mode(kw["monitor"], kw["mode"])
    return {"type": kind, "warmup_epochs": warmup, **kw}


def resolve_training(training: Any) -> dict[str, Any]:
    """Everything the training loop needs from ``TrainingSettings``, resolved."""
    return {"loss": resolve_loss(training.loss),
            "optimizer": resolve_optimizer(training.optimizer),
            "scheduler": resolve_scheduler(training.scheduler)}


def _params(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "type"}
