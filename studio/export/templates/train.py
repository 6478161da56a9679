"""Train the network of model.py on the project's data, the way Studio trains it.

Run:        python train.py [--epochs N] [--device cpu|cuda] [--out FILE]
Several:    torchrun --nproc-per-node N train.py   (DistributedDataParallel: gloo on CPU,
            NCCL on CUDA; rank 0 prints and saves)
Fine-tune:  START_FROM_EXPORTED_WEIGHTS=1 python train.py   (starts from weights.safetensors;
            otherwise from the weights Studio starts from, drawn from the project's seed)

The settings are in config.json (edit them there). Loss, optimizer and scheduler come from
builders.py, the train/validation split from split.py: the same code Studio trains with. The
data is read by loaders.py as Studio reads it, so the same project and seed give the same
split, the same normalisation and the same batches, and on the CPU the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

# isort: split
import builders
from loaders import Arrays, BestWeights, DatasetError, batch_spans, load_arrays
from model import Net
from split import feature_stats, fill_missing, split_parts

HERE = Path(__file__).resolve().parent
CONFIG_FORMAT = "studio.train-config"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """config.json: the project's resolved settings, written by Studio's export."""
    path = HERE / "config.json" if path is None else path
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if config.get("format") != CONFIG_FORMAT or config.get("version") != 1:
        raise SystemExit(f"{path} is not a configuration this train.py reads")
    return config


def data_folders(config: dict[str, Any]) -> list[Path]:
    """Where relative data paths are looked up: this package, then the project's folder."""
    project = config.get("project_folder")
    return [HERE] + ([Path(project)] if project else [])


# -- data ---------------------------------------------------------------------------------

@dataclass
class Data:
    """The split, normalised and shaped for the network's input, as Studio trains on it."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    train_idx: np.ndarray
    val_idx: np.ndarray
    task: str
    num_classes: int
    target_norm: tuple[float, float] | None = None  # regression targets' (mean, std)
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    test_idx: np.ndarray | None = None  # data.test_fraction's part, when the data has no own


def _normalize(a: Arrays, x: np.ndarray, train: np.ndarray, seed: int, scaling: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per channel for images, per feature otherwise; statistics of the training part."""
    axes = (0, 2, 3) if a.image and x.ndim == 4 else (0,)
    if a.estimate_stats:
        if scaling == "minmax":
            raise DatasetError("min-max scaling needs the images in memory; use standard")
        pick = train if len(train) <= 512 else np.random.RandomState(seed).choice(
            train, 512, replace=False)
        sample = a.x[pick].astype(np.float64) / 255.0
        mean = sample.mean(axis=axes, keepdims=True)
        return mean, np.maximum(sample.std(axis=axes, keepdims=True), 1e-8)
    stats: tuple[np.ndarray, np.ndarray] = feature_stats(x, train, axes, scaling)
    return stats


def _as_float(x: np.ndarray, image: bool) -> np.ndarray:
    x = x.astype(np.float32)
    return x / 255.0 if image else x


