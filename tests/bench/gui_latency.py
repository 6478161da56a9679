"""Training from the real window: GUI event-loop lateness and throughput vs headless.

Run: python -m tests.bench.gui_latency [--pairs 5] [--where process thread]
A 10 ms QTimer in the GUI thread records how late each tick fires while the MNIST CNN sample
trains from the window with the dashboard plotting live (target p99 ≤ 16 ms), in a separate
process (the default) and on a worker thread. Each GUI run is paired with the same project
trained headless (interleaved, order alternating); the ratio of training samples/s
(GUI ÷ headless) is taken per pair and the median reported (target ≥ 0.90).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from studio.core.project import sample_paths
from studio.ui.main_window import MainWindow
from tests.bench.window import bench_window

EPOCHS = 3


def rate(history: list[dict]) -> float:
    return sum(h["samples_per_s"] * h["time_s"] for h in history) / sum(
        h["time_s"] for h in history)


def headless(project) -> float:
    """The trainer in this (warm) process: the baseline of the thread runs."""
    from studio.training import Trainer

    return rate(Trainer(project).fit().history)


def headless_cli(project) -> float:
    """``studio train`` in a fresh process, as a user runs it headless: the baseline of the
    separate-process runs (both pay the same cold start of a new process)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.studio.json"
        project.save(path)
        subprocess.run([sys.executable, "-m", "studio", "train", str(path), "--out",
                        str(Path(d) / "run")], check=True, capture_output=True)
        lines = (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()
        return rate([json.loads(x) for x in lines])


def gui_run(app: QApplication, w: MainWindow) -> tuple[float, list[float]]:
    late: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - 10.0))
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    w.runs.last_result = None
    loop = QEventLoop()  # wait as the app does, in Qt's loop: a Python poll would hold the GIL
    w.runs.runner.ended.connect(loop.quit)
    timer.start()
    w.runs.train()
    loop.exec()
    w.runs.runner.ended.disconnect(loop.quit)
    timer.stop()
    return rate(w.runs.last_result.history), late[5:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--where", nargs="+", default=["process", "thread"],
                    choices=["process", "thread"])
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    path = next(p for p in sample_paths() if p.name == "mnist_cnn.studio.json")
    w = bench_window(path)
    w.editor.set_setting("training", "epochs", EPOCHS)
    project = w.project.copy()
    headless(project)  # warm-up
    for where in args.where:
        w.runs.set_run_processes({"thread": 0, "process": 1}[where])
        base = headless_cli if where == "process" else headless
        ratios, lateness = [], []
        for i in range(args.pairs):
            if i % 2 == 0:
                h = base(project)
                g, late = gui_run(app, w)
            else:
                g, late = gui_run(app, w)
                h = base(project)
            ratios.append(g / h)
            lateness += late
        lateness.sort()
        p99 = lateness[int(0.99 * (len(lateness) - 1))]
        against = "studio train" if where == "process" else "Trainer in-process"
        print(f"MNIST CNN from the window ({where}; headless: {against}), "
              f"{EPOCHS} epochs × {args.pairs} interleaved pairs: event-loop lateness "
              f"p50 {statistics.median(lateness):.2f} ms, p99 "
              f"{p99:.2f} ms (target 16 ms, {len(lateness)} ticks); GUI ÷ headless samples/s "
              f"median {statistics.median(ratios):.3f} [{min(ratios):.3f}–{max(ratios):.3f}] "
              "(target 0.90)", flush=True)
    w.editor.stack.setClean()
    w.close()


if __name__ == "__main__":
    main()
