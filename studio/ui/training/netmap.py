"""A read-only map of the network beside the charts, and the figures of the layer clicked.

Nodes are drawn in topological order as one column of small labelled boxes (the order the
built module runs them); an edge between neighbours is a short stem, any other (a skip or a
branch) an arc on the left. Nothing here edits the graph: the map redraws from
``set_network`` whenever the window's project changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneHoverEvent,
    QGraphicsView,
    QLabel,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.health import LayerHealth, Mark

from ..canvas import CATEGORY_COLOURS
from ..cards import health_colour, paint_health
from ..sparkline import health_html, health_text
from .traces import dim

if TYPE_CHECKING:
    from studio.core.graph import Graph, Node
    from studio.core.shapes import Analysis, NodeInfo

BOX_H, GAP, ARC_STEP = 22.0, 6.0, 5.0


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "×".join(str(d) for d in shape) or "scalar"


class NodeBox(QGraphicsItem):
    """One layer: a category strip, its id, its type and its output shape."""

    def __init__(self, node_id: str, kind: str, category: str, shape: str) -> None:
        super().__init__()
        self.node_id, self.kind, self.shape_text = node_id, kind, shape
        self.colour = QColor(CATEGORY_COLOURS.get(category, "#888888"))
        self.width = 200.0
        self.selected = False
        self.health: Mark | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAcceptHoverEvents(True)
        self.set_health(None)

    def set_health(self, mark: Mark | None, pictures: bool = False) -> None:
        """The mark and the tooltip; its sparklines are drawn when the pointer comes."""
        self.health = mark
        tip = f"{self.node_id} · {self.kind} → {self.shape_text}"
        pictures = pictures or self.isUnderMouse()  # a tooltip being read keeps them
        self.setToolTip(tip if mark is None else
                        health_html(f"{tip}\n", mark, health_colour(mark.value)) if pictures
                        else health_text(f"{tip}\n", mark))
        self.update()

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        if self.health is not None:
            self.set_health(self.health, pictures=True)
        super().hoverEnterEvent(event)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.width, BOX_H)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        pal = widget.palette() if widget is not None else None
        if pal is None:
            return
        r = self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        border = pal.highlight().color() if self.selected else pal.mid().color()
        painter.setPen(QPen(border, 2.0 if self.selected else 1.0))
        painter.setBrush(pal.button().color())
        painter.drawRoundedRect(r, 4, 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawRoundedRect(QRectF(r.left() + 2, r.top() + 3, 4, r.height() - 6), 2, 2)
        if self.health is not None:
            dot = r.height() / 2 - 4
            paint_health(painter, QPointF(r.right() - dot - 4, r.center().y()), dot,
                         self.health.level, self.health.value)
            r = r.adjusted(0, 0, -2 * dot - 6, 0)
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        text_rect = r.adjusted(11, 0, -6, 0)
        painter.setFont(font)
        painter.setPen(pal.placeholderText().color())
        shape_w = painter.fontMetrics().horizontalAdvance(self.shape_text)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         self.shape_text)
        left = text_rect.adjusted(0, 0, -shape_w - 8, 0)
        bold = QFont(font)
        bold.setWeight(QFont.Weight.DemiBold)
        painter.setFont(bold)
        painter.setPen(pal.buttonText().color())
        name = painter.fontMetrics().elidedText(self.node_id, Qt.TextElideMode.ElideRight,
                                                int(left.width()))
        painter.drawText(left, Qt.AlignmentFlag.AlignVCenter, name)
        used = painter.fontMetrics().horizontalAdvance(name + "  ")
        painter.setFont(font)
        painter.setPen(pal.placeholderText().color())
        kind = painter.fontMetrics().elidedText(self.kind, Qt.TextElideMode.ElideRight,
                                                int(left.width() - used))
        painter.drawText(left.adjusted(used, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, kind)


class NetworkMap(QGraphicsView):
    """The network as a column of boxes; a click selects a layer (``node_selected``)."""

    node_selected = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setBackgroundBrush(self.palette().base())
        self.boxes: dict[str, NodeBox] = {}
        self._edges: list[tuple[int, int]] = []  # (from row, to row) of the arcs
        self._levels: list[int] = []
        self._paths: list[QGraphicsPathItem] = []
        self.selected: str | None = None

    def set_network(self, graph: Graph, analysis: Analysis | None) -> None:
        self.scene().clear()
        self.boxes, self._paths = {}, []
        order = [n for n in (analysis.order if analysis else []) if n in graph.nodes]
        order += [n for n in graph.nodes if n not in order]  # a cycle: no order to follow
        row = {n: i for i, n in enumerate(order)}
        for nid in order:
            node = graph.nodes[nid]
            spec = node.spec
            info = analysis.nodes.get(nid) if analysis else None
            block = node.params.get("block") if node.type == "Block" else None
            box = NodeBox(nid, block or node.type,
                          "Block" if block else spec.category if spec else "",
                          shape_text(info.shape if info else None))
            self.scene().addItem(box)
            self.boxes[nid] = box
        self._edges = sorted(((row[e.src], row[e.dst]) for e in graph.edges),
                             key=lambda e: e[1] - e[0])
        self._levels = []  # arcs nest: a longer one goes round the shorter ones inside it
        for i, (a, b) in enumerate(self._edges):
            inner = [lv for (c, d), lv in zip(self._edges[:i], self._levels, strict=False)
                     if b - a > 1 and a <= c and d <= b and d - c > 1]
            self._levels.append(0 if b - a == 1 else 1 + max(inner, default=0))
        if self.selected not in self.boxes:
            self.selected = None
        self._layout()

    def show_health(self, health: LayerHealth | None) -> None:
        """Each layer's live health mark, as on the canvas (none: the marks go)."""
        for nid, box in self.boxes.items():
            box.set_health(health.mark(nid) if health is not None else None)

    def _layout(self) -> None:
        arcs = max(self._levels, default=0)
        margin = 4.0 + ARC_STEP * min(arcs, 5) + (4.0 if arcs else 0.0)
        width = max(self.viewport().width() - margin - 6.0, 120.0)
        rows = list(self.boxes.values())
        for i, box in enumerate(rows):
            box.prepareGeometryChange()
            box.width = width
            box.setPos(margin, 4.0 + i * (BOX_H + GAP))
            box.selected = box.node_id == self.selected
        for p in self._paths:
            self.scene().removeItem(p)
        self._paths = []
        pen = QPen(self.palette().placeholderText().color(), 1.2)
        for (a, b), level in zip(self._edges, self._levels, strict=True):
            if a < 0 or b >= len(rows) or a >= b:
                continue
            path = QPainterPath()
            if level == 0:
                x = margin + 14.0
                path.moveTo(x, rows[a].y() + BOX_H)
                path.lineTo(x, rows[b].y())
            else:
                ya, yb = rows[a].y() + BOX_H / 2, rows[b].y() + BOX_H / 2
                x = margin - ARC_STEP * min(level, 5)
                path.moveTo(margin, ya)
                path.cubicTo(QPointF(x, ya), QPointF(x, yb), QPointF(margin, yb))
            item = self.scene().addPath(path, pen)
            item.setZValue(-1)
            self._paths.append(item)
        height = 8.0 + len(rows) * (BOX_H + GAP)
        self.scene().setSceneRect(0, 0, margin + width + 6.0, height)
        self.viewport().update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._layout()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, NodeBox):
            self.select(item.node_id)
            self.node_selected.emit(item.node_id)
        super().mousePressEvent(event)

    def select(self, node_id: str | None) -> None:
        self.selected = node_id
        for box in self.boxes.values():
            box.selected = box.node_id == node_id
            box.update()


