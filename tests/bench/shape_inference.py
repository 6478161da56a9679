"""Shape inference + validation per edit on a 200-node graph (target ≤ 20 ms).

Run: python -m tests.bench.shape_inference
Each edit changes the out_channels of a block's first Conv2d (which changes the shapes and
parameter counts after it) and re-analyses the whole graph, as the editor does. Prints the
median and p95 over 200 edits.
"""

from __future__ import annotations

import statistics
import time

from studio.core.shapes import analyze
from tests.bench.graphs import residual_cnn

TARGET_MS = 20.0


def main() -> None:
    g = residual_cnn(200)
    convs = [n.id for n in g if n.id.endswith("_c1")]
    times = []
    for i in range(200):
        nid = convs[i % len(convs)]
        t0 = time.perf_counter()
        g.set_params(nid, {"out_channels": 32 if i % 2 else 8, "kernel_size": 3, "padding": 1})
        a = analyze(g)
        times.append((time.perf_counter() - t0) * 1000)
        assert a.ok
    times.sort()
    med, p95 = statistics.median(times), times[int(0.95 * len(times))]
    print(f"shape inference, {len(g)}-node residual CNN, {len(times)} edits: "
          f"median {med:.2f} ms, p95 {p95:.2f} ms; target {TARGET_MS:.0f} ms "
          f"(median/target = {med / TARGET_MS:.3f})")


if __name__ == "__main__":
    main()
