"""Reusable blocks: grouping layers into a block, and putting them back.

Grouping and ungrouping are pure functions returning a plan; the editor applies a plan as
one undo step, the CLI and the importer apply it directly. What a definition and an instance
are: ``studio.core.blockdef``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .blockdef import BLOCK, BlockDef, block_params, check_name, free_name, instance_name
from .errors import GraphError
from .graph import Edge, Graph, Node
from .shapes import analyze

# -- grouping -----------------------------------------------------------------------------

@dataclass
class GroupPlan:
    """What grouping a selection does: the definition made, the instance that replaces the
    selection and the edges that connect it."""

    definition: BlockDef
    instance: Node
    removed: list[str]
    edges: list[tuple[str, str, int]] = field(default_factory=list)


def plan_group(graph: Graph, ids: list[str], name: str | None = None) -> GroupPlan:
    """Group the nodes ``ids`` into a new block; raises GraphError saying why it cannot."""

    chosen = [i for i in graph.nodes if i in set(ids)]
    if not chosen:
        raise GraphError("select the layers to group first")
    inside = set(chosen)
    for i in chosen:
        if graph.nodes[i].is_input:
            raise GraphError(f"'{i}' is an Input; a block holds layers only (its inputs "
                             "come from the edges that enter it)")
    leaving = [e for i in chosen for e in graph.out_edges(i) if e.dst not in inside]
    sources = list(dict.fromkeys(e.src for e in leaving))
    if len(sources) > 1:
        raise GraphError(f"a block has one output, but {', '.join(map(repr, sources))} all "
                         "feed layers outside the selection; group them with what they feed")
    ends = [i for i in chosen if not any(e.dst in inside for e in graph.out_edges(i))]
    if not sources and len(ends) > 1:
        raise GraphError(f"a block has one output, but {', '.join(map(repr, ends))} all end "
                         "the selection")
    entering = [e for i in chosen for e in graph.in_edges(i) if e.src not in inside]
    # a path that leaves the selection and comes back would close a loop through the block
    for e in leaving:
        for back in entering:
            if graph.reaches(e.dst, back.src):
                raise GraphError(f"the path from '{e.dst}' back to '{back.dst}' runs outside "
                                 "the selection; select the layers between them too")
    outer_sources = list(dict.fromkeys(e.src for e in entering))
    name = check_name(name) if name else free_name(graph.blocks, _default_name(graph, chosen))
    if name in graph.blocks:
        raise GraphError(f"a block named {name!r} already exists")
    inner = Graph()
    xs = min(graph.nodes[i].pos[0] for i in chosen)
    ys = [graph.nodes[i].pos[1] for i in chosen]
    port_ids: dict[str, str] = {}
    for k, src in enumerate(outer_sources):
        pid = "x" if k == 0 else f"x{k + 1}"
        while pid in inside:
            pid += "_"
        port_ids[src] = pid
        shape = _shape_hint(graph, src)
        inner.add_node(Node(pid, "Input", {"shape": shape} if shape else {},
                            (xs + 220.0 * k, min(ys) - 110.0)))
    for i in chosen:
        inner.add_node(graph.nodes[i].copy())
    for i in chosen:
        for e in graph.in_edges(i):
            inner._link(Edge(port_ids.get(e.src, e.src), e.dst, e.port))
    defn = BlockDef(name, inner)
    out = sources[0] if sources else ends[0]
    pos = graph.nodes[out].pos
    cx = sum(graph.nodes[i].pos[0] for i in chosen) / len(chosen)
    cy = sum(ys) / len(ys)
    instance = Node(graph.new_id(name), BLOCK, {"block": name, "repeat": 1},
                    (cx, cy) if len(chosen) > 1 else pos)
    edges = [(src, instance.id, k) for k, src in enumerate(outer_sources)]
    edges += [(instance.id, e.dst, e.port) for e in leaving]
    return GroupPlan(defn, instance, chosen, edges)


def _default_name(graph: Graph, ids: list[str]) -> str:
    """A first name from what the layers do (``ConvBlock``); the user renames it."""
    kinds = {graph.nodes[i].type for i in ids}
    for word, hint in (("Attention", "Attention"), ("Conv", "Conv"), ("LSTM", "Recurrent"),
                       ("GRU", "Recurrent"), ("RNN", "Recurrent"), ("Linear", "Dense")):
        if any(word in k for k in kinds):
            return f"{hint}Block"
    return "Block"


def _shape_hint(graph: Graph, node_id: str) -> list[int] | None:
    """The shape a node gives now (for a definition's Input, seen alone)."""

    try:
        shape = analyze(graph).nodes[node_id].shape
    except (KeyError, GraphError):
        return None
    return list(shape) if shape else None



@dataclass
class UngroupPlan:
    """What ungrouping an instance does: the nodes put in its place and their edges."""

    instance: str
    nodes: list[Node]
    edges: list[tuple[str, str, int]]


def plan_ungroup(graph: Graph, node_id: str) -> UngroupPlan:
    """Put a block instance's layers back in its place; raises GraphError when it cannot.

    Layers keep their ids where the network has no such id yet; otherwise, and for every
    repetition of a repeated block, they are prefixed by the instance's (``layer1_0_conv1``).
    """
    node = graph.node(node_id)
    name = instance_name(node)
    if name is None:
        raise GraphError(f"'{node_id}' is not a block")
    defn = graph.blocks.get(name)
    if defn is None:
        raise GraphError(f"block {name!r} is not defined in this project")
    repeat = block_params(node.params)["repeat"]
    ports = defn.inputs
    if repeat > 1 and len(ports) != 1:
        raise GraphError(f"'{node_id}' repeats a block with {len(ports)} inputs, which cannot "
                         "run in a row; set its repeat to 1 first")
    feeds = {e.port: e.src for e in graph.in_edges(node_id)}
    taken = set(graph.nodes) - {node_id}
    nodes: list[Node] = []
    edges: list[tuple[str, str, int]] = []

    out_inner = analyze(defn.graph).output
    if out_inner is None:
        raise GraphError(f"block {name!r} has no single output to connect")
    current = {p: feeds.get(k) for k, p in enumerate(ports)}
    x0, y0 = node.pos
    xs = [n.pos[0] for n in defn.graph if not n.is_input] or [0.0]
    ys = [n.pos[1] for n in defn.graph if not n.is_input] or [0.0]
    width = max(xs) - min(xs) + 200.0
    for r in range(repeat):
        prefix = node_id if repeat == 1 else f"{node_id}_{r}"
        rename: dict[str, str] = {}
        for n in defn.graph:
            if n.is_input:
                continue
            new = n.id if repeat == 1 and n.id not in taken else _free(f"{prefix}_{n.id}",
                                                                        taken)
            taken.add(new)
            rename[n.id] = new
            c = n.copy()
            c.id = new
            c.pos = (x0 + (c.pos[0] - min(xs)) + r * width, y0 + (c.pos[1] - min(ys)))
            nodes.append(c)
        for e in defn.graph.edges:
            src = current.get(e.src) if e.src in current else rename[e.src]
            if src is not None:
                edges.append((src, rename[e.dst], e.port))
        current = {ports[0]: rename[out_inner]} if ports else {}
        last = rename[out_inner]
    edges += [(last, e.dst, e.port) for e in graph.out_edges(node_id)]
    return UngroupPlan(node_id, nodes, edges)


def _free(base: str, taken: set[str]) -> str:
    """``base`` (cut to an id's 64 characters), or with ``_2``, ``_3``, … where taken."""
    new, k = base[:64], 1
    while new in taken:
        k += 1
        suffix = f"_{k}"
        new = base[:64 - len(suffix)] + suffix
    return new


def expand(graph: Graph) -> Graph:
    """The network with every block instance ungrouped, recursively: the flat graph of every
    layer (what code that looks at single layers reads)."""
    flat = graph.copy()
    while True:
        todo = [n.id for n in flat if n.type == BLOCK]
        if not todo:
            return flat
        for nid in todo:
            apply_ungroup(flat, plan_ungroup(flat, nid))


def apply_group(graph: Graph, plan: GroupPlan) -> None:
    """Apply a grouping plan directly (the editor wraps the same steps in undo commands)."""
    graph.set_block(plan.definition)
    index = min(graph.index(i) for i in plan.removed)
    for i in plan.removed:
        graph.remove_node(i)
    graph.add_node(plan.instance, index)
    for src, dst, port in plan.edges:
        graph.connect(src, dst, port)


def apply_ungroup(graph: Graph, plan: UngroupPlan) -> None:
    index = graph.index(plan.instance)
    graph.remove_node(plan.instance)
    for k, n in enumerate(plan.nodes):
        graph.add_node(n, index + k)
    for src, dst, port in plan.edges:
        graph.connect(src, dst, port)

