"""Hooks the loop calls; everything beyond the plain loop lives here.

The loop knows only this interface. Progress reporting, history, early stopping, NaN
termination, checkpoints and the metrics file are callbacks, as in Keras.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import TrainingError
from studio.core.settings import better_mode

if TYPE_CHECKING:  # pragma: no cover
    from .protocol import Run, RunResult


class Callback:
    """No-op base. ``trainer`` is set before the run starts: the run as the ``Run`` protocol
    describes it (callbacks never import the trainer)."""

    trainer: Run
    #: where a checkpoint keeps this callback's ``state()``; None: it has none to keep
    state_key: str | None = None

    def set_trainer(self, trainer: Run) -> None:
        self.trainer = trainer

    def on_run_start(self, info: dict[str, Any]) -> None: ...
    def on_epoch_start(self, epoch: int) -> None: ...
    def on_progress(self, logs: dict[str, Any]) -> None:
        """Throttled batch-end report: at most ``report_hz`` times a second."""
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_train_end(self) -> None:
        """After the last epoch, before the final evaluation and weights export."""
    def on_checkpoint(self, kind: str, path: Path) -> None: ...
    def on_layer_stats(self, record: dict[str, Any]) -> None:
        """A sample of the layers' statistics (``training.layer_stats``), main process only."""
    def on_message(self, text: str) -> None: ...
    def on_run_end(self, result: RunResult) -> None: ...

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to continue this callback exactly (tensors allowed)."""
        return {}

    def load(self, state: dict[str, Any]) -> None: ...


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)

    def set_trainer(self, trainer: Run) -> None:
        for c in self.callbacks:
            c.set_trainer(trainer)

    def _call(self, name: str, *args: Any) -> None:
        for c in self.callbacks:
            getattr(c, name)(*args)

    def on_run_start(self, info: dict[str, Any]) -> None: self._call("on_run_start", info)
    def on_epoch_start(self, epoch: int) -> None: self._call("on_epoch_start", epoch)
    def on_progress(self, logs: dict[str, Any]) -> None: self._call("on_progress", logs)
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self._call("on_epoch_end", epoch, logs)
    def on_train_end(self) -> None: self._call("on_train_end")
    def on_checkpoint(self, kind: str, path: Path) -> None:
        self._call("on_checkpoint", kind, path)
    def on_layer_stats(self, record: dict[str, Any]) -> None:
        self._call("on_layer_stats", record)
    def on_message(self, text: str) -> None: self._call("on_message", text)
    def on_run_end(self, result: RunResult) -> None: self._call("on_run_end", result)


class Tracker:
    """The best value so far of one monitored metric."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.mode = better_mode(monitor, mode)
        self.min_delta = min_delta
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1

    def update(self, epoch: int, logs: dict[str, Any]) -> bool:
        value: float | None = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        improved = (value < self.best - self.min_delta if self.mode == "min"
                    else value > self.best + self.min_delta)
        if improved:
            self.best, self.best_epoch = value, epoch
        return improved

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load(self, s: dict[str, Any]) -> None:
        self.best, self.best_epoch = s["best"], s["best_epoch"]


