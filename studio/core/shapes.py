"""Shape inference and validation: pure-Python formulas, instant on every edit.

``analyze(graph)`` gives each node's output shape, parameter count and multiply-adds, plus a
list of problems, each naming its node and saying what to do. Nothing here calls torch; the
formulas are cross-checked against torch in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from . import catalog
from .blockdef import BLOCK, MAX_DEPTH, block_params
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
    #: a block instance: the analysis of its definition, one per repetition
    inner: list[Analysis] = field(default_factory=list)


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
        """Values stored per sample for the backward pass: every node's output (a block's:
        every output inside it)."""
        total = 0
        for i in self.nodes.values():
            if i.inner:
                total += sum(a.activation_values - sum(math.prod(a.nodes[n].shape or ())
                                                       for n in a.inputs) for a in i.inner)
            elif i.shape is not None:
                total += math.prod(i.shape)
        return total

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def output_shape(self) -> Shape | None:
        return self.nodes[self.output].shape if self.output else None


def describe(graph: Graph, node_id: str) -> str:
    """``Linear 'fc1'``: how problems name a node."""
    return f"{graph.nodes[node_id].type} '{node_id}'"


#: what a block instance feeds its definition's Input nodes: id → (shape, dtype)
Feed = dict[str, tuple[Shape, str]]


def analyze(graph: Graph, feed: Feed | None = None, within: tuple[str, ...] = (),
            memo: dict[Any, Analysis] | None = None) -> Analysis:
    """Infer every shape and collect every problem; never raises on a bad graph.

    ``feed`` gives a block definition's Input nodes the shapes an instance hands them;
    ``within`` names the blocks being analysed around it (a block may not use itself);
    ``memo`` keeps each block's analysis per input shapes, so uses and repetitions that are
    fed alike share one (a block repeated 64 times inside one repeated 64 times is analysed
    once, not 4,096 times).
    """
    if len(within) > MAX_DEPTH:
        return Analysis([], {n: NodeInfo() for n in graph.nodes},
                        [Problem(None, f"blocks nest more than {MAX_DEPTH} deep")], [], None)
    memo = {} if memo is None else memo
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
        if feed is not None and nid in feed:
            info.shape, info.dtype = feed[nid]
            continue
        if node.type == BLOCK:
            _block(graph, nid, infos, problems, within, memo)
            continue
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


def _block(graph: Graph, nid: str, infos: dict[str, NodeInfo], problems: list[Problem],
           within: tuple[str, ...], memo: dict[Any, Analysis]) -> None:
    """A block instance: its definition analysed with the instance's inputs, once per
    repetition, each repetition fed the one before's output."""
    node, info = graph.nodes[nid], infos[nid]
    try:
        params = block_params(node.params)
    except ParamError as exc:
        problems.append(Problem(nid, f"Block '{nid}': {exc}", field=(exc.where or "")[7:]))
        return
    bname = params["block"]
    name = f"Block '{nid}' ({bname})"
    defn = graph.blocks.get(bname)
    if defn is None:
        problems.append(Problem(nid, f"{name}: no block named {bname!r} in this project"))
        return
    if bname in within:
        problems.append(Problem(nid, f"{name}: block {bname!r} uses itself"))
        return
    ports = defn.inputs
    in_edges = graph.in_edges(nid)
    have = {e.port for e in in_edges}
    missing = [p for p in range(len(ports)) if p not in have]
    if missing:
        what = "input" if len(ports) == 1 else f"input port {missing[0]} ('{ports[missing[0]]}')"
        problems.append(Problem(nid, f"{name}: {what} is not connected"))
        return
    if not ports:
        problems.append(Problem(nid, f"{name}: the block has no Input node to feed"))
        return
    if params["repeat"] > 1 and len(ports) != 1:
        problems.append(Problem(nid, f"{name}: only a block with one input can repeat "
                                     f"(this one has {len(ports)})", field="repeat"))
        return
    upstream = [infos[e.src] for e in in_edges]
    if any(u.shape is None for u in upstream):
        return  # the cause is reported upstream
    info.in_shapes = [u.shape for u in upstream if u.shape is not None]
    feed: Feed = {p: (u.shape, u.dtype) for p, u in zip(ports, upstream, strict=True)
                  if u.shape is not None}
    for r in range(params["repeat"]):
        key = (bname, id(defn.graph), tuple(sorted(feed.items())))
        a = memo.get(key) or analyze(defn.graph, feed, (*within, bname), memo)
        memo[key] = a
        if a.errors or a.output is None:
            first = a.errors[0] if a.errors else Problem(None, "the block has no output layer")
            where = "" if r == 0 else (f"repetition {r + 1} gets {format_shape(feed[ports[0]][0])}"
                                       ", the output of the one before, and does not fit: ")
            problems.append(Problem(nid, f"{name}: {where}{first.message}",
                                    field="repeat" if r else None))
            info.inner = []
            return
        info.inner.append(a)
        out = a.nodes[a.output]
        feed = {ports[0]: (out.shape, out.dtype)} if out.shape is not None else {}
    last = info.inner[-1]
    out = last.nodes[last.output]  # type: ignore[index]
    info.shape, info.dtype = out.shape, out.dtype
    info.params = sum(a.total_params for a in info.inner)
    info.trainable_params = sum(a.trainable_params for a in info.inner) if node.trainable else 0
    info.macs = sum(a.total_macs for a in info.inner)


def format_shape(shape: Shape | None) -> str:
    """``(N, 32, 26, 26)``: the batch is shown as N."""
    if shape is None:
        return "?"
    return "(N, " + ", ".join(str(d) for d in shape) + ")"
