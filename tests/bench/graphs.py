"""Large graphs for benchmarks: residual CNNs of any size."""

from __future__ import annotations

from studio.core.graph import Graph, Node
from studio.core.layout import apply_layout


def residual_cnn(n_nodes: int = 200) -> Graph:
    """Input, a stem, then [conv, bn, relu, conv, bn, add, relu] blocks to about n_nodes."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [3, 32, 32]}))
    g.add_node(Node("stem", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}))
    g.connect("input", "stem")
    prev = "stem"
    b = 0
    while len(g) + 7 + 3 <= n_nodes:
        b += 1
        chain = [(f"b{b}_c1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
                 (f"b{b}_n1", "BatchNorm2d", {}), (f"b{b}_r1", "ReLU", {}),
                 (f"b{b}_c2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
                 (f"b{b}_n2", "BatchNorm2d", {})]
        last = prev
        for nid, t, p in chain:
            g.add_node(Node(nid, t, p))
            g.connect(last, nid)
            last = nid
        g.add_node(Node(f"b{b}_add", "Add"))
        g.connect(last, f"b{b}_add", 0)
        g.connect(prev, f"b{b}_add", 1)
        g.add_node(Node(f"b{b}_out", "ReLU"))
        g.connect(f"b{b}_add", f"b{b}_out")
        prev = f"b{b}_out"
    pad = 0
    while len(g) + 3 < n_nodes:
        pad += 1
        g.add_node(Node(f"drop{pad}", "Dropout", {"p": 0.0}))
        g.connect(prev, f"drop{pad}")
        prev = f"drop{pad}"
    for nid, t, p in [("gap", "AdaptiveAvgPool2d", {}), ("flat", "Flatten", {}),
                      ("fc", "Linear", {"out_features": 10})]:
        g.add_node(Node(nid, t, p))
        g.connect(prev, nid)
        prev = nid
    apply_layout(g)
    return g
