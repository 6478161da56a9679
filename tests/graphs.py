"""Graph building shared by the tests."""

from __future__ import annotations

from studio.core.graph import Graph, Node


def net(*layers: tuple[str, str, dict]) -> Graph:
    """A chain of (id, type, params) layers, each feeding the next."""
    g = Graph()
    prev = None
    for nid, t, p in layers:
        g.add_node(Node(nid, t, p))
        if prev:
            g.connect(prev, nid)
        prev = nid
    return g
