"""Data-parallel runs: ``studio train --nproc-per-node 2`` ÷ one process, samples/s and accuracy.

Run: python -m tests.bench.ddp [--pairs 5] [--epochs 3] [--sample mnist_cnn] [--nproc 2]

Each side is the real command a user runs, in a fresh process: ``studio train`` on one
process (all cores as intra-op threads) and on N processes (torchrun + DDP over gloo, cores
shared out by the launcher). Training-phase samples/s is the mean over epochs 2.. of the
``samples_per_s`` in ``metrics.jsonl`` (the first epoch carries warm-up); the final
validation accuracy is reported beside it. Pairs run in alternating order; medians reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from studio.core.project import Project, sample_paths


def run(project: Path, out: Path, nproc: int, epochs: int) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "studio", "train", str(project), "--epochs", str(epochs),
           "--out", str(out), "--device", "cpu"]
    if nproc > 1:
        cmd += ["--nproc-per-node", str(nproc)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [h["samples_per_s"] for h in lines[1:]] or [lines[0]["samples_per_s"]]
    return statistics.mean(rates), lines[-1].get("val_accuracy", float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--sample", default="mnist_cnn")
    args = ap.parse_args()
    src = next(p for p in sample_paths() if p.name.startswith(args.sample))
    print(f"studio train on 1 vs {args.nproc} CPU processes: {src.name}, {args.epochs} epochs, "
          f"{os.cpu_count()} cores, {args.pairs} interleaved pairs, median")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        project = tmp_path / src.name
        Project.load(src).save(project)
        ratios, one, many, acc1, accn = [], [], [], [], []
        for i in range(args.pairs):
            order = (1, args.nproc) if i % 2 == 0 else (args.nproc, 1)
            got = {n: run(project, tmp_path / f"run{i}-{n}", n, args.epochs) for n in order}
            ratios.append(got[args.nproc][0] / got[1][0])
            one.append(got[1][0])
            many.append(got[args.nproc][0])
            acc1.append(got[1][1])
            accn.append(got[args.nproc][1])
            print(f"  pair {i + 1}: 1 process {got[1][0]:8,.0f} samples/s (val acc "
                  f"{got[1][1]:.4f}) · {args.nproc} processes {got[args.nproc][0]:8,.0f} "
                  f"samples/s (val acc {got[args.nproc][1]:.4f}) · ratio {ratios[-1]:.3f}",
                  flush=True)
    print(f"median: 1 process {statistics.median(one):,.0f} samples/s, {args.nproc} processes "
          f"{statistics.median(many):,.0f} samples/s, ratio {statistics.median(ratios):.3f}; "
          f"val accuracy {statistics.median(acc1):.4f} vs {statistics.median(accn):.4f}")


if __name__ == "__main__":
    main()
