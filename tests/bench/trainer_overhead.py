"""Trainer throughput ÷ a hand-written PyTorch loop (target ≥ 0.97).

Run: python -m tests.bench.trainer_overhead [--pairs 7] [--device cpu|cuda]

Both sides train the same built module (same seed), on the same device-resident tensors, with
the same batch size and optimizer, slicing shuffled batches. The trainer runs with its default
callbacks (NaN check, history), its metrics and its 20 Hz reporting. Each pair runs three
epochs of each, in alternating order; the ratio of training samples/s is taken per pair and
the median reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from studio.core.build import build_module
from studio.core.project import Project, sample_paths
from studio.data import load_data
from studio.training import Trainer

EPOCHS = 3


def hand_loop(project: Project, bundle, device: torch.device) -> float:
    """The loop a PyTorch user writes: training samples/s over EPOCHS epochs."""
    model = build_module(project.graph, seed=project.training.seed).to(device)
    if device.type == "cuda" and any(n.type.startswith("Conv") for n in project.graph):
        model.to(memory_format=torch.channels_last)  # as the trainer does: the same model
    opt = torch.optim.Adam(model.parameters(), lr=project.training.optimizer["lr"])
    loss_fn = nn.CrossEntropyLoss()
    x, y = bundle.x_train, bundle.y_train
    bs = project.data.batch_size
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(x)).to(device)
        for i in range(0, len(x), bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    _sync(device)
    return EPOCHS * len(x) / (time.perf_counter() - t0)


def trainer_run(project: Project, bundle) -> float:
    """The trainer's own training-phase samples/s (validation passes excluded)."""
    result = Trainer(project, data=bundle).fit()
    assert result.ok, result.message
    n = len(bundle.x_train) * len(result.history)
    return n / sum(h["time_s"] for h in result.history)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, pairs: int, device: torch.device) -> tuple[float, float, float]:
    project = Project.load(next(p for p in sample_paths() if p.name == name))
    project.training.epochs = EPOCHS
    project.training.device = device.type
    project.data.val_fraction = 0.2
    project.data.test_fraction = 0.0  # 4,000 training samples, as in the earlier figures
    project.training.optimizer = {"type": "Adam", "lr": 0.001}  # what hand_loop runs
    bundle = load_data(project.data, seed=0)
    bundle_dev = bundle.to(device)
    hand_loop(project, bundle_dev, device)  # warm-up: allocator, kernels, thread pools
    trainer_run(project, bundle)
    ratios, t_rates, h_rates = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            t, h = trainer_run(project, bundle), hand_loop(project, bundle_dev, device)
        else:
            h, t = hand_loop(project, bundle_dev, device), trainer_run(project, bundle)
        ratios.append(t / h)
        t_rates.append(t)
        h_rates.append(h)
    return statistics.median(ratios), statistics.median(t_rates), statistics.median(h_rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    what = torch.cuda.get_device_name() if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"trainer vs hand-written loop on {what}, torch {torch.__version__}, "
          f"{args.pairs} interleaved pairs, median")
    for name in ("mnist_mlp.studio.json", "mnist_cnn.studio.json"):
        ratio, t, h = measure(name, args.pairs, device)
        print(f"  {name:24s} trainer {t:9,.0f} samples/s  hand loop {h:9,.0f} samples/s  "
              f"ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
