"""Metrics accumulated on the device and read only at reporting points.

Training steps only append detached tensors to a window (no host sync, almost no work); the
window is reduced in a few batched ops when the trainer reports, which is also where a
non-finite loss is found and pinned to its exact step. Evaluation keeps running sums and a
confusion matrix on the device and reads them once.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch


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
        self._queue: deque[tuple[torch.Tensor, Any, int, int]] = deque()
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

    def _reduce(self) -> None:
        """Fold the window into the epoch totals on the device; queue its stats for reading."""
        losses = torch.stack(self._losses)
        counts = [y.shape[0] for y in self._ys]
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
        finite = torch.isfinite(losses)
        first_bad = torch.where(finite.all(), -1, (~finite).int().argmax())
        stats = torch.stack([weighted, first_bad.double()])
        event = None
        if stats.device.type == "cuda":  # read it later, without stalling the GPU's queue
            stats = stats.to("cpu", non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # unannotated in torch
            event.record()
        n, total = len(counts), sum(counts)
        self._queue.append((stats, event, total, self.steps))
        self.count += total
        self.steps += n
        self._losses.clear()
        self._outs.clear()
        self._ys.clear()

    def flush(self, wait: bool = False) -> tuple[float, int | None]:
        """Reduce the window and read the newest finished one: (mean loss, first bad step).

        On the CPU that is this window. On a GPU the newest window stays in flight unless
        ``wait``: reports show the window before it (50 ms older), so reporting never makes
        the CPU wait for the GPU and the GPU never runs dry.
        """
        if self._losses:
            self._reduce()
        result: tuple[float, int | None] = (math.nan, None)
        resolved = False
        while self._queue:
            stats, event, total, step0 = self._queue[0]
            if event is not None and not wait and len(self._queue) == 1 and resolved:
                break  # the newest window stays in flight; an older one answered
            if event is not None:
                event.synchronize()
            self._queue.popleft()
            weighted, bad = stats.tolist()
            if bad >= 0:
                return math.nan, step0 + int(bad)
            result, resolved = (weighted / total, None), True
        return result

    def merge(self, sum_: Any) -> None:
        """Sum the epoch's totals over data-parallel processes with ``sum_`` (in place)."""
        self.flush(wait=True)
        t = torch.stack([self.loss_sum.double(), self.correct.double(), self.abs_err.double(),
                         torch.tensor(float(self.count), dtype=torch.float64,
                                      device=self.loss_sum.device),
                         torch.tensor(float(self.values), dtype=torch.float64,
                                      device=self.loss_sum.device)])
        sum_(t)
        loss, correct, err, count, values = t.tolist()
        self.loss_sum.fill_(loss)
        self.correct.fill_(round(correct))
        self.abs_err.fill_(err)
        self.count, self.values = round(count), round(values)

    def compute(self, target_scale: float = 1.0) -> dict[str, float]:
        self.flush(wait=True)
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
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0
        if task == "classification":
            self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64,
                                         device=device)
            self.top5 = torch.zeros((), dtype=torch.int64, device=device)
        else:
            self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # |e|, e², y, y²

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
