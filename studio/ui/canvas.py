"""The network canvas: a QGraphicsScene that mirrors the graph.

The scene draws what the graph holds and follows its signals; user gestures go through the
``Editor`` (so they are undoable) and never touch items directly. Shapes and problems come
from the core's analysis, pushed in with ``show_analysis``.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core import catalog
from studio.core.graph import Edge, Node
from studio.core.shapes import Analysis, format_shape

from .commands import Editor

NODE_W, NODE_H = 190.0, 64.0
PORT_R = 6.0
CATEGORY_COLOURS = {
    "Input": "#4c78a8", "Core": "#72b7b2", "Convolution": "#f58518", "Pooling": "#e45756",
    "Normalization": "#54a24b", "Regularization": "#b279a2", "Embedding": "#9d755d",
    "Recurrent": "#eeca3b", "Attention": "#ff9da6", "Activation": "#bab0ac", "Merge": "#79706e",
}


def key_params(node: Node) -> str:
    """The few parameters worth reading on the canvas: the ones the user set."""
    parts = []
    for k, v in node.params.items():
        text = "×".join(str(x) for x in v) if isinstance(v, list) else str(v)
        parts.append(f"{k}={text}")
    return ", ".join(parts)


class NodeItem(QGraphicsObject):
    """One layer: a rounded card with input ports on top and the output port below."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.edges: list[EdgeItem] = []  # before setPos: itemChange reads it
        self.node_id = node.id
        self.node = node
        self.shape_text = ""
        self.problem = ""
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setPos(*node.pos)
        self.setZValue(1)

    # geometry ------------------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        return QRectF(-PORT_R, -PORT_R, NODE_W + 2 * PORT_R, NODE_H + 2 * PORT_R)

    def n_ports(self) -> int:
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
        colour = QColor(CATEGORY_COLOURS.get(spec.category if spec else "", "#888888"))
        pal = widget.palette() if widget else None
        base = pal.base().color() if pal else QColor("white")
        text = pal.text().color() if pal else QColor("black")
        border = QColor("#d62728") if self.problem else (
            QColor("#1f77b4") if self.isSelected() else colour.darker(130))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(border, 3 if self.problem or self.isSelected() else 1.5))
        painter.setBrush(QBrush(base))
        painter.drawRoundedRect(QRectF(0, 0, NODE_W, NODE_H), 8, 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(QRectF(0, 0, 8, NODE_H), 4, 4)
        painter.setPen(text)
        bold = QFont(painter.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QRectF(14, 4, NODE_W - 18, 18), Qt.AlignmentFlag.AlignLeft,
                         f"{self.node.type}  ·  {self.node_id}")
        painter.setFont(QFont(painter.font().family(), max(7, painter.font().pointSize() - 1)))
        metrics = QFontMetrics(painter.font())
        width = int(NODE_W - 18)
        elide = Qt.TextElideMode.ElideRight
        painter.drawText(QRectF(14, 23, NODE_W - 18, 16), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(key_params(self.node), elide, width))
        painter.setPen(QColor("#d62728") if self.problem else text)
        # the message without its "Type 'id': " prefix, which the card already shows
        shown = self.problem.split(": ", 1)[-1] if self.problem else self.shape_text
        painter.drawText(QRectF(14, 41, NODE_W - 18, 16), Qt.AlignmentFlag.AlignLeft,
                         metrics.elidedText(shown, elide, width))
        painter.setPen(QPen(colour.darker(150), 1.5))
        painter.setBrush(base)
        for p in range(self.n_ports()):
            painter.drawEllipse(self.mapFromScene(self.input_port(p)), PORT_R, PORT_R)
        painter.setBrush(colour)
        painter.drawEllipse(QPointF(NODE_W / 2, NODE_H), PORT_R, PORT_R)

    def set_status(self, shape_text: str, problem: str) -> None:
        self.shape_text, self.problem = shape_text, problem
        self.setToolTip(problem or f"{self.node.type} '{self.node_id}': output {shape_text}")
        self.update()

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

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        self.setPen(QPen(QColor("#1f77b4") if self.isSelected() else QColor("#888888"), 2))
        super().paint(painter, option, widget)
        if self.label:
            mid = self.path().pointAtPercent(0.5)
            painter.setPen(widget.palette().text().color() if widget else QColor("black"))
            painter.drawText(mid + QPointF(6, 4), self.label)


class CanvasScene(QGraphicsScene):
    """Mirrors ``editor.graph``; turns mouse gestures into editor calls."""

    message = Signal(str)  # a refused gesture, for the status bar

    def __init__(self, editor: Editor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.nodes: dict[str, NodeItem] = {}
        self.edge_items: dict[Edge, EdgeItem] = {}
        self._drag_line: QGraphicsPathItem | None = None
        self._drag_from: str | None = None
        self._press_positions: dict[str, tuple[float, float]] = {}
        g = editor.graph
        for node in g:
            self._add_node(node)
        for e in g.edges:
            self._add_edge(e)
        g.node_added.connect(self._add_node)
        g.node_removed.connect(self._remove_node)
        g.node_changed.connect(self._node_changed)
        g.edge_added.connect(self._add_edge)
        g.edge_removed.connect(self._remove_edge)
        editor.refused.connect(self.message)

    # mirroring the model -----------------------------------------------------------------

    def _add_node(self, node: Node) -> None:
        item = NodeItem(node)
        self.nodes[node.id] = item
        self.addItem(item)

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

    def show_analysis(self, analysis: Analysis) -> None:
        """Paint shapes on nodes and edges and mark nodes with problems."""
        problems: dict[str, str] = {}
        for p in analysis.problems:
            if p.node and p.severity == "error":
                problems.setdefault(p.node, p.message)
        for nid, item in self.nodes.items():
            info = analysis.nodes.get(nid)
            shape = format_shape(info.shape) if info and info.shape is not None else ""
            item.set_status(shape, problems.get(nid, ""))
        for edge, edge_item in self.edge_items.items():
            info = analysis.nodes.get(edge.src)
            edge_item.label = (format_shape(info.shape) if info and info.shape is not None
                               else "")
            edge_item.update()

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
            event.accept()
            return
        super().mouseReleaseEvent(event)
        moves = {}
        for nid, old in self._press_positions.items():
            item = self.nodes.get(nid)
            if item is not None:
                new = (item.pos().x(), item.pos().y())
                if new != old:
                    moves[nid] = (old, new)
        self._press_positions = {}
        if moves:
            self.editor.move(moves)
