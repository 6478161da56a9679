"""The trainer: sets a run up, hands it to the loop, and writes what it leaves behind.

One trainer serves the CLI, the GUI's worker thread and distributed runs. It is split by
concern, in the manner of Lightning Fabric and Keras's trainer: ``preflight`` checks the data
against the network, ``Precision`` and the strategy (``SingleProcess``/``DataParallel``) are
plugins with a few verbs each, ``state`` saves and restores a run, and ``Loop`` is the epoch
and step loop alone. ``pause``, ``resume`` and ``stop`` may be called from any thread and take
effect within one batch.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core import catalog
from studio.core.build import build_module
from studio.core.errors import ShapeError, StudioError, TrainingError, first_line
from studio.core.flat import layer_types
from studio.core.project import Project
from studio.core.settings import resolve_training
from studio.core.shapes import analyze
from studio.data.batches import Augmenter, Batches
from studio.data.bundle import DataBundle, describe, load_data, pack_uint8
from studio.data.lazy import LoaderBatches

from . import ending, preflight
from . import state as run_state
from .builders import make_loss, make_optimizer, make_scheduler
from .callbacks import (
    Callback,
    CallbackList,
    Checkpointer,
    EarlyStopping,
    History,
    MetricsFile,
    TerminateOnNaN,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .distill import Distiller, distiller_for
from .loop import Loop
from .metrics import EvalMeter, TrainWindow
from .precision import Precision
from .protocol import RunResult
from .run_folder import RunLock, remove_stale_temp_files
from .strategy import SingleProcess, for_this_process

__all__ = ["RunResult", "Trainer", "available_devices", "resolve_device"]


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

    #: keep 8-bit images as uint8 on the device and normalise each batch as it is cut (4× less
    #: memory, 4× less to copy); None: on CUDA only, where it is the fast path
    compact_images: bool | None = None
    #: False: set up to load trained weights (evaluate, explain) without drawing from, or
    #: seeding, torch's global generator, which a run in another thread may be drawing from
    seed_global = True
    #: the running epoch's training metrics; the loop sets it when it starts
    window: TrainWindow

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
        self.strategy: SingleProcess = for_this_process()
        self.history = History()
        extra: list[Callback] = [self.history]
        es = self.settings.early_stopping if default_callbacks else None
        if default_callbacks:
            extra.append(TerminateOnNaN())
            if es is not None:
                extra.append(EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta,
                                           es.restore_best))
        if self.out_dir is not None and self.main:
            extra.append(Checkpointer(self.out_dir, es.monitor if es is not None else "val_loss"))
        self.callbacks = CallbackList(extra + list(callbacks))
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.stop_reason: str | None = None
        self.failed: StudioError | None = None
        self._lock: RunLock | None = None
        self.model: nn.Module
        self.forward: Any = None  # the model as steps call it (DDP-wrapped, compiled)
        self.compile_pending = False
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches completed in the current epoch
        self.step = 0  # optimizer steps over the whole run
        self.layer_stats: Any = None  # the run's LayerStatsProbe with training.layer_stats
        self.test_logs: dict[str, Any] = {}  # the final test's metrics, when it ran
        self.distiller: Distiller | None = None  # the teacher, with training.distill

    # -- where this process stands in the run ---------------------------------------------

    @property
    def rank(self) -> int:
        return self.strategy.rank

    @property
    def world(self) -> int:
        return self.strategy.world

    @property
    def main(self) -> bool:
        """Only the first process of a data-parallel run writes."""
        return self.strategy.main

    @property
    def failure_shared(self) -> bool:
        """Every process knows of the failure; rank 0 reports it."""
        return self.strategy.failure_shared

    @property
    def local_batch(self) -> int:
        """Each process's batch: the project's batch size is the global one."""
        return max(1, self.project.data.batch_size // self.world)

    # -- control (any thread) -------------------------------------------------------------

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def flag_readers(self) -> tuple[Callable[[], bool], Callable[[], bool]]:
        """(is it running, is a stop requested) as bound methods: the cheapest per-batch
        reads of the flags that other threads set."""
        return self._running.is_set, self._stop.is_set

    def wait_for_resume(self) -> None:
        while not self._running.wait(0.1):
            pass

    def stop(self) -> None:
        self.request_stop("stopped")

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
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
            error: BaseException | None = None
            try:
                self._setup(resume_from)
            except BaseException as exc:  # re-raised by the strategy once all have heard
                error = exc
            self.strategy.after_setup(self, error)
            Loop(self).run()
            if self.failed is None:
                ending.finish(self)
        except torch.OutOfMemoryError:
            self._oom()
        except StudioError as exc:
            self.failed = exc
        except OSError as exc:  # a full disk, a folder made read-only mid-run
            self.failed = TrainingError(f"cannot write: {exc.strerror or exc}",
                                        exc.filename and str(exc.filename))
        except (RuntimeError, IndexError, ValueError) as exc:
            text = str(exc).lower()
            explained = self.strategy.describe(exc)
            if explained is not None:
                self.failed = explained
            elif any(k in text for k in ("out of memory", "not enough memory",
                                         "can't allocate memory")):
                self._oom()
            else:
                self.failed = TrainingError(first_line(exc), self._blame(exc))
        except Exception as exc:  # never let a run take its host (GUI, CLI) down
            self.failed = TrainingError(f"internal error: {type(exc).__name__}: "
                                        f"{first_line(exc)}")
            self.message(traceback.format_exc())
        try:
            return ending.result(self)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self.strategy.close(self)

    def _oom(self) -> TrainingError:
        """Record (and return) the out-of-memory failure, and free what CUDA caches."""
        bs = self.project.data.batch_size
        self.failed = error = TrainingError(
            f"out of memory on {getattr(self, 'device', 'the device')} with batch size {bs}; "
            f"try a batch size of {max(1, bs // 2)} or a smaller network", "data.batch_size")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return error

    def _blame(self, exc: Exception) -> str | None:
        node = getattr(exc, "studio_node", None)  # inside a block: the layer's path
        if node is None:
            return None
        types = layer_types(self.project.graph, getattr(self, "analysis", None))
        # a repeated block's repetition is not in the path the built module gives
        kind = types.get(node) or next((t for p, t in types.items()
                                        if ".".join(x for x in p.split(".") if not x.isdigit())
                                        == node), None)
        return f"{kind} '{node}'" if kind else None

    # -- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Data, model and optimizer without training (evaluation of saved weights)."""
        self.callbacks.set_trainer(self)
        try:
            self._setup(None)
        except torch.OutOfMemoryError:
            raise self._oom() from None
        self.make_forward()

    def _setup(self, resume_from: str | Path | None) -> None:
        s, d = self.settings, self.project.data
        if self.out_dir is not None and self.main and self._lock is None:
            self._lock = RunLock(self.out_dir)
            self._lock.acquire()  # before anything is written: one run per folder
            cleaned = remove_stale_temp_files(self.out_dir)
            if cleaned:
                self.message(cleaned)
        self.device = resolve_device(s.device)
        self.strategy.join(self)
        if self.seed_global:
            torch.manual_seed(s.seed + 7919 * self.rank)  # rank 0 draws as a one-process run
        self.analysis = analyze(self.project.graph)
        if self.analysis.errors:
            p = self.analysis.errors[0]
            raise ShapeError(p.message, f"node '{p.node}'" if p.node else None)
        bundle = self._data or load_data(d, self.base_dir, s.seed)
        self.loss_type = s.loss["type"]
        plan = preflight.check(self.project, self.analysis, bundle)
        preflight.apply(plan, bundle)
        for m in plan.messages:
            self.message(m)
        preflight.check_memory(self.analysis, s.optimizer["type"], self.device)
        self.bundle = self._to_device(bundle)
        self.model = build_module(self.project.graph, seed=s.seed, analysis=self.analysis,
                                  for_loading=not self.seed_global)
        if s.init_weights and resume_from is None:
            self._init_weights(s.init_weights)
        self.model.to(self.device)
        if self.device.type == "cuda" and any(  # layers inside blocks too
                (spec := catalog.get(t)) is not None and spec.channels_last
                for t in layer_types(self.project.graph, self.analysis).values()):
            self.model.to(memory_format=torch.channels_last)
        self.forward = self.model
        self.resolved = resolve_training(s)
        self.loss_fn = make_loss(self.resolved["loss"])
        self.distiller = distiller_for(self)  # None unless training.distill is set
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError("the network has no trainable parameters (all frozen?)",
                                "graph")
        try:
            self.optimizer = make_optimizer(self.resolved["optimizer"], params)
        except ValueError as exc:
            raise TrainingError(first_line(exc), "training.optimizer") from None
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.batches = self._batches()
        spe = self.steps_per_epoch = len(self.batches)
        sched = self.resolved["scheduler"]
        warmup = sched["warmup_epochs"] if sched else 0
        self.warmup_steps = warmup * spe
        self.scheduler, self.batch_scheduler = make_scheduler(
            sched, self.optimizer, s.epochs - warmup, spe)
        self.precision = Precision(s.precision, self.device, self.message)
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
            "processes": self.world, "start_step": self.step,
            "params": self.analysis.total_params, "task": self.bundle.task,
            "classes": self.bundle.classes, "out_dir": str(self.out_dir or ""),
        })

    def make_forward(self) -> None:
        """The model as the steps call it: wrapped by the strategy (DDP's constructor is a
        collective, so this waits until every process has set up), then compiled if asked."""
        self.forward = self.strategy.wrap(self, self.model)
        self.eager = self.forward  # what a failed compile falls back to
        if self.settings.compile:
            try:
                self.forward = torch.compile(self.forward)
                self.compile_pending = True  # compiling happens at the first step
            except Exception as exc:  # compile support varies by platform
                self.message(f"torch.compile unavailable ({first_line(exc)}); running eagerly")

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

    def _batches(self) -> Batches | LoaderBatches:
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
        shard = self.strategy.shard(b.n_train, self.settings.seed + 1)
        return self.split_batches("train", self.local_batch, augment, shard)

    def split_batches(self, split: str, batch_size: int, augment: Augmenter | None = None,
                      shard: Any = None) -> Batches | LoaderBatches:
        """Batches of one split: sliced from device tensors, or read from disk when lazy."""
        b = self.bundle
        train = split == "train"
        if b.files is not None:
            idx = {"train": b.train_idx, "val": b.val_idx, "test": b.test_idx}[split]
            if idx is None:
                raise TrainingError(f"the dataset has no {split} set")
            return LoaderBatches(b.files, idx, batch_size,
                                 shuffle=train, device=self.device, mean=b.norm["mean"],
                                 std=b.norm["std"], generator=self.shuffle_gen,
                                 augment=augment, shard=shard)
        x, y = {"train": (b.x_train, b.y_train), "val": (b.x_val, b.y_val),
                "test": (b.x_test, b.y_test)}[split]
        if x is None or y is None:
            raise TrainingError(f"the dataset has no {split} set")
        return Batches(x, y, batch_size, shuffle=train, generator=self.shuffle_gen,
                       augment=augment, shard=shard, affine=self.pixel_affine)

    # -- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, Any]:
        """Full metrics on a split ("val" or "test") in eval mode; training mode comes back."""
        was_training = self.model.training
        self.model.eval()
        meter = EvalMeter(self.bundle.task, self.bundle.num_classes, self.loss_type, self.device,
                          self.bundle.target_norm)
        forward = self.strategy.eval_forward(self)
        for xb, yb in self.split_batches(split, max(self.project.data.batch_size, 256)).epoch():
            with self.precision.forward_context():
                out = forward(xb)
                loss = self.loss_fn(out, yb)
            meter.update(loss.float(), out.float(), yb)
        self.model.train(was_training)
        return meter.compute(f"{split}_")

    # -- the end --------------------------------------------------------------------------

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
