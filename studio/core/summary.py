"""The Keras-style model summary shared by the CLI, the GUI's summary panel and tests.

A block instance is one row with its totals, followed by a row for every layer inside it
(each repetition's: ``0.conv1``, ``1.conv1``…), indented, and the table ends with each block
definition's totals over the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .blockdef import BLOCK
from .graph import Graph, Node
from .shapes import Analysis, NodeInfo, analyze, format_shape


@dataclass
class Row:
    """One row: a node of the network, or a layer inside a block instance (``children``)."""

    path: str  # the module path: ``layer1.0.conv1``
    node: Node
    info: NodeInfo
    inputs: list[str]  # the paths feeding it (a block instance: the instance's path)
    frozen: bool  # its own flag, or an enclosing instance's
    children: list[Row] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``Conv2d``; ``Block BasicBlock ×2`` for an instance."""
        if self.node.type != BLOCK:
            return self.node.type
        repeat = self.node.params.get("repeat", 1)
        return f"Block {self.node.params.get('block')}" + (f" ×{repeat}" if repeat != 1 else "")


def summary_rows(graph: Graph, analysis: Analysis | None = None) -> list[Row]:
    """The network's rows in order, each block instance holding its layers' rows."""
    return _rows(graph, analysis or analyze(graph), "", {}, False)


def _rows(graph: Graph, a: Analysis, prefix: str, feed: dict[str, str], frozen: bool
          ) -> list[Row]:
    where: dict[str, str] = {}
    out = []
    for nid in a.order:
        node, info = graph.nodes[nid], a.nodes[nid]
        if nid in feed:  # a definition's Input: what feeds the instance
            where[nid] = feed[nid]
            continue
        path = prefix + nid
        row = Row(path, node, info, [where.get(e.src, prefix + e.src)
                                     for e in graph.in_edges(nid)],
                  frozen or not node.trainable)
        defn = graph.blocks.get(str(node.params.get("block"))) if node.type == BLOCK else None
        if defn is not None and info.inner:
            ports = defn.inputs
            fed = {p: row.inputs[k] for k, p in enumerate(ports) if k < len(row.inputs)}
            for r, inner in enumerate(info.inner):
                pre = f"{path}." if len(info.inner) == 1 else f"{path}.{r}."
                row.children += _rows(defn.graph, inner, pre, fed, row.frozen)
                fed = {ports[0]: pre + inner.output} if inner.output else {}
        where[nid] = path
        out.append(row)
    return out


def _entry(row: Row, top: bool) -> dict[str, Any]:
    info = row.info
    d: dict[str, Any] = {
        "id": row.path,
        "type": row.node.type,
        "inputs": row.inputs,
        "output_shape": list(info.shape) if info.shape is not None else None,
        "params": info.params,
        "trainable": row.node.trainable if top else not row.frozen,
        "macs": info.macs,
    }
    if row.node.type == BLOCK:
        d["block"] = row.node.params.get("block")
        d["repeat"] = row.node.params.get("repeat", 1)
        d["children"] = [_entry(c, False) for c in row.children]
    return d


def summary_dict(graph: Graph, analysis: Analysis | None = None) -> dict[str, Any]:
    """The summary as plain data (``studio summary --json``); a block instance's entry has
    its ``block``, ``repeat`` and ``children``: its layers' entries, ids being paths."""
    a = analysis or analyze(graph)
    rows = summary_rows(graph, a)
    out: dict[str, Any] = {
        "total_params": a.total_params,
        "trainable_params": a.trainable_params,
        "frozen_params": a.total_params - a.trainable_params,
        "total_macs": a.total_macs,
        "activation_bytes_per_sample": 4 * a.activation_values,
        "output": a.output,
        "nodes": [_entry(r, True) for r in rows],
        "problems": [{"node": p.node, "severity": p.severity, "message": p.message}
                     for p in a.problems],
    }
    totals = block_totals(rows)
    if totals:
        out["blocks"] = totals
    return out


def block_totals(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Per block definition, over the whole network: how many times it runs (instances times
    repetitions, inside other blocks too), its instances' paths, params and mult-adds."""
    out: dict[str, dict[str, Any]] = {}

    def visit(rs: list[Row]) -> None:
        for r in rs:
            if r.node.type == BLOCK and r.info.inner:
                t = out.setdefault(str(r.node.params.get("block")),
                                   {"runs": 0, "instances": [], "params": 0, "macs": 0})
                t["runs"] += len(r.info.inner)
                t["instances"].append(r.path)
                t["params"] += r.info.params
                t["macs"] += r.info.macs
            visit(r.children)

    visit(rows)
    return out


def human(n: float, unit: str = "") -> str:
    """1234567 → '1.23 M'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _cells(row: Row, depth: int, top: str) -> tuple[str, ...]:
    """A row's cells; inside an instance, paths are shown from the instance on."""
    def short(p: str) -> str:
        return p[len(top) + 1:] if depth and p.startswith(top + ".") else p

    frozen = " (frozen)" if (row.frozen if depth else not row.node.trainable) else ""
    return ("  " * depth + f"{short(row.path)} ({row.kind}){frozen}", format_shape(row.info.shape),
            f"{row.info.params:,}", f"{row.info.macs:,}", ", ".join(map(short, row.inputs)))


def summary_table(graph: Graph, analysis: Analysis | None = None, name: str = "") -> str:
    """The summary as the text table ``studio summary`` prints."""
    a = analysis or analyze(graph)
    header = ("Layer (type)", "Output shape", "Param #", "Mult-adds", "Connected to")
    rows: list[tuple[str, ...]] = []
    top_rows = summary_rows(graph, a)

    def add(rs: list[Row], depth: int, top: str) -> None:
        for r in rs:
            rows.append(_cells(r, depth, top))
            add(r.children, depth + 1, top or r.path)

    add(top_rows, 0, "")
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
    for bname, t in block_totals(top_rows).items():
        runs = t["runs"]
        out.append(f"Block {bname}: runs {runs} time{'s' if runs != 1 else ''} "
                   f"({', '.join(t['instances'])}), {t['params']:,} params, "
                   f"{t['macs']:,} mult-adds")
    for p in a.problems:
        out.append(f"{p.severity}: {p.message}")
    return "\n".join(out)
