"""Screenshots of the Train view in the middle of a real run, light and dark, at the size the
centre of a 1366×768 window leaves (1366×650) and at 1920×1000.

Run: python tools/dashboard_screenshot.py [--out DIR] [--epochs N] [--at 0.6]
Trains the MNIST CNN sample twice in this process (an earlier run, kept in a runs folder to
overlay, then the current one, recording when each event arrived), then replays the current
run's events up to ``--at`` of its length into the view as the window would, with the earlier
run overlaid from its folder, a layer chosen in the map and the cursor over the loss chart.
Writes ``train_view_{light,dark}_{W}x{H}.png`` into ``--out`` (default: the current folder).
The README's pictures of the whole window come from tools/screenshots.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from studio.core.project import Project, sample_paths
from studio.core.shapes import analyze
from studio.ui.app import apply_theme

SIZES = ((1366, 650), (1920, 1000))
Event = tuple[float, str, Any]


def train(project: Project, out: Path) -> list[Event]:
    """A real run; its events as the window gets them, each with the second it arrived."""
    from studio.training import Trainer
    from studio.training.callbacks import Callback

    events: list[Event] = []
    t0 = time.monotonic()

    class Record(Callback):
        def on_run_start(self, info: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "start", info))

        def on_progress(self, logs: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "progress", dict(logs)))

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "epoch", dict(logs)))

    Trainer(project, out_dir=out, callbacks=[Record()]).fit()
    return events


def shoot(app: QApplication, dark: bool, project: Project, events: list[Event], until: float,
          earlier: Path, out: dict[tuple[int, int], Path]) -> None:
    from studio.training.console import format_logs
    from studio.ui.training.dashboard import Dashboard
    from studio.ui.training.runs import read_run

    apply_theme(app, dark)
    d = Dashboard()
    d.timer.stop()
    now = [0.0]
    d.clock = lambda: now[0]
    d.set_network(project.graph, analyze(project.graph))
    d.map.select("conv2")
    d._show_layer("conv2")
    run = read_run(earlier)
    d.set_overlays({run.name: run.history()})
    d.reset()  # as the window does: reset, the run folder, then the run's own figures
    d.add_message(f"run folder: {earlier.parent / 'current'}")
    for t, kind, data in events:
        if t > until:
            break
        now[0] = t
        if kind == "start":
            d.reset(data)
            d.add_message(f"data: {data['data']}")
            d.add_message(f"model: {data['params']:,} parameters on {data['device']}")
        elif kind == "progress":
            d.add_progress(data)
        elif kind == "epoch":
            d.add_epoch(data)
            d.add_message(f"epoch {data['epoch']}: {format_logs(data)}")
    for size, path in out.items():
        d.resize(*size)
        d.show()
        for _ in range(3):  # layout, then the curves' first paint
            app.processEvents()
            d.redraw()
        loss = d.charts["loss"]
        epoch = max(1.0, d.series["batch_loss"].x[d.series["batch_loss"].n - 1, 1] * 0.6)
        vb = loss.plot.getViewBox()
        pos = vb.mapViewToScene(QPointF(epoch, sum(vb.viewRange()[1]) / 2))
        loss.widget.scene().sigMouseMoved.emit(pos)
        app.processEvents()
        d.grab().save(str(path))
        print(path)
    d.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("."),
                    help="folder for the four screenshots")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--at", type=float, default=0.6, help="how far into the run (0–1)")
    args = ap.parse_args()
    app = QApplication([])
    sample = next(p for p in sample_paths() if p.name == "mnist_cnn.studio.json")
    runs = Path(tempfile.mkdtemp()) / "runs"
    earlier_project = Project.load(sample)
    earlier_project.training.epochs = args.epochs
    earlier_project.training.optimizer = {"type": "Adam", "lr": 3e-3}
    earlier = runs / f"mnist_cnn-{time.strftime('%Y%m%d-%H%M%S')}"
    train(earlier_project, earlier)
    project = Project.load(sample)
    project.training.epochs = args.epochs
    project.training.scheduler = {"type": "OneCycleLR"}
    events = train(project, runs / "current")
    until = events[-1][0] * args.at
    args.out.mkdir(parents=True, exist_ok=True)
    for dark in (False, True):
        theme = "dark" if dark else "light"
        shoot(app, dark, project, events, until, earlier,
              {(w, h): args.out / f"train_view_{theme}_{w}x{h}.png" for w, h in SIZES})


if __name__ == "__main__":
    main()
