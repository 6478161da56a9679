"""Undoable edits. Each command changes only the core model; views follow its signals.

``Editor`` is the one entry point the canvas, palette and inspector use, so every user action
is one undo step (a drag merges into one move, a paste of many nodes is one macro).
"""

from __future__ import annotations

import copy
import re
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.core import catalog, fit
from studio.core.errors import GraphError, StudioError
from studio.core.graph import Edge, Graph, Node
from studio.core.init import validate_init
from studio.core.project import Project
from studio.core.shapes import analyze, format_shape

MOVE_ID = 1001


class _Weak:
    """What an undo command edits, held weakly. The stack owns its commands and is a child of
    the editor that owns the model; a strong reference back closed a cycle through Qt
    wrappers, and collecting that cycle could free commands the stack still listed (a
    segfault when the stack was cleared)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_weak_{name}"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        target = getattr(obj, self.slot)()
        if target is None:
            raise RuntimeError("the edited project is gone")
        return target

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.slot, weakref.ref(value))


class AddNodes(QUndoCommand):
    """Insert nodes (with the edges among and into them); undo removes them again."""

    graph = _Weak()

    def __init__(self, graph: Graph, nodes: list[Node], edges: list[Edge], text: str) -> None:
        super().__init__(text)
        self.graph, self.nodes, self.edges = graph, nodes, edges

    def redo(self) -> None:
        for node in self.nodes:
            self.graph.add_node(node.copy())
        for e in self.edges:
            self.graph.connect(e.src, e.dst, e.port)

    def undo(self) -> None:
        for node in reversed(self.nodes):
            self.graph.remove_node(node.id)


class RemoveNodes(QUndoCommand):
    """Delete nodes and every edge touching them; undo puts all back where they were."""

    graph = _Weak()

    def __init__(self, graph: Graph, ids: Iterable[str]) -> None:
        ids = [i for i in graph.nodes if i in set(ids)]
        super().__init__(f"Delete {_names(graph, ids)}")
        self.graph = graph
        self.saved = [(graph.index(i), graph.nodes[i].copy()) for i in ids]
        seen: dict[Edge, None] = {}
        for i in ids:
            for e in graph.in_edges(i) + graph.out_edges(i):
                seen[e] = None
        self.edges = list(seen)
        self.orders = _out_orders(graph, (e.src for e in self.edges if e.src not in ids))

    def redo(self) -> None:
        for _, node in reversed(self.saved):
            self.graph.remove_node(node.id)

    def undo(self) -> None:
        for index, node in self.saved:
            self.graph.add_node(node.copy(), index)
        for e in self.edges:
            self.graph.connect(e.src, e.dst, e.port)
        _restore_orders(self.graph, self.orders)


class Connect(QUndoCommand):
    graph = _Weak()

    def __init__(self, graph: Graph, edge: Edge) -> None:
        super().__init__(f"Connect {edge.src} → {edge.dst}")
        self.graph, self.edge = graph, edge

    def redo(self) -> None:
        self.graph.connect(self.edge.src, self.edge.dst, self.edge.port)

    def undo(self) -> None:
        self.graph.disconnect(self.edge)


class Disconnect(QUndoCommand):
    graph = _Weak()

    def __init__(self, graph: Graph, edge: Edge) -> None:
        super().__init__(f"Disconnect {edge.src} → {edge.dst}")
        self.graph, self.edge = graph, edge
        self.orders = _out_orders(graph, [edge.src])

    def redo(self) -> None:
        self.graph.disconnect(self.edge)

    def undo(self) -> None:
        self.graph.connect(self.edge.src, self.edge.dst, self.edge.port)
        _restore_orders(self.graph, self.orders)


class Steps(QUndoCommand):
    """Several commands as one undo step, all or nothing: a step that fails undoes the ones
    before it, so a refused edit leaves the graph as it was."""

    def __init__(self, text: str, steps: list[QUndoCommand]) -> None:
        super().__init__(text)
        self.steps = steps

    def redo(self) -> None:
        done: list[QUndoCommand] = []
        try:
            for step in self.steps:
                step.redo()
                done.append(step)
        except Exception:
            for step in reversed(done):
                step.undo()
            raise

    def undo(self) -> None:
        for step in reversed(self.steps):
            step.undo()


class MoveNodes(QUndoCommand):
    """Positions before and after; consecutive moves of the same nodes merge into one step."""

    graph = _Weak()

    def __init__(self, graph: Graph, moves: Mapping[str, tuple[tuple[float, float],
                                                                tuple[float, float]]],
                 mergeable: bool = True, text: str | None = None) -> None:
        super().__init__(text or f"Move {_names(graph, list(moves))}")
        self.graph = graph
        self.moves = dict(moves)
        self.mergeable = mergeable

    def id(self) -> int:
        return MOVE_ID if self.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodes) or set(other.moves) != set(self.moves):
            return False
        for k, (_old, new) in other.moves.items():
            self.moves[k] = (self.moves[k][0], new)
        return True

    def redo(self) -> None:
        for nid, (_old, new) in self.moves.items():
            self.graph.move_node(nid, new)

    def undo(self) -> None:
        for nid, (old, _new) in self.moves.items():
            self.graph.move_node(nid, old)


class SetParams(QUndoCommand):
    graph = _Weak()

    def __init__(self, graph: Graph, node_id: str, params: dict[str, Any]) -> None:
        super().__init__(f"Edit {node_id}")
        self.graph, self.node_id = graph, node_id
        self.old = copy.deepcopy(graph.nodes[node_id].params)
        self.new = copy.deepcopy(params)

    def redo(self) -> None:
        self.graph.set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.graph.set_params(self.node_id, copy.deepcopy(self.old))


class SetInit(QUndoCommand):
    graph = _Weak()

    def __init__(self, graph: Graph, node_id: str, init: dict[str, Any]) -> None:
        super().__init__(f"Initialise {node_id}")
        self.graph, self.node_id = graph, node_id
        self.old = copy.deepcopy(graph.nodes[node_id].init)
        self.new = copy.deepcopy(init)

    def redo(self) -> None:
        self.graph.set_init(self.node_id, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.graph.set_init(self.node_id, copy.deepcopy(self.old))


class SetTrainable(QUndoCommand):
    graph = _Weak()

    def __init__(self, graph: Graph, node_id: str, trainable: bool) -> None:
        super().__init__(f"{'Unfreeze' if trainable else 'Freeze'} {node_id}")
        self.graph, self.node_id, self.value = graph, node_id, trainable

    def redo(self) -> None:
        self.graph.set_trainable(self.node_id, self.value)

    def undo(self) -> None:
        self.graph.set_trainable(self.node_id, not self.value)


class SetSetting(QUndoCommand):
    """One field of the data or training settings (validated by the model on assignment)."""

    editor = _Weak()

    def __init__(self, editor: Editor, section: str, name: str, value: Any) -> None:
        super().__init__(f"Change {section}.{name}")
        self.editor, self.section, self.name = editor, section, name
        self.old = copy.deepcopy(getattr(getattr(editor.project, section), name))
        self.new = copy.deepcopy(value)

    def _set(self, value: Any) -> None:
        setattr(getattr(self.editor.project, self.section), self.name, copy.deepcopy(value))
        self.editor.settings_changed.emit(self.section, self.name)

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class SetProjectText(QUndoCommand):
    """The project's name or description."""

    editor = _Weak()

    def __init__(self, editor: Editor, name: str, value: str) -> None:
        super().__init__(f"Change project {name}")
        self.editor, self.name = editor, name
        self.old, self.new = getattr(editor.project, name), value

    def _set(self, value: str) -> None:
        setattr(self.editor.project, self.name, value)
        self.editor.settings_changed.emit("project", self.name)

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


