"""The cost of live layer statistics (``training.layer_stats``, target ≤ 3%).

Run: python -m tests.bench.layer_stats [--pairs 7] [--every N] [--device cpu|cuda]
     [--samples mnist_mlp mnist_cnn]

The same sample trains with statistics off and on (sampled every ``--every`` steps, by default
the setting's default), in
alternating order; each pair gives the ratio of training samples/s (statistics on ÷ off; the
probe's cost is inside the steps it follows), and the median over the pairs is reported with
its overhead, 1 − ratio. On a shared 2-core VM runs of a few seconds vary by ±5–10%, more
than the cost measured, so the time the probe itself spends (timed around each sample, the
optimizer step excluded) is printed too, as a share of the training time: that figure does
not depend on the noise between runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from studio.core.project import Project, sample_paths
from studio.core.settings import LayerStats
from studio.data import load_data
from studio.training import Trainer

EPOCHS = 8  # long enough that a 3% difference stands out of the run-to-run noise


SPENT: list[float] = []  # sampling's own time ÷ training time, per run with statistics


def run(project: Project, bundle, every: int | None, out: Path) -> float:
    project.training.layer_stats = None if every is None else {"every": every}
    trainer = Trainer(project, data=bundle, out_dir=out)
    result = trainer.fit()
    assert result.ok, result.message
    n = len(bundle.x_train) * len(result.history)
    seconds = sum(h["time_s"] for h in result.history)
    if trainer.layer_stats is not None:
        SPENT.append(trainer.layer_stats.seconds / seconds)
    return n / seconds


def measure(name: str, pairs: int, every: int, device: torch.device) -> tuple[float, ...]:
    project = Project.load(next(p for p in sample_paths() if p.name == name))
    project.training.epochs = EPOCHS
    project.training.device = device.type
    bundle = load_data(project.data, seed=0)
    ratios, on_rates, off_rates = [], [], []
    SPENT.clear()
    with tempfile.TemporaryDirectory() as tmp:
        folder = iter(range(10**6))

        def out() -> Path:
            return Path(tmp) / str(next(folder))

        run(project, bundle, every, out())  # warm-up
        for i in range(pairs):
            if i % 2 == 0:
                on, off = run(project, bundle, every, out()), run(project, bundle, None, out())
            else:
                off, on = run(project, bundle, None, out()), run(project, bundle, every, out())
            ratios.append(on / off)
            on_rates.append(on)
            off_rates.append(off)
    return (statistics.median(ratios), statistics.median(on_rates), statistics.median(off_rates),
            statistics.median(SPENT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--every", type=int, default=LayerStats().every)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--samples", nargs="+", default=["mnist_mlp", "mnist_cnn"])
    args = ap.parse_args()
    device = torch.device(args.device)
    what = torch.cuda.get_device_name() if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"layer statistics every {args.every} steps vs none on {what}, torch "
          f"{torch.__version__}, {args.pairs} interleaved pairs, median")
    for name in (f"{s}.studio.json" for s in args.samples):
        ratio, on, off, spent = measure(name, args.pairs, args.every, device)
        print(f"  {name:24s} with {on:9,.0f} samples/s  without {off:9,.0f} samples/s  "
              f"ratio {ratio:.3f}  overhead {100 * (1 - ratio):.1f}%  "
              f"(time inside sampling: {100 * spent:.1f}% of training)")


if __name__ == "__main__":
    main()
