"""A parameter change on a 200-node graph: re-validate and repaint (target ≤ 50 ms).

Run: python -m tests.bench.gui_edit [--edits 60]
The real main window holds a 200-node residual CNN, fitted in view. Each edit changes a
block's first Conv2d out_channels through the editor (as the inspector does), then runs the
coalesced analysis (canvas, summary and problems update) and repaints the canvas
synchronously. Prints the median and p95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from studio.core.project import Project
from tests.bench.graphs import residual_cnn
from tests.bench.window import bench_window


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=60)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    w = bench_window()
    w.set_project(Project(name="200 nodes", graph=residual_cnn(200)))
    app.processEvents()
    w.view.fit()
    app.processEvents()
    convs = [n for n in w.editor.graph.nodes if n.endswith("_c1")]
    times = []
    for i in range(args.edits):
        nid = convs[i % len(convs)]
        t0 = time.perf_counter()
        w.editor.set_params(nid, {"out_channels": 8 if i % 2 else 32, "kernel_size": 3,
                                  "padding": 1})
        app.processEvents()  # runs the coalesced re-validation
        w.view.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
        assert w.analysis is not None and w.analysis.ok
    times.sort()
    print(f"parameter edit on a {len(w.editor.graph)}-node graph, {args.edits} edits: "
          f"re-validate + repaint median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(0.95 * len(times))]:.1f} ms; target 50 ms")
    w.editor.stack.setClean()
    w.close()


if __name__ == "__main__":
    main()