def prepare(config: dict[str, Any]) -> Data:
    """Load, split (split.py, stratified for classes), normalise, and fit the targets to the
    loss as Studio does; raises DatasetError where Studio would refuse."""
    data, seed = config["data"], config["training"]["seed"]
    a = load_arrays(data, data_folders(config))
    loss_type = config["training"]["loss"]["type"]
    if a.task != config["task"]:
        raise DatasetError(f"the data is a {a.task} task but {loss_type} is a "
                           f"{config['task']} loss")
    if len(a.y) < 2:
        raise DatasetError("at least two samples are needed")
    held = 0.0 if a.x_test is not None else data.get("test_fraction", 0.0)  # own test set kept
    train, val, test = split_parts(a.y, data["val_fraction"], held, seed,
                                   a.task == "classification")
    if len(train) == 0:
        raise DatasetError("the validation fraction leaves no training samples")
    x, x_test = _as_float(a.x, a.image), None
    for col, _, value in fill_missing(x, train, a.fill) if a.fill else ():
        if np.isnan(value):  # the training part holds no value of the column
            raise DatasetError(f"column {a.columns[col]!r} has no value in the training part")
    if not np.all(np.isfinite(x)):
        raise DatasetError("features contain NaN or infinite values; clean the data first")
    if a.x_test is not None:
        x_test = _as_float(a.x_test, a.image)
    elif len(test):
        x_test = x[test]
    if data["normalize"]:
        mean, std = _normalize(a, x, train, seed, data.get("scaling", "standard"))
        for part in (x, x_test):
            if part is not None:
                part -= mean.astype(np.float32)
                part /= std.astype(np.float32)
    y, y_test, target_norm = a.y, a.y_test, None
    if a.task == "regression" and data["normalize"]:
        y = y.astype(np.float32)
        m = float(y[train].mean(dtype=np.float64))
        s = float(y[train].std(dtype=np.float64)) or 1.0
        target_norm = (m, s)
        y = ((y - m) / s).astype(np.float32)
        if y_test is not None:
            y_test = ((y_test.astype(np.float64) - m) / s).astype(np.float32)
    elif a.task == "regression":
        y = y.astype(np.float32)
    y_test = y[test] if a.x_test is None and len(test) else y_test

    def tensor(part: np.ndarray, rows: np.ndarray | None = None) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(part if rows is None else part[rows]))

    out = Data(tensor(x, train), tensor(y, train), tensor(x, val), tensor(y, val), train, val,
               a.task, len(a.classes), target_norm,
               None if x_test is None else tensor(x_test),
               None if y_test is None else tensor(y_test), test if len(test) else None)
    _fit_to_network(out, config)
    return out


def _fit_to_network(d: Data, config: dict[str, Any]) -> None:
    """Samples in the Input's shape and dtype, targets in the form the loss takes."""
    if len(config["inputs"]) != 1:
        raise DatasetError(f"the network has {len(config['inputs'])} Input nodes; a dataset "
                           "feeds exactly one")
    inp, loss_type = config["inputs"][0], config["training"]["loss"]["type"]
    shape = tuple(inp["shape"])
    have = tuple(d.x_train.shape[1:])
    if have != shape:
        if math.prod(have) != math.prod(shape):
            raise DatasetError(f"the dataset gives samples of shape {list(have)} but the "
                               f"network's input is {list(shape)}")
        d.x_train, d.x_val = d.x_train.reshape(-1, *shape), d.x_val.reshape(-1, *shape)
        if d.x_test is not None:
            d.x_test = d.x_test.reshape(-1, *shape)
    if inp["dtype"] == "int64":  # token ids
        if config["data"]["normalize"]:
            raise DatasetError("token ids must not be normalised; set normalize to false")
        d.x_train, d.x_val = d.x_train.long(), d.x_val.long()
        if d.x_test is not None:
            d.x_test = d.x_test.long()
    out, k = tuple(config["output_shape"]), d.num_classes
    if d.task == "regression":
        width = 1 if d.y_train.dim() == 1 else int(d.y_train.shape[1])
        if out != (width,):
            raise DatasetError(f"{width} regression target(s) but the network gives {list(out)}")
    elif loss_type == "BCEWithLogitsLoss":
        d.y_train, d.y_val = _bce_targets(d.y_train, k, out), _bce_targets(d.y_val, k, out)
        if d.y_test is not None:
            d.y_test = _bce_targets(d.y_test, k, out)
    elif len(out) != 1 or out[0] < k:
        raise DatasetError(f"{k} classes but the network gives {list(out)}")


def _bce_targets(y: torch.Tensor, k: int, out: tuple[int, ...]) -> torch.Tensor:
    """Class ids as BCEWithLogitsLoss takes them: one float per sample for a single logit,
    one-hot rows for one logit per class."""
    if out == (1,) and k == 2:
        return y.float()[:, None]
    if out == (k,):
        return torch.eye(k)[y]
    raise DatasetError(f"BCEWithLogitsLoss needs an output of [1] for 2 classes or [{k}]; the "
                       f"network gives {list(out)}")


