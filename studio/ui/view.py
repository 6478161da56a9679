"""The canvas view: zoom, pan, rubber-band selection and drops from the palette."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QMouseEvent,
    QPainter,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView

from .canvas import NODE_W, CanvasScene
from .palette import MIME


class CanvasView(QGraphicsView):
    zoomed = Signal(float)
    context_requested = Signal(str, object)  # node id (or "" for the background), global pos

    def __init__(self, scene: CanvasScene) -> None:
        super().__init__(scene)
        self.canvas = scene
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setAcceptDrops(True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self._panning = False

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.transform().m11() * factor
        if 0.1 <= scale <= 4.0:
            self.scale(factor, factor)
            self.zoomed.emit(scale)

    def zoom_by(self, factor: float) -> None:
        self.scale(factor, factor)
        self.zoomed.emit(self.transform().m11())

    def fit(self) -> None:
        rect = self.canvas.itemsBoundingRect().adjusted(-40, -40, 40, 40)
        if rect.isValid():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            if self.transform().m11() > 1.0:
                self.resetTransform()
                self.centerOn(rect.center())
        self.zoomed.emit(self.transform().m11())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:  # pan with the middle button
            self._panning = True
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            fake = type(event)(event.type(), event.position(), event.globalPosition(),
                               Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                               event.modifiers())
            super().mousePressEvent(fake)
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning and event.button() == Qt.MouseButton.MiddleButton:
            self._panning = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        item = self.canvas.node_at(self.mapToScene(event.pos()))
        if item is not None and not item.isSelected():
            self.canvas.clearSelection()
            item.setSelected(True)
        self.context_requested.emit(item.node_id if item else "", event.globalPos())

    # drops from the palette --------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(MIME):
            super().dropEvent(event)
            return
        kind = bytes(event.mimeData().data(MIME).data()).decode()
        pos = self.mapToScene(event.position().toPoint())
        self.canvas.editor.add_layer(kind, (pos.x() - NODE_W / 2, pos.y() - 20))
        event.acceptProposedAction()
