"""The network graph: nodes (layers) and edges into numbered input ports.

The graph is the model the canvas mirrors. Every change goes through a method here, which
checks it, applies it and announces it through a ``Signal``, so views and undo commands never
edit the dictionaries directly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .blockdef import BLOCK, BlockDef, block_params, check_name, contains
from .errors import CycleError, GraphError, PortError
from .events import Signal
from .init import validate_init

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: names a built module already has (torch's nn.Module, Studio's GraphModule): a node
#: named so could not be added to it
RESERVED_IDS = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_blocks", "_buffers",
    "_call_impl", "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name", "_input_slots",
    "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks",
    "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules", "_n_slots",
    "_named_members", "_non_persistent_buffers_set", "_out_slot", "_parameters", "_plan",
    "_register_load_state_dict_pre_hook", "_register_state_dict_hook",
    "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward", "_state_dict_hooks",
    "_state_dict_pre_hooks", "_version", "_wrapped_call_impl", "add_module", "apply", "bfloat16",
    "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches",
    "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "half", "input_ids", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "output_id",
    "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
    "to_empty", "train", "training", "type", "xpu", "zero_grad",
})


def snap(pos: tuple[float, float]) -> tuple[float, float]:
    """Positions to 0.01, the precision project files keep: what the canvas shows is exactly
    what a save and a load give back."""
    return (round(float(pos[0]), 2) + 0.0, round(float(pos[1]), 2) + 0.0)


@dataclass
class Node:
    """One layer on the canvas. ``params`` holds only what the user set; defaults fill the rest.
    ``init``: how tensors start, when not as torch builds them (``studio.core.init``)."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: tuple[float, float] = (0.0, 0.0)
    trainable: bool = True
    init: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pos = snap(self.pos)

    @property
    def spec(self) -> catalog.LayerSpec | None:
        return catalog.get(self.type)

    @property
    def is_input(self) -> bool:
        """A source of the network (the catalog's layers with no input port)."""
        spec = self.spec
        return spec is not None and spec.inputs == 0

    def resolved_params(self) -> dict[str, Any]:
        spec = self.spec
        return spec.schema.resolve(self.params) if spec else dict(self.params)

    def copy(self) -> Node:
        return Node(self.id, self.type, copy.deepcopy(self.params), self.pos, self.trainable,
                    copy.deepcopy(self.init))


@dataclass(frozen=True)
class Edge:
    """Output of ``src`` feeds input ``port`` of ``dst``."""

    src: str
    dst: str
    port: int = 0


def check_id(node_id: str) -> None:
    """Node ids become attribute and parameter names in the built module and exported code."""
    if not isinstance(node_id, str) or not ID_RE.match(node_id):
        raise GraphError(
            f"node id {node_id!r} must start with a letter or _ and contain only letters, "
            "digits and _ (at most 64)"
        )
    if node_id in RESERVED_IDS:
        raise GraphError(f"node id {node_id!r} is the name of something every PyTorch module "
                         "has; choose another")