class LayerPanel(QWidget):
    """The selected layer's figures; ``sections`` takes whatever is added per layer later
    (statistics during a run)."""

    ROWS = (("layer", "Layer"), ("type", "Type"), ("output", "Output"),
            ("params", "Parameters"), ("macs", "Multiply-adds"))

    def __init__(self) -> None:
        super().__init__()
        self.placeholder = QLabel("Click a layer in the map to see its figures.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet(f"color: {dim(self.palette()).name()}")
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(2)
        self.values: dict[str, QLabel] = {}
        for key, caption in self.ROWS:
            value = QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = value
            self.form.addRow(caption, value)
        self.sections = QVBoxLayout()
        self.health_view: HealthView | None = None  # built with the first run's statistics
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.placeholder)
        lay.addLayout(self.form)
        lay.addLayout(self.sections)
        self.show_layer(None, None, None)

    def show_health(self, node_id: str | None, health: LayerHealth | None) -> None:
        """The layer's live health: its figures, and its activation histograms over the run
        as ridges (the newest in front), as TensorBoard draws them."""
        mark = health.mark(node_id) if health is not None and node_id else None
        ridges = health.hists.get(node_id or "", []) if health is not None else []
        if mark is None:
            if self.health_view is not None:
                self.health_view.hide()
            return
        if self.health_view is None:
            self.health_view = HealthView()
            self.sections.addWidget(self.health_view)
        self.health_view.show_mark(mark, ridges)
        self.health_view.show()

    def show_layer(self, node_id: str | None, node: Node | None, info: NodeInfo | None) -> None:
        self.placeholder.setVisible(node is None)
        for i in range(self.form.rowCount()):
            self.form.setRowVisible(i, node is not None)
        if node is None or node_id is None:
            return
        self.values["layer"].setText(node_id)
        self.values["type"].setText(node.type + ("" if node.trainable else " (frozen)"))
        self.values["output"].setText(shape_text(info.shape if info else None))
        self.values["params"].setText(f"{info.params:,}" if info else "?")
        self.values["macs"].setText(f"{info.macs:,}" if info else "?")


