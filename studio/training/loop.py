"""The epoch and step loop, and nothing else: a plain ``for`` that calls callbacks.

Everything around it is the trainer's (set-up, evaluation, files) or a plugin's: precision
(``Precision``), one process or several (``SingleProcess``/``DataParallel``), what a resumed
run restores (``state``). The loop never prints and never syncs with the device per step:
losses and outputs stay on the device and are read at the reporting interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import first_line

from .builders import step_scheduler, warmup_factor
from .layer_stats import probe_for
from .metrics import TrainWindow

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

Step = Callable[[torch.Tensor, torch.Tensor], None]


class Loop:
    """Runs a set-up trainer's remaining epochs, from wherever it stands."""

    def __init__(self, t: Trainer) -> None:
        self.t = t
        self.window = t.window = TrainWindow(t.bundle.task == "classification", t.loss_type,
                                             t.device)
        self.run_t0 = time.perf_counter()
        self.run_step0 = t.step
        self.last_report = (self.run_t0, t.step)
        self.epoch_first = (t.step, 0)
        self.stats = t.layer_stats = probe_for(t)  # None unless training.layer_stats is set

    def run(self) -> None:
        t, cb, strategy = self.t, self.t.callbacks, self.t.strategy
        spe = t.steps_per_epoch
        while t.epoch < t.settings.epochs and strategy.keep_going(t):
            epoch = t.epoch
            cb.on_epoch_start(epoch)
            t.model.train()
            t.batches.set_epoch(epoch)
            start = t.batch_in_epoch
            if start == 0:
                t.shuffle_epoch_state = t.shuffle_gen.get_state()
            self.window.reset_epoch()
            self.epoch_first = (t.step, start)
            t0 = time.perf_counter()
            self.last_report = (t0, t.step)
            step = self.choose_step()
            self.run_batches(epoch, start, step if self.stats is None else self.stats.wrap(step))
            self.report(epoch, wait=True)  # every window read: NaN never reaches a file
            strategy.after_batches(t)
            if t.failed is not None or t.batch_in_epoch < spe:
                break  # stopped or failed mid-epoch
            logs = self.epoch_logs(epoch, time.perf_counter() - t0)
            t.epoch, t.batch_in_epoch = epoch + 1, 0
            if t.step >= t.warmup_steps:
                step_scheduler(t.scheduler, t.resolved["scheduler"], logs)
            cb.on_epoch_end(epoch, logs)
            strategy.after_epoch(t)

    def run_batches(self, epoch: int, start: int, step: Step) -> None:
        t, strategy = self.t, self.t.strategy
        interval = t.report_interval
        clock = time.perf_counter
        next_report = clock() + interval
        batches = t.batches.epoch(start)
        gate = strategy.gate(t, start)  # the per-batch check, as cheap as the strategy allows
        for b in range(start, t.steps_per_epoch):
            # stop before the next batch is drawn: drawing it moves the augmentation's random
            # state, which a resumed run must find where this one left it
            if gate(b):
                break
            batch = next(batches, None)
            if batch is None:
                break
            if t.compile_pending:
                self.first_compiled_step(step, *batch)
            else:
                step(*batch)
            t.batch_in_epoch = b + 1
            if clock() >= next_report:
                self.report(epoch)
                next_report = clock() + interval

    # -- steps ----------------------------------------------------------------------------

    def choose_step(self) -> Step:
        """The lean step when no option needs the full one (the common CPU case, measured)."""
        t, s = self.t, self.t.settings
        full = (t.step < t.warmup_steps or not t.precision.plain or s.l1 or s.l2
                or s.grad_clip or t.batch_scheduler is not None or t.distiller is not None)
        return self.full_step if full else self.plain_step

    def plain_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        t = self.t
        out = t.forward(xb)
        loss = t.loss_fn(out, yb)
        opt = t.optimizer
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.window.add(loss, out, yb)
        t.step += 1

    def full_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        t, s = self.t, self.t.settings
        if t.step < t.warmup_steps:
            f = warmup_factor(t.step, t.warmup_steps)
            for g, base in zip(t.optimizer.param_groups, t.base_lrs, strict=True):
                g["lr"] = base * f
        with t.precision.forward_context():
            out = t.forward(xb)
            loss = t.loss_fn(out, yb)
            if t.distiller is not None:
                loss = t.distiller.loss(out, xb, loss)
        if s.l1 or s.l2:
            loss = loss + self.penalty()
        t.optimizer.zero_grad(set_to_none=True)
        t.precision.backward_step(loss, t.optimizer, t.model.parameters(), s.grad_clip)
        if t.batch_scheduler is not None and t.step >= t.warmup_steps:
            t.batch_scheduler.step()
        self.window.add(loss, out, yb)
        t.step += 1

    def penalty(self) -> torch.Tensor:
        """L1 and L2 on the weights (parameters of two or more dimensions)."""
        t, s = self.t, self.t.settings
        total = torch.zeros((), device=t.device)
        for p in t.penalized:
            if s.l1:
                total = total + s.l1 * p.abs().sum()
            if s.l2:
                total = total + s.l2 * p.pow(2).sum()
        return total

    def first_compiled_step(self, step: Step, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Compile on the first step; if the compiler fails (no C++ toolchain, an op it cannot
        trace), say so and train eagerly instead of failing the run."""
        from torch._dynamo.exc import TorchDynamoException

        t = self.t
        t.compile_pending = False
        try:
            step(xb, yb)
        except TorchDynamoException as exc:
            t.message(f"torch.compile failed ({first_line(exc)}); running eagerly")
            t.forward = t.eager
            step(xb, yb)

    # -- reports --------------------------------------------------------------------------

    def report(self, epoch: int, wait: bool = False) -> None:
        t = self.t
        loss, bad = self.window.flush(wait)
        if bad is None and math.isnan(loss):
            return  # nothing new has been read back yet
        now = time.perf_counter()
        t_last, step_last = self.last_report
        spe = t.steps_per_epoch
        rate = (t.step - step_last) * t.local_batch * t.strategy.world / max(now - t_last, 1e-9)
        run_rate = (t.step - self.run_step0) / max(now - self.run_t0, 1e-9)
        remaining = t.settings.epochs * spe - t.step
        self.last_report = (now, t.step)
        t.callbacks.on_progress({
            "epoch": epoch + 1, "epochs": t.settings.epochs, "batch": t.batch_in_epoch,
            "batches": spe, "step": t.step, "loss": loss,
            "lr": t.optimizer.param_groups[0]["lr"], "samples_per_s": rate,
            "eta_s": remaining / run_rate if run_rate > 0 else None,
            "nonfinite_step": None if bad is None else self.epoch_first[0] + bad,
            "nonfinite_batch": None if bad is None else self.epoch_first[1] + bad,
        })

    def epoch_logs(self, epoch: int, seconds: float) -> dict[str, Any]:
        t = self.t
        scale = t.bundle.target_norm[1] if t.bundle.target_norm else 1.0
        t.strategy.merge_window(self.window)  # the epoch's training metrics over all shards
        logs: dict[str, Any] = {"epoch": epoch + 1, **self.window.compute(scale)}
        if t.bundle.n_val and t.strategy.main:
            logs.update(t.evaluate("val"))
        if t.distiller is not None:  # the two parts of the loss, plotted beside it
            logs.update(t.distiller.logs())
        done = self.window.count
        logs.update(lr=t.optimizer.param_groups[0]["lr"], time_s=seconds,
                    samples_per_s=done / seconds if seconds > 0 else 0.0)
        return t.strategy.epoch_logs(t, logs, seconds)
