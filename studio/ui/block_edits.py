"""The editor's block actions: group, ungroup, open and close, rename, make unique, repeat,
and blocks from the library. Each is one undo step built from ``studio.ui.commands``; the
plans come from ``studio.core.blocks``, so the CLI and the importer group the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand

from studio.core.blockdef import (
    BLOCK,
    BlockDef,
    block_params,
    check_name,
    contains,
    free_name,
    users,
    uses,
)
from studio.core.blocks import plan_group, plan_ungroup
from studio.core.errors import GraphError, StudioError
from studio.core.graph import Edge, Graph, Node
from studio.core.shapes import analyze

from .commands import AddNodes, RemoveNodes, SetBlock, SetParams, Steps

if TYPE_CHECKING:  # pragma: no cover
    from PySide6.QtCore import QTimer, SignalInstance
    from PySide6.QtGui import QUndoStack

    from studio.core.project import Project

#: palette entries of the block library carry this before their key
LIBRARY_PREFIX = "block:"
#: palette entries of the project's own blocks carry this before the block's name
PROJECT_PREFIX = "project-block:"


class BlockEdits:
    """Mixed into ``Editor``: what a user does to blocks, each one undo step."""

    project: Project
    scope: list[tuple[str, str]]
    stack: QUndoStack
    refused: SignalInstance
    changed: SignalInstance
    definitions_changed: SignalInstance
    scope_changed: SignalInstance
    _scope_check: QTimer

    if TYPE_CHECKING:  # pragma: no cover
        @property
        def graph(self) -> Graph: ...

        @property
        def network(self) -> Graph: ...

        def _push(self, cmd: QUndoCommand) -> bool: ...

    # -- following every graph of the project ---------------------------------------------

    def _watch(self, graph: Graph) -> None:
        for sig in (graph.node_added, graph.node_removed, graph.node_changed, graph.edge_added,
                    graph.edge_removed):
            sig.connect(self._graph_changed)

    def _graph_changed(self, *_: object) -> None:
        if self.scope:
            self._scope_check.start()
        self.changed.emit()

    def _blocks_changed(self, name: str) -> None:
        defn = self.network.blocks.get(name)
        if defn is not None:
            self._watch(defn.graph)
        if self.scope:
            self._scope_check.start()
        self.changed.emit()
        self.definitions_changed.emit()

    def _check_scope(self) -> None:
        """After an edit: the blocks open are still there, under the names their uses give
        now (a rename, or its undo, is followed); from the first that is gone, back out."""
        net = self.network
        graph, kept = net, []
        for inst, _name in self.scope:
            node = graph.nodes.get(inst)
            name = node.params.get("block") if node is not None and node.type == BLOCK else None
            if name not in net.blocks:
                break
            kept.append((inst, name))
            graph = net.blocks[name].graph
        if kept != self.scope:
            self.scope[:] = kept
            self.scope_changed.emit()

    # -- opening ----------------------------------------------------------------------------

    def open_block(self, node_id: str) -> bool:
        """Show a block instance's definition on the canvas (edits change every instance)."""
        node = self.graph.nodes.get(node_id)
        if node is None or node.type != BLOCK:
            return False
        name = node.params.get("block", "")
        if name not in self.network.blocks:
            self.refused.emit(f"block {name!r} is not defined in this project")
            return False
        self.scope.append((node_id, name))
        self.scope_changed.emit()
        return True

    def close_blocks(self, depth: int = 0) -> None:
        """Go back out to ``depth`` blocks deep (0: the network)."""
        if depth < len(self.scope):
            del self.scope[depth:]
            self.scope_changed.emit()

    # -- grouping ---------------------------------------------------------------------------

    def group(self, ids: list[str], name: str | None = None) -> str | None:
        """The selected layers become one block instance (a new definition); refused, with
        the reason, when they cannot (two outputs, a path leaving and coming back)."""
        g = self.graph
        try:
            plan = plan_group(g, ids, name)
        except StudioError as exc:
            self.refused.emit(str(exc))
            return None
        index = min(g.index(i) for i in plan.removed)
        edges = [Edge(*e) for e in plan.edges]
        steps: list[QUndoCommand] = [
            SetBlock(self.network, plan.definition.name, plan.definition),
            RemoveNodes(g, plan.removed),
            AddNodes(g, [plan.instance], edges, "", index),
        ]
        text = f"Group {len(plan.removed)} layers as {plan.definition.name}"
        return plan.instance.id if self._push(Steps(text, steps)) else None

    def ungroup(self, node_id: str) -> list[str]:
        """Put an instance's layers back in its place; a definition nothing uses any more goes
        with it (an undo brings both back)."""
        g = self.graph
        try:
            plan = plan_ungroup(g, node_id)
        except StudioError as exc:
            self.refused.emit(str(exc))
            return []
        name = g.nodes[node_id].params["block"]
        steps: list[QUndoCommand] = [
            RemoveNodes(g, [node_id]),
            AddNodes(g, plan.nodes, [Edge(*e) for e in plan.edges], "", g.index(node_id)),
        ]
        if self.uses_of(name) == 1:
            steps.append(SetBlock(self.network, name, None))
        ok = self._push(Steps(f"Ungroup {node_id}", steps))
        return [n.id for n in plan.nodes] if ok else []

    def uses_of(self, name: str) -> int:
        return users(self.network, name)

    def make_unique(self, node_id: str) -> str | None:
        """This instance gets its own copy of the definition, to change apart from the rest."""
        node = self.graph.nodes.get(node_id)
        if node is None or node.type != BLOCK:
            return None
        old = node.params["block"]
        defn = self.network.blocks.get(old)
        if defn is None:
            self.refused.emit(f"block {old!r} is not defined in this project")
            return None
        if self.uses_of(old) < 2:
            self.refused.emit(f"{node_id} is the only use of {old}: it is unique already")
            return None
        new = free_name(self.network.blocks, old)
        steps: list[QUndoCommand] = [
            SetBlock(self.network, new, defn.copy(new)),
            SetParams(self.graph, node_id, {**node.params, "block": new}),
        ]
        return new if self._push(Steps(f"Make {node_id} unique ({new})", steps)) else None

    def rename_block(self, old: str, new: str) -> bool:
        """Rename a definition and every instance's reference to it."""
        net = self.network
        defn = net.blocks.get(old)
        if defn is None or old == new:
            return defn is not None
        try:
            check_name(new)
        except GraphError as exc:
            self.refused.emit(str(exc))
            return False
        if new in net.blocks:
            self.refused.emit(f"a block named {new!r} already exists")
            return False
        steps: list[QUndoCommand] = [SetBlock(net, new, BlockDef(new, defn.graph,
                                                                 defn.description))]
        for graph in [net, *(d.graph for d in net.blocks.values())]:
            for nid in uses(graph, old):
                steps.append(SetParams(graph, nid, {**graph.nodes[nid].params, "block": new}))
        steps.append(SetBlock(net, old, None))
        return self._push(Steps(f"Rename block {old} to {new}", steps))

    def describe_block(self, name: str, text: str) -> bool:
        """The line on what a block is for (the palette and the inspector show it)."""
        text = " ".join(text.split())
        defn = self.network.blocks.get(name)
        if defn is None or defn.description == text:
            return defn is not None
        return self._push(SetBlock(self.network, name, BlockDef(name, defn.graph, text),
                                   f"Describe block {name}"))

    def set_block_params(self, node_id: str, params: dict[str, Any]) -> bool:
        """A block instance's repeat count (or definition), refused with the reason when the
        block's output does not fit its own input for the repetitions asked."""
        g = self.graph
        node = g.nodes[node_id]
        try:
            clean = block_params(params, f"{node_id}.params")
        except StudioError as exc:
            self.refused.emit(str(exc))
            return False
        if clean == node.params:
            return True
        if clean["block"] != node.params.get("block") and self._inside_itself(clean["block"]):
            self.refused.emit(f"block {clean['block']!r} cannot go inside itself")
            return False
        if clean["repeat"] != node.params.get("repeat", 1):
            # judged in the whole network, as it feeds this use (inside an open block too);
            # what breaks further down is shown there, as for any other edit
            probe = self.network.copy()
            pg = probe.blocks[self.scope[-1][1]].graph if self.scope else probe
            pg.nodes[node_id].params = clean
            top = self.scope[0][0] if self.scope else node_id
            before = {p.message for p in analyze(self.network).problems_for(top)}
            misfit = [p for p in analyze(probe).problems_for(top) if p.message not in before
                      and ("repetition" in p.message or "can repeat" in p.message)]
            if misfit:
                self.refused.emit(f"cannot repeat {node_id} {clean['repeat']} times: "
                                  + misfit[0].message.rsplit("): ", 1)[-1])
                return False
        return self._push(SetParams(g, node_id, clean))

    def _inside_itself(self, name: str) -> bool:
        """Whether a use of ``name`` here would put a block inside itself: it is a block
        open on the canvas, or uses one."""
        return self._inside_itself_in(self.network.blocks, name)

    def paste_blocks(self, nodes: list[Node], blocks: dict[str, BlockDef]
                     ) -> tuple[dict[str, str], list[QUndoCommand]]:
        """The names pasted block nodes take here and the steps adding what the project
        lacks; raises GraphError when a block would go inside itself or is unknown."""
        from studio.core.block_library import plan_add

        taken = dict(self.network.blocks)
        names: dict[str, str] = {}
        steps: list[QUndoCommand] = []
        for name in dict.fromkeys(n.params["block"] for n in nodes if n.type == BLOCK):
            if name not in blocks:
                if name not in taken:
                    raise GraphError(f"block {name!r} is not defined in this project")
                names[name] = name
                continue
            deps = {k: d for k, d in blocks.items() if k != name}
            plan = plan_add(taken, blocks[name], deps)
            for d in plan.new:
                taken[d.name] = d
                steps.append(SetBlock(self.network, d.name, d))
            names[name] = plan.name
        for name in names.values():
            if self._inside_itself_in(taken, name):
                raise GraphError(f"block {name!r} cannot go inside itself")
        return names, steps

    def _inside_itself_in(self, blocks: dict[str, BlockDef], name: str) -> bool:
        return any(name == b or contains(blocks, name, b) for _, b in self.scope)

    # -- the library ------------------------------------------------------------------------

    def add_block(self, defn: BlockDef, deps: dict[str, BlockDef],
                  pos: tuple[float, float] = (0.0, 0.0), after: str | None = None
                  ) -> str | None:
        """An instance of a definition from elsewhere (the library, a file): the definition
        and the blocks it uses join the project, a same-named different one under a free
        name; one undo step."""
        from studio.core.block_library import plan_add

        try:
            plan = plan_add(self.network.blocks, defn, deps)
        except StudioError as exc:
            self.refused.emit(str(exc))
            return None
        name = plan.name
        if self._inside_itself_in({**self.network.blocks, **{d.name: d for d in plan.new}},
                                  name):
            self.refused.emit(f"{defn.name} uses the block open here, {self.scope[-1][1]}: "
                              "a block cannot go inside itself")
            return None
        steps: list[QUndoCommand] = [SetBlock(self.network, d.name, d) for d in plan.new]
        g = self.graph
        nid = g.new_id(name)
        node = Node(nid, BLOCK, {"block": name, "repeat": 1}, (float(pos[0]), float(pos[1])))
        edges = [Edge(after, nid, 0)] if after is not None and after in g else []
        steps.append(AddNodes(g, [node], edges, ""))
        return nid if self._push(Steps(f"Add {nid} ({name})", steps)) else None

    def add_instance(self, name: str, pos: tuple[float, float] = (0.0, 0.0),
                     after: str | None = None) -> str | None:
        """Another use of one of the project's blocks (it shares the definition)."""
        if name not in self.network.blocks:
            self.refused.emit(f"block {name!r} is not defined in this project")
            return None
        if self._inside_itself(name):
            self.refused.emit(f"block {name!r} cannot go inside itself")
            return None
        g = self.graph
        nid = g.new_id(name)
        node = Node(nid, BLOCK, {"block": name, "repeat": 1}, (float(pos[0]), float(pos[1])))
        edges = [Edge(after, nid, 0)] if after is not None and after in g else []
        return nid if self._push(AddNodes(g, [node], edges, f"Add {nid} ({name})")) else None

    def add_library_block(self, key: str, pos: tuple[float, float] = (0.0, 0.0),
                          after: str | None = None) -> str | None:
        from studio.core.block_library import library

        entry = next((e for e in library() if e.name == key), None)
        if entry is None:
            self.refused.emit(f"no block {key!r} in the library")
            return None
        try:
            defn, deps = entry.definition()
        except StudioError as exc:
            self.refused.emit(str(exc))
            return None
        return self.add_block(defn, deps, pos, after)