class History(Callback):
    """Every epoch's logs, in order (restored on resume)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epochs.append(dict(logs))


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved for ``patience`` epochs."""

    state_key = "early_stopping"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5,
                 min_delta: float = 0.0, restore_best: bool = True) -> None:
        self.tracker = Tracker(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best = restore_best
        self.wait = 0
        self.best_state: dict[str, Any] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.tracker.monitor not in logs:
            if epoch == 0:
                self.trainer.message(f"early stopping watches {self.tracker.monitor!r}, which "
                                     f"this run does not report; it will not stop early")
            return
        if self.tracker.update(epoch, logs):
            self.wait = 0
            if self.restore_best:
                self.best_state = {k: v.detach().clone()
                                   for k, v in self.trainer.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.stopped_epoch = epoch
                self.trainer.request_stop("early_stopped")
                self.trainer.message(
                    f"early stopping after epoch {epoch + 1}: {self.tracker.monitor} has not "
                    f"improved for {self.wait} epochs (best {self.tracker.best:.4g} at epoch "
                    f"{self.tracker.best_epoch + 1})")

    def on_train_end(self) -> None:
        if self.restore_best and self.best_state is not None and self.stopped_epoch is not None:
            self.trainer.model.load_state_dict(self.best_state)
            self.trainer.message(f"restored the weights of epoch {self.tracker.best_epoch + 1}")

    def state(self) -> dict[str, Any]:
        # the best weights travel with the checkpoint: a resumed run that stops early must
        # restore them as the uninterrupted run would
        return {"wait": self.wait, **self.tracker.state(), "best_weights": self.best_state}

    def load(self, s: dict[str, Any]) -> None:
        self.wait = s["wait"]
        self.tracker.load(s)
        best = s.get("best_weights")
        if isinstance(best, dict):
            device = next(iter(self.trainer.model.state_dict().values())).device
            self.best_state = {k: v.to(device) for k, v in best.items()}


class TerminateOnNaN(Callback):
    """Fail the run, naming epoch and step, as soon as a loss is NaN or infinite."""

    def on_progress(self, logs: dict[str, Any]) -> None:
        step = logs.get("nonfinite_step")
        if step is None:
            return
        t = self.trainer
        t.fail(TrainingError(
            f"the loss became NaN or infinite at epoch {logs['epoch']}, step {step + 1} "
            f"(batch {logs['nonfinite_batch'] + 1} of {logs['batches']}); the weights after "
            "that step were not saved. Lower the learning rate, add normalisation, or clip "
            "gradients",
            "training"))


def keep_lines(path: Path, keep: Callable[[dict[str, Any]], bool] | None) -> None:
    """Rewrite a run's JSON-lines file (or start it) with only the records ``keep`` accepts:
    what a resumed run continues from (None: a new run, nothing kept). A line cut short by a
    crash ends what can be kept."""
    kept = [line for line, record in _lines(path) if keep(record)] if keep is not None else []
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """A run's JSON-lines file as records, up to a line cut short by a crash; none when the
    file is missing (a run without it, or not started)."""
    return [record for _line, record in _lines(path)]


def _lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            yield line, json.loads(line)
        except json.JSONDecodeError:
            return


class MetricsFile(Callback):
    """``metrics.jsonl``: one JSON object per epoch, flushed as it is written."""

    def __init__(self, path: Path, keep_epochs: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a resumed run continues the file; a finished run's test line has no epoch: the
        # resumed run tests anew
        keep_lines(self.path, (lambda r: 0 < r.get("epoch", 0) <= keep_epochs)
                   if keep_epochs else None)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(logs) + "\n")
            f.flush()


class Checkpointer(Callback):
    """``last.ckpt`` after every epoch (and on a stop), ``best.ckpt`` when the metric improves."""

    state_key = "checkpointer"

    def __init__(self, out_dir: Path, monitor: str = "val_loss", mode: str = "auto") -> None:
        self.out_dir = Path(out_dir)
        self.tracker = Tracker(monitor, mode)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        t = self.trainer
        if t.failed:
            return
        monitor = self.tracker.monitor if self.tracker.monitor in logs else "loss"
        if monitor != self.tracker.monitor:
            self.tracker = Tracker(monitor, "auto")
        improved = self.tracker.update(epoch, logs)
        state = t.checkpoint_state()
        t.write_checkpoint(self.out_dir / "last.ckpt", state, "last")
        if improved:
            t.write_checkpoint(self.out_dir / "best.ckpt", state, "best")

    def state(self) -> dict[str, Any]:
        return {"monitor": self.tracker.monitor, **self.tracker.state()}

    def load(self, s: dict[str, Any]) -> None:
        self.tracker = Tracker(s["monitor"], "auto")
        self.tracker.load(s)
