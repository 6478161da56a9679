"""Soak: 10⁶ training steps' metrics streamed through the dashboard.

Run: python -m tests.bench.soak [--steps 1000000] [--per-redraw 1000]

Every step's loss and learning rate go through ``Dashboard.add_progress`` (far more than a run
sends: the trainer reports at 20 Hz), an epoch's values every 10,000 steps, a log line every
1,000; the dashboard redraws (``setData`` + a synchronous repaint) every ``--per-redraw``
steps. Reports resident memory growth beyond the bytes the stored points occupy (target
≤ 50 MB) and the redraw time at each tenth of the run (target: flat).
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from studio.ui.training.dashboard import Dashboard
from tests.bench.plot_redraw import timed_redraws

STEPS_PER_EPOCH = 10_000


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stored_bytes(d: Dashboard) -> int:
    """Every curve's buffers: its points and, when smoothed, their smoothed copy."""
    series = [s for c in d.charts.values() for t in c.traces.values()
              for s in (t.series, t.smoothed) if s is not None]
    return sum(s.x.nbytes + s.y.nbytes for s in series)


def redraw_ms(d: Dashboard, app: QApplication, step: int, n: int = 20) -> float:
    ms = timed_redraws(d, lambda i: d.add_progress(
        {"step": step + i, "batches": STEPS_PER_EPOCH, "loss": 0.5, "lr": 1e-3}), n)
    app.processEvents()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--per-redraw", type=int, default=1000)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    d = Dashboard(redraw_hz=1)
    d.timer.stop()
    d.resize(1200, 700)
    d.show()
    epochs = math.ceil(args.steps / STEPS_PER_EPOCH)
    d.reset({"epochs": epochs, "task": "classification"})
    for _ in range(3):  # warm-up: fonts, pixmaps, the first paints
        redraw_ms(d, app, 0)
    d.reset({"epochs": epochs, "task": "classification"})
    app.processEvents()
    base_rss, base_stored = rss(), stored_bytes(d)
    marks = []
    t_start = time.perf_counter()
    tenth = max(args.steps // 10, 1)
    for step in range(1, args.steps + 1):
        loss = 2.0 * math.exp(-step / 200_000) + 0.05 * math.sin(step)
        d.add_progress({"step": step, "batches": STEPS_PER_EPOCH, "loss": loss,
                        "lr": 1e-3 * (1 + math.cos(math.pi * step / args.steps)) / 2})
        if step % STEPS_PER_EPOCH == 0:
            e = step // STEPS_PER_EPOCH
            d.add_epoch({"epoch": e, "loss": loss, "val_loss": loss * 1.1,
                         "accuracy": 1 - loss / 3, "val_accuracy": 1 - loss / 2.8})
        if step % 1000 == 0:
            d.add_message(f"step {step}: a message in the log")
        if step % args.per_redraw == 0:
            d.redraw()
            app.processEvents()
        if step % tenth == 0:
            ms = redraw_ms(d, app, step)
            grown = rss() - base_rss - (stored_bytes(d) - base_stored)
            marks.append((step, ms, grown))
            print(f"  {step:>9,d} steps: redraw {ms:6.2f} ms, memory beyond stored points "
                  f"{grown / 2**20:6.1f} MB (stored {stored_bytes(d) / 2**20:5.1f} MB)",
                  flush=True)
    secs = time.perf_counter() - t_start
    first, last = marks[0][1], marks[-1][1]
    worst = max(m[2] for m in marks)
    print(f"{args.steps:,d} steps in {secs:.1f} s; redraw {first:.2f} ms at the first tenth, "
          f"{last:.2f} ms at the end; memory beyond stored points at most "
          f"{worst / 2**20:.1f} MB (target ≤ 50 MB); log lines kept "
          f"{d.log.document().blockCount():,d}")


if __name__ == "__main__":
    main()
