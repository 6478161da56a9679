"""Metrics accumulated on the device and read only at reporting points.

Training steps only append detached tensors to a window (no host sync, almost no work); the
window is reduced in a few batched ops when the trainer reports, which is also where a
non-finite loss is found and pinned to its exact step. Evaluation keeps running sums and a
confusion matrix on the device and reads them once.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from studio.core.choices import CLASSIFICATION_LOSSES


def predictions(out: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Class ids from network outputs (a single logit means a binary BCE output)."""
    if out.dim() >= 2 and out.shape[-1] == 1 and loss_type == "BCEWithLogitsLoss":
        return (out[..., 0] > 0).long()
    return out.argmax(-1)


class TrainWindow:
    """Loss and accuracy of the steps since the last report, and of the epoch so far."""

    def __init__(self, classification: bool, loss_type: str, device: torch.device) -> None:
        self.classification = classification
        self.loss_type = loss_type
        self.device = device
        self.reset_epoch()

    def reset_epoch(self) -> None:
        self._losses: list[torch.Tensor] = []
        self._outs: list[torch.Tensor] = []
        self._ys: list[torch.Tensor] = []
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.abs_err = torch.zeros((), dtype=torch.float64, device=self.device)
        self.count = 0
        self.values = 0
        self.steps = 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self._losses.append(loss.detach())
        self._outs.append(out.detach())
        self._ys.append(y)

    @property
    def pending(self) -> int:
        return len(self._losses)

    def flush(self) -> tuple[float, int | None]:
        """Fold the window into the epoch totals: (window mean loss, first bad step or None).

        The one host sync of a reporting interval happens here; the ops are few and batched
        because they run 20 times a second beside the training steps.
        """
        if not self._losses:
            return math.nan, None
        losses = torch.stack(self._losses)
        counts = [y.shape[0] for y in self._ys]
        n = len(counts)
        if counts[-1] == counts[0]:  # all full batches: one multiply instead of a weights tensor
            weighted = losses.sum(dtype=torch.float64) * counts[0]
        else:
            weights = torch.tensor(counts, dtype=torch.float64, device=losses.device)
            weighted = (losses.double() * weights).sum()
        self.loss_sum += weighted
        outs, ys = torch.cat(self._outs), torch.cat(self._ys)
        if self.classification:
            self.correct += (predictions(outs, self.loss_type) == _labels(ys)).sum()
        else:
            self.abs_err += (outs.double() - ys.double().reshape(outs.shape)).abs().sum()
            self.values += outs.numel()
        total = float(weighted)  # the sync
        bad = None
        if not math.isfinite(total):
            bad = self.steps + int((~torch.isfinite(losses)).nonzero()[0, 0])
        self.count += sum(counts)
        self.steps += n
        self._losses.clear()
        self._outs.clear()
        self._ys.clear()
        return (total / sum(counts) if bad is None else math.nan), bad

    def compute(self, target_scale: float = 1.0) -> dict[str, float]:
        self.flush()
        n = max(self.count, 1)
        logs = {"loss": float(self.loss_sum) / n}
        if self.classification:
            logs["accuracy"] = int(self.correct) / n
        else:
            logs["mae"] = float(self.abs_err) / max(self.values, 1) * target_scale
        return logs


def _labels(y: torch.Tensor) -> torch.Tensor:
    """Targets as class ids (BCE targets arrive as floats, one-hot targets as rows)."""
    if y.dim() >= 2 and y.shape[-1] > 1:
        return y.argmax(-1)
    if y.dim() >= 2:
        y = y[..., 0]
    return y.long()


class EvalMeter:
    """Full metrics over a whole split, reduced on the device and read once."""

    def __init__(self, task: str, num_classes: int, loss_type: str, device: torch.device,
                 target_norm: tuple[float, float] | None = None) -> None:
        self.task, self.k, self.loss_type = task, num_classes, loss_type
        self.device = device
        self.target_norm = target_norm
        f64 = {"dtype": torch.float64, "device": device}
        self.loss_sum = torch.zeros((), **f64)
        self.count = 0
        if task == "classification":
            self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64,
                                         device=device)
            self.top5 = torch.zeros((), dtype=torch.int64, device=device)
        else:
            self.sums = torch.zeros(4, **f64)  # |e|, e², y, y²

    def update(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        n = len(y)
        self.loss_sum += loss.detach().double() * n
        self.count += n
        if self.task == "classification":
            labels = _labels(y)
            pred = predictions(out, self.loss_type)
            self.confusion += torch.bincount(labels * self.k + pred.clamp(0, self.k - 1),
                                             minlength=self.k * self.k)
            if self.k > 5 and out.shape[-1] >= 5:
                top = out.topk(5, dim=-1).indices
                self.top5 += (top == labels[:, None]).any(-1).sum()
        else:
            m, s = self.target_norm or (0.0, 1.0)
            o = out.double().reshape(len(y), -1) * s + m
            t = y.double().reshape(len(y), -1) * s + m
            e = o - t
            self.sums += torch.stack([e.abs().sum(), (e * e).sum(), t.sum(), (t * t).sum()])
            self._width = t.shape[1]

    def compute(self, prefix: str = "val_") -> dict[str, Any]:
        n = max(self.count, 1)
        logs: dict[str, Any] = {f"{prefix}loss": float(self.loss_sum) / n}
        if self.task == "classification":
            cm = self.confusion.reshape(self.k, self.k).cpu()
            tp = cm.diag().double()
            support, predicted = cm.sum(1).double(), cm.sum(0).double()
            present = support > 0
            precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
            recall = torch.where(present, tp / support.clamp(min=1), 0.0)
            f1 = torch.where(precision + recall > 0,
                             2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
            logs[f"{prefix}accuracy"] = float(tp.sum()) / n
            if self.k > 5:
                logs[f"{prefix}top5_accuracy"] = int(self.top5) / n
            m = present.sum().clamp(min=1)
            logs[f"{prefix}precision"] = float(precision[present].sum() / m)
            logs[f"{prefix}recall"] = float(recall[present].sum() / m)
            logs[f"{prefix}f1"] = float(f1[present].sum() / m)
            logs[f"{prefix}confusion"] = cm.tolist()
        else:
            abs_e, sq_e, ys, ys2 = self.sums.cpu().tolist()
            values = n * getattr(self, "_width", 1)
            sst = ys2 - ys * ys / values
            logs[f"{prefix}mae"] = abs_e / values
            logs[f"{prefix}mse"] = sq_e / values
            logs[f"{prefix}rmse"] = math.sqrt(sq_e / values)
            logs[f"{prefix}r2"] = 1 - sq_e / sst if sst > 0 else 0.0
        return logs


def is_classification_loss(loss_type: str) -> bool:
    return loss_type in CLASSIFICATION_LOSSES
