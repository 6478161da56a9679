"""What a run saves to continue exactly where it stopped, and the checks before trusting it.

A checkpoint is a dict of tensors, numbers and strings (it loads with ``weights_only=True``).
Every field is checked for presence, type and range before a single one is used, so a damaged
or hand-made file ends in one message naming the field instead of a crash half-way through a
resume. Callbacks keep their state under a stable ``state_key`` of their own, never under a
class name that a refactoring could change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import StudioError, TrainingError
from studio.core.project import MAX_FILE_BYTES, Project

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

#: the most epochs a project may ask for (``training.epochs``)
MAX_EPOCHS = 100_000

#: version-1 checkpoints kept callback states as JSON under class names
_LEGACY_KEYS = {"EarlyStopping": "early_stopping", "Checkpointer": "checkpointer"}


def capture(t: Trainer) -> dict[str, Any]:
    """The whole state of a run between two batches."""
    return {
        "project": t.project.dumps(),
        "epoch": t.epoch, "batch": t.batch_in_epoch, "step": t.step,
        "world_size": t.world,
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict() if t.scheduler else None,
        "batch_scheduler": t.batch_scheduler.state_dict() if t.batch_scheduler else None,
        "scaler": t.precision.state_dict(),
        "rng_torch": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if t.device.type == "cuda" else [],
        "rng_shuffle": t.shuffle_gen.get_state(),
        "rng_shuffle_epoch": t.shuffle_epoch_state,
        "rng_augment": t.aug_gen.get_state(),
        "history": json.dumps(t.history.epochs),
        "callbacks": {c.state_key: c.state() for c in t.callbacks.callbacks if c.state_key},
        "norm": json.dumps(t.bundle.norm),
        "classes": json.dumps(t.bundle.classes),
    }


def _int(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be a whole number, not {type(v).__name__}"
        if not lo <= v <= hi:
            return f"must be between {lo:,} and {hi:,}, got {v:,}"
        return None
    return check


def _rng(v: Any) -> str | None:
    if not isinstance(v, torch.Tensor) or v.dtype != torch.uint8 or v.dim() != 1:
        return "must be a random-generator state (a 1-d uint8 tensor)"
    return None


def _dict_or_none(v: Any) -> str | None:
    return None if v is None or isinstance(v, dict) else "must be an object or empty"


def _tensors(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(
            isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items()):
        return "must map parameter names to tensors"
    return None


def _optimizer(v: Any) -> str | None:
    if not (isinstance(v, dict) and isinstance(v.get("state"), dict)
            and isinstance(v.get("param_groups"), list)):
        return "must be an optimizer state (state and param_groups)"
    return None


def _text(v: Any) -> str | None:
    if not isinstance(v, str):
        return f"must be text, not {type(v).__name__}"
    return "is too large" if len(v) > MAX_FILE_BYTES else None


def _rng_list(v: Any) -> str | None:
    if not isinstance(v, list) or any(_rng(t) for t in v):
        return "must be a list of random-generator states"
    return None


def _callbacks(v: Any) -> str | None:
    if isinstance(v, str):  # version 1
        try:
            v = json.loads(v)
        except (json.JSONDecodeError, RecursionError):
            return "is not valid JSON"
    if not isinstance(v, dict) or not all(isinstance(s, dict) for s in v.values()):
        return "must map callbacks to their states"
    return None


#: field → check returning why the value is wrong, or None; ``True``: the field is required
FIELDS: dict[str, tuple[bool, Callable[[Any], str | None]]] = {
    "project": (True, _text),
    "epoch": (True, _int(0, MAX_EPOCHS)),
    "batch": (True, _int(0, 2**40)),
    "step": (True, _int(0, 2**53)),
    "world_size": (False, _int(1, 2**20)),
    "model": (True, _tensors),
    "optimizer": (True, _optimizer),
    "scheduler": (False, _dict_or_none),
    "batch_scheduler": (False, _dict_or_none),
    "scaler": (False, _dict_or_none),
    "rng_torch": (True, _rng),
    "rng_cuda": (False, _rng_list),
    "rng_shuffle": (True, _rng),
    "rng_shuffle_epoch": (True, _rng),
    "rng_augment": (True, _rng),
    "history": (True, _text),
    "callbacks": (False, _callbacks),
}


def validate(ckpt: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Check a checkpoint before resuming from it; returns its history (one entry per epoch)."""
    for name, (required, check) in FIELDS.items():
        if name not in ckpt:
            if required:
                raise TrainingError(f"damaged checkpoint: {name!r} is missing", where)
            continue
        problem = check(ckpt[name])
        if problem:
            raise TrainingError(f"damaged checkpoint: {name!r} {problem}", where)
    try:
        history = json.loads(ckpt["history"])
    except (json.JSONDecodeError, RecursionError):
        raise TrainingError("damaged checkpoint: 'history' is not valid JSON", where) from None
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise TrainingError("damaged checkpoint: 'history' must be a list of epochs", where)
    if len(history) != ckpt["epoch"]:
        raise TrainingError(f"damaged checkpoint: it claims {ckpt['epoch']:,} completed epochs "
                            f"but holds the logs of {len(history):,}", where)
    try:
        Project.loads(ckpt["project"], source="the checkpoint's project")
    except StudioError as exc:
        raise TrainingError(f"damaged checkpoint: {exc}", where) from None
    return history