def steps_per_epoch(config: dict[str, Any], n_train: int, world: int = 1) -> int:
    """Optimizer steps in an epoch: the batch size is over all processes, as in Studio."""
    batch = max(1, config["data"]["batch_size"] // world)
    return len(batch_spans(math.ceil(n_train / world), batch))  # each process's part


# -- loss, optimizer, schedulers ----------------------------------------------------------

@dataclass
class Training:
    """What Studio's trainer builds from the same settings, and how it warms up."""

    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # stepped after each epoch (after the warm-up), or None
    batch_scheduler: Any  # stepped after each batch (OneCycleLR), or None
    base_lrs: list[float]  # what the warm-up rises to
    warmup_steps: int


def build(config: dict[str, Any], model: nn.Module, steps: int, epochs: int | None = None
          ) -> Training:
    """The loss, optimizer and schedulers of the project, from builders.py like Studio's."""
    t = config["training"]
    epochs = t["epochs"] if epochs is None else epochs
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SystemExit("the network has no trainable parameters (all frozen?)")
    optimizer = builders.make_optimizer(t["optimizer"], params)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    spec = t["scheduler"]
    warmup = spec["warmup_epochs"] if spec else 0
    scheduler, batch_scheduler = builders.make_scheduler(spec, optimizer, epochs - warmup,
                                                         steps)
    return Training(builders.make_loss(t["loss"]), optimizer, scheduler, batch_scheduler,
                    base_lrs, warmup * steps)


# -- metrics ------------------------------------------------------------------------------

def predictions(out: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Class ids from outputs (a single logit means a binary BCE output)."""
    if out.dim() >= 2 and out.shape[-1] == 1 and loss_type == "BCEWithLogitsLoss":
        return (out[..., 0] > 0).long()
    return out.argmax(-1)


def labels(y: torch.Tensor) -> torch.Tensor:
    """Targets as class ids (BCE targets are floats or one-hot rows)."""
    if y.dim() >= 2 and y.shape[-1] > 1:
        return y.argmax(-1)
    return (y[..., 0] if y.dim() >= 2 else y).long()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
             data: Data, loss_type: str, batch: int, prefix: str = "val_") -> dict[str, float]:
    """Studio's metrics of a whole split (regression errors in the targets' own units)."""
    was_training = model.training
    model.eval()
    n, k, device = len(y), data.num_classes, x.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(k * k, dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # |e|, e^2, t, t^2
    m, s = data.target_norm or (0.0, 1.0)
    for i in range(0, n, batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        out = model(xb)
        loss_sum += loss_fn(out, yb).double() * len(yb)
        if data.task == "classification":
            truth = labels(yb)
            pred = predictions(out, loss_type).clamp(0, k - 1)
            confusion += torch.bincount(truth * k + pred, minlength=k * k)
            if k > 5 and out.shape[-1] >= 5:
                top5 += (out.topk(5, dim=-1).indices == truth[:, None]).any(-1).sum()
        else:
            o = out.double().reshape(len(yb), -1) * s + m
            t = yb.double().reshape(len(yb), -1) * s + m
            e = o - t
            sums += torch.stack([e.abs().sum(), (e * e).sum(), t.sum(), (t * t).sum()])
    model.train(was_training)
    logs = {f"{prefix}loss": float(loss_sum) / max(n, 1)}
    if data.task == "classification":
        cm = confusion.reshape(k, k).double().cpu()
        tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
        present = support > 0
        precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
        recall = torch.where(present, tp / support.clamp(min=1), 0.0)
        f1 = torch.where(precision + recall > 0,
                         2 * precision * recall / (precision + recall).clamp(min=1e-12), 0.0)
        classes = max(int(present.sum()), 1)
        logs[f"{prefix}accuracy"] = float(tp.sum()) / max(n, 1)
        if k > 5:
            logs[f"{prefix}top5_accuracy"] = int(top5) / max(n, 1)
        logs[f"{prefix}precision"] = float(precision[present].sum()) / classes
        logs[f"{prefix}recall"] = float(recall[present].sum()) / classes
        logs[f"{prefix}f1"] = float(f1[present].sum()) / classes
    else:
        abs_e, sq_e, ts, ts2 = sums.tolist()
        values = max(n, 1) * (1 if y.dim() == 1 else int(y.shape[1]))
        sst = ts2 - ts * ts / values
        logs.update({f"{prefix}mae": abs_e / values, f"{prefix}mse": sq_e / values,
                     f"{prefix}rmse": math.sqrt(sq_e / values),
                     f"{prefix}r2": 1 - sq_e / sst if sst > 0 else 0.0})
    return logs


# -- the run ------------------------------------------------------------------------------

def initial_model(config: dict[str, Any]) -> nn.Module:
    """Net with the weights Studio starts from: drawn from the project's seed, leaving the
    global random state (dropout's) as it was; or the exported weights when asked for."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["training"]["seed"])
        model: nn.Module = Net()
    weights = HERE / "weights.safetensors"
    if os.environ.get("START_FROM_EXPORTED_WEIGHTS") and weights.exists():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
    return model


def train(config: dict[str, Any], epochs: int, device: torch.device, out: Path | None
          ) -> list[dict[str, Any]]:
    """Train, print each epoch's metrics on rank 0, save the weights to ``out`` (unless None);
    the epochs' logs come back, the last one with the test metrics, as Studio's summary.json."""
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    t, loss_type = config["training"], config["training"]["loss"]["type"]
    seed = t["seed"]
    torch.manual_seed(seed + 7919 * rank)  # rank 0 draws as a one-process run
    data = prepare(config)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        if getattr(data, name) is not None:
            setattr(data, name, getattr(data, name).to(device))
    model = initial_model(config).to(device)
    cuda = device.type == "cuda"
    net = nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if cuda else None) if distributed else model
    n = len(data.x_train)
    batch = max(1, config["data"]["batch_size"] // world)
    sampler: DistributedSampler[Any] | None = None
    if distributed:  # each process's part of the epoch, drawn as Studio draws it
        sampler = DistributedSampler(TensorDataset(data.x_train), num_replicas=world,
                                     rank=rank, shuffle=True, seed=seed + 1)
    shuffle = torch.Generator().manual_seed(seed + 1)  # the order Studio draws
    run = build(config, model, steps_per_epoch(config, n, world), epochs)
    opt = run.optimizer
    penalized = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    l1, l2, clip = t["l1"], t["l2"], t["grad_clip"]
    classification = data.task == "classification"
    scale = data.target_norm[1] if data.target_norm else 1.0
    if rank == 0:
        for note in notes(config):
            print(f"note: {note}", flush=True)
    step, history, best = 0, [], BestWeights(t, len(data.x_val) > 0 and data.x_test is not None)
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.long)
        else:
            order = torch.randperm(n, generator=shuffle)
        order = order.to(device)
        net.train()
        # the epoch's loss * samples and right answers (or absolute error), on the device
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        seen = values = 0
        for span in batch_spans(len(order), batch):
            idx = order[span]
            xb, yb = data.x_train[idx], data.y_train[idx]
            if step < run.warmup_steps:
                f = builders.warmup_factor(step, run.warmup_steps)
                for group, base in zip(opt.param_groups, run.base_lrs, strict=True):
                    group["lr"] = base * f
            output = net(xb)
            loss = run.loss_fn(output, yb)
            if l1 or l2:
                loss = loss + penalty(penalized, l1, l2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            if run.batch_scheduler is not None and step >= run.warmup_steps:
                run.batch_scheduler.step()
            step += 1
            with torch.no_grad():
                if classification:
                    right = (predictions(output, loss_type) == labels(yb)).sum().double()
                else:
                    right = (output.double() - yb.double().reshape(output.shape)).abs().sum()
                totals += torch.stack([loss.detach().double() * len(yb), right])
            seen, values = seen + len(yb), values + output.numel()
        totals = torch.cat([totals, torch.tensor([seen, values], dtype=torch.float64,
                                                 device=device)])
        if distributed:
            dist.all_reduce(totals)  # over every process's part
        loss_sum, right, seen, values = totals.tolist()
        logs = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1)}
        if classification:
            logs["accuracy"] = right / max(seen, 1)
        else:
            logs["mae"] = right / max(values, 1) * scale
        if len(data.x_val) and rank == 0:
            logs.update(evaluate(model, data.x_val, data.y_val, run.loss_fn, data, loss_type,
                                 max(config["data"]["batch_size"], 256)))
        logs["lr"] = opt.param_groups[0]["lr"]
        if distributed:  # rank 0's logs everywhere, so that every scheduler steps alike
            # (each process's batch-norm statistics are its own until the next forward)
            shared = [logs]
            dist.broadcast_object_list(shared, src=0)
            logs = shared[0]
        if step >= run.warmup_steps:
            builders.step_scheduler(run.scheduler, t["scheduler"], logs)
        history.append(logs)
        if rank == 0:
            best.update(model, logs)
            print(f"epoch {epoch + 1}/{epochs} {format_logs(logs, data.task)}", flush=True)
        if not math.isfinite(logs["loss"]):
            raise SystemExit("the loss is not finite; lower the learning rate")
    if rank == 0 and out is not None:  # the last epoch's weights, as Studio's model file
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(out))
        print(f"saved {out}", flush=True)
    if rank == 0 and data.x_test is not None and data.y_test is not None:
        if best.state is not None:  # the best epoch's weights, as Studio scores best.ckpt
            model.load_state_dict(best.state)
        test = evaluate(model, data.x_test, data.y_test, run.loss_fn, data, loss_type,
                        max(config["data"]["batch_size"], 256), "test_")
        print(format_logs(test, data.task), flush=True)
        if history:
            history[-1].update(test)
    return history


