"""The network canvas: a QGraphicsScene that mirrors the graph.

The scene draws what the graph holds and follows its signals; user gestures go through the
``Editor`` (so they are undoable) and never touch items directly. Shapes and problems come
from the core's analysis, pushed in with ``show_analysis``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QLineF, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneHoverEvent,
    QGraphicsSceneMouseEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core import catalog, fit
from studio.core.blockdef import BLOCK
from studio.core.findings import Finding
from studio.core.graph import Edge, Graph, Node
from studio.core.health import LayerHealth, Mark
from studio.core.shapes import Analysis, analyze, format_shape

from . import splice
from .cards import (
    BODY_PX,
    CATEGORY_COLOURS,
    FULL,
    MIN_TEXT_PX,
    NODE_H,
    NODE_W,
    PORT_R,
    SELECTED,
    Card,
    card_words,
    category_colour,
    key_params,
    paint_card,
    pixel_font,
)
from .editor import Editor

__all__ = ["CATEGORY_COLOURS", "NODE_H", "NODE_W", "PORT_R", "CanvasScene", "EdgeItem",
           "NodeItem", "card_words", "key_params"]


class NodeItem(QGraphicsObject):
    """One layer: a rounded card with input ports on top and the output port below."""

    def __init__(self, node: Node, graph: Graph | None = None) -> None:
        super().__init__()
        self.edges: list[EdgeItem] = []  # before setPos: itemChange reads it
        self.node_id = node.id
        self.node = node
        self.graph = graph  # a block instance's ports come from its definition
        self.in_block = False  # on a block's own canvas (its Input nodes are its ports)
        self.shape_text = ""
        self.problem = ""
        self.warning = ""
        self.health: Mark | None = None  # live layer health during and after a run
        self.detail = FULL  # the card last painted: FULL, TITLE or BOX (cards.detail_for)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setPos(*node.pos)
        self.setZValue(1)
        self.setAcceptHoverEvents(True)  # the health tooltip's pictures are drawn on hover

    # geometry ------------------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        stack = 4.0 if self.node.type == BLOCK else 0.0  # the cards drawn behind a block's
        return QRectF(-PORT_R, -PORT_R, NODE_W + 2 * PORT_R + stack, NODE_H + 2 * PORT_R + stack)

    def n_ports(self) -> int:
        if self.node.type == BLOCK:
            limit = self.graph.port_limit(self.node_id) if self.graph is not None else None
            return limit if limit is not None else max(1, len(self.edges_in()))
        spec = catalog.get(self.node.type)
        if spec is None or spec.inputs == 0:
            return 0
        if spec.inputs is None:  # merges: one more port than are connected
            return max(2, len(self.edges_in()) + 1)
        return spec.inputs

    def edges_in(self) -> list[EdgeItem]:
        return [e for e in self.edges if e.dst is self]

    def input_port(self, port: int) -> QPointF:
        n = max(self.n_ports(), 1)
        return self.mapToScene(QPointF(NODE_W * (port + 1) / (n + 1), 0))

    def output_port(self) -> QPointF:
        return self.mapToScene(QPointF(NODE_W / 2, NODE_H))

    def port_at(self, scene_pos: QPointF) -> tuple[str, int] | None:
        """('in', port) or ('out', 0) when the point is on a port."""
        if QLineF(scene_pos, self.output_port()).length() <= PORT_R * 2:
            return ("out", 0)
        for p in range(self.n_ports()):
            if QLineF(scene_pos, self.input_port(p)).length() <= PORT_R * 2:
                return ("in", p)
        return None

    # painting ------------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        spec = catalog.get(self.node.type)
        pal = widget.palette() if widget else None
        # the message without its "Type 'id': " prefix, which the card already shows
        status = self.problem.split(": ", 1)[-1] if self.problem else self.shape_text
        block = self.node.type == BLOCK
        title, line = card_words(self.node, self.graph, self.in_block)
        card = Card(title, self.node_id, line, status,
                    category_colour("Block" if block else spec.category if spec else None),
                    bool(self.problem), self.isSelected(), bool(self.warning),
                    (self.health.level, self.health.value) if self.health else None,
                    stacked=block)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        ports = [self.mapFromScene(self.input_port(p)) for p in range(self.n_ports())]
        self.detail = paint_card(painter, card, scale,
                                 pal.base().color() if pal else QColor("white"),
                                 pal.text().color() if pal else QColor("black"),
                                 widget.font() if widget else painter.font(), ports)

    def set_status(self, shape_text: str, problem: str, warning: str = "") -> None:
        self.shape_text, self.problem, self.warning = shape_text, problem, warning
        self._tooltip()

    def set_health(self, mark: Mark | None) -> None:
        self.health = mark
        self._tooltip(pictures=self.isUnderMouse())  # a tooltip being read keeps them

    def _tooltip(self, pictures: bool = False) -> None:
        """The card's tooltip; with health, its sparklines are drawn only when the pointer
        comes (``pictures``): a refresh re-encoding every node's pictures cost 36 ms."""
        text = (self.problem or self.warning
                or f"{self.node.type} '{self.node_id}': output {self.shape_text}")
        if self.health is not None:
            from .cards import health_colour
            from .sparkline import health_html, health_text

            title = f"{text}\n\nLayer health"
            text = health_html(title, self.health, health_colour(self.health.value)) \
                if pictures else health_text(title, self.health)
        self.setToolTip(text)
        self.update()

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        if self.health is not None:
            self._tooltip(pictures=True)
        super().hoverEnterEvent(event)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for e in self.edges:
                e.refresh()
        return super().itemChange(change, value)


