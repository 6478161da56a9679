"""The training loop: a plain ``for`` over epochs and batches that calls callbacks.

One loop serves the CLI, the GUI's worker thread and distributed runs. It never prints and
never syncs with the device per step: losses and outputs are kept on the device and read at
the reporting interval (``report_hz``). ``pause``, ``resume`` and ``stop`` may be called from
any thread and take effect within one batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.build import build_module
from studio.core.choices import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from studio.core.errors import DatasetError, ShapeError, StudioError, TrainingError
from studio.core.project import Project
from studio.core.settings import resolve_training
from studio.core.shapes import Analysis, analyze
from studio.data.batches import Augmenter, Batches
from studio.data.bundle import DataBundle, describe, load_data, pack_uint8
from studio.data.lazy import LoaderBatches

from . import state as run_state
from .builders import (
    make_loss,
    make_optimizer,
    make_scheduler,
    step_scheduler,
    warmup_factor,
)
from .callbacks import (
    Callback,
    CallbackList,
    Checkpointer,
    EarlyStopping,
    History,
    MetricsFile,
    TerminateOnNaN,
)
from .checkpoint import free_memory, load_checkpoint, save_checkpoint, save_weights
from .metrics import EvalMeter, TrainWindow
from .run_folder import RunLock, remove_stale_temp_files


@dataclass
class RunResult:
    """How a run ended. ``status``: completed, early_stopped, stopped or failed."""

    status: str
    message: str
    epochs: int
    logs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    error: StudioError | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("CUDA was asked for but no CUDA GPU is available; set the device "
                            "to auto or cpu", "training.device")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise TrainingError("MPS was asked for but is not available on this machine",
                            "training.device")
    return torch.device(name)


def available_devices() -> list[str]:
    """Devices present on this machine, for the inspector's device choice."""
    out = ["auto", "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return out


class Trainer:
    """Trains a project's network on its dataset.

    ``out_dir`` receives ``metrics.jsonl``, ``last.ckpt``, ``best.ckpt``, ``model.safetensors``,
    ``project.studio.json`` and ``summary.json``; without it nothing is written.
    """

    def __init__(self, project: Project, *, out_dir: str | Path | None = None,
                 callbacks: Iterable[Callback] = (), base_dir: str | Path | None = None,
                 data: DataBundle | None = None, report_hz: float = 20.0,
                 default_callbacks: bool = True) -> None:
        self.project = project.copy()
        self.settings = self.project.training
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.base_dir = Path(base_dir) if base_dir is not None else (
            project.path.parent if project.path else None)
        self.report_interval = 1.0 / report_hz if report_hz > 0 else 0.0
        self._data = data
        self.history = History()
        extra: list[Callback] = [self.history]
        es = self.settings.early_stopping if default_callbacks else None
        if default_callbacks:
            extra.append(TerminateOnNaN())
            if es is not None:
                extra.append(EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta,
                                           es.restore_best))
        from .distributed import world_from_env

        self.rank, self.world, self.local_rank = world_from_env()
        self.main = self.rank == 0  # only the first of a data-parallel run writes
        self.group: Any = None
        self._halt = False  # a stop every process agreed on (data-parallel runs)
        self._pending_agree: Any = None
        self.failure_shared = False  # every process knows of the failure; rank 0 reports it
        self._agree_every = 1  # batches between agreements; set from the first epoch's pace
        if self.out_dir is not None and self.main:
            monitor = es.monitor if es is not None else "val_loss"
            extra.append(Checkpointer(self.out_dir, monitor))
        self._user_callbacks = list(callbacks)
        self.callbacks = CallbackList(extra + self._user_callbacks)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._stop_reason: str | None = None
        self.failed: StudioError | None = None
        self._lock: RunLock | None = None
        self.model: nn.Module
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches completed in the current epoch
        self.step = 0  # optimizer steps over the whole run

    # -- control (any thread) -------------------------------------------------------------

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def stop(self) -> None:
        self.request_stop("stopped")

    def request_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        self._running.set()

    def fail(self, error: StudioError) -> None:
        if self.failed is None:
            self.failed = error
        self.request_stop("failed")

    def message(self, text: str) -> None:
        self.callbacks.on_message(text)

    # -- the run --------------------------------------------------------------------------

    def fit(self, resume_from: str | Path | None = None) -> RunResult:
        """Run to the end, a stop or a failure; never raises for a failed run."""
        self.callbacks.set_trainer(self)
        try:
            self._setup_agreed(resume_from)
            self._loop()
            if self.failed is None:
                self._finish()
        except torch.OutOfMemoryError:
            self._oom()
        except StudioError as exc:
            self.failed = exc
        except OSError as exc:  # a full disk, a folder made read-only mid-run
            self.failed = TrainingError(f"cannot write: {exc.strerror or exc}",
                                        exc.filename and str(exc.filename))
        except (RuntimeError, IndexError, ValueError) as exc:
            text = str(exc).lower()
            if self.group is not None and _peer_lost(exc):
                self.failed = TrainingError(
                    "another process of this run stopped unexpectedly (its own message comes "
                    "first); this one stopped too")
            elif any(k in text for k in ("out of memory", "not enough memory",
                                         "can't allocate memory")):
                self._oom()
            else:
                self.failed = TrainingError(_short(exc), self._blame(exc))
        except Exception as exc:  # never let a run take its host (GUI, CLI) down
            self.failed = TrainingError(f"internal error: {type(exc).__name__}: {_short(exc)}")
            self.message(traceback.format_exc())
        try:
            return self._result()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self.group is not None:
                # DDP holds the process group; drop it first so the group's threads end now,
                # not during interpreter shutdown (where gloo aborts the process)
                self.forward = getattr(self, "model", None)
                self.group.close()

    def _setup_agreed(self, resume_from: str | Path | None) -> None:
        """Set up; in a data-parallel run every process learns whether all of them could, and
        all of them take part in passing the first failure's message on."""
        error: BaseException | None = None
        try:
            self._setup(resume_from)
        except BaseException as exc:  # re-raised below, after the others have heard of it
            error = exc
        if self.group is not None:
            _, _, failed = self.group.agree(False, False, error is not None)
            if failed:
                if error is not None and self.failed is None:
                    self.failed = (error if isinstance(error, StudioError)
                                   else TrainingError(_short(error)))
                self._adopt_failure()
                if error is None:
                    raise self.failed  # type: ignore[misc]
            elif error is None:
                self._make_forward()
        if error is not None:
            raise error

    def _oom(self) -> None:
        bs = self.project.data.batch_size
        self.failed = TrainingError(
            f"out of memory on {getattr(self, 'device', 'the device')} with batch size {bs}; "
            f"try a batch size of {max(1, bs // 2)} or a smaller network", "data.batch_size")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _blame(self, exc: Exception) -> str | None:
        node = getattr(exc, "studio_node", None)
        if node is None or node not in self.project.graph:
            return None
        return f"{self.project.graph.nodes[node].type} '{node}'"

    # -- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Data, model and optimizer without training (evaluation of saved weights)."""
        self.callbacks.set_trainer(self)
        try:
            self._setup(None)
        except torch.OutOfMemoryError:
            self._oom()
            raise self.failed from None

    def _setup(self, resume_from: str | Path | None) -> None:
        s, d = self.settings, self.project.data
        if self.out_dir is not None and self.main and self._lock is None:
            self._lock = RunLock(self.out_dir)
            self._lock.acquire()  # before anything is written: one run per folder
            cleaned = remove_stale_temp_files(self.out_dir)
            if cleaned:
                self.message(cleaned)
        self.device = resolve_device(s.device)
        if self.world > 1:
            self._join()
        torch.manual_seed(s.seed + 7919 * self.rank)  # rank 0 draws as a one-process run
        self.analysis = analyze(self.project.graph)
        if self.analysis.errors:
            p = self.analysis.errors[0]
            raise ShapeError(p.message, f"node '{p.node}'" if p.node else None)
        bundle = self._data or load_data(d, self.base_dir, s.seed)
        self.loss_type = s.loss["type"]
        self._preflight(bundle, self.analysis)
        self._check_memory()
        self.bundle = self._to_device(bundle)
        self.model = build_module(self.project.graph, seed=s.seed, analysis=self.analysis)
        if s.init_weights and resume_from is None:
            self._init_weights(s.init_weights)
        self.model.to(self.device)
        cuda = self.device.type == "cuda"
        if cuda and any(n.type.startswith("Conv") for n in self.project.graph):
            self.model.to(memory_format=torch.channels_last)
        self.forward = self.model
        self._compile_pending = False
        if self.group is None:  # a data-parallel run wraps it once every process is set up
            self._make_forward()
        self.resolved = resolve_training(s)
        self.loss_fn = make_loss(self.resolved["loss"])
        self.optimizer = _optimizer(self.resolved["optimizer"],
                                    [p for p in self.model.parameters() if p.requires_grad])
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.batches = self._batches()
        spe = len(self.batches)
        self.steps_per_epoch = spe
        sched = self.resolved["scheduler"]
        warmup = sched["warmup_epochs"] if sched else 0
        self.warmup_steps = warmup * spe
        self.scheduler, self.batch_scheduler = make_scheduler(
            sched, self.optimizer, s.epochs - warmup, spe)
        self.amp_dtype = None
        if s.precision == "auto":  # the GPU fast path: bf16 where the GPU has it
            if cuda and torch.cuda.is_bf16_supported():
                self.amp_dtype = torch.bfloat16
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
        elif s.precision != "fp32":
            if cuda or s.precision == "bf16":
                self.amp_dtype = torch.bfloat16 if s.precision == "bf16" else torch.float16
            else:
                self.message("fp16 needs CUDA; training in fp32")
        self.scaler = torch.amp.GradScaler("cuda") if cuda and s.precision == "fp16" else None
        self.penalized = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        self.shuffle_epoch_state = self.shuffle_gen.get_state()
        if resume_from is not None:
            run_state.restore(self, load_checkpoint(resume_from, self.device), str(resume_from))
        if self.out_dir is not None and self.main:
            try:
                self.project.save(self.out_dir / "project.studio.json")
                metrics = MetricsFile(self.out_dir / "metrics.jsonl", keep_epochs=self.epoch)
            except OSError as exc:
                raise TrainingError(f"cannot write the run folder: {exc.strerror or exc}",
                                    str(self.out_dir)) from None
            self.callbacks.callbacks.insert(1, metrics)
            metrics.set_trainer(self)
        for m in self.bundle.messages:
            self.message(m)
        self.callbacks.on_run_start({
            "device": str(self.device), "epochs": s.epochs, "start_epoch": self.epoch,
            "steps_per_epoch": spe, "batch_size": d.batch_size, "data": describe(self.bundle),
            "processes": self.world,
            "params": self.analysis.total_params, "task": self.bundle.task,
            "classes": self.bundle.classes, "out_dir": str(self.out_dir or ""),
        })

    @property
    def local_batch(self) -> int:
        """Each process's batch: the project's batch size is the global one."""
        return max(1, self.project.data.batch_size // self.world)

    def _make_forward(self) -> None:
        """The model as the steps call it: inside DDP for a data-parallel run (whose
        constructor is a collective), then compiled when asked."""
        self.forward = self.model
        if self.group is not None:
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.device.type == "cuda"
            self.forward = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None)
        self._eager = self.forward  # what a failed compile falls back to
        if self.settings.compile:
            try:
                self.forward = torch.compile(self.forward)
                self._compile_pending = True  # compiling happens at the first step
            except Exception as exc:  # compile support varies by platform
                self.message(f"torch.compile unavailable ({_short(exc)}); running eagerly")

    def _join(self) -> None:
        from .distributed import Group

        if self.device.type == "cuda":
            local = self.local_rank
            if local >= torch.cuda.device_count():
                raise TrainingError(
                    f"{local + 1} or more processes on this machine but only "
                    f"{torch.cuda.device_count()} GPU(s); use one process per GPU or the CPU",
                    "--nproc-per-node")
            self.device = torch.device("cuda", local)
        self.group = Group.join(self.device.type)
        bs = self.project.data.batch_size
        if bs % self.world and self.main:
            self.message(f"batch size {bs} does not split evenly over {self.world} processes; "
                         f"each takes {self.local_batch}")

    def _init_weights(self, path: str) -> None:
        from .transfer import load_into, resolve

        full = resolve(path, self.base_dir)
        self.settings.init_weights = str(full.resolve())  # the run folder's copy stands alone
        try:
            report = load_into(self.model, full)
        except TrainingError as exc:
            raise TrainingError(f"{exc.message} ({exc.where})", "training.init_weights"
                                ) from None
        self.message("initial weights: " + report.summary())
        for line in report.lines():
            self.message("  " + line)

    #: keep 8-bit images as uint8 on the device and normalise each batch as it is cut (4× less
    #: memory, 4× less to copy); None: on CUDA only, where it is the fast path
    compact_images: bool | None = None

    def _to_device(self, bundle: DataBundle) -> DataBundle:
        self.pixel_affine: tuple[torch.Tensor, torch.Tensor] | None = None
        use = self.compact_images if self.compact_images is not None else (
            self.device.type == "cuda")
        if use:
            packed = pack_uint8(bundle)
            if packed is not None:
                bundle, a, b = packed
                self.pixel_affine = (a.to(self.device), b.to(self.device))
        return bundle.to(self.device)

    def _batches(self) -> Batches:
        b, d = self.bundle, self.project.data
        self.shuffle_gen = torch.Generator().manual_seed(self.settings.seed + 1)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(
            self.settings.seed + 2 + 7919 * self.rank)
        augment = None
        if d.augment:
            if not (b.image and len(b.sample_shape) == 3):
                self.message("augmentation applies to images only; this dataset has none")
            else:
                mean = torch.tensor(b.norm.get("mean", [0.0]), device=self.device)
                std = torch.tensor(b.norm.get("std", [1.0]), device=self.device)
                augment = Augmenter(d.augment, (0.0 - mean) / std, self.aug_gen)
        shard = None
        if self.group is not None:
            from .distributed import Shard

            n = len(b.train_idx) if b.files is not None else len(b.x_train)
            shard = Shard(n, self.world, self.rank, self.settings.seed + 1)
        return self._split_batches("train", self.local_batch, augment, shard)

    def _split_batches(self, split: str, batch_size: int, augment: Augmenter | None = None,
                       shard: Any = None) -> Batches | LoaderBatches:
        """Batches of one split: sliced from device tensors, or read from disk when lazy."""
        b = self.bundle
        train = split == "train"
        if b.files is not None:
            return LoaderBatches(b.files, b.train_idx if train else b.val_idx, batch_size,
                                 shuffle=train, device=self.device, mean=b.norm["mean"],
                                 std=b.norm["std"], generator=self.shuffle_gen,
                                 augment=augment, shard=shard)
        x, y = {"train": (b.x_train, b.y_train), "val": (b.x_val, b.y_val),
                "test": (b.x_test, b.y_test)}[split]
        return Batches(x, y, batch_size, shuffle=train, generator=self.shuffle_gen,
                       augment=augment, shard=shard, affine=self.pixel_affine)

    def _preflight(self, b: DataBundle, a: Analysis) -> None:
        """Check the data fits the network before spending any time on it."""
        if len(a.inputs) != 1:
            raise ShapeError(f"the network has {len(a.inputs)} Input nodes; datasets feed "
                             "exactly one")
        inp = a.inputs[0]
        want = a.nodes[inp].shape
        if want != b.sample_shape:
            if (want is not None and math.prod(want) == math.prod(b.sample_shape)
                    and b.files is None):
                b.reshape_samples(want)
            else:
                raise DatasetError(
                    f"the dataset gives samples of shape {list(b.sample_shape)} but Input "
                    f"'{inp}' expects {list(want or [])}; set the Input shape to "
                    f"{list(b.sample_shape)}", f"node '{inp}'")
        if a.nodes[inp].dtype == "int64":
            if b.norm:
                raise DatasetError("token ids must not be normalised; set data.normalize to "
                                   "false", "data.normalize")
            b.x_train, b.x_val = b.x_train.long(), b.x_val.long()
            if b.x_test is not None:
                b.x_test = b.x_test.long()
            self._check_token_ids(b, inp)
        out = a.output_shape() or ()
        lt = self.loss_type
        where = f"node '{a.output}'"
        if b.task == "classification":
            k = b.num_classes
            if lt in REGRESSION_LOSSES:
                raise TrainingError(f"{lt} is for regression but {self.project.data.dataset} is "
                                    "a classification dataset; use CrossEntropyLoss",
                                    "training.loss")
            if lt == "BCEWithLogitsLoss":
                if out == (1,) and k == 2:
                    b.y_train, b.y_val = (t.float()[:, None] for t in (b.y_train, b.y_val))
                    if b.y_test is not None:
                        b.y_test = b.y_test.float()[:, None]
                    return
                if out == (k,):
                    eye = torch.eye(k)
                    b.y_train, b.y_val = eye[b.y_train], eye[b.y_val]
                    if b.y_test is not None:
                        b.y_test = eye[b.y_test]
                    return
                raise ShapeError(f"BCEWithLogitsLoss needs an output of [1] for 2 classes or "
                                 f"[{k}] (one per class); the network gives {list(out)}", where)
            if len(out) != 1 or out[0] < k:
                raise ShapeError(f"the dataset has {k} classes but the output "
                                 f"'{a.output}' gives {list(out)}; make its last layer give "
                                 f"[{k}] (e.g. Linear out_features={k})", where)
            if out[0] > k:
                self.message(f"the output has {out[0]} values for {k} classes; the extra "
                             "ones are never the target")
        else:
            if lt in CLASSIFICATION_LOSSES:
                raise TrainingError(f"{lt} is for classification but "
                                    f"{self.project.data.dataset} is a regression dataset; use "
                                    "MSELoss", "training.loss")
            w = b.target_width
            if out != (w,):
                raise ShapeError(f"the dataset has {w} regression target(s) but the output "
                                 f"'{a.output}' gives {list(out)}; make it [{w}]", where)

    def _check_memory(self) -> None:
        """Refuse a network whose weights cannot fit before allocating them.

        An allocation of terabytes may be granted lazily by the OS and then kill the process
        (or the machine) as pages are touched; counting first is the only safe way.
        """
        from studio.core.summary import human

        slots = {"Adam": 2, "AdamW": 2, "RMSprop": 2, "Adagrad": 1, "SGD": 1}
        n = self.analysis.total_params
        need = n * 4 * (2 + slots.get(self.settings.optimizer["type"], 2))
        free = free_memory(self.device)
        if free is not None and need > free:
            raise TrainingError(
                f"out of memory: the network's {human(n)} parameters need about "
                f"{human(need, 'B')} for weights, gradients and optimizer state, but "
                f"{self.device} has {human(free, 'B')} free; make the network smaller",
                "graph")

    def _check_token_ids(self, b: DataBundle, inp: str) -> None:
        """Ids outside an Embedding's table would crash a CUDA context; refuse them first."""
        g = self.project.graph
        parts = [t for t in (b.x_train, b.x_val, b.x_test) if t is not None and t.numel()]
        lo = min(int(t.min()) for t in parts)
        hi = max(int(t.max()) for t in parts)
        frontier = [inp]
        while frontier:
            nid = frontier.pop()
            for nxt in g.successors(nid):
                node = g.nodes[nxt]
                if node.type == "Embedding":
                    n = node.resolved_params()["num_embeddings"]
                    if lo < 0 or hi >= n:
                        raise DatasetError(
                            f"token ids run from {lo} to {hi} but num_embeddings is {n}; "
                            f"set it to at least {hi + 1}" if lo >= 0 else
                            f"token ids must not be negative (found {lo})",
                            f"Embedding '{nxt}'")
                elif node.spec is not None and node.spec.dtype == "any":
                    frontier.append(nxt)  # reshaping layers pass the ids on unchanged

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        s = self.settings
        cb = self.callbacks
        spe = self.steps_per_epoch
        classification = self.bundle.task == "classification"
        self.window = TrainWindow(classification, self.loss_type, self.device)
        self.run_t0 = time.perf_counter()
        self.run_step0 = self.step
        group = self.group
        while self.epoch < s.epochs and not (self._halt if group else self._stop.is_set()):
            epoch = self.epoch
            cb.on_epoch_start(epoch)
            self.model.train()
            self.batches.set_epoch(epoch)
            start = self.batch_in_epoch
            if start == 0:
                self.shuffle_epoch_state = self.shuffle_gen.get_state()
            self.window.reset_epoch()
            self._epoch_first = (self.step, start)
            t0 = time.perf_counter()
            self._last_report = (t0, self.step, 0)
            next_report = t0 + self.report_interval
            step = self._train_step if self._needs_full_step() else self._plain_step
            running, stopping = self._running.is_set, self._stop.is_set
            clock = time.perf_counter
            batches = self.batches.epoch(start)
            for b in range(start, spe):
                # stop before the next batch is drawn: drawing it moves the augmentation's
                # random state, which a resumed run must find where this one left it
                if group is not None:
                    # processes act on agreed decisions only, taken every few batches
                    if (b - start) % self._agree_every == 0 and self._agree(sync=False):
                        break
                else:
                    if not running():
                        self._wait_while_paused()
                    if stopping():
                        break
                batch = next(batches, None)
                if batch is None:
                    break
                xb, yb = batch
                if self._compile_pending:
                    self._first_compiled_step(step, xb, yb)
                else:
                    step(xb, yb)
                self.batch_in_epoch = b + 1
                if clock() >= next_report:
                    self._report(epoch, spe)
                    next_report = time.perf_counter() + self.report_interval
            self._report(epoch, spe, wait=True)  # every window read: NaN never reaches a file
            if group is not None:
                self._agree()  # a NaN in the last batch of one process stops them all
            if self.failed is not None or self.batch_in_epoch < spe:
                break  # stopped or failed mid-epoch
            logs = self._epoch_logs(epoch, time.perf_counter() - t0)
            self.epoch, self.batch_in_epoch = epoch + 1, 0
            self._step_scheduler(logs)
            cb.on_epoch_end(epoch, logs)
            if group is not None:
                self._agree()  # early stopping (same logs everywhere) or a stop meanwhile

    def _agree(self, sync: bool = True) -> bool:
        """Data-parallel runs: every process learns whether any wants to stop, pause or has
        failed, and they act together; while one is paused they all wait. True to stop.

        Between batches (``sync=False``) each process starts the next agreement and acts on the
        one started a batch earlier, so the all-reduce never stalls a step.
        """
        g = self.group
        pending, self._pending_agree = self._pending_agree, None
        mine = (self._stop.is_set(), self.paused, self.failed is not None)
        if sync:
            stop, pause, failed = g.agree(*mine)
            if pending is not None:
                stop, pause, failed = (a or b for a, b in zip((stop, pause, failed),
                                                              pending.result(), strict=True))
        else:
            self._pending_agree = g.start_agree(*mine)
            if pending is None:
                return False
            stop, pause, failed = pending.result()
        announced = False
        while True:
            if failed:
                self._adopt_failure()
            if stop or failed:
                self.request_stop(self._stop_reason or "stopped")
                self._halt = True
                return True
            if not pause:
                if announced:
                    self.message("resumed")
                return False
            if not announced:
                self.message("paused")
                announced = True
                if self._pending_agree is not None:  # settle the one in flight first
                    self._pending_agree.result()
                    self._pending_agree = None
            time.sleep(0.1)
            stop, pause, failed = g.agree(self._stop.is_set(), self.paused,
                                          self.failed is not None)

    def _adopt_failure(self) -> None:
        """Every process takes the first failure's message (rank 0 reports it)."""
        self.failure_shared = True
        mine = None if self.failed is None else (self.failed.message, self.failed.where)
        for rank, theirs in enumerate(self.group.gather(mine)):
            if theirs is not None:
                if self.failed is None:
                    self.failed = TrainingError(
                        theirs[0] + (f" (process {rank})" if rank else ""), theirs[1])
                break

    def _first_compiled_step(self, step: Any, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Compile on the first step; if the compiler fails (no C++ toolchain, an op it cannot
        trace), say so and train eagerly instead of failing the run."""
        from torch._dynamo.exc import TorchDynamoException

        self._compile_pending = False
        try:
            step(xb, yb)
        except TorchDynamoException as exc:
            self.message(f"torch.compile failed ({_short(exc)}); running eagerly")
            self.forward = self._eager
            step(xb, yb)

    def _needs_full_step(self) -> bool:
        s = self.settings
        return bool(self.step < self.warmup_steps or self.amp_dtype is not None or s.l1
                    or s.l2 or s.grad_clip or self.scaler is not None
                    or self.batch_scheduler is not None)

    def _plain_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """``_train_step`` with every option off: the common CPU case, kept lean (measured)."""
        out = self.forward(xb)
        loss = self.loss_fn(out, yb)
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.window.add(loss, out, yb)
        self.step += 1

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if self.step < self.warmup_steps:
            f = warmup_factor(self.step, self.warmup_steps)
            for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
                g["lr"] = base * f
        with self._autocast():
            out = self.forward(xb)
            loss = self.loss_fn(out, yb)
        if self.settings.l1 or self.settings.l2:
            loss = loss + self._penalty()
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.settings.grad_clip
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
        if self.batch_scheduler is not None and self.step >= self.warmup_steps:
            self.batch_scheduler.step()
        self.window.add(loss, out, yb)
        self.step += 1

    def _penalty(self) -> torch.Tensor:
        s = self.settings
        total = torch.zeros((), device=self.device)
        for p in self.penalized:
            if s.l1:
                total = total + s.l1 * p.abs().sum()
            if s.l2:
                total = total + s.l2 * p.pow(2).sum()
        return total

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _wait_while_paused(self) -> None:
        self.message("paused")
        while not self._running.wait(0.1):
            pass
        if not self._stop.is_set():
            self.message("resumed")

    def _report(self, epoch: int, spe: int, wait: bool = False) -> None:
        loss, bad = self.window.flush(wait)
        if bad is None and math.isnan(loss):
            return  # nothing new has been read back yet
        now = time.perf_counter()
        t_last, step_last, _ = self._last_report
        dt = max(now - t_last, 1e-9)
        rate = (self.step - step_last) * self.local_batch * self.world / dt
        run_rate = (self.step - self.run_step0) / max(now - self.run_t0, 1e-9)
        remaining = (self.settings.epochs * spe) - self.step
        self._last_report = (now, self.step, 0)
        self.callbacks.on_progress({
            "epoch": epoch + 1, "epochs": self.settings.epochs, "batch": self.batch_in_epoch,
            "batches": spe, "step": self.step, "loss": loss,
            "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": rate,
            "eta_s": remaining / run_rate if run_rate > 0 else None,
            "nonfinite_step": None if bad is None else self._epoch_first[0] + bad,
            "nonfinite_batch": None if bad is None else self._epoch_first[1] + bad,
        })

    def _epoch_logs(self, epoch: int, seconds: float) -> dict[str, Any]:
        scale = self.bundle.target_norm[1] if self.bundle.target_norm else 1.0
        if self.group is not None:
            self.window.merge(self.group.sum_)  # the epoch's training metrics over all shards
        logs: dict[str, Any] = {"epoch": epoch + 1, **self.window.compute(scale)}
        if self.bundle.n_val and self.main:
            logs.update(self.evaluate("val"))
        done = self.window.count
        logs.update(lr=self.optimizer.param_groups[0]["lr"], time_s=seconds,
                    samples_per_s=done / seconds if seconds > 0 else 0.0)
        if self.group is not None:  # one set of logs, so every process's callbacks agree
            steps = max(self.window.steps, 1)  # this process's steps in the epoch
            # agree about every 50 ms: often enough for stop and pause, rarely enough to cost
            # nothing (an all-reduce takes ~0.5 ms on a busy CPU)
            every = max(1, min(64, int(0.05 / max(seconds / steps, 1e-6))))
            logs, self._agree_every = self.group.broadcast((logs, every))
        return logs

    def _step_scheduler(self, logs: dict[str, Any]) -> None:
        if self.step >= self.warmup_steps:
            step_scheduler(self.scheduler, self.resolved["scheduler"], logs)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, Any]:
        """Full metrics on a split ("val" or "test") in eval mode; training mode comes back."""
        was_training = self.model.training
        self.model.eval()
        meter = EvalMeter(self.bundle.task, self.bundle.num_classes, self.loss_type, self.device,
                          self.bundle.target_norm)
        forward = self.model if self.group is not None else self.forward  # no collectives
        for xb, yb in self._split_batches(split, max(self.project.data.batch_size, 256)).epoch():
            with self._autocast():
                out = forward(xb)
                loss = self.loss_fn(out, yb)
            meter.update(loss.float(), out.float(), yb)
        self.model.train(was_training)
        return meter.compute(f"{split}_")

    # -- the end --------------------------------------------------------------------------

    def _finish(self) -> None:
        if self._stop_reason != "stopped":
            self.callbacks.on_train_end()
        b = self.bundle
        if self.group is not None:
            self._check_ranks_agree()
        if not self.main:
            return
        if b.x_test is not None and b.y_test is not None and self._stop_reason != "stopped":
            self.test_logs = self.evaluate("test")
        if self.out_dir is not None:
            if self._stop_reason == "stopped" and self.batch_in_epoch:
                self.write_checkpoint(self.out_dir / "last.ckpt", self.checkpoint_state(),
                                      "last")
            save_weights(self.out_dir / "model.safetensors", self.model.state_dict(),
                         self.weights_metadata())
            self.callbacks.on_checkpoint("weights", self.out_dir / "model.safetensors")

    def _check_ranks_agree(self) -> None:
        """DDP keeps the processes' weights equal; prove it at the end of every run."""
        from .distributed import params_digest

        digests = self.group.gather(params_digest(self.model))
        if any(d != digests[0] for d in digests):
            self.message("warning: the processes ended with different weights; rank 0's are "
                         "saved")
        else:
            self.message(f"{self.world} processes ended with identical weights")

    def weights_metadata(self) -> dict[str, Any]:
        return {"studio.project": self.project.dumps(), "studio.norm": self.bundle.norm,
                "studio.classes": self.bundle.classes,
                "studio.target_norm": self.bundle.target_norm}

    def checkpoint_state(self) -> dict[str, Any]:
        return run_state.capture(self)

    def write_checkpoint(self, path: Path, state: dict[str, Any], kind: str) -> None:
        try:
            save_checkpoint(path, state)
        except OSError as exc:
            # the previous file is intact (atomic write); say so rather than crash
            self.fail(TrainingError(f"could not write the {kind} checkpoint: {exc.strerror}; "
                                    "the previous one is intact", str(path)))
            return
        self.callbacks.on_checkpoint(kind, path)

    def _result(self) -> RunResult:
        logs = dict(self.history.epochs[-1]) if self.history.epochs else {}
        logs.update(getattr(self, "test_logs", {}))
        if self.failed is not None:
            status, msg = "failed", str(self.failed)
        elif self._stop_reason == "stopped":
            status = "stopped"
            msg = f"stopped after epoch {self.epoch}" + (
                f", batch {self.batch_in_epoch}" if self.batch_in_epoch else "")
        elif self._stop_reason == "early_stopped":
            status, msg = "early_stopped", f"stopped early after epoch {self.epoch}"
        else:
            status, msg = "completed", f"completed {self.epoch} epochs"
        result = RunResult(status, msg, self.epoch, logs, list(self.history.epochs),
                           self.out_dir, self.failed)
        if self.out_dir is not None and self.out_dir.exists() and self.main:
            from studio.core.project import atomic_write

            clean = {k: v for k, v in logs.items() if not k.endswith("confusion")}
            with contextlib.suppress(OSError):
                atomic_write(self.out_dir / "summary.json", json.dumps(
                    {"status": status, "message": msg, "epochs": self.epoch, "logs": clean},
                    indent=2).encode())
        self.callbacks.on_run_end(result)
        return result


def _optimizer(spec: dict[str, Any], params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if not params:
        raise TrainingError("the network has no trainable parameters (all frozen?)", "graph")
    try:
        return make_optimizer(spec, params)
    except ValueError as exc:
        raise TrainingError(_short(exc), "training.optimizer") from None


def _peer_lost(exc: BaseException) -> bool:
    """Whether a collective failed because another process of the run went away."""
    import torch.distributed as dist

    kinds = tuple(t for t in (getattr(dist, "DistBackendError", None),
                              getattr(dist, "DistNetworkError", None)) if t is not None)
    text = str(exc).lower()
    return isinstance(exc, kinds) or any(k in text for k in (
        "closed by peer", "reset by peer", "broken pipe", "remote worker",
        "communicator was aborted"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