class Graph:
    """A directed acyclic graph of layers.

    Signals: ``node_added(node)``, ``node_removed(node)``, ``node_changed(node)`` (params,
    init, position or trainable flag), ``edge_added(edge)``, ``edge_removed(edge)``.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._in: dict[str, dict[int, Edge]] = {}
        self._out: dict[str, list[Edge]] = {}
        self.node_added = Signal()
        self.node_removed = Signal()
        self.node_changed = Signal()
        self.edge_added = Signal()
        self.edge_removed = Signal()
        #: block definitions by name, shared with the graphs of the definitions themselves
        self.blocks: dict[str, BlockDef] = {}
        self.blocks_changed = Signal()  # (name): a definition added, replaced or removed

    # -- queries --------------------------------------------------------------------------

    @property
    def edges(self) -> list[Edge]:
        return [e for n in self.nodes for e in self._out[n]]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"no node {node_id!r}") from None

    def in_edges(self, node_id: str) -> list[Edge]:
        """Incoming edges sorted by port."""
        ins = self._in[node_id]
        return [ins[p] for p in sorted(ins)]

    def out_edges(self, node_id: str) -> list[Edge]:
        return list(self._out[node_id])

    def predecessors(self, node_id: str) -> list[str]:
        return [e.src for e in self.in_edges(node_id)]

    def successors(self, node_id: str) -> list[str]:
        return [e.dst for e in self._out[node_id]]

    def sources(self) -> list[str]:
        return [n for n in self.nodes if not self._in[n]]

    def sinks(self) -> list[str]:
        return [n for n in self.nodes if not self._out[n]]

    def new_id(self, layer_type: str) -> str:
        """A fresh readable id: ``conv2d_3`` for the third Conv2d."""
        base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", layer_type).lower().replace("__", "_")
        base = re.sub(r"[^a-z0-9_]", "", base) or "node"
        i = 1
        while f"{base}_{i}" in self.nodes:
            i += 1
        return f"{base}_{i}"

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, stable in insertion order so builds and summaries are repeatable.

        Raises CycleError naming the nodes on a loop (only possible for graphs built without
        the checks, such as a hand-edited file).
        """
        indeg = {n: len(self._in[n]) for n in self.nodes}
        ready = [n for n in self.nodes if indeg[n] == 0]
        order: list[str] = []
        i = 0
        while i < len(ready):
            n = ready[i]
            i += 1
            order.append(n)
            for e in self._out[n]:
                indeg[e.dst] -= 1
                if indeg[e.dst] == 0:
                    ready.append(e.dst)
        if len(order) != len(self.nodes):
            stuck = [n for n in self.nodes if indeg[n] > 0]
            raise CycleError(f"the graph has a cycle through {', '.join(stuck)}")
        return order

    def reaches(self, start: str, goal: str) -> bool:
        """Whether a path leads from start to goal (start reaches itself)."""
        stack, seen = [start], {start}
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            for e in self._out[n]:
                if e.dst not in seen:
                    seen.add(e.dst)
                    stack.append(e.dst)
        return False

    def ancestors(self, node_id: str) -> set[str]:
        stack, seen = [node_id], set()
        while stack:
            for e in self._in[stack.pop()].values():
                if e.src not in seen:
                    seen.add(e.src)
                    stack.append(e.src)
        return seen

    def port_limit(self, node_id: str) -> int | None:
        """How many inputs a node takes (None: any number from two)."""
        node = self.node(node_id)
        if node.type == BLOCK:
            defn = self.blocks.get(node.params.get("block", ""))
            return len(defn.inputs) if defn is not None else None
        spec = node.spec
        return spec.inputs if spec is not None else None

    def free_port(self, node_id: str) -> int | None:
        """The lowest unconnected input port, or None when a fixed-arity node is full."""
        used = self._in[node_id]
        limit = self.port_limit(node_id)
        port = 0
        while port in used:
            port += 1
        if limit is not None and port >= limit:
            return None
        return port

    # -- checks ---------------------------------------------------------------------------

    def check_connect(self, src: str, dst: str, port: int = 0) -> None:
        """Raise a GraphError subclass saying why src → dst:port is not allowed."""
        self.node(src)
        target = self.node(dst)
        if src == dst:
            raise CycleError(f"{dst!r} cannot feed itself")
        spec = target.spec
        if spec is not None and spec.inputs == 0:
            raise PortError(f"{dst!r} ({target.type}) takes no input")
        if not isinstance(port, int) or isinstance(port, bool) or port < 0:
            raise PortError(f"input port {port!r} of {dst!r} does not exist")
        limit = self.port_limit(dst)
        if limit is not None and port >= limit:
            raise PortError(f"{dst!r} ({target.type}) has {limit} input"
                            f"{'' if limit == 1 else 's'}; port {port} does not exist")
        if self.reaches(dst, src):
            raise CycleError(f"connecting {src!r} → {dst!r} would make a cycle")
        if port in self._in[dst]:
            held = self._in[dst][port].src
            raise PortError(f"input {port} of {dst!r} is already fed by {held!r}; "
                            "disconnect it first")

    def can_connect(self, src: str, dst: str, port: int = 0) -> bool:
        try:
            self.check_connect(src, dst, port)
        except GraphError:
            return False
        return True

    # -- edits ----------------------------------------------------------------------------

    def index(self, node_id: str) -> int:
        """Position in insertion order (an undo puts a deleted node back where it was)."""
        return list(self.nodes).index(node_id)

    def add_node(self, node: Node, index: int | None = None) -> Node:
        check_id(node.id)
        if node.id in self.nodes:
            raise GraphError(f"a node named {node.id!r} already exists")
        if index is None or index >= len(self.nodes):
            self.nodes[node.id] = node
        else:
            items = list(self.nodes.items())
            items.insert(index, (node.id, node))
            self.nodes = dict(items)
        self._in[node.id] = {}
        self._out[node.id] = []
        self.node_added.emit(node)
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges; returns both so an undo can put them back."""
        node = self.node(node_id)
        edges = self.in_edges(node_id) + self.out_edges(node_id)
        for e in edges:
            self.disconnect(e)
        del self.nodes[node_id], self._in[node_id], self._out[node_id]
        self.node_removed.emit(node)
        return node, edges

    def connect(self, src: str, dst: str, port: int = 0) -> Edge:
        self.check_connect(src, dst, port)
        edge = Edge(src, dst, port)
        self._in[dst][port] = edge
        self._out[src].append(edge)
        self.edge_added.emit(edge)
        return edge

    def disconnect(self, edge: Edge) -> None:
        if self._in.get(edge.dst, {}).get(edge.port) != edge:
            raise GraphError(f"no edge {edge.src!r} → {edge.dst!r}:{edge.port}")
        del self._in[edge.dst][edge.port]
        self._out[edge.src].remove(edge)
        self.edge_removed.emit(edge)

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace a node's explicit params (validated against the catalog when it knows it)."""
        node = self.node(node_id)
        spec = node.spec
        if node.type == BLOCK:
            node.params = block_params(params, f"{node_id}.params")
        else:
            node.params = (spec.schema.validate(params, f"{node_id}.params") if spec
                           else dict(params))
        self.node_changed.emit(node)

    def set_init(self, node_id: str, init: dict[str, Any]) -> None:
        """Replace a node's initialisation, checked against the tensors its params give it."""
        node = self.node(node_id)
        spec = node.spec
        tensors = spec.init_tensors(node.resolved_params()) if spec else {}
        node.init = validate_init(init, tensors, f"{node_id}.init")
        self.node_changed.emit(node)

    def move_node(self, node_id: str, pos: tuple[float, float]) -> None:
        node = self.node(node_id)
        node.pos = snap(pos)
        self.node_changed.emit(node)

    def set_trainable(self, node_id: str, trainable: bool) -> None:
        node = self.node(node_id)
        node.trainable = bool(trainable)
        self.node_changed.emit(node)

    # -- blocks ---------------------------------------------------------------------------

    def set_block(self, defn: BlockDef, index: int | None = None) -> BlockDef | None:
        """Add or replace a block definition; returns the one replaced (for undo). A new one
        goes at ``index`` in the file's order (an undo puts a removed one back where it was),
        else last."""
        check_name(defn.name)
        if contains({**self.blocks, defn.name: defn}, defn.name, defn.name):
            raise GraphError(f"block {defn.name!r} would contain itself")
        old = self.blocks.get(defn.name)
        defn.graph.blocks = self.blocks
        if old is None and index is not None and index < len(self.blocks):
            items = list(self.blocks.items())
            items.insert(index, (defn.name, defn))
            self.blocks.clear()  # the same dict: every definition's graph shares it
            self.blocks.update(items)
        else:
            self.blocks[defn.name] = defn
        self.blocks_changed.emit(defn.name)
        return old

    def remove_block(self, name: str) -> BlockDef:
        try:
            defn = self.blocks.pop(name)
        except KeyError:
            raise GraphError(f"no block named {name!r}") from None
        self.blocks_changed.emit(name)
        return defn

    # -- bulk -----------------------------------------------------------------------------

    def _link(self, edge: Edge) -> None:
        """Add an edge without the checks (copies of graphs already checked)."""
        self._in[edge.dst][edge.port] = edge
        self._out[edge.src].append(edge)

    def copy(self, with_blocks: bool = True) -> Graph:
        """A deep copy without subscribers (runs train a snapshot, not the live graph), with
        copies of the block definitions shared by the copy and its definitions."""
        g = Graph()
        for n in self.nodes.values():
            g.add_node(n.copy())
        for e in self.edges:
            g._link(e)
        if with_blocks:
            for name, d in self.blocks.items():
                c = BlockDef(name, d.graph.copy(with_blocks=False), d.description)
                c.graph.blocks = g.blocks
                g.blocks[name] = c
        return g

    @classmethod
    def from_parts(cls, nodes: Iterable[Node], edges: Iterable[Edge]) -> Graph:
        """Build a graph checking every edge, as a loaded file must be checked."""
        g = cls()
        for n in nodes:
            g.add_node(n)
        for e in edges:
            g.connect(e.src, e.dst, e.port)
        return g

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def structure(self) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]]]:
        """A comparable snapshot (for tests and undo checks): nodes and edges, and every block
        definition's (a definition's graph shares the dict, so theirs leave it out)."""
        nodes, edges = self._own_structure()
        if self.blocks:
            nodes.append(("(blocks)", [(k, d.description, d.graph._own_structure())
                                       for k, d in sorted(self.blocks.items())]))
        return nodes, edges

    def _own_structure(self) -> tuple[list[tuple[Any, ...]], list[tuple[str, str, int]]]:
        nodes: list[tuple[Any, ...]] = [(n.id, n.type, n.params, n.pos, n.trainable, n.init)
                                         for n in self.nodes.values()]
        return nodes, sorted((e.src, e.dst, e.port) for e in self.edges)