def _names(graph: Graph, ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{len(ids)} nodes"


def _out_orders(graph: Graph, srcs: Iterable[str]) -> dict[str, list[Edge]]:
    return {s: graph.out_edges(s) for s in srcs if s in graph}


def _restore_orders(graph: Graph, orders: Mapping[str, list[Edge]]) -> None:
    """Put outgoing edges back in their recorded order: it is the file's edge order, and an
    undo gives back exactly what was there (reconnecting alone would append at the end)."""
    for src, order in orders.items():
        now = graph.out_edges(src) if src in graph else []
        if now == order or set(now) != set(order):
            continue
        k = next(i for i, (a, b) in enumerate(zip(now, order, strict=True)) if a != b)
        for e in now[k:]:
            graph.disconnect(e)
        for e in order[k:]:
            graph.connect(e.src, e.dst, e.port)


class Editor(QObject):
    """The project being edited and its undo stack: every change a user makes goes here.

    Refused edits (a cycle, an occupied port, a bad value) do not raise: they emit
    ``refused(message)`` and return False, so no user action can take the window down.
    """

    refused = Signal(str)
    settings_changed = Signal(str, str)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.stack = QUndoStack(self)

    @property
    def graph(self) -> Graph:
        return self.project.graph

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

    def paste(self, nodes: list[Node], edges: list[Edge], offset: tuple[float, float] = (40, 40)
              ) -> list[str]:
        """Insert copies under fresh ids (edges among them kept), as one undo step."""
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
        ok = self._push(AddNodes(self.graph, fresh, kept, f"Paste {len(fresh)} nodes"))
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
