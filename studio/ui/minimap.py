"""The minimap: the whole graph in a corner of the canvas, with the visible part outlined.

A long network does not fit the view at a readable zoom, so the view scrolls; the minimap
shows where the view is in the whole and moves it on a click or drag. It draws from the scene
(cards as coloured boxes, wires as lines), keeps no state of its own, and hides itself while
the whole graph is in view, where it would show nothing new.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QGraphicsView, QWidget

from .canvas import CanvasScene
from .cards import NODE_H, NODE_W, category_colour

MAX_SIDE, MIN_SIDE, MARGIN, PAD = 180, 72, 10, 6


class Minimap(QWidget):
    """An overlay child of ``view`` kept in the viewport's bottom-right corner."""

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self.view = view
        self.wanted = True  # the user's choice; shown only while part of the graph is hidden
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click or drag to move the view")
        self.hide()

    def scene(self) -> CanvasScene | None:
        scene = self.view.scene()
        return scene if isinstance(scene, CanvasScene) else None

    def world(self) -> QRectF:
        """The scene area the map shows: every card, with a margin."""
        scene = self.scene()
        if scene is None:
            return QRectF()
        rect = QRectF()
        for item in scene.nodes.values():
            rect = rect.united(item.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H)))
        return rect.adjusted(-40, -40, 40, 40) if rect.isValid() else QRectF()

    def visible_rect(self) -> QRectF:
        return self.view.mapToScene(self.view.viewport().rect()).boundingRect()

    def refresh(self) -> None:
        """Show or hide, size to the graph's proportions and sit in the corner; repaint."""
        world = self.world()
        needed = (self.wanted and world.isValid()
                  and not self.visible_rect().contains(world.adjusted(40, 40, -40, -40)))
        if not needed:
            self.hide()
            return
        if world.width() >= world.height():
            w, h = MAX_SIDE, max(MIN_SIDE, round(MAX_SIDE * world.height() / world.width()))
        else:
            w, h = max(MIN_SIDE, round(MAX_SIDE * world.width() / world.height())), MAX_SIDE
        self.resize(w, h)
        vp = self.view.viewport().geometry()
        self.move(vp.right() - w - MARGIN + 1, vp.bottom() - h - MARGIN + 1)
        self.show()  # stacked under the quick-add popup, which was made after it
        self.update()

    # -- mapping between the map and the scene ------------------------------------------------

    def _scale(self, world: QRectF) -> float:
        return min((self.width() - 2 * PAD) / world.width(),
                   (self.height() - 2 * PAD) / world.height())

    def to_map(self, p: QPointF, world: QRectF) -> QPointF:
        s = self._scale(world)
        ox = (self.width() - world.width() * s) / 2
        oy = (self.height() - world.height() * s) / 2
        return QPointF(ox + (p.x() - world.left()) * s, oy + (p.y() - world.top()) * s)

    def to_scene(self, p: QPointF) -> QPointF:
        """The scene point under a point of the map."""
        world = self.world()
        if not world.isValid():
            return QPointF()
        s = self._scale(world)
        ox = (self.width() - world.width() * s) / 2
        oy = (self.height() - world.height() * s) / 2
        return QPointF(world.left() + (p.x() - ox) / s, world.top() + (p.y() - oy) / s)

    # -- painting and panning -----------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        scene, world = self.scene(), self.world()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        back = QColor(pal.color(QPalette.ColorRole.Window))
        back.setAlpha(235)
        painter.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(back)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        if scene is None or not world.isValid():
            return
        wire = QColor(pal.color(QPalette.ColorRole.Text))
        wire.setAlpha(110)
        painter.setPen(QPen(wire, 1))
        for item in scene.edge_items.values():
            painter.drawLine(QLineF(self.to_map(item.src.output_port(), world),
                                    self.to_map(item.dst.input_port(item.edge.port), world)))
        painter.setPen(Qt.PenStyle.NoPen)
        for node_item in scene.nodes.values():
            spec = node_item.node.spec
            colour = category_colour("Block" if node_item.node.type == "Block"
                                     else spec.category if spec else None)
            if node_item.problem:
                colour = QColor("#d62728")
            rect = node_item.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H))
            painter.setBrush(colour)
            painter.drawRect(QRectF(self.to_map(rect.topLeft(), world),
                                    self.to_map(rect.bottomRight(), world)))
        seen = self.visible_rect()
        frame = QRectF(self.to_map(seen.topLeft(), world), self.to_map(seen.bottomRight(), world))
        frame = frame.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        highlight = QColor(pal.color(QPalette.ColorRole.Highlight))
        painter.setPen(QPen(highlight, 1.5))
        highlight.setAlpha(40)
        painter.setBrush(highlight)
        painter.drawRect(frame)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
            event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
            event.accept()