class HealthView(QWidget):
    """A layer's health figures and its activation histograms over time (ridges)."""

    def __init__(self) -> None:
        super().__init__()
        import pyqtgraph as pg

        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plot = pg.PlotWidget(background=None)
        self.plot.setMinimumHeight(110)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideAxis("left")
        self.plot.setLabel("bottom", "activation")
        self.plot.setToolTip("Activation histograms of the probe batch at each sample of the "
                             "run, oldest at the back")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 8, 0, 0)
        lay.addWidget(self.text)
        lay.addWidget(self.plot)

    def show_mark(self, mark: Mark, ridges: list[tuple[int, float, float, list[int]]]) -> None:
        import pyqtgraph as pg

        self.text.setText(mark.text)
        self.plot.setVisible(bool(ridges))
        self.plot.clear()
        n = len(ridges)
        text = self.palette().text().color()
        for i, (_step, lo, hi, counts) in enumerate(ridges):
            peak = max(max(counts), 1)
            width = (hi - lo) / len(counts) if hi > lo else 1.0
            xs = [lo + (k + 0.5) * width for k in range(len(counts))]
            base = (n - 1 - i) * 0.35  # older samples further up and back
            ys = [base + c / peak for c in counts]
            colour = QColor.fromHsvF(0.58, 0.55, 0.35 + 0.6 * (i + 1) / n)
            fill = QColor(colour)
            fill.setAlpha(170)
            curve = pg.PlotCurveItem(xs, ys, pen=pg.mkPen(text if i == n - 1 else colour, width=1),
                                     fillLevel=base, brush=fill)
            curve.setZValue(i)  # the newest drawn last, in front
            self.plot.addItem(curve)
        if ridges:
            self.plot.setTitle(f"steps {ridges[0][0]}–{ridges[-1][0]}", size="8pt")
