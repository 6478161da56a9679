"""Validation predictions of a trained network, for the evaluation views.

Pure core (numpy and torch, no Qt): the GUI shows them, a training process writes them to an
``.npz`` beside its run so the window can read them without sharing memory with the process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import TrainingError
from studio.core.project import Project, atomic_write

IMAGE_LIMIT = 5000  # images kept for the galleries; predictions are kept for every sample


def collect_predictions(trainer: Any, split: str = "val") -> dict[str, Any]:
    """Predictions of a set-up trainer on one split, as numpy; images where there are any."""
    import torch

    b = trainer.bundle
    if (b.n_val if split == "val" else b.n_test) == 0:
        return {}
    # an image read flat (or as rows) by its Input is still drawn as the picture it is
    picture = (b.picture_shape or b.sample_shape) if b.image else None
    picture = picture if picture is not None and len(picture) == 3 else None
    outs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    xs: list[torch.Tensor] = []
    was_training = trainer.model.training
    trainer.model.eval()
    with torch.no_grad():
        for xb, yb in trainer.split_batches(split, 512).epoch():
            outs.append(trainer.forward(xb).float().cpu())
            ys.append(yb.cpu())
            if picture is not None and len(xs) * 512 < IMAGE_LIMIT:
                xs.append(xb.float().cpu().reshape(len(xb), *picture))
    trainer.model.train(was_training)
    out = torch.cat(outs)
    y = torch.cat(ys)
    pred: dict[str, Any] = {"task": b.task, "classes": list(b.classes)}
    if b.task == "classification":
        if out.shape[-1] == 1:  # a single logit (BCE)
            p1 = torch.sigmoid(out[:, 0])
            probs = torch.stack([1 - p1, p1], 1)
        else:
            probs = torch.softmax(out, -1)
        conf, label = probs.max(-1)
        truth = y.argmax(-1) if y.dim() == 2 and y.shape[1] > 1 else y.reshape(len(y)).long()
        pred.update(y_true=truth.numpy(), y_pred=label.numpy(), confidence=conf.numpy())
    else:
        m, s = b.target_norm or (0.0, 1.0)
        pred.update(y_true=(y.reshape(len(y), -1)[:, 0] * s + m).numpy(),
                    y_pred=(out.reshape(len(out), -1)[:, 0] * s + m).numpy())
    # where each sample sits in the dataset as loaded, so any of them can be explained by its
    # index (a dataset's own test set has none: it is not part of that numbering)
    idx = b.val_idx if split == "val" else b.test_idx
    if idx is not None and len(idx) == len(y):
        pred["index"] = np.asarray(idx, np.int64)
    if xs:
        pred["images"] = to_uint8_images(torch.cat(xs)[:IMAGE_LIMIT].numpy(), b.norm)
    return pred


def to_uint8_images(x: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """Undo the normalisation: [N, C, H, W] float → [N, H, W, C] uint8 for display."""
    a = np.asarray(x, np.float32)
    if norm:
        mean = np.asarray(norm["mean"], np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(norm["std"], np.float32).reshape(1, -1, 1, 1)
        a = a * std + mean
    return (np.clip(a, 0, 1) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)


def save_predictions(path: Path, pred: dict[str, Any], logs: dict[str, Any] | None = None
                     ) -> None:
    """An ``.npz`` without pickled objects: arrays, plus the task, classes and logs as JSON."""
    import io

    scalars = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float | str)}
    meta = {"task": pred.get("task"), "classes": pred.get("classes", []), "logs": scalars}
    arrays = {k: np.asarray(v) for k, v in pred.items() if isinstance(v, np.ndarray)}
    buf = io.BytesIO()
    # mypy matches **arrays against the stub's keyword-only allow_pickle (numpy >= 2.1); the
    # keys are prediction names (y_true, y_pred, ...), never that
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                        **arrays)  # type: ignore[arg-type]
    atomic_write(Path(path), buf.getvalue())


def load_predictions(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(predictions, logs) from :func:`save_predictions`; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            pred = {k: f[k] for k in f.files if k != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(f"not a readable predictions file ({exc})", str(path)) from None
    if not pred:
        return {}, meta.get("logs", {})
    pred.update(task=meta["task"], classes=list(meta["classes"]))
    return pred, meta.get("logs", {})


def evaluate_weights(project: Project, weights: Path, base_dir: Path | None = None,
                     split: str = "val") -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics and predictions of a checkpoint (``.ckpt``) or weights file (``.safetensors``)
    on the project's data: the evaluation views on demand for any run."""
    import torch

    from .loading import load_trained

    trainer = load_trained(project, weights, base_dir)
    if split == "test" and trainer.bundle.n_test == 0:
        raise TrainingError(f"the dataset {project.data.dataset!r} has no test set of its own "
                            "and data.test_fraction is 0; set data.test_fraction (e.g. 0.2) "
                            "and train again, or evaluate on val", "data.test_fraction")
    with torch.no_grad():
        logs = trainer.evaluate(split)
    return collect_predictions(trainer, split), logs
