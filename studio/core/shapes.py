"""Shape inference and validation: pure-Python formulas, instant on every edit.

``analyze(graph)`` gives each node's output shape, parameter count and multiply-adds, plus a
list of problems, each naming its node and saying what to do. Nothing here calls torch; the
formulas are cross-checked against torch in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from . import catalog
from .catalog import Misfit, Shape
from .errors import CycleError, ParamError
from .graph import Graph
from .init import validate_init

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """Something wrong with the graph, shown on the node and in the problems panel."""

    node: str | None
    message: str
    severity: Severity = "error"
    field: str | None = None
    fix: str | None = None  # a layer type whose insertion before the node would fix it

    def __str__(self) -> str:
        return self.message


@dataclass
class NodeInfo:
    shape: Shape | None = None
    dtype: str = "float32"
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    in_shapes: list[Shape] = field(default_factory=list)


@dataclass
class Analysis:
    """The result of one inference pass over a graph."""

    order: list[str]
    nodes: dict[str, NodeInfo]
    problems: list[Problem]
    inputs: list[str]
    output: str | None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def total_params(self) -> int:
        return sum(i.params for i in self.nodes.values())

    @property
    def trainable_params(self) -> int:
        return sum(i.trainable_params for i in self.nodes.values())

    @property
    def total_macs(self) -> int:
        return sum(i.macs for i in self.nodes.values())

    @property
    def activation_values(self) -> int:
        """Values stored per sample for the backward pass: every node's output."""
        return sum(math.prod(i.shape) for i in self.nodes.values() if i.shape is not None)

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def output_shape(self) -> Shape | None:
        return self.nodes[self.output].shape if self.output else None


def describe(graph: Graph, node_id: str) -> str:
    """``Linear 'fc1'``: how problems name a node."""
    return f"{graph.nodes[node_id].type} '{node_id}'"


def analyze(graph: Graph) -> Analysis:
    """Infer every shape and collect every problem; never raises on a bad graph."""
    problems: list[Problem] = []
    try:
        order = graph.topological_order()
    except CycleError as exc:
        return Analysis([], {n: NodeInfo() for n in graph.nodes}, [Problem(None, str(exc))],
                        [], None)

    infos: dict[str, NodeInfo] = {}
    for nid in order:
        node = graph.nodes[nid]
        info = infos[nid] = NodeInfo()
        name = f"{node.type} '{nid}'"
        spec = catalog.get(node.type)
        if spec is None:
            problems.append(Problem(nid, f"{name}: unknown layer type {node.type!r}"))
            continue
        try:
            params = spec.schema.resolve(spec.schema.validate(node.params, "params"))
        except ParamError as exc:
            problems.append(Problem(nid, f"{name}: {exc}", field=(exc.where or "")[7:] or None))
            continue
        if node.init:  # a param turned off (bias) may have taken away a tensor init names
            try:
                validate_init(node.init, spec.init_tensors(params))
            except ParamError as exc:
                problems.append(Problem(nid, f"{name}: {exc}", field=exc.where))
                continue
        in_edges = graph.in_edges(nid)
        ports = {e.port for e in in_edges}
        missing = [p for p in range(spec.min_inputs) if p not in ports]
        if spec.inputs is None and ports and max(ports) + 1 != len(ports):
            missing = [p for p in range(max(ports)) if p not in ports]
        if missing:
            what = "input" if spec.inputs == 1 else f"input port {missing[0]}"
            problems.append(Problem(nid, f"{name}: {what} is not connected"))
            continue
        upstream = [infos[e.src] for e in in_edges]
        in_shapes = [u.shape for u in upstream if u.shape is not None]
        if len(in_shapes) < len(upstream):
            continue  # the cause is reported on the upstream node
        info.in_shapes = in_shapes
        in_dtype = upstream[0].dtype if upstream else "float32"
        if spec.dtype == "index" and in_dtype != "int64":
            problems.append(Problem(nid, f"{name}: needs integer token ids; set the Input "
                                         "dtype to int64"))
            continue
        if spec.dtype == "float" and in_dtype == "int64":
            problems.append(Problem(nid, f"{name}: receives integer ids; only Embedding (and "
                                         "reshaping layers) take int64 input"))
            continue
        try:
            out = spec.infer(in_shapes, params)
        except Misfit as exc:
            problems.append(Problem(nid, f"{name}: {exc.message}", field=exc.field, fix=exc.fix))
            continue
        info.shape = tuple(out)
        info.dtype = (params["dtype"] if spec.dtype == "source"
                      else in_dtype if spec.dtype == "any" else "float32")
        info.params = spec.count_params(in_shapes, params, info.shape)
        info.trainable_params = info.params if node.trainable else 0
        info.macs = spec.count_macs(in_shapes, params, info.shape)

    inputs = [n for n in order if graph.nodes[n].is_input]
    if not inputs:
        problems.append(Problem(None, "the network has no Input node; add one from the palette"))
    sinks = [n for n in graph.sinks() if not graph.nodes[n].is_input
             or not graph.out_edges(n)]
    loose = [n for n in sinks if graph.nodes[n].is_input]
    for n in loose:
        problems.append(Problem(n, f"Input '{n}' feeds nothing", severity="warning"))
    input_set = set(inputs)
    outs = [n for n in sinks if not graph.nodes[n].is_input
            and graph.ancestors(n) & input_set]  # loose nodes already have their problem
    output: str | None = None
    if len(outs) == 1:
        output = outs[0]
    elif len(outs) > 1:
        names = ", ".join(outs)
        for n in outs:
            problems.append(Problem(n, f"{describe(graph, n)} is one of {len(outs)} outputs "
                                       f"({names}); a network needs exactly one output: "
                                       "connect or delete the others"))
    return Analysis(order, infos, problems, inputs, output)


def format_shape(shape: Shape | None) -> str:
    """``(N, 32, 26, 26)``: the batch is shown as N."""
    if shape is None:
        return "?"
    return "(N, " + ", ".join(str(d) for d in shape) + ")"
