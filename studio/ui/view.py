"""The canvas view: zoom, fit, pan, the minimap, quick-add and drops from the palette.

Quick-add (double-click, Space or typing on the canvas) and a wire dropped on nothing open
the same popup at the cursor; what a choice does depends on where it was opened: a free card
there, a card spliced into the wire there, or a card wired to the dragged wire's source.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView

from studio.core import catalog, fit
from studio.core.blockdef import BLOCK
from studio.core.graph import Edge
from studio.core.shapes import format_shape

from . import splice
from .canvas import NODE_H, NODE_W, CanvasScene
from .cards import LEGIBLE_SCALE, SELECTED
from .minimap import Minimap
from .palette import MIME
from .quick_add import QuickAdd

FIT_MARGIN = 40.0
#: the zoom Fit uses when the graph must scroll anyway: card text at 9-11 px, the size of a
#: UI's small print, rather than the 8 px floor; below 100 % so more of a chain is in view
READING_SCALE = 0.85
ON_WIRE_PX = 10.0  # how near a wire (on screen) a double-click counts as on it


class CanvasView(QGraphicsView):
    zoomed = Signal(float)
    context_requested = Signal(str, object)  # node id (or "" for the background), global pos
    minimap_toggled = Signal(bool)

    def __init__(self, scene: CanvasScene) -> None:
        super().__init__(scene)
        self.canvas = scene
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setAcceptDrops(True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.viewport().setMouseTracking(True)  # quick-add by typing opens at the cursor
        self._panning = False
        self._mouse: QPoint | None = None  # the cursor in viewport coordinates, if inside
        self._on_choice: Callable[[str], object] | None = None
        self.minimap = Minimap(self)
        self.quick_add = QuickAdd(self)  # made after the minimap: it opens above it
        self.quick_add.chosen.connect(self._chosen)
        self.quick_add.closed.connect(self._clear_ghosts)
        self._ghosts: list[QGraphicsItem] = []  # where the choice will go, while choosing
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.valueChanged.connect(self.minimap.refresh)
            bar.rangeChanged.connect(self.minimap.refresh)
        self._follow(scene)

    def setScene(self, scene: QGraphicsScene | None) -> None:
        """A new project's scene: follow its signals too (the window swaps scenes)."""
        super().setScene(scene)
        if isinstance(scene, CanvasScene):
            self.canvas = scene
            self._follow(scene)
        self.minimap.refresh()

    def _follow(self, scene: CanvasScene) -> None:
        scene.wire_dropped.connect(self._wire_dropped)
        scene.changed.connect(self._scene_changed)
        self._reset_scene_rect()

    def _scene_changed(self, _regions: object = None) -> None:
        self._grow_scene_rect()
        self.minimap.refresh()

    def _cards_rect(self) -> QRectF:
        """Every card (ports included) with a margin; drag lines and ghosts left out."""
        rect = QRectF()
        for item in self.canvas.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)

    def _room(self) -> QRectF:
        """The cards and half a view around them: any card can be scrolled to the middle."""
        scale = max(self.transform().m11(), 1e-6)
        mx = self.viewport().width() / scale / 2
        my = self.viewport().height() / scale / 2
        return self._cards_rect().adjusted(-mx, -my, mx, my)

    def _reset_scene_rect(self) -> None:
        self.setSceneRect(self._room())

    def _grow_scene_rect(self) -> None:
        """The scrollable area only grows (until the next Fit): were it to follow the cards,
        the view would jump whenever one is dragged past the others."""
        rect = self.sceneRect().united(self._room())
        if rect != self.sceneRect():
            self.setSceneRect(rect)

    # -- zoom, fit and the minimap ------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.quick_add.close_popup()  # the point it would place at moves away
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.transform().m11() * factor
        if 0.1 <= scale <= 4.0:
            self.scale(factor, factor)
            self._grow_scene_rect()
            self.zoomed.emit(scale)

    def zoom_by(self, factor: float) -> None:
        self.scale(factor, factor)
        self._grow_scene_rect()
        self.zoomed.emit(self.transform().m11())

    def fit(self) -> None:
        """Show the whole graph if it reads at that zoom (at most 100 %); else fit its width,
        between the legible floor and the reading zoom, and show its top: the view scrolls down
        a long chain instead of squeezing it into unreadable cards."""
        rect = self._cards_rect()
        vp = self.viewport().rect()
        whole = min(vp.width() / rect.width(), vp.height() / rect.height())
        if whole >= LEGIBLE_SCALE:
            scale = min(whole, 1.0)
            self.setTransform(QTransform.fromScale(scale, scale))
            self._reset_scene_rect()
            self.centerOn(rect.center())
        else:
            scale = max(LEGIBLE_SCALE, min(vp.width() / rect.width(), READING_SCALE))
            self.setTransform(QTransform.fromScale(scale, scale))
            self._reset_scene_rect()
            seen = self.mapToScene(self.viewport().rect()).boundingRect()
            self.centerOn(QPointF(rect.center().x(), rect.top() + seen.height() / 2))
        self.zoomed.emit(self.transform().m11())
        self.minimap.refresh()

    def set_minimap_visible(self, on: bool) -> None:
        """The View ▸ Minimap switch (it still hides while the whole graph is in view)."""
        if on != self.minimap.wanted:
            self.minimap.wanted = on
            self.minimap_toggled.emit(on)
        self.minimap.refresh()

    def minimap_visible(self) -> bool:
        return self.minimap.wanted

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.minimap.refresh()

    # -- mouse and keys -----------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.quick_add.close_popup()
        if event.button() == Qt.MouseButton.MiddleButton:  # pan with the middle button
            self._panning = True
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
            fake = type(event)(event.type(), event.position(), event.globalPosition(),
                               Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                               event.modifiers())
            super().mousePressEvent(fake)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._mouse = event.position().toPoint()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning and event.button() == Qt.MouseButton.MiddleButton:
            self._panning = False
            self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        pos = self.mapToScene(event.position().toPoint())
        item = self.canvas.node_at(pos)
        if event.button() == Qt.MouseButton.LeftButton and item is None:
            self.open_quick_add(pos)
            event.accept()
            return
        if (event.button() == Qt.MouseButton.LeftButton and item is not None
                and item.node.type == BLOCK and item.port_at(pos) is None):
            self.canvas.editor.open_block(item.node_id)  # the window turns to its layers
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._mouse = None
        return super().viewportEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Space, or typing a name, on the canvas opens quick-add at the cursor."""
        plain = not (event.modifiers() & ~(Qt.KeyboardModifier.ShiftModifier
                                           | Qt.KeyboardModifier.KeypadModifier))
        text = event.text()
        if plain and self.canvas.focusItem() is None:
            if event.key() == Qt.Key.Key_Space:
                self.open_quick_add(self._cursor_scene_pos())
                return
            if len(text) == 1 and text.isalnum():  # the start of a layer's name
                self.open_quick_add(self._cursor_scene_pos(), text)
                return
        super().keyPressEvent(event)

    def _cursor_scene_pos(self) -> QPointF:
        at = self._mouse if self._mouse is not None else self.viewport().rect().center()
        return self.mapToScene(at)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        item = self.canvas.node_at(self.mapToScene(event.pos()))
        if item is not None and not item.isSelected():
            self.canvas.clearSelection()
            item.setSelected(True)
        self.context_requested.emit(item.node_id if item else "", event.globalPos())

    # -- quick-add ------------------------------------------------------------------------------

    def fitting(self, src: str) -> list[str]:
        """The layer types that take ``src``'s output (all that take input while unknown)."""
        info = self.canvas.analysis().nodes.get(src)
        if info is None or info.shape is None:
            return [s.type for group in catalog.by_category().values() for s in group
                    if s.inputs != 0]
        return fit.layers_accepting(info.shape, info.dtype)

    def _shape_of(self, src: str) -> str:
        info = self.canvas.analysis().nodes.get(src)
        return format_shape(info.shape) if info is not None and info.shape is not None else "?"

    def wire_at(self, scene_pos: QPointF) -> Edge | None:
        """The wire under a point (within a few pixels on screen), if any."""
        tol = ON_WIRE_PX / max(self.transform().m11(), 1e-6)
        box = QRectF(scene_pos.x() - tol, scene_pos.y() - tol, 2 * tol, 2 * tol)
        paths = {e: item.path() for e, item in self.canvas.edge_items.items()}
        near = splice.wire_under(paths, box)
        return near[0] if near else None

    def open_quick_add(self, scene_pos: QPointF, text: str = "") -> None:
        """Open the popup at ``scene_pos``: on a wire it offers what fits there and splices the
        choice in; elsewhere it offers every layer and places the choice there."""
        card = (scene_pos.x() - NODE_W / 2, scene_pos.y() - NODE_H / 2)
        edge = self.wire_at(scene_pos)
        if edge is not None:
            wire = edge

            def into_wire(kind: str) -> object:
                return self.canvas.splice_new(kind, wire, card)

            self._open(scene_pos, self.fitting(edge.src), text,
                       f"Into {edge.src} → {edge.dst}: {self._shape_of(edge.src)}", into_wire)
            self.canvas.show_target(edge)  # the wire it goes into is marked, no outline
            return

        def place(kind: str) -> object:
            nid = self.canvas.editor.add_layer(kind, card)
            if nid is not None:
                self.canvas.select_only(nid)
            return nid

        self._open(scene_pos, None, text, "", place, card)

    def _wire_dropped(self, src: str, scene_pos: QPointF) -> None:
        """A wire let go on nothing: offer what fits its tensor, wire the choice to it."""
        card = (scene_pos.x() - NODE_W / 2, scene_pos.y())  # its input port at the drop

        def after(kind: str) -> object:
            nid = self.canvas.editor.add_layer(kind, card, after=src)
            if nid is not None:
                self.canvas.select_only(nid)
            return nid

        self._open(scene_pos, self.fitting(src), "", f"After {src}: {self._shape_of(src)}",
                   after, card)
        wire = QPainterPath(self.canvas.nodes[src].output_port())
        wire.lineTo(scene_pos)
        self._ghost(QGraphicsPathItem(wire))

    def _open(self, scene_pos: QPointF, types: list[str] | None, text: str, title: str,
              action: Callable[[str], object], card: tuple[float, float] | None = None
              ) -> None:
        """Open the popup beside the card it would place (drawn as a dashed outline)."""
        self._clear_ghosts()
        self._on_choice = action
        if card is not None:
            outline = QPainterPath()
            outline.addRoundedRect(QRectF(card[0], card[1], NODE_W, NODE_H), 8, 8)
            self._ghost(QGraphicsPathItem(outline))
        else:  # beside the point, clear of a card there
            card = (scene_pos.x() - NODE_W / 2, scene_pos.y() - NODE_H / 2)
        right = QPointF(card[0] + NODE_W, card[1])
        at = self.viewport().mapTo(self, self.mapFromScene(right)) + QPoint(12, 0)
        self.quick_add.open_at(at, types, text, title, self.viewport().geometry())

    def _ghost(self, item: QGraphicsPathItem) -> None:
        item.setPen(QPen(SELECTED, 2, Qt.PenStyle.DashLine))
        item.setZValue(2)
        self.canvas.addItem(item)
        self._ghosts.append(item)

    def _clear_ghosts(self) -> None:
        for item in self._ghosts:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._ghosts = []
        self.canvas.show_target(None)

    def _chosen(self, kind: str) -> None:
        action, self._on_choice = self._on_choice, None
        if action is not None:
            action(kind)

    # -- drops from the palette --------------------------------------------------------------

    def _drop_target(self, event: QDragMoveEvent | QDropEvent) -> tuple[str, QPointF, Edge | None]:
        kind = bytes(event.mimeData().data(MIME).data()).decode()
        pos = self.mapToScene(event.position().toPoint())
        rect = QRectF(pos.x() - NODE_W / 2, pos.y() - 20, NODE_W, NODE_H)
        return kind, pos, self.canvas.wire_for(rect, kind)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(MIME):
            event.acceptProposedAction()
            self.canvas.show_target(self._drop_target(event)[2])
        else:
            super().dragMoveEvent(event)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.canvas.show_target(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if not event.mimeData().hasFormat(MIME):
            super().dropEvent(event)
            return
        kind, pos, edge = self._drop_target(event)
        self.canvas.show_target(None)
        card = (pos.x() - NODE_W / 2, pos.y() - 20)
        if edge is not None:
            self.canvas.splice_new(kind, edge, card)
        else:
            self.canvas.editor.add_layer(kind, card)
        event.acceptProposedAction()
