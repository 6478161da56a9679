"""One process or data-parallel behind one interface, in the manner of Lightning Fabric's
strategies: the loop calls these verbs and never asks which it runs under.

``SingleProcess`` answers pause and stop from the trainer's own flags. ``DataParallel`` (DDP
through torchrun) makes every process act on agreed decisions only: stop, pause and failure
go through a tiny all-reduce every few batches, epoch logs come from rank 0, and at the end
the processes prove they hold the same weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from studio.core.errors import StudioError, TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from .metrics import TrainWindow
    from .trainer import Trainer


class SingleProcess:
    """A run in this process alone."""

    rank, world, local_rank = 0, 1, 0
    main = True
    #: every process knows of a failure (only meaningful for data-parallel runs)
    failure_shared = False

    def join(self, t: Trainer) -> None:
        """Before set-up: the device and process group this process trains with."""

    def after_setup(self, t: Trainer, error: BaseException | None) -> None:
        """Every process has tried to set up; ``error`` is this one's failure, if any."""
        if error is not None:
            raise error
        t.make_forward()

    def wrap(self, t: Trainer, model: nn.Module) -> nn.Module:
        return model

    def shard(self, n: int, seed: int) -> Any:
        return None

    def keep_going(self, t: Trainer) -> bool:
        """At an epoch's start: whether the run goes on."""
        return not t.stop_requested

    def gate(self, t: Trainer, start: int) -> Callable[[int], bool]:
        """The check before drawing batch ``b`` of an epoch resumed at ``start``: True to stop;
        a pause waits inside it. Called every batch, so it is a closure over bound methods."""
        running, stopping = t.flag_readers()

        def check(_b: int) -> bool:
            if not running():
                t.message("paused")
                t.wait_for_resume()
                if not stopping():
                    t.message("resumed")
            return stopping()
        return check

    def after_batches(self, t: Trainer) -> None:
        """The epoch's batches are done (or cut short)."""

    def epoch_logs(self, t: Trainer, logs: dict[str, Any], seconds: float) -> dict[str, Any]:
        return logs

    def merge_window(self, window: TrainWindow) -> None:
        """Sum the epoch's training totals over every process."""

    def after_epoch(self, t: Trainer) -> None:
        """The epoch's callbacks have run."""

    def eval_forward(self, t: Trainer) -> Any:
        return t.forward

    def finish(self, t: Trainer) -> None:
        """The run ended normally, before the main process writes its last files."""

    def describe(self, exc: BaseException) -> StudioError | None:
        """A one-line failure for an exception that is this strategy's to explain."""
        return None

    def close(self, t: Trainer) -> None:
        """Always, at the very end."""


