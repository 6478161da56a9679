"""Undoable edits. Each command changes only the core model; views follow its signals.

``studio.ui.editor.Editor`` builds and pushes them: the one entry point the canvas, palette
and inspector use, so every user action is one undo step.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand

from studio.core.blockdef import BlockDef
from studio.core.graph import Edge, Graph, Node

if TYPE_CHECKING:
    from .editor import Editor

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

    def __init__(self, graph: Graph, nodes: list[Node], edges: list[Edge], text: str,
                 index: int | None = None) -> None:
        super().__init__(text)
        self.graph, self.nodes, self.edges, self.index = graph, nodes, edges, index

    def redo(self) -> None:
        for k, node in enumerate(self.nodes):
            self.graph.add_node(node.copy(), None if self.index is None else self.index + k)
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


class SetBlock(QUndoCommand):
    """Add, replace or remove (None) one block definition of the network. The definition
    object itself is kept, so edits made inside it later stay with it through undo and redo."""

    graph = _Weak()

    def __init__(self, graph: Graph, name: str, defn: BlockDef | None, text: str = "") -> None:
        super().__init__(text or f"Change block {name}")
        self.graph, self.name = graph, name
        self.old, self.new = graph.blocks.get(name), defn
        self.index = list(graph.blocks).index(name) if name in graph.blocks else None

    def _set(self, defn: BlockDef | None) -> None:
        if defn is not None:
            self.graph.set_block(defn, self.index)
        elif self.name in self.graph.blocks:
            self.graph.remove_block(self.name)

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


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


class SetSweep(QUndoCommand):
    """The project's sweep (its search space, objective and budget), or none."""

    editor = _Weak()

    def __init__(self, editor: Editor, sweep: dict[str, Any] | None, text: str) -> None:
        super().__init__(text)
        self.editor = editor
        self.old, self.new = copy.deepcopy(editor.project.sweep), copy.deepcopy(sweep)

    def _set(self, value: dict[str, Any] | None) -> None:
        self.editor.project.sweep = copy.deepcopy(value)
        self.editor.settings_changed.emit("project", "sweep")

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