def restore(t: Trainer, ckpt: dict[str, Any], where: str) -> None:
    """Put a validated checkpoint's state into a set-up trainer."""
    from .transfer import load_exact

    history = validate(ckpt, where)
    load_exact(t.model, ckpt["model"], where)
    saved = json.loads(ckpt["project"])["training"]["optimizer"]
    mine = t.settings.optimizer
    if saved["type"] != mine["type"]:
        t.message(f"the optimizer changed from {saved['type']} to {mine['type']}; it starts "
                  "afresh")
    else:
        _load(t.optimizer, ckpt["optimizer"], "optimizer", where)
        if saved != mine:  # new hyperparameters (e.g. --lr) win over the saved ones
            fresh = t.resolved["optimizer"]
            for g in t.optimizer.param_groups:
                g.update({k: v for k, v in fresh.items() if k in g and k != "type"})
                if "betas" in fresh:
                    g["betas"] = tuple(fresh["betas"])
            t.base_lrs = [g["lr"] for g in t.optimizer.param_groups]
            t.message("resumed with the project's new optimizer settings")
    for name, obj in (("scheduler", t.scheduler), ("batch_scheduler", t.batch_scheduler),
                      ("scaler", t.precision if t.precision.scaler is not None else None)):
        if obj is not None and ckpt.get(name):
            _load(obj, ckpt[name], name, where)
    t.epoch, t.batch_in_epoch, t.step = ckpt["epoch"], ckpt["batch"], ckpt["step"]
    if t.epoch > t.settings.epochs:
        raise TrainingError(f"the checkpoint has completed {t.epoch:,} epochs but the project "
                            f"trains for {t.settings.epochs:,}; raise training.epochs to go on",
                            "training.epochs")
    saved_world = ckpt.get("world_size", 1)
    if saved_world != t.world and t.batch_in_epoch:
        t.message(f"the run stopped mid-epoch with {saved_world} process(es) and resumes with "
                  f"{t.world}: epoch {t.epoch + 1} starts again")
        t.batch_in_epoch = 0
    if t.batch_in_epoch >= t.steps_per_epoch > 0:
        raise TrainingError(f"the checkpoint stopped at batch {t.batch_in_epoch:,} of an epoch "
                            f"that has {t.steps_per_epoch:,} batches here; the data or the "
                            "batch size changed since", where)
    _set_rng(torch.set_rng_state, ckpt["rng_torch"], "rng_torch", where)
    if t.device.type == "cuda" and ckpt.get("rng_cuda"):
        _set_rng(torch.cuda.set_rng_state_all, [s.cpu() for s in ckpt["rng_cuda"]], "rng_cuda",
                 where)
    t.shuffle_epoch_state = ckpt["rng_shuffle_epoch"].cpu()
    _set_rng(t.shuffle_gen.set_state, t.shuffle_epoch_state if t.batch_in_epoch
             else ckpt["rng_shuffle"].cpu(), "rng_shuffle", where)
    try:
        t.aug_gen.set_state(ckpt["rng_augment"].cpu())
    except RuntimeError:  # saved on another kind of device: the rest resumes exactly
        t.message("the augmentation's random state was saved on another device; "
                  "augmentations from here on differ from an uninterrupted run")
    t.history.epochs = history
    states = ckpt.get("callbacks") or {}
    if isinstance(states, str):
        states = {_LEGACY_KEYS.get(k, k): v for k, v in json.loads(states).items()}
    for cb in t.callbacks.callbacks:
        if cb.state_key and cb.state_key in states:
            try:
                cb.load(states[cb.state_key])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise TrainingError(f"damaged checkpoint: the state of {cb.state_key} does not "
                                    f"load ({type(exc).__name__}: {exc})", where) from None
    t.message(f"resumed after epoch {t.epoch}"
              + (f", batch {t.batch_in_epoch}" if t.batch_in_epoch else ""))


def _load(obj: Any, state: dict[str, Any], name: str, where: str) -> None:
    try:
        obj.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise TrainingError(f"the checkpoint's {name} state does not fit this run ({first})",
                            where) from None


def _set_rng(setter: Callable[[Any], object], state: Any, name: str, where: str) -> None:
    try:
        setter(state)
    except (RuntimeError, TypeError, ValueError):
        raise TrainingError(f"damaged checkpoint: {name!r} is not a valid random state",
                            where) from None