class EdgeItem(QGraphicsPathItem):
    """A curve from an output port to an input port, labelled with the tensor shape."""

    def __init__(self, edge: Edge, src: NodeItem, dst: NodeItem) -> None:
        super().__init__()
        self.edge, self.src, self.dst = edge, src, dst
        self.label = ""
        self.target = False  # a card being dropped would go into this wire
        self.setZValue(0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setPen(QPen(QColor("#888888"), 2))
        self.refresh()

    def refresh(self) -> None:
        a, b = self.src.output_port(), self.dst.input_port(self.edge.port)
        path = QPainterPath(a)
        dy = max(40.0, abs(b.y() - a.y()) / 2)
        path.cubicTo(a + QPointF(0, dy), b - QPointF(0, dy), b)
        self.setPath(path)

    def set_target(self, on: bool) -> None:
        if on != self.target:
            self.target = on
            self._restyle()

    def _restyle(self) -> None:
        """Selected: blue; a drop's target: thick and dashed. Set here, never in paint: the
        pen's width is part of the item's bounds."""
        pen = QPen(SELECTED if self.isSelected() or self.target else QColor("#888888"), 2)
        if self.target:
            pen.setWidthF(4)
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self._restyle()
        return super().itemChange(change, value)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        super().paint(painter, option, widget)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        if self.label and scale * BODY_PX >= MIN_TEXT_PX:  # never below 8 px on screen
            mid = self.path().pointAtPercent(0.5)
            painter.setPen(widget.palette().text().color() if widget else QColor("black"))
            painter.setFont(pixel_font(widget.font() if widget else painter.font(), BODY_PX))
            painter.drawText(mid + QPointF(6, 4), self.label)


class CanvasScene(QGraphicsScene):
    """Mirrors ``editor.graph``; turns mouse gestures into editor calls."""

    message = Signal(str)  # a refused gesture, for the status bar
    wire_dropped = Signal(str, QPointF)  # a wire from this node let go on nothing, scene pos

    def __init__(self, editor: Editor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.nodes: dict[str, NodeItem] = {}
        self.health: LayerHealth | None = None  # the last run's, while the window shows it
        #: inside an open block, what its layers' paths start with (``stage1.0.``): health
        #: is kept by path
        self.path_prefix = ""
        self.edge_items: dict[Edge, EdgeItem] = {}
        self._drag_line: QGraphicsPathItem | None = None
        self._drag_from: str | None = None
        self._press_positions: dict[str, tuple[float, float]] = {}
        self._analysis: Analysis | None = None
        self._target: Edge | None = None
        g = self.graph = editor.graph
        for node in g:
            self._add_node(node)
        for e in g.edges:
            self._add_edge(e)
        for sig, slot in self._slots():
            sig.connect(slot)
        editor.refused.connect(self.message)

    def _slots(self) -> list[tuple[Any, Any]]:
        g = self.graph
        pairs = [(g.node_added, self._add_node), (g.node_removed, self._remove_node),
                 (g.node_changed, self._node_changed), (g.edge_added, self._add_edge),
                 (g.edge_removed, self._remove_edge)]
        return pairs + [(sig, self._forget_analysis) for sig, _ in pairs]

    def detach(self) -> None:
        """Stop mirroring the graph: the window shows another block or project (the network
        outlives the scene that showed it)."""
        for sig, slot in self._slots():
            sig.disconnect(slot)
        self.editor.refused.disconnect(self.message)

    # mirroring the model -----------------------------------------------------------------

    def _forget_analysis(self, *_: object) -> None:
        self._analysis = None

    def analysis(self) -> Analysis:
        """The graph's shapes now (computed on demand; the window's may lag a turn behind).
        Inside a block, the window's analysis of the instance opened, while it is current:
        the shapes that instance is fed, not the definition's example ones."""
        if self._analysis is None:
            self._analysis = analyze(self.editor.graph)
        return self._analysis

    def _add_node(self, node: Node) -> None:
        item = NodeItem(node, self.graph)
        item.in_block = bool(self.editor.scope)
        self.nodes[node.id] = item
        self.addItem(item)
        if self.health is not None:  # a card drawn anew by an edit (undo of a delete) keeps it
            item.set_health(self.health.mark(self.path_prefix + node.id))

    def _remove_node(self, node: Node) -> None:
        item = self.nodes.pop(node.id)
        self.removeItem(item)

    def _node_changed(self, node: Node) -> None:
        item = self.nodes[node.id]
        if (item.pos().x(), item.pos().y()) != node.pos:
            item.setPos(*node.pos)
        item.update()

    def _add_edge(self, edge: Edge) -> None:
        src, dst = self.nodes[edge.src], self.nodes[edge.dst]
        item = EdgeItem(edge, src, dst)
        src.edges.append(item)
        dst.edges.append(item)
        self.edge_items[edge] = item
        self.addItem(item)
        for e in dst.edges_in():
            e.refresh()  # a merge's ports spread out as inputs are added
        dst.update()

    def _remove_edge(self, edge: Edge) -> None:
        item = self.edge_items.pop(edge)
        item.src.edges.remove(item)
        item.dst.edges.remove(item)
        self.removeItem(item)
        for e in item.dst.edges_in():
            e.refresh()
        item.dst.update()

    def show_analysis(self, analysis: Analysis, findings: Sequence[Finding] = ()) -> None:
        """Paint shapes on nodes and edges and mark nodes with problems: the analysis's
        errors, and the network doctor's ``findings`` (errors red, warnings amber)."""
        self._analysis = analysis  # inside a block: as the network feeds the use opened
        problems: dict[str, str] = {}
        warnings: dict[str, str] = {}
        for p in analysis.problems:
            if p.node and p.severity == "error":
                problems.setdefault(p.node, p.message)
        for f in findings:
            if f.node:
                (problems if f.severity == "error" else warnings).setdefault(f.node, f.message)
        for nid, item in self.nodes.items():
            info = analysis.nodes.get(nid)
            shape = format_shape(info.shape) if info and info.shape is not None else ""
            item.set_status(shape, problems.get(nid, ""), warnings.get(nid, ""))
        for edge, edge_item in self.edge_items.items():
            info = analysis.nodes.get(edge.src)
            edge_item.label = (format_shape(info.shape) if info and info.shape is not None
                               else "")
            edge_item.update()

    def show_health(self, health: LayerHealth | None) -> None:
        """Each node's live health mark (none: the marks go)."""
        self.health = health
        for nid, item in self.nodes.items():
            item.set_health(health.mark(self.path_prefix + nid) if health is not None else None)

    # gestures ------------------------------------------------------------------------------

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for it in self.items(pos):
            if isinstance(it, NodeItem):
                return it
        for it in self.nodes.values():  # ports stick out of the card a little
            if it.port_at(pos) is not None:
                return it
        return None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        item = self.node_at(event.scenePos())
        if item is not None and event.button() == Qt.MouseButton.LeftButton:
            port = item.port_at(event.scenePos())
            if port == ("out", 0):
                self._drag_from = item.node_id
                self._drag_line = QGraphicsPathItem()
                self._drag_line.setPen(QPen(QColor("#1f77b4"), 2, Qt.PenStyle.DashLine))
                self.addItem(self._drag_line)
                event.accept()
                return
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: (i.pos().x(), i.pos().y())
                                 for i in self.selectedItems() if isinstance(i, NodeItem)}

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag_line is not None and self._drag_from is not None:
            a = self.nodes[self._drag_from].output_port()
            path = QPainterPath(a)
            path.lineTo(event.scenePos())
            self._drag_line.setPath(path)
            event.accept()
            return
        super().mouseMoveEvent(event)
        free = self._free_dragged()
        self.show_target(self._wire_for_node(free) if free is not None else None)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag_line is not None:
            self.removeItem(self._drag_line)
            self._drag_line = None
            src, self._drag_from = self._drag_from, None
            target = self.node_at(event.scenePos())
            if target is not None and src is not None:
                port = target.port_at(event.scenePos())
                self.editor.connect_nodes(src, target.node_id,
                                          port[1] if port and port[0] == "in" else None)
            elif src is not None:
                self.wire_dropped.emit(src, event.scenePos())
            event.accept()
            return
        free = self._free_dragged()
        super().mouseReleaseEvent(event)
        self.show_target(None)
        moves = {}
        for nid, old in self._press_positions.items():
            item = self.nodes.get(nid)
            if item is not None:
                new = (item.pos().x(), item.pos().y())
                if new != old:
                    moves[nid] = (old, new)
        self._press_positions = {}
        edge = self._wire_for_node(free) if free is not None and free.node_id in moves else None
        if free is not None and edge is not None:
            self._splice_dragged(free, edge, moves)
        elif moves:
            self.editor.move(moves)

    # splicing into wires ------------------------------------------------------------------

    def accepts(self, src: str, layer_type: str, params: dict[str, object] | None = None
                ) -> bool:
        """Whether a layer can take ``src``'s output (yes while that shape is unknown)."""
        info = self.analysis().nodes.get(src)
        if info is None or info.shape is None:
            return True
        return fit.accepts(layer_type, info.shape, info.dtype, params)

    def wire_for(self, rect: QRectF, layer_type: str, params: dict[str, object] | None = None,
                 skip: str | None = None) -> Edge | None:
        """The wire a card dropped on ``rect`` goes into: the closest one it fits."""
        paths = {e: item.path() for e, item in self.edge_items.items()}
        return next((e for e in splice.wire_under(paths, rect, skip)
                     if self.accepts(e.src, layer_type, params)), None)

    def show_target(self, edge: Edge | None) -> None:
        """Mark the wire a drop would go into (None: no wire)."""
        if edge == self._target:
            return
        for e in (self._target, edge):
            item = self.edge_items.get(e) if e is not None else None
            if item is not None:
                item.set_target(e == edge)
        self._target = edge

    def splice_new(self, layer_type: str, edge: Edge, pos: tuple[float, float]) -> str | None:
        """Place a new layer into ``edge`` (room made below it); selects it."""
        at, moves = splice.placement(self.editor.graph, edge, pos)
        nid = self.editor.insert_layer(layer_type, at, edge, moves=moves)
        if nid is not None:
            self.select_only(nid)
        return nid

    def select_only(self, node_id: str) -> None:
        self.clearSelection()
        item = self.nodes.get(node_id)
        if item is not None:
            item.setSelected(True)

    def _free_dragged(self) -> NodeItem | None:
        """The node being dragged when it is one node with no wires: it may go into one."""
        if len(self._press_positions) != 1:
            return None
        item = self.nodes.get(next(iter(self._press_positions)))
        return item if item is not None and not item.edges else None

    def _wire_for_node(self, item: NodeItem) -> Edge | None:
        rect = item.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H))
        return self.wire_for(rect, item.node.type, dict(item.node.params), skip=item.node_id)

    def _splice_dragged(self, item: NodeItem, edge: Edge,
                        moves: dict[str, tuple[tuple[float, float], tuple[float, float]]]
                        ) -> None:
        nid = item.node_id
        start = moves[nid][0]
        drop = (item.pos().x(), item.pos().y())
        at, room = splice.placement(self.editor.graph, edge, drop, moving=nid)
        if not self.editor.insert_node(nid, edge, {**room, nid: (start, at)}):
            self.editor.move(moves)  # refused: a plain move, as if no wire were there
