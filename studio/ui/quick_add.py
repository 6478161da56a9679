"""Quick-add: a small searchable list of layer types opened at a point on the canvas.

Double-click, Space or typing on the canvas opens it; a wire dropped on nothing opens it with
only the layers that fit the wire's tensor. It says what was chosen (``chosen``) and nothing
else: the view decides what the choice does, so one popup serves every gesture.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QHideEvent,
    QIcon,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsDropShadowEffect,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import catalog

from .cards import category_colour
from .palette import label, search_matches

WIDTH = 340  # room for a layer and the familiar name it was found by
_KIND = Qt.ItemDataRole.UserRole
_NAVIGATION = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_PageUp: -8,
               Qt.Key.Key_PageDown: 8}


def _swatch(colour: QColor) -> QIcon:
    """The category's colour, as on the cards (also when the row is selected)."""
    pix = QPixmap(12, 12)
    pix.fill(colour)
    icon = QIcon(pix)
    icon.addPixmap(pix, QIcon.Mode.Selected)
    return icon


class QuickAdd(QFrame):
    """A filter line over a list of layer types; Enter or a click chooses, Escape closes."""

    chosen = Signal(str)
    closed = Signal()  # hidden, chosen or not

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("quickAdd")
        self.setFrameShape(QFrame.Shape.NoFrame)  # paintEvent draws a border both themes show
        self.setAutoFillBackground(True)
        self.setFixedWidth(WIDTH)
        self.title = QLabel()
        self.title.setWordWrap(True)
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Add a layer…")
        self.edit.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the filter line
        self.list.setUniformItemSizes(True)
        self.list.setIconSize(QSize(12, 12))
        # a long familiar name ends in "…" (the tooltip has it whole); no sideways scrolling
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.doc = QLabel()
        self.doc.setWordWrap(True)
        self.doc.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows the theme
        self.doc.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.doc.setFixedHeight(self._doc_height(WIDTH - 12))
        shadow = QGraphicsDropShadowEffect(self)  # it floats over the canvas, as a menu does
        shadow.setBlurRadius(18)
        shadow.setOffset(0, 3)
        shadow.setColor(QColor(0, 0, 0, 110))
        self.setGraphicsEffect(shadow)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        for w in (self.title, self.edit, self.list, self.doc):
            lay.addWidget(w)
        self.types: list[str] | None = None
        self.edit.textChanged.connect(self._refill)
        self.edit.installEventFilter(self)
        self.list.currentItemChanged.connect(self._show_doc)
        self.list.itemClicked.connect(self._choose_item)
        self.hide()

    def _doc_height(self, width: int) -> int:
        """Room for the longest doc line of the catalog, so no doc is cut and the popup keeps
        its size while the selection moves."""
        metrics = self.doc.fontMetrics()
        flags = int(Qt.TextFlag.TextWordWrap)
        tallest = max(metrics.boundingRect(QRect(0, 0, width, 10_000), flags,
                                           f"{s.category} · {s.doc}").height()
                      for s in catalog.CATALOG.values())
        return max(tallest, metrics.lineSpacing() * 3) + 2

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.closed.emit()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        painter = QPainter(self)
        border = QColor(self.palette().color(QPalette.ColorRole.PlaceholderText))
        border.setAlpha(160)
        painter.setPen(border)
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))

    # -- opening and closing ------------------------------------------------------------------

    def open_at(self, at: QPoint, types: list[str] | None = None, text: str = "",
                title: str = "", area: QRect | None = None) -> None:
        """Show at ``at`` (parent coordinates, kept inside ``area``, default the parent) with
        ``types`` only (None: all), the filter holding ``text``."""
        self.types = types
        self.title.setText(title)
        self.title.setVisible(bool(title))
        self.edit.blockSignals(True)
        self.edit.setText(text)
        self.edit.blockSignals(False)
        self._refill(text)
        layout = self.layout()
        if layout is not None:
            layout.activate()
        self.adjustSize()
        parent = self.parentWidget()
        if area is None:
            area = parent.rect() if parent is not None else self.rect()
        x = max(area.left(), min(at.x(), area.right() - self.width()))
        y = max(area.top(), min(at.y(), area.bottom() - self.height()))
        self.move(x, y)
        self.show()
        self.raise_()
        self.edit.setFocus(Qt.FocusReason.PopupFocusReason)

    def close_popup(self) -> None:
        if self.isVisible():
            self.hide()
            parent = self.parentWidget()
            if parent is not None:
                parent.setFocus(Qt.FocusReason.PopupFocusReason)

    # -- the list -----------------------------------------------------------------------------

    def _items(self) -> list[QListWidgetItem]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [item for item in items if item is not None]

    def shown_types(self) -> list[str]:
        """The layer types listed now, in their order."""
        return [str(item.data(_KIND)) for item in self._items()]

    def shown_labels(self) -> list[str]:
        """The rows' text: the type, and the alias it was found by ("Linear — Keras: Dense")."""
        return [item.text() for item in self._items()]

    def _refill(self, text: str) -> None:
        self.list.clear()
        for kind, alias in search_matches(text, self.types):
            spec = catalog.get(kind)
            item = QListWidgetItem(_swatch(category_colour(spec.category if spec else None)),
                                   label(kind, alias))
            item.setData(_KIND, kind)
            if spec is not None:
                item.setToolTip(f"{label(kind, alias)}\n{spec.doc}" if alias else spec.doc)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        rows = max(4, min(self.list.count(), 10))
        row_h = self.list.sizeHintForRow(0)
        if row_h <= 0:  # an empty list: size it as rows of text
            row_h = self.list.fontMetrics().height() + 2
        self.list.setFixedHeight(rows * row_h + 2 * self.list.frameWidth())
        if self.list.count() == 0:
            self.doc.setText("Nothing matches." if self.types is None or self.types
                             else "No layer takes this tensor.")

    def _show_doc(self, item: QListWidgetItem | None) -> None:
        spec = catalog.get(str(item.data(_KIND))) if item is not None else None
        if spec is not None:
            self.doc.setText(f"{spec.category} · {spec.doc}")

    def _choose_item(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        kind = str(item.data(_KIND))
        self.hide()
        parent = self.parentWidget()
        if parent is not None:
            parent.setFocus(Qt.FocusReason.OtherFocusReason)
        self.chosen.emit(kind)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.close_popup()
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._choose_item(self.list.currentItem())
                return True
            if key in _NAVIGATION and self.list.count():
                row = self.list.currentRow() + _NAVIGATION[Qt.Key(key)]
                self.list.setCurrentRow(max(0, min(row, self.list.count() - 1)))
                return True
        if (watched is self.edit and event.type() == QEvent.Type.FocusOut
                and self.isVisible() and not self.list.underMouse()):
            self.hide()  # a click elsewhere closes it, as a menu would
        return super().eventFilter(watched, event)