class DataParallel(SingleProcess):
    """One of the processes of a DistributedDataParallel run under torchrun."""

    def __init__(self, rank: int, world: int, local_rank: int) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.main = rank == 0  # only the first process writes
        self.group: Any = None
        self.halt = False  # a stop every process agreed on
        self.pending: Any = None  # the agreement started a batch ago
        self.every = 1  # batches between agreements; set from the first epoch's pace

    def join(self, t: Trainer) -> None:
        from .distributed import Group

        if t.device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise TrainingError(
                    f"{self.local_rank + 1} or more processes on this machine but only "
                    f"{torch.cuda.device_count()} GPU(s); use one process per GPU or the CPU",
                    "--nproc-per-node")
            t.device = torch.device("cuda", self.local_rank)
        self.group = Group.join(t.device.type)
        bs = t.project.data.batch_size
        if bs % self.world and self.main:
            t.message(f"batch size {bs} does not split evenly over {self.world} processes; "
                      f"each takes {t.local_batch}")

    def after_setup(self, t: Trainer, error: BaseException | None) -> None:
        """Processes agree that every one of them set up before DDP's constructor, which is a
        collective: one failing to start must not leave the others waiting in it."""
        if self.group is None:  # failed before joining: nobody to tell
            if error is not None:
                raise error
            return
        _, _, failed = self.group.agree(False, False, error is not None)
        if failed:
            if error is not None and t.failed is None:
                t.failed = (error if isinstance(error, StudioError)
                            else TrainingError(_short(error)))
            self.adopt_failure(t)
            if error is None:
                raise t.failed  # type: ignore[misc]
        if error is not None:
            raise error
        t.make_forward()

    def wrap(self, t: Trainer, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        cuda = t.device.type == "cuda"
        return DistributedDataParallel(model, device_ids=[t.device.index] if cuda else None)

    def shard(self, n: int, seed: int) -> Any:
        from .distributed import Shard

        return Shard(n, self.world, self.rank, seed)

    def keep_going(self, t: Trainer) -> bool:
        return not self.halt

    def gate(self, t: Trainer, start: int) -> Callable[[int], bool]:
        # processes act on agreed decisions only, taken every few batches
        return lambda b: (b - start) % self.every == 0 and self.agree(t, sync=False)

    def after_batches(self, t: Trainer) -> None:
        self.agree(t)  # a NaN in the last batch of one process stops them all

    def merge_window(self, window: TrainWindow) -> None:
        window.merge(self.group.sum_)

    def epoch_logs(self, t: Trainer, logs: dict[str, Any], seconds: float) -> dict[str, Any]:
        """One set of logs, rank 0's, so every process's callbacks decide alike."""
        steps = max(t.window.steps, 1)  # this process's steps in the epoch
        # agree about every 50 ms: often enough for stop and pause, rarely enough to cost
        # nothing (an all-reduce takes ~0.5 ms on a busy CPU)
        every = max(1, min(64, int(0.05 / max(seconds / steps, 1e-6))))
        logs, self.every = self.group.broadcast((logs, every))
        return logs

    def after_epoch(self, t: Trainer) -> None:
        self.agree(t)  # early stopping (same logs everywhere) or a stop meanwhile

    def eval_forward(self, t: Trainer) -> Any:
        return t.model  # the plain module: evaluation must not enter DDP's collectives

    def finish(self, t: Trainer) -> None:
        """DDP keeps the processes' weights equal; prove it at the end of every run."""
        from .distributed import params_digest

        digests = self.group.gather(params_digest(t.model))
        if any(d != digests[0] for d in digests):
            t.message("warning: the processes ended with different weights; rank 0's are "
                      "saved")
        else:
            t.message(f"{self.world} processes ended with identical weights")

    def describe(self, exc: BaseException) -> StudioError | None:
        if self.group is not None and _peer_lost(exc):
            return TrainingError("another process of this run stopped unexpectedly (its own "
                                 "message comes first); this one stopped too")
        return None

    def close(self, t: Trainer) -> None:
        if self.group is not None:
            # DDP holds the process group; drop it first so the group's threads end now, not
            # during interpreter shutdown (where gloo aborts the process)
            t.forward = getattr(t, "model", None)
            self.group.close()

    # -- agreement ------------------------------------------------------------------------

    def agree(self, t: Trainer, sync: bool = True) -> bool:
        """Every process learns whether any wants to stop, pause or has failed, and they act
        together; while one is paused they all wait. True to stop.

        Between batches (``sync=False``) each process starts the next agreement and acts on
        the one started a batch earlier, so the all-reduce never stalls a step.
        """
        g = self.group
        pending, self.pending = self.pending, None
        mine = (t.stop_requested, t.paused, t.failed is not None)
        if sync:
            stop, pause, failed = g.agree(*mine)
            if pending is not None:
                stop, pause, failed = (a or b for a, b in zip((stop, pause, failed),
                                                              pending.result(), strict=True))
        else:
            self.pending = g.start_agree(*mine)
            if pending is None:
                return False
            stop, pause, failed = pending.result()
        announced = False
        while True:
            if failed:
                self.adopt_failure(t)
            if stop or failed:
                t.request_stop(t.stop_reason or "stopped")
                self.halt = True
                return True
            if not pause:
                if announced:
                    t.message("resumed")
                return False
            if not announced:
                t.message("paused")
                announced = True
                if self.pending is not None:  # settle the one in flight first
                    self.pending.result()
                    self.pending = None
            time.sleep(0.1)  # a paused run polls its peers ten times a second
            stop, pause, failed = g.agree(t.stop_requested, t.paused, t.failed is not None)

    def adopt_failure(self, t: Trainer) -> None:
        """Every process takes the first failure's message (rank 0 reports it)."""
        self.failure_shared = True
        mine = None if t.failed is None else (t.failed.message, t.failed.where)
        for rank, theirs in enumerate(self.group.gather(mine)):
            if theirs is not None:
                if t.failed is None:
                    t.failed = TrainingError(theirs[0] + (f" (process {rank})" if rank else ""),
                                             theirs[1])
                break


def for_this_process() -> SingleProcess:
    """The strategy torchrun's environment asks for (one process outside torchrun)."""
    from .distributed import world_from_env

    rank, world, local = world_from_env()
    return DataParallel(rank, world, local) if world > 1 else SingleProcess()


def _peer_lost(exc: BaseException) -> bool:
    """Whether a collective failed because another process of the run went away."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistBackendError", None),
                              getattr(dist, "DistNetworkError", None)) if k is not None)
    text = str(exc).lower()
    return isinstance(exc, kinds) or any(k in text for k in (
        "closed by peer", "reset by peer", "broken pipe", "remote worker",
        "communicator was aborted"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
