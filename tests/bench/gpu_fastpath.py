"""The trainer on a GPU against two hand-written loops: the usual one and a tuned one.

Run: python -m tests.bench.gpu_fastpath [--pairs 5] [--epochs 5] [--device cuda]
     [--samples mnist_cnn residual_cnn cifar_cnn] [--cifar-root DIR]

- usual: what most PyTorch code does — a ``DataLoader`` over CPU tensors (2 workers, pinned
  memory), each batch copied to the GPU, fp32, ``loss.item()`` and an accuracy ``.item()``
  every step.
- tuned: the same network with the data resident on the GPU as uint8 and normalised per batch,
  bf16 autocast, ``channels_last``, losses summed on the device and read once an epoch.
- studio: ``Trainer`` with the project's own settings (precision ``auto``), so the fast path
  it takes by itself on CUDA.

All three build the same module from the same seed and see the same split. Per variant:
training samples/s (training phase only, synchronised at epoch ends) and time to accuracy (wall
time from the first step until the validation accuracy first reaches ``--target``, evaluation
included). Variants run in a rotating order within each pair; medians reported. Targets:
studio ≥ 1.5× the usual loop and ≥ 0.95× the tuned one in samples/s.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import torch
from torch import nn

from studio.core.build import build_module
from studio.core.project import Project, sample_paths
from studio.data import load_data
from studio.data.bundle import pack_uint8
from studio.training import Callback, Trainer

TARGETS = {"mnist_cnn": 0.97, "residual_cnn": 0.97, "cifar_cnn": 0.70}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _optimizer(project: Project, model: nn.Module) -> torch.optim.Optimizer:
    spec = dict(project.training.optimizer)
    kind = spec.pop("type")
    if "beta1" in spec:
        spec["betas"] = (spec.pop("beta1"), spec.pop("beta2"))
    return getattr(torch.optim, kind)(model.parameters(), **spec)


def usual_loop(project: Project, bundle: Any, device: torch.device, epochs: int, target: float
               ) -> tuple[float, float]:
    from torch.utils.data import DataLoader, TensorDataset

    model = build_module(project.graph, seed=project.training.seed).to(device)
    opt = _optimizer(project, model)
    loss_fn = nn.CrossEntropyLoss()
    bs = project.data.batch_size
    train = DataLoader(TensorDataset(bundle.x_train, bundle.y_train), batch_size=bs,
                       shuffle=True, num_workers=2, pin_memory=device.type == "cuda",
                       persistent_workers=True)
    val = DataLoader(TensorDataset(bundle.x_val, bundle.y_val), batch_size=512)
    train_time, reached, t_start = 0.0, math.nan, time.perf_counter()
    for _ in range(epochs):
        model.train()
        _sync(device)
        t0 = time.perf_counter()
        running, correct = 0.0, 0
        for xb, yb in train:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            running += loss.item()  # the usual per-step readback
            correct += (out.argmax(1) == yb).sum().item()
        _sync(device)
        train_time += time.perf_counter() - t0
        acc = _evaluate(model, ((x.to(device), y.to(device)) for x, y in val), None)
        if math.isnan(reached) and acc >= target:
            reached = time.perf_counter() - t_start
    return epochs * len(bundle.x_train) / train_time, reached


def tuned_loop(project: Project, bundle: Any, device: torch.device, epochs: int, target: float
               ) -> tuple[float, float]:
    packed = pack_uint8(bundle)
    assert packed is not None, "the tuned loop needs 8-bit images"
    u8, a, b = packed
    a, b = a.to(device), b.to(device)
    x, y = u8.x_train.to(device), u8.y_train.to(device)
    xv, yv = u8.x_val.to(device), u8.y_val.to(device)
    model = build_module(project.graph, seed=project.training.seed).to(device)
    model.to(memory_format=torch.channels_last)
    opt = _optimizer(project, model)
    loss_fn = nn.CrossEntropyLoss()
    bs = project.data.batch_size
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    train_time, reached, t_start = 0.0, math.nan, time.perf_counter()
    for _ in range(epochs):
        model.train()
        _sync(device)
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        perm = torch.randperm(len(x), device=device)
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            xb = torch.addcmul(b, x[idx].float(), a).contiguous(
                memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            with amp:
                loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        float(total)  # read once an epoch
        _sync(device)
        train_time += time.perf_counter() - t0
        batches = ((torch.addcmul(b, xv[i:i + 512].float(), a), yv[i:i + 512])
                   for i in range(0, len(xv), 512))
        acc = _evaluate(model, batches, amp)
        if math.isnan(reached) and acc >= target:
            reached = time.perf_counter() - t_start
    return epochs * len(x) / train_time, reached


@torch.no_grad()
def _evaluate(model: nn.Module, batches: Any, amp: Any) -> float:
    model.eval()
    correct = n = 0
    for xb, yb in batches:
        if amp is not None:
            with amp:
                out = model(xb)
        else:
            out = model(xb)
        correct += int((out.argmax(1) == yb).sum())
        n += len(yb)
    return correct / max(n, 1)


class _Clock(Callback):
    def __init__(self, target: float) -> None:
        self.target, self.reached = target, math.nan

    def on_run_start(self, info: dict[str, Any]) -> None:
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if math.isnan(self.reached) and logs.get("val_accuracy", 0.0) >= self.target:
            self.reached = time.perf_counter() - self.t0


def studio_run(project: Project, bundle: Any, device: torch.device, epochs: int, target: float
               ) -> tuple[float, float]:
    clock = _Clock(target)
    result = Trainer(project, data=bundle, callbacks=[clock]).fit()
    assert result.ok, result.message
    return (len(bundle.x_train) * len(result.history)
            / sum(h["time_s"] for h in result.history)), clock.reached


VARIANTS = {"studio": studio_run, "usual": usual_loop, "tuned": tuned_loop}


def measure(name: str, args: argparse.Namespace, device: torch.device) -> None:
    project = Project.load(next(p for p in sample_paths() if p.name.startswith(name)))
    if name == "cifar_cnn":
        if not args.cifar_root:
            print(f"  {name}: skipped (needs --cifar-root with the CIFAR-10 files)")
            return
        project.data.options = {**project.data.options, "root": args.cifar_root}
    project.training.epochs = args.epochs
    project.training.device = device.type
    project.training.early_stopping = None
    target = args.target or TARGETS.get(name, 0.9)
    bundle = load_data(project.data, seed=project.training.seed)
    for fn in VARIANTS.values():  # warm-up: kernels, allocator, cuDNN autotuning
        fn(project, bundle, device, 1, 2.0)
    rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
    reach: dict[str, list[float]] = {k: [] for k in VARIANTS}
    ratios: dict[str, list[float]] = {"usual": [], "tuned": []}
    names = list(VARIANTS)
    for i in range(args.pairs):
        order = names[i % 3:] + names[:i % 3]
        got = {k: VARIANTS[k](project, bundle, device, args.epochs, target) for k in order}
        for k, (r, t) in got.items():
            rates[k].append(r)
            reach[k].append(t)
        for k in ratios:
            ratios[k].append(got["studio"][0] / got[k][0])
        print(f"    pair {i + 1}: " + " · ".join(
            f"{k} {got[k][0]:,.0f}/s, {got[k][1]:.1f} s to {target:.2f}" for k in names),
            flush=True)

    def med(v: list[float]) -> float:
        finite = [x for x in v if not math.isnan(x)]
        return statistics.median(finite) if finite else math.nan

    print(f"  {name} (batch {project.data.batch_size}, {args.epochs} epochs): samples/s "
          + ", ".join(f"{k} {med(rates[k]):,.0f}" for k in names)
          + f"; studio ÷ usual {med(ratios['usual']):.2f}, studio ÷ tuned "
          f"{med(ratios['tuned']):.2f}; time to {target:.2f} val accuracy "
          + ", ".join(f"{k} {med(reach[k]):.1f} s" for k in names))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--samples", nargs="+", default=["mnist_cnn", "residual_cnn", "cifar_cnn"])
    ap.add_argument("--cifar-root")
    ap.add_argument("--target", type=float, help="validation accuracy to time (per sample "
                    "defaults otherwise)")
    args = ap.parse_args()
    device = torch.device(args.device)
    what = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"GPU fast path on {what}, torch {torch.__version__}: {args.pairs} rotating triples, "
          "median")
    for name in args.samples:
        measure(name, args, device)


if __name__ == "__main__":
    main()
