"""What pruning and parallel trials buy a sweep (issue 18).

Run: python -m tests.bench.sweep [--pairs 5] [--trials 12] [--epochs 15]

A sweep over the MNIST MLP sample's learning rate (log range, 1e-5…1, where low rates learn
nothing in 15 epochs and high ones diverge) and hidden width, TPE, is run
  A. with the median pruner and B. without (one process each), and
  C. with 2 trial processes and D. with 1 (no pruning),
in alternating order, each pair with the same seed. Reported per comparison: the median over
the pairs of the wall-time ratio and of both best values (val_accuracy). Parallel trials share
the machine's cores: on a 2-core VM their gain is bounded by what one trial leaves idle.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from studio.core.project import Project, sample_paths
from studio.training.sweep import run_sweep


def project(trials: int, epochs: int, pruner: str, parallel: int, seed: int) -> Project:
    p = Project.load(next(x for x in sample_paths() if x.name.startswith("mnist_mlp")))
    p.training.epochs = epochs
    p.training.early_stopping = None
    p.training.seed = seed
    p.data.test_fraction = 0.0
    dense = next(n.id for n in p.graph if n.type == "Linear")
    p.sweep = {"objective": {"metric": "val_accuracy", "direction": "maximize"},
               "parameters": {
                   "training.optimizer.lr": {"type": "float", "low": 1e-5, "high": 1.0,
                                             "log": True},
                   f"graph.nodes.{dense}.params.out_features": {
                       "type": "int", "low": 32, "high": 256, "step": 32}},
               "sampler": "tpe", "pruner": pruner, "trials": trials, "parallel": parallel}
    return Project.from_dict(p.to_dict())


def timed(p: Project) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        data = run_sweep(p, Path(d))
        return time.perf_counter() - t0, data["best"]["value"] if data["best"] else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()
    timed(project(2, 1, "none", 1, seed=99))  # imports and the dataset's first read, unmeasured
    for label, a_kw, b_kw in (("median pruner vs none (1 process)",
                               {"pruner": "median", "parallel": 1},
                               {"pruner": "none", "parallel": 1}),
                              ("2 trial processes vs 1 (no pruning)",
                               {"pruner": "none", "parallel": 2},
                               {"pruner": "none", "parallel": 1})):
        ratios, best_a, best_b, wall_a, wall_b = [], [], [], [], []
        for i in range(args.pairs):
            order = [("a", a_kw), ("b", b_kw)] if i % 2 == 0 else [("b", b_kw), ("a", a_kw)]
            got = {}
            for name, kw in order:
                got[name] = timed(project(args.trials, args.epochs, seed=i, **kw))
            (ta, va), (tb, vb) = got["a"], got["b"]
            ratios.append(ta / tb)
            wall_a.append(ta)
            wall_b.append(tb)
            best_a.append(va)
            best_b.append(vb)
            print(f"  pair {i + 1}: {ta:6.1f} s vs {tb:6.1f} s (ratio {ta / tb:.2f}); best "
                  f"{va:.4f} vs {vb:.4f}", flush=True)
        print(f"{label}: wall time ratio {statistics.median(ratios):.2f} (median of "
              f"{args.pairs}; {statistics.median(wall_a):.0f} s vs "
              f"{statistics.median(wall_b):.0f} s); best val_accuracy "
              f"{statistics.median(best_a):.4f} vs {statistics.median(best_b):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
