"""Splicing a card into a wire: which wire it lands on, and where it goes so the chain stays tidy.

As in Blender's node editor, a free node dropped on a wire goes into it; so does a layer
dropped from the palette or chosen in quick-add on one. The wire is the one passing closest to
the card's middle. The card then sits one row below the wire's source and everything after it
moves down to make room, so a vertical chain stays a readable chain.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QPainterPath

from studio.core.graph import Edge, Graph
from studio.core.layout import ROW

from .cards import NODE_W

Moves = dict[str, tuple[tuple[float, float], tuple[float, float]]]


def wire_points(path: QPainterPath, n: int = 32) -> list[QPointF]:
    """Points along a wire, ends excluded (they sit on the cards' ports)."""
    return [path.pointAtPercent(i / n) for i in range(1, n)]


def wire_under(paths: Mapping[Edge, QPainterPath], rect: QRectF,
               skip: str | None = None) -> list[Edge]:
    """The wires crossing ``rect``, closest to its centre first; those touching ``skip`` are
    left out (a node cannot go into its own wire)."""
    centre = rect.center()
    hits: list[tuple[float, Edge]] = []
    for edge, path in paths.items():
        if skip is not None and skip in (edge.src, edge.dst):
            continue
        inside = [p for p in wire_points(path) if rect.contains(p)]
        if inside:
            hits.append((min(QLineF(p, centre).length() for p in inside), edge))
    hits.sort(key=lambda h: h[0])
    return [e for _, e in hits]


def _descendants(graph: Graph, node_id: str) -> list[str]:
    stack, seen = [node_id], {node_id}
    while stack:
        for nxt in graph.successors(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return [n for n in graph.nodes if n in seen]


def placement(graph: Graph, edge: Edge, pos: tuple[float, float],
              moving: str | None = None) -> tuple[tuple[float, float], Moves]:
    """Where a card spliced into ``edge`` goes and what moves to make room.

    For a wire running down (the usual flow) the card sits one row below the source, lined up
    with it when the wire is about vertical, and the destination with all that follows moves
    down as far as needed; other wires keep the card where it was dropped (``pos``).
    """
    sx, sy = graph.nodes[edge.src].pos
    dx, dy = graph.nodes[edge.dst].pos
    if dy <= sy:
        return pos, {}
    x = sx if abs(dx - sx) < NODE_W / 2 else pos[0]
    y = sy + ROW
    shift = y + ROW - dy
    moves: Moves = {}
    if shift > 0:
        for n in _descendants(graph, edge.dst):
            if n != moving:
                old = graph.nodes[n].pos
                moves[n] = (old, (old[0], old[1] + shift))
    return (x, y), moves
