"""The Keras-style model summary shared by the CLI, the GUI's summary panel and tests."""

from __future__ import annotations

from typing import Any

from .graph import Graph
from .shapes import Analysis, analyze, format_shape


def summary_dict(graph: Graph, analysis: Analysis | None = None) -> dict[str, Any]:
    """The summary as plain data (``studio summary --json``)."""
    a = analysis or analyze(graph)
    nodes = []
    for nid in a.order:
        info = a.nodes[nid]
        node = graph.nodes[nid]
        nodes.append({
            "id": nid,
            "type": node.type,
            "inputs": graph.predecessors(nid),
            "output_shape": list(info.shape) if info.shape is not None else None,
            "params": info.params,
            "trainable": node.trainable,
            "macs": info.macs,
        })
    return {
        "total_params": a.total_params,
        "trainable_params": a.trainable_params,
        "frozen_params": a.total_params - a.trainable_params,
        "total_macs": a.total_macs,
        "activation_bytes_per_sample": 4 * a.activation_values,
        "output": a.output,
        "nodes": nodes,
        "problems": [{"node": p.node, "severity": p.severity, "message": p.message}
                     for p in a.problems],
    }


def human(n: float, unit: str = "") -> str:
    """1234567 → '1.23 M'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def summary_table(graph: Graph, analysis: Analysis | None = None, name: str = "") -> str:
    """The summary as the text table ``studio summary`` prints."""
    a = analysis or analyze(graph)
    header = ("Layer (type)", "Output shape", "Param #", "Mult-adds", "Connected to")
    rows = []
    for nid in a.order:
        info = a.nodes[nid]
        node = graph.nodes[nid]
        frozen = "" if node.trainable else " (frozen)"
        rows.append((f"{nid} ({node.type}){frozen}", format_shape(info.shape),
                     f"{info.params:,}", f"{info.macs:,}", ", ".join(graph.predecessors(nid))))
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    def line(cells: tuple[str, ...]) -> str:
        parts = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1]),
                 cells[2].rjust(widths[2]), cells[3].rjust(widths[3]), cells[4]]
        return "  ".join(parts).rstrip()
    total_w = sum(widths) + 8
    out = []
    if name:
        out.append(f'Model: "{name}"')
    out += ["=" * total_w, line(header), "=" * total_w]
    out += [line(r) for r in rows]
    out.append("=" * total_w)
    act = 4 * a.activation_values
    out.append(f"Total params: {a.total_params:,}")
    out.append(f"Trainable params: {a.trainable_params:,}")
    out.append(f"Non-trainable params: {a.total_params - a.trainable_params:,}")
    out.append(f"Mult-adds per sample: {a.total_macs:,} ({human(a.total_macs)})")
    out.append(f"Params size: {human(4 * a.total_params, 'B')}; activations per sample: "
               f"{human(act, 'B')} (float32)")
    for p in a.problems:
        out.append(f"{p.severity}: {p.message}")
    return "\n".join(out)
