"""What fits where: the layer types that accept a tensor, and the wires that close a gap.

The canvas asks these when a wire is dropped on nothing (offer only what fits), when a node is
dropped on a wire (insert it only if it fits) and when a node in a chain is deleted (reconnect
its neighbours only if the result is valid). The catalog's own shape rules decide, so the
answer never disagrees with the analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import catalog
from .catalog import Misfit
from .errors import ParamError
from .graph import Edge, Graph
from .shapes import analyze


def accepts(layer_type: str, shape: Sequence[int], dtype: str = "float32",
            params: Mapping[str, Any] | None = None) -> bool:
    """Whether a ``layer_type`` node (default params unless given) can take ``shape`` in.

    Merges are asked with the same shape on each of their ports; dtype rules are the ones
    ``analyze`` applies (Embedding takes int64 ids, most layers only floats).
    """
    spec = catalog.get(layer_type)
    if spec is None or spec.inputs == 0:
        return False
    if spec.dtype == "index" and dtype != "int64":
        return False
    if spec.dtype == "float" and dtype == "int64":
        return False
    try:
        resolved = spec.schema.resolve(spec.schema.validate(dict(params or {}), "params"))
        spec.infer([tuple(shape)] * spec.min_inputs, resolved)
    except (Misfit, ParamError):
        return False
    return True


def layers_accepting(shape: Sequence[int], dtype: str = "float32") -> list[str]:
    """Every layer type whose input fits ``shape`` (no batch dim), in the palette's order."""
    return [spec.type for specs in catalog.by_category().values() for spec in specs
            if accepts(spec.type, shape, dtype)]


def bridges(graph: Graph, ids: Iterable[str]) -> list[Edge]:
    """The edges that close the gaps left by deleting ``ids``.

    A run of deleted nodes that each have exactly one input and one output is bridged from the
    node before it to the port after it, as long as that connection is allowed and its
    destination still gets a shape (a Linear after a deleted Flatten would not: it is left
    unconnected rather than wired into an error).
    """
    gone = {i for i in ids if i in graph}
    spans: list[Edge] = []
    for nid in (n for n in graph.nodes if n in gone):
        ins = graph.in_edges(nid)
        if len(ins) != 1 or ins[0].src in gone:
            continue  # not the head of a run
        tail: str | None = nid
        out: Edge | None = None
        while tail is not None:
            outs = graph.out_edges(tail)
            if len(outs) != 1 or len(graph.in_edges(tail)) != 1:
                tail = None
                break
            out = outs[0]
            if out.dst not in gone:
                break
            tail = out.dst
        if tail is not None and out is not None:
            spans.append(Edge(ins[0].src, out.dst, out.port))
    if not spans:
        return []
    trial = graph.copy()
    for nid in gone:
        trial.remove_node(nid)
    kept = []
    for e in spans:
        if trial.can_connect(e.src, e.dst, e.port):
            trial.connect(e.src, e.dst, e.port)
            kept.append(e)
    while kept:  # drop the bridges that would feed a misfit, until none does
        infos = analyze(trial).nodes
        bad = [e for e in kept if infos[e.src].shape is not None and infos[e.dst].shape is None]
        if not bad:
            break
        for e in bad:
            trial.disconnect(e)
            kept.remove(e)
    return kept
