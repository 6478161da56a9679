"""Renders trainer events on a terminal: a progress bar with ETA and samples/s."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from .callbacks import Callback
from .protocol import RunResult

SHOWN = ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_f1", "val_mae", "val_rmse",
         "val_r2", "test_loss", "test_accuracy", "test_f1", "test_mae", "test_rmse", "test_r2")


def format_logs(logs: dict[str, Any]) -> str:
    return " · ".join(f"{k} {logs[k]:.4f}" for k in SHOWN if isinstance(logs.get(k), float))


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class ConsoleProgress(Callback):
    """A live bar on a terminal; one line per epoch when the output is a file or pipe."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.width = width

    def _line(self, text: str, end: str = "\n") -> None:
        if self.live:
            self.stream.write("\r\033[K" + text + end)
        else:
            self.stream.write(text + end)
        self.stream.flush()

    def on_run_start(self, info: dict[str, Any]) -> None:
        self._line(f"data: {info['data']}")
        self._line(f"model: {info['params']:,} parameters · device {info['device']} · "
                   f"{info['steps_per_epoch']} steps of {info['batch_size']} per epoch")

    def on_progress(self, logs: dict[str, Any]) -> None:
        if not self.live:
            return
        done = logs["batch"] / max(logs["batches"], 1)
        bar = "█" * int(done * self.width) + "·" * (self.width - int(done * self.width))
        self._line(f"epoch {logs['epoch']}/{logs['epochs']} {bar} {logs['batch']}/"
                   f"{logs['batches']} · loss {logs['loss']:.4f} · "
                   f"{logs['samples_per_s']:,.0f} samples/s · ETA {format_eta(logs['eta_s'])}",
                   end="")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        epochs = self.trainer.settings.epochs
        self._line(f"epoch {epoch + 1}/{epochs} · {format_logs(logs)} · "
                   f"{logs['samples_per_s']:,.0f} samples/s · {logs['time_s']:.1f} s")

    def on_message(self, text: str) -> None:
        self._line(text)

    def on_run_end(self, result: RunResult) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


class TensorBoardLogger(Callback):
    """TensorBoard event files beside the run (needs the ``tensorboard`` package)."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir)

    def on_progress(self, logs: dict[str, Any]) -> None:
        if math.isfinite(logs["loss"]):
            self.writer.add_scalar("batch/loss", logs["loss"], logs["step"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for k, v in logs.items():
            if isinstance(v, float | int) and k != "epoch":
                self.writer.add_scalar(f"epoch/{k}", v, epoch + 1)
        self.writer.flush()

    def on_run_end(self, result: RunResult) -> None:
        self.writer.close()
