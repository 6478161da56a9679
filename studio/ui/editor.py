"""The project being edited and its undo stack: the one entry point the canvas, palette and
inspector use, so every user action is one undo step (a drag merges into one move, a paste of
many nodes is one macro). The steps themselves are ``studio.ui.commands``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.core import catalog, fit
from studio.core.blockdef import BLOCK, BlockDef
from studio.core.errors import GraphError, StudioError
from studio.core.graph import Edge, Graph, Node
from studio.core.init import validate_init
from studio.core.project import Project
from studio.core.shapes import analyze, format_shape

from .block_edits import LIBRARY_PREFIX, PROJECT_PREFIX, BlockEdits
from .commands import (
    AddNodes,
    Connect,
    Disconnect,
    MoveNodes,
    RemoveNodes,
    SetInit,
    SetParams,
    SetProjectText,
    SetSetting,
    SetSweep,
    SetTrainable,
    Steps,
)


class Editor(BlockEdits, QObject):
    """The project being edited and its undo stack: every change a user makes goes here.

    Refused edits (a cycle, an occupied port, a bad value) do not raise: they emit
    ``refused(message)`` and return False, so no user action can take the window down.
    ``graph`` is the graph on the canvas: the network, or the block opened inside it
    (``scope``); ``network`` is always the whole network.
    """

    refused = Signal(str)
    settings_changed = Signal(str, str)
    #: any change to the network or to one of its block definitions (shapes may change)
    changed = Signal()
    #: a block was opened or closed: the canvas shows another graph
    scope_changed = Signal()
    #: a block definition was added, replaced or removed (the palette lists the project's)
    definitions_changed = Signal()

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.stack = QUndoStack(self)
        #: the blocks opened, outermost first: (instance id, block name)
        self.scope: list[tuple[str, str]] = []
        # the scope is checked once an edit is done (an undo may take away the block shown)
        self._scope_check = QTimer(self, singleShot=True, interval=0)
        self._scope_check.timeout.connect(self._check_scope)
        self._watch(project.graph)
        for d in project.graph.blocks.values():
            self._watch(d.graph)
        project.graph.blocks_changed.connect(self._blocks_changed)

    @property
    def network(self) -> Graph:
        return self.project.graph

    @property
    def graph(self) -> Graph:
        """The graph shown and edited on the canvas (the network while the block shown is
        gone, until the scope is checked)."""
        if not self.scope:
            return self.project.graph
        defn = self.project.graph.blocks.get(self.scope[-1][1])
        return defn.graph if defn is not None else self.project.graph

    def _push(self, cmd: QUndoCommand) -> bool:
        try:
            self.stack.push(cmd)
        except (StudioError, ValueError) as exc:
            self.refused.emit(str(exc))
            return False
        return True

    # -- nodes ----------------------------------------------------------------------------

    def add_layer(self, layer_type: str, pos: tuple[float, float] = (0.0, 0.0),
                  after: str | None = None, params: dict[str, Any] | None = None) -> str | None:
        """Place a layer; with ``after``, wire it to that node's output (one undo step)."""
        if layer_type.startswith(LIBRARY_PREFIX):  # a block from the library
            return self.add_library_block(layer_type[len(LIBRARY_PREFIX):], pos, after)
        if layer_type.startswith(PROJECT_PREFIX):  # another use of the project's own block
            return self.add_instance(layer_type[len(PROJECT_PREFIX):], pos, after)
        if catalog.get(layer_type) is None:
            self.refused.emit(f"unknown layer type {layer_type!r}")
            return None
        nid = self.graph.new_id(layer_type)
        node = Node(nid, layer_type, dict(params or {}), (float(pos[0]), float(pos[1])))
        edges = []
        if after is not None and after in self.graph:
            edges.append(Edge(after, nid, 0))
        ok = self._push(AddNodes(self.graph, [node], edges, f"Add {nid}"))
        return nid if ok else None

    def delete(self, ids: Iterable[str]) -> bool:
        ids = [i for i in ids if i in self.graph]
        return bool(ids) and self._push(RemoveNodes(self.graph, ids))

    def paste(self, nodes: list[Node], edges: list[Edge],
              blocks: Mapping[str, BlockDef] | None = None,
              offset: tuple[float, float] = (40, 40)) -> list[str]:
        """Insert copies under fresh ids (edges among them kept), as one undo step. The blocks
        they use come along (``blocks``: copies from where they were copied): the project's
        own where identical, under a free name where one of that name differs."""
        steps: list[QUndoCommand] = []
        if any(n.type == BLOCK for n in nodes):
            try:
                names, steps = self.paste_blocks(nodes, dict(blocks or {}))
            except StudioError as exc:
                self.refused.emit(str(exc))
                return []
            nodes = [Node(n.id, n.type, {**n.params, "block": names[n.params["block"]]},
                          n.pos, n.trainable, n.init) if n.type == BLOCK else n for n in nodes]
        rename: dict[str, str] = {}
        fresh: list[Node] = []
        taken = set(self.graph.nodes)
        for n in nodes:
            base = re.sub(r"_\d+$", "", n.id)
            new = n.id
            i = 1
            while new in taken:
                i += 1
                new = f"{base}_{i}"
            taken.add(new)
            rename[n.id] = new
            fresh.append(Node(new, n.type, copy.deepcopy(n.params),
                              (n.pos[0] + offset[0], n.pos[1] + offset[1]), n.trainable,
                              copy.deepcopy(n.init)))
        kept = [Edge(rename[e.src], rename[e.dst], e.port) for e in edges
                if e.src in rename and e.dst in rename]
        text = f"Paste {len(fresh)} nodes"
        add = AddNodes(self.graph, fresh, kept, text)
        ok = self._push(Steps(text, [*steps, add]) if steps else add)
        return [n.id for n in fresh] if ok else []

    def connect_nodes(self, src: str, dst: str, port: int | None = None) -> bool:
        if port is None:
            port = self.graph.free_port(dst) if dst in self.graph else 0
            if port is None and src in self.graph and self.graph.reaches(dst, src):
                self.refused.emit(f"connecting {src!r} → {dst!r} would make a cycle")
                return False
            if port is None:
                self.refused.emit(f"every input of {dst!r} is already connected")
                return False
        try:
            self.graph.check_connect(src, dst, port)
        except GraphError as exc:
            self.refused.emit(str(exc))
            return False
        return self._push(Connect(self.graph, Edge(src, dst, port)))

    def disconnect_edge(self, edge: Edge) -> bool:
        return self._push(Disconnect(self.graph, edge))

    # -- splicing into wires and closing gaps -------------------------------------------------

    def fits(self, src: str, layer_type: str, params: Mapping[str, Any] | None = None) -> bool:
        """Whether a ``layer_type`` node can take ``src``'s output (yes while that is unknown:
        an upstream problem must not block the edit that may fix it)."""
        info = analyze(self.graph).nodes.get(src)
        if info is None or info.shape is None:
            return True
        return fit.accepts(layer_type, info.shape, info.dtype, params)

    def _can_splice(self, edge: Edge, layer_type: str, params: Mapping[str, Any] | None) -> bool:
        if edge not in self.graph.edges:
            self.refused.emit(f"there is no wire {edge.src!r} → {edge.dst!r}")
            return False
        spec = catalog.get(layer_type)
        if spec is None or spec.inputs == 0:
            self.refused.emit(f"{layer_type} takes no input; it cannot go into a wire")
            return False
        if not self.fits(edge.src, layer_type, params):
            shape = analyze(self.graph).nodes[edge.src].shape
            self.refused.emit(f"{layer_type} does not take {format_shape(shape)} from "
                              f"{edge.src!r}")
            return False
        return True

    def _splice_steps(self, nid: str, edge: Edge) -> list[QUndoCommand]:
        g = self.graph
        return [Disconnect(g, edge), Connect(g, Edge(edge.src, nid, 0)),
                Connect(g, Edge(nid, edge.dst, edge.port))]

    def insert_layer(self, layer_type: str, pos: tuple[float, float], edge: Edge,
                     params: dict[str, Any] | None = None,
                     moves: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
                     | None = None) -> str | None:
        """Place a new layer into a wire, src → new → dst, moving ``moves`` to make room; one
        undo step. Refused when the layer does not take the wire's tensor."""
        if not self._can_splice(edge, layer_type, params):
            return None
        nid = self.graph.new_id(layer_type)
        node = Node(nid, layer_type, dict(params or {}), (float(pos[0]), float(pos[1])))
        steps: list[QUndoCommand] = [AddNodes(self.graph, [node], [], f"Add {nid}")]
        steps += self._splice_steps(nid, edge)
        if moves:
            steps.append(MoveNodes(self.graph, moves, mergeable=False))
        ok = self._push(Steps(f"Insert {nid} into {edge.src} → {edge.dst}", steps))
        return nid if ok else None

    def insert_node(self, node_id: str, edge: Edge,
                    moves: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
                    | None = None) -> bool:
        """Splice an unwired node into a wire (it was dropped on it), with the moves that put
        it there and made room; one undo step."""
        node = self.graph.nodes.get(node_id)
        if node is None or node_id in (edge.src, edge.dst):
            return False
        if self.graph.in_edges(node_id) or self.graph.out_edges(node_id):
            self.refused.emit(f"{node_id!r} is already wired; only a free node goes into a wire")
            return False
        if not self._can_splice(edge, node.type, node.params):
            return False
        steps = self._splice_steps(node_id, edge)
        moves = {k: v for k, v in (moves or {}).items() if k in self.graph and v[0] != v[1]}
        if moves:
            steps.insert(0, MoveNodes(self.graph, moves, mergeable=False))
        return self._push(Steps(f"Insert {node_id} into {edge.src} → {edge.dst}", steps))

    def delete_and_reconnect(self, ids: Iterable[str]) -> bool:
        """Delete, then reconnect around each deleted run of one-in-one-out nodes where the
        result is valid (``fit.bridges``): removing a ReLU from a chain keeps the chain."""
        ids = [i for i in ids if i in self.graph]
        if not ids:
            return False
        remove = RemoveNodes(self.graph, ids)
        links = fit.bridges(self.graph, ids)
        if not links:
            return self._push(remove)
        steps: list[QUndoCommand] = [remove, *(Connect(self.graph, e) for e in links)]
        return self._push(Steps(remove.text(), steps))

    def move(self, moves: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]) -> bool:
        moves = {k: v for k, v in moves.items() if k in self.graph and v[0] != v[1]}
        return bool(moves) and self._push(MoveNodes(self.graph, moves))

    def set_params(self, node_id: str, params: dict[str, Any]) -> bool:
        node = self.graph.nodes.get(node_id)
        if node is None:
            return False
        if node.type == BLOCK:
            return self.set_block_params(node_id, params)
        spec = node.spec
        try:
            clean = spec.schema.validate(params, f"{node_id}.params") if spec else dict(params)
        except StudioError as exc:
            self.refused.emit(str(exc))
            return False
        if clean == node.params:
            return True
        return self._push(SetParams(self.graph, node_id, clean))

    def set_init(self, node_id: str, init: dict[str, Any]) -> bool:
        """A node's whole ``init`` as one undo step (refused, with the reason, if invalid)."""
        node = self.graph.nodes.get(node_id)
        if node is None:
            return False
        spec = node.spec
        tensors = spec.init_tensors(node.resolved_params()) if spec else {}
        try:
            clean = validate_init(init, tensors, f"{node_id}.init")
        except StudioError as exc:
            self.refused.emit(str(exc))
            return False
        if clean == node.init:
            return True
        return self._push(SetInit(self.graph, node_id, clean))

    def set_trainable(self, node_id: str, trainable: bool) -> bool:
        node = self.graph.nodes.get(node_id)
        if node is None or node.trainable == trainable:
            return False
        return self._push(SetTrainable(self.graph, node_id, trainable))

    def set_project_text(self, name: str, value: str) -> bool:
        """``name`` or ``description``: one line each (line breaks become spaces); a blank
        name is refused, since it names the project everywhere."""
        value = " ".join(value.split())
        if name == "name" and not value:
            self.refused.emit("the project needs a name")
            return False
        if getattr(self.project, name) == value:
            return True
        return self._push(SetProjectText(self, name, value))

    def set_setting(self, section: str, name: str, value: Any) -> bool:
        model = getattr(self.project, section)
        if getattr(model, name) == value:
            return True
        probe = model.model_copy()
        try:
            setattr(probe, name, copy.deepcopy(value))  # validate before it becomes a step
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            self.refused.emit(f"{section}.{name}: {msg}")
            return False
        return self._push(SetSetting(self, section, name, value))

    # -- values by path (a sweep's parameters, "Apply best") ------------------------------

    def set_values(self, values: Mapping[str, Any], text: str) -> bool:
        """Settings and node parameters named by sweep paths (``training.optimizer.lr``,
        ``graph.nodes.fc1.params.out_features``), all as one undo step; refused whole, with
        the reason, if any value does not fit."""
        sections: dict[tuple[str, str], Any] = {}
        params: dict[str, dict[str, Any]] = {}
        try:
            for path, value in values.items():
                parts = path.split(".")
                if parts[0] == "graph":
                    node = self.network.node(parts[2])
                    params.setdefault(node.id, dict(node.params))[parts[-1]] = value
                    continue
                key = (parts[0], parts[1])
                current = sections.get(key, copy.deepcopy(
                    getattr(getattr(self.project, key[0]), key[1])))
                if len(parts) == 2:
                    current = value
                else:
                    inner = current if isinstance(current, dict) else {}
                    for k in parts[2:-1]:
                        inner = inner.setdefault(k, {})
                    inner[parts[-1]] = value
                sections[key] = current
            steps: list[QUndoCommand] = []
            for (section, name), value in sections.items():
                probe = getattr(self.project, section).model_copy()
                setattr(probe, name, copy.deepcopy(value))  # validates
                steps.append(SetSetting(self, section, name, value))
            for node_id, new in params.items():
                spec = self.network.nodes[node_id].spec
                clean = spec.schema.validate(new, f"{node_id}.params") if spec else new
                steps.append(SetParams(self.network, node_id, clean))
        except ValidationError as exc:
            self.refused.emit(exc.errors()[0]["msg"].removeprefix("Value error, "))
            return False
        except (StudioError, KeyError, IndexError) as exc:
            self.refused.emit(f"cannot set {', '.join(values)}: {exc}")
            return False
        return self._push(Steps(text, steps)) if steps else True

    def set_sweep(self, sweep: dict[str, Any] | None, text: str = "Change sweep") -> bool:
        """The project's sweep as one undo step; refused, with the field, if it cannot run."""
        if sweep is not None:
            from studio.core.sweep_spec import validate_sweep

            try:
                sweep = validate_sweep(sweep, self.project)
            except StudioError as exc:
                self.refused.emit(str(exc))
                return False
        if sweep == self.project.sweep:
            return True
        return self._push(SetSweep(self, sweep, text))