def penalty(params: list[nn.Parameter], l1: float, l2: float) -> torch.Tensor:
    """The L1 and L2 penalties on the weights (not biases or norms), summed as Studio does."""
    total = torch.zeros((), device=params[0].device if params else None)
    for p in params:
        if l1:
            total = total + l1 * p.abs().sum()
        if l2:
            total = total + l2 * p.pow(2).sum()
    return total


def format_logs(logs: dict[str, Any], task: str) -> str:
    """loss first, accuracy (or mean absolute error) last, as people read a log line."""
    metric = "accuracy" if task == "classification" else "mae"
    names: list[str] = [k for k in ("loss", "val_loss", "test_loss") if k in logs]
    names += [k for k in (metric, f"val_{metric}", f"test_{metric}") if k in logs]
    return " ".join(f"{k} {logs[k]:.4f}" for k in names)


def notes(config: dict[str, Any]) -> list[str]:
    """What Studio's trainer does for this project and this script does not."""
    out = []
    if config["data"].get("augment"):
        kinds = ", ".join(a["type"] for a in config["data"]["augment"])
        out.append(f"the project's augmentations ({kinds}) are applied by Studio only")
    if config["training"].get("early_stopping"):
        out.append("early stopping is applied by Studio only; this runs every epoch")
    if config["training"].get("init_weights") and not os.environ.get(
            "START_FROM_EXPORTED_WEIGHTS"):
        out.append("the project starts from a run's weights (init_weights); set "
                   "START_FROM_EXPORTED_WEIGHTS=1 to start from weights.safetensors")
    return out


def main() -> None:
    config = load_config()
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=config["training"]["epochs"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=HERE / "trained.safetensors")
    args = ap.parse_args()
    device = torch.device(args.device)
    distributed = "LOCAL_RANK" in os.environ
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
    try:
        train(config, args.epochs, device, args.out)
    except DatasetError as exc:
        raise SystemExit(f"error: {exc}") from None
    if distributed:
        # DDP's reducer holds the process group: it went with train()'s frame, and collecting
        # now ends the group's threads here, not during interpreter shutdown, where gloo can
        # abort
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
