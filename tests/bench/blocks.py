"""Re-validation with blocks: the 200-node residual CNN flat and as one shared block used by
every residual stage, and torchvision's resnet50 imported flat and with its blocks.

Run: python -m tests.bench.blocks [--pairs 7]
Each pair times 40 edits of the flat graph and 40 of the blocked one, interleaved, each edit
changing the first convolution's width (in the blocked graph: inside the shared definition,
so every use's shapes change) and re-analysing the whole network, as the editor does. Prints
medians per edit and the median of the per-pair ratios (blocked ÷ flat). Target: ≤ 20 ms an
edit either way.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from studio.core.blockdef import BLOCK
from studio.core.blocks import apply_group, plan_group
from studio.core.graph import Graph
from studio.core.shapes import analyze
from tests.bench.graphs import residual_cnn

TARGET_MS = 20.0
EDITS = 40


def blocked(n_nodes: int = 200) -> tuple[Graph, Graph]:
    """The residual CNN with every [conv, bn, relu, conv, bn, add, relu] stage one use of a
    shared block ``Res``; returns the network and the definition's graph (where edits go)."""
    g = residual_cnn(n_nodes)
    stages = sorted({n.id.split("_")[0] for n in g if n.id.startswith("b") and "_" in n.id},
                    key=lambda b: int(b[1:]))
    for k, b in enumerate(stages):
        ids = [f"{b}_{s}" for s in ("c1", "n1", "r1", "c2", "n2", "add", "out")]
        plan = plan_group(g, ids, "Res" if k == 0 else "Tmp")
        if k == 0:
            plan.definition.graph = _renamed(plan.definition.graph, f"{b}_")
        apply_group(g, plan)
        if k:
            g.set_params(plan.instance.id, {"block": "Res", "repeat": 1})
            g.remove_block("Tmp")
    return g, g.blocks["Res"].graph


def _renamed(graph: Graph, prefix: str) -> Graph:
    """The definition's layers without the stage's prefix (``c1``, not ``b1_c1``)."""
    out = Graph()
    for n in graph:
        c = n.copy()
        c.id = n.id.removeprefix(prefix)
        out.add_node(c)
    for e in graph.edges:
        out.connect(e.src.removeprefix(prefix), e.dst.removeprefix(prefix), e.port)
    return out


def timed(graph: Graph, edited: Graph, conv: str, root: Graph) -> list[float]:
    times = []
    for i in range(EDITS):
        t0 = time.perf_counter()
        edited.set_params(conv, {"out_channels": 32 if i % 2 else 8, "kernel_size": 3,
                                 "padding": 1})
        a = analyze(root)
        times.append((time.perf_counter() - t0) * 1000)
        assert a.ok, a.problems[:1]
    return times


def pairs(a: Callable[[], list[float]], b: Callable[[], list[float]], n: int
          ) -> tuple[list[float], list[float], list[float]]:
    ta: list[float] = []
    tb: list[float] = []
    ratios = []
    for _ in range(n):
        x, y = a(), b()
        ta += x
        tb += y
        ratios.append(statistics.median(y) / statistics.median(x))
    return ta, tb, ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=7)
    args = ap.parse_args()
    flat = residual_cnn(200)
    net, res = blocked(200)
    uses = sum(1 for n in net if n.type == BLOCK)
    assert analyze(net).total_params == analyze(flat).total_params
    ta, tb, ratios = pairs(lambda: timed(flat, flat, "b1_c1", flat),
                           lambda: timed(net, res, "c1", net), args.pairs)
    print(f"200-node residual CNN: flat median {statistics.median(ta):.2f} ms an edit, "
          f"{uses} uses of one block {statistics.median(tb):.2f} ms; blocked/flat "
          f"{statistics.median(ratios):.2f} (median of {args.pairs} pairs); "
          f"target {TARGET_MS:.0f} ms")
    from studio.export.torchvision_import import import_torchvision

    r50 = import_torchvision("resnet50", size=64).project.graph
    r50_flat = import_torchvision("resnet50", size=64, blocks=False).project.graph

    def analyse(g: Graph) -> Callable[[], list[float]]:
        def run() -> list[float]:
            out = []
            for _ in range(10):
                t0 = time.perf_counter()
                analyze(g)
                out.append((time.perf_counter() - t0) * 1000)
            return out
        return run

    ta, tb, ratios = pairs(analyse(r50_flat), analyse(r50), args.pairs)
    print(f"resnet50 import: flat ({len(r50_flat)} nodes) {statistics.median(ta):.2f} ms an "
          f"analysis, with blocks ({len(r50)} nodes, {len(r50.blocks)} definitions) "
          f"{statistics.median(tb):.2f} ms; blocked/flat {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
