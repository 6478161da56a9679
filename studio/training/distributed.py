"""Data-parallel runs on PyTorch's own engine: torchrun starts the processes, DDP keeps them equal.

``studio train --nproc-per-node N`` re-runs the same command under ``torch.distributed.run``.
Each process finds its rank in the environment torchrun sets, joins the process group (gloo on
the CPU, NCCL on CUDA) and trains its shard of every epoch (``DistributedSampler`` with
``set_epoch``); the project's batch size stays the global one, split across the processes, so
a run's learning dynamics do not depend on how many processes it uses. Rank 0 alone reports,
writes checkpoints and files. The processes agree on stop, pause and failure before every
batch through a tiny all-reduce on a CPU (gloo) group, so none is left waiting in a collective
and the GPU is never synchronised for it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

#: launcher flags of ``studio train`` that must not reach the processes it starts
LAUNCH_FLAGS = ("--nproc-per-node", "--nnodes", "--rdzv-endpoint", "--rdzv-id")


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) outside torchrun."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return 0, 1, 0
    return (rank, world, local) if world > 1 else (0, 1, 0)


@dataclass
class Group:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    control: Any = None  # a gloo group for the per-batch agreement, even when NCCL trains
    owned: bool = False  # this process created the default group and must destroy it

    @classmethod
    def join(cls, device_type: str, timeout_s: float = 1800.0) -> Group:
        local = world_from_env()[2]
        owned = False
        if not dist.is_initialized():
            backend = "nccl" if device_type == "cuda" else "gloo"
            if device_type == "cuda":
                torch.cuda.set_device(local)
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
            owned = True
        # its own gloo group: the agreement runs beside DDP's gradient all-reduces, not after
        control = dist.new_group(backend="gloo")
        return cls(dist.get_rank(), dist.get_world_size(), control, owned)

    def close(self) -> None:
        if self.owned and dist.is_initialized():
            import gc

            gc.collect()  # reducers and async work still holding the group
            dist.destroy_process_group()
        self.control = None

    # -- agreement --------------------------------------------------------------------------

    def agree(self, stop: bool, pause: bool, failed: bool) -> tuple[bool, bool, bool]:
        """Whether any process wants to stop, pause or has failed (an all-reduce of 3 bytes)."""
        return self.start_agree(stop, pause, failed).result()

    def start_agree(self, stop: bool, pause: bool, failed: bool) -> Agreement:
        """The same, started in the background: read it a batch later, so its latency hides
        behind the batch's work (the same batch on every process, so they still agree)."""
        flags = torch.tensor([stop, pause, failed], dtype=torch.uint8)
        work = dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self.control, async_op=True)
        return Agreement(work, flags)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's object on every rank (epoch logs, so every rank's callbacks decide alike)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over the ranks on the training backend (epoch totals)."""
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t


@dataclass
class Agreement:
    work: Any
    flags: torch.Tensor

    def result(self) -> tuple[bool, bool, bool]:
        self.work.wait()
        s, p, f = self.flags.tolist()
        return bool(s), bool(p), bool(f)


class Shard:
    """This rank's part of a split for each epoch, through ``DistributedSampler``."""

    def __init__(self, n: int, world: int, rank: int, seed: int, shuffle: bool = True) -> None:
        from torch.utils.data import DistributedSampler

        # the sampler only takes len() of its dataset; torch types it as a Dataset
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(n), num_replicas=world, rank=rank,  # type: ignore[arg-type]
            shuffle=shuffle, seed=seed, drop_last=False)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def positions(self) -> torch.Tensor:
        return torch.tensor(list(iter(self.sampler)), dtype=torch.long)


def params_digest(model: torch.nn.Module) -> list[float]:
    """Two sums over every parameter and buffer: equal on every rank unless they diverged."""
    with torch.no_grad():
        total = torch.zeros(2, dtype=torch.float64)
        for t in model.state_dict().values():
            if t.is_floating_point():
                d = t.detach().double().cpu()
                total += torch.stack([d.sum(), d.abs().sum()])
    return total.tolist()


def launch_command(argv: list[str], nproc: int, nnodes: int, rdzv_endpoint: str | None,
                   rdzv_id: str) -> list[str]:
    """torchrun's arguments for re-running ``studio <argv>`` (launch flags removed)."""
    args = ["--nproc-per-node", str(nproc), "--nnodes", str(nnodes)]
    if rdzv_endpoint:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint, "--rdzv-id", rdzv_id]
    else:
        args += ["--standalone"]
    return [*args, "-m", "studio", *strip_launch_flags(argv)]


def strip_launch_flags(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in LAUNCH_FLAGS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def launch(argv: list[str], nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None,
           rdzv_id: str = "studio") -> int:
    """Run torchrun in this process; its workers inherit stdin, stdout and stderr, so the
    events of rank 0 and the commands of the window pass straight through. Returns the exit
    status of the first process that failed (which has already printed its one line)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from studio.core.errors import StudioError

    if nproc < 1 or nnodes < 1:
        raise StudioError("the number of processes and of nodes must be at least 1",
                          "--nproc-per-node")
    if nnodes > 1 and not rdzv_endpoint:
        raise StudioError("a run on several machines needs --rdzv-endpoint HOST:PORT (the "
                          "same on every machine)", "--rdzv-endpoint")
    cores = os.cpu_count() or 1
    import torch

    most = max(torch.cuda.device_count(), 4 * cores)
    if nproc > most:
        raise StudioError(f"{nproc} processes on a machine with {cores} CPU cores and "
                          f"{torch.cuda.device_count()} GPU(s); use at most {most}",
                          "--nproc-per-node")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    for name in ("torch.distributed", "torch.distributed.elastic"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the workers say what went wrong
    try:
        # torch.distributed.run leaves both unannotated
        run(parse_args(  # type: ignore[no-untyped-call]
            launch_command(argv, nproc, nnodes, rdzv_endpoint, rdzv_id)))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode < 0:
            import signal

            try:
                name = signal.Signals(-failure.exitcode).name
            except ValueError:
                name = str(-failure.exitcode)
            raise StudioError(f"training process {rank} was killed ({name})") from None
        return failure.exitcode
    except SignalException:  # Ctrl-C or SIGTERM reached the launcher; workers were stopped
        return 130
    return 0
