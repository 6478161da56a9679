"""Automatic layered layout for imported or messy graphs (top-to-bottom flow)."""

from __future__ import annotations

from .graph import Graph

ROW = 110.0
COLUMN = 240.0


def layered_positions(graph: Graph) -> dict[str, tuple[float, float]]:
    """Place each node one row below its deepest input; spread each row around x = 0.

    Within a row, nodes keep the order of their inputs' x positions (a barycentre pass), which
    keeps residual branches beside their trunk instead of crossing it.
    """
    order = graph.topological_order()
    depth: dict[str, int] = {}
    for n in order:
        depth[n] = max((depth[p] + 1 for p in graph.predecessors(n)), default=0)
    rows: dict[int, list[str]] = {}
    for n in order:
        rows.setdefault(depth[n], []).append(n)
    x: dict[str, float] = {}
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(rows):
        row = rows[d]
        if d > 0:
            def bary(n: str) -> float:
                ps = graph.predecessors(n)
                return sum(x[p] for p in ps) / len(ps) if ps else 0.0
            row.sort(key=bary)
        width = (len(row) - 1) * COLUMN
        for i, n in enumerate(row):
            x[n] = i * COLUMN - width / 2
            pos[n] = (x[n], d * ROW)
    return pos


def apply_layout(graph: Graph) -> None:
    for nid, p in layered_positions(graph).items():
        graph.move_node(nid, p)
