"""Editing on the canvas: selection, copy/paste/duplicate/delete, layers appended from the
palette, auto layout, the context menu and quick fixes. Every change is one undo step."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from studio.core.blockdef import BlockDef, used_blocks
from studio.core.errors import StudioError
from studio.core.findings import Edit, Fix, InsertLayer, RemoveNode, SetParams, SetSetting
from studio.core.graph import Edge, Node
from studio.core.layout import layered_positions

from ..canvas import NODE_H, NodeItem
from ..commands import MoveNodes

if TYPE_CHECKING:
    from ..main_window import MainWindow


class EditingController(QObject):
    """What the user does to the graph through the window; the editor makes it undoable."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        #: nodes, the edges among them and copies of the blocks they use (a paste into
        #: another project brings its blocks along)
        self.clipboard: tuple[list[Node], list[Edge], dict[str, BlockDef]] = ([], [], {})

    # -- selection ------------------------------------------------------------------------

    def selected_ids(self) -> list[str]:
        return [i.node_id for i in self.window.scene.selectedItems() if isinstance(i, NodeItem)]

    def select_in_network(self, node_id: str) -> None:
        """Select a node named as the network names it (the Problems list, the network map):
        ``fc1``, or a layer inside blocks by its path (``layer1.conv1``, ``layer1.0.conv1``);
        the canvas leaves the block open and opens the ones on the way."""
        editor = self.window.editor
        *path, node_id = node_id.split(".")
        editor.close_blocks()
        for inst in path:
            if not inst.isdigit() and not editor.open_block(inst):  # digits: a repetition
                return
        self.select_node(node_id)

    def select_node(self, node_id: str) -> None:
        """Select and centre a node of the graph on the canvas."""
        item = self.window.scene.nodes.get(node_id)
        if item is None:
            return
        self.window.scene.clearSelection()
        item.setSelected(True)
        self.window.view.centerOn(item)

    def selection_changed(self) -> None:
        """The inspector shows the one selected node, or the project's settings."""
        ids = self.selected_ids()
        self.window.inspector.show_node(ids[0] if len(ids) == 1 else None)
        self.window.blocks.update_actions()
        if len(ids) == 1:  # the layer whose feature maps the Explain tab shows
            self.window.evaluation.explain.choose_node(self.window.blocks.path_of(ids[0]))

    def select_all(self) -> None:
        for item in self.window.scene.nodes.values():
            item.setSelected(True)

    # -- changes --------------------------------------------------------------------------

    def append_layer(self, layer_type: str) -> str | None:
        """Palette double-click/Enter: place below the selected node and wire it."""
        editor, scene = self.window.editor, self.window.scene
        ids = self.selected_ids()
        after = ids[0] if len(ids) == 1 else None
        if after is not None:
            x, y = editor.graph.nodes[after].pos
            pos = (x, y + NODE_H + 46)
        else:
            rect = scene.itemsBoundingRect()
            pos = (rect.left() if rect.isValid() else 0.0,
                   rect.bottom() + 46 if rect.isValid() else 0.0)
        nid = editor.add_layer(layer_type, pos, after=after)
        if nid is not None:
            self.select_node(nid)
        return nid

    def delete_selection(self) -> None:
        editor = self.window.editor
        ids = self.selected_ids()
        edges = [i.edge for i in self.window.scene.selectedItems() if hasattr(i, "edge")]
        stack = editor.stack
        stack.beginMacro("Delete selection")
        for e in edges:
            if e.src not in ids and e.dst not in ids:
                editor.disconnect_edge(e)
        editor.delete_and_reconnect(ids)  # a node taken out of a chain leaves it joined
        stack.endMacro()

    def copy_selection(self) -> None:
        graph = self.window.editor.graph
        ids = set(self.selected_ids())
        nodes = [graph.nodes[i].copy() for i in graph.nodes if i in ids]
        edges = [e for e in graph.edges if e.src in ids and e.dst in ids]
        self.clipboard = (nodes, edges, used_blocks(self.window.editor.network, nodes))

    def paste(self) -> None:
        nodes, edges, blocks = self.clipboard
        if nodes:
            new = self.window.editor.paste(copy.deepcopy(nodes), list(edges), blocks)
            scene = self.window.scene
            scene.clearSelection()
            for nid in new:
                scene.nodes[nid].setSelected(True)

    def duplicate(self) -> None:
        self.copy_selection()
        self.paste()

    def auto_layout(self) -> None:
        w = self.window
        g = w.editor.graph
        try:
            positions = layered_positions(g)
        except StudioError as exc:
            w.show_status(str(exc))
            return
        moves = {nid: (g.nodes[nid].pos, p) for nid, p in positions.items()
                 if g.nodes[nid].pos != p}
        if moves:
            w.editor.stack.push(MoveNodes(g, moves, mergeable=False, text="Auto layout"))
        w.view.fit()

    # -- the context menu and quick fixes -------------------------------------------------

    def context_actions(self, node_id: str) -> list[QAction]:
        """What right-clicking a node (or the background) offers."""
        w = self.window
        actions: list[QAction] = []
        fix = self._fix_for(node_id) if node_id else None
        if fix:
            insert = QAction(f"Insert {fix} here", w)
            insert.triggered.connect(lambda _=False: self.quick_fix(node_id))
            actions.append(insert)
        for found in w.findings if node_id and not w.editor.scope else []:
            if found.code and found.node == node_id and found.fix is not None:
                act = QAction(found.fix.label[:1].upper() + found.fix.label[1:], w)
                act.triggered.connect(lambda _=False, f=found.fix: self.apply_fix(f))
                actions.append(act)
        if node_id:
            actions += [w.act_duplicate, w.act_copy, w.act_delete]
        else:
            actions += [w.act_paste, w.act_select_all, w.act_layout, w.act_fit]
        return actions + w.blocks.context_actions(node_id)

    def context_menu(self, node_id: str, global_pos: QPoint) -> None:
        menu = QMenu(self.window)
        menu.addActions(self.context_actions(node_id))
        menu.exec(global_pos)

    def _fix_for(self, node_id: str) -> str | None:
        analysis = self.window.shown_analysis
        if analysis is None:
            return None
        return next((p.fix for p in analysis.problems_for(node_id) if p.fix), None)

    def quick_fix(self, node_id: str | None) -> bool:
        """'Insert Flatten here' and the like: insert the suggested layer before the node."""
        if not node_id:
            return False
        editor = self.window.editor
        fix = self._fix_for(node_id)
        g = editor.graph
        ins = g.in_edges(node_id) if node_id in g else []
        if fix is None or len(ins) != 1:
            return False
        edge = ins[0]
        x, y = g.nodes[node_id].pos
        stack = editor.stack
        stack.beginMacro(f"Insert {fix} before {node_id}")
        editor.disconnect_edge(edge)
        nid = editor.add_layer(fix, (x, y - NODE_H / 2), after=edge.src)
        if nid is not None:
            editor.connect_nodes(nid, node_id, edge.port)
        stack.endMacro()
        return nid is not None

    def apply_fix(self, fix: Fix) -> bool:
        """A Problems-list fix (studio.core.findings) as one undo step; when an edit is refused
        (the editor says why) the step is undone and dropped, leaving nothing to redo."""
        self.window.editor.close_blocks()  # the findings name the network's nodes
        stack = self.window.editor.stack
        stack.beginMacro(fix.label[:1].upper() + fix.label[1:])
        ok = all(self._apply(edit) for edit in fix.edits)
        stack.endMacro()
        if not ok:
            stack.undo()
            stack.command(stack.index()).setObsolete(True)
            stack.redo()  # an obsolete command is dropped instead of redone
        return ok

    def _apply(self, edit: Edit) -> bool:
        editor = self.window.editor
        g = editor.graph
        if isinstance(edit, RemoveNode):
            return editor.delete_and_reconnect([edit.node])
        if isinstance(edit, SetParams):
            return editor.set_params(edit.node, dict(edit.params))
        if isinstance(edit, SetSetting):
            return editor.set_setting(edit.section, edit.name, edit.value)
        if isinstance(edit, InsertLayer) and edit.src in g and edit.dst in g:
            (sx, sy), (dx, dy) = g.nodes[edit.src].pos, g.nodes[edit.dst].pos
            wire = Edge(edit.src, edit.dst, edit.port)
            return self.window.scene.splice_new(edit.layer, wire, ((sx + dx) / 2,
                                                                   (sy + dy) / 2)) is not None
        return False
