"""The mode bar: Design, Train and Evaluate as one segmented control, each with its key.

Painted from the palette (light or dark theme alike) rather than styled with a style sheet, so
it reads as one control and follows the theme the application sets.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QPainter, QPainterPath, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QHBoxLayout,
    QSizePolicy,
    QWidget,
)

PAD_X, PAD_Y, GAP, RADIUS = 14, 5, 8, 6.0


class ModeButton(QAbstractButton):
    """One segment: the view's name, and its key in a quieter tone."""

    def __init__(self, name: str, text: str, key: QKeySequence, parent: QWidget) -> None:
        super().__init__(parent)
        self.bar = parent
        self.name = name
        self.key_text = key.toString(QKeySequence.SequenceFormat.NativeText)
        self.setText(text)
        self.setCheckable(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setAccessibleName(f"{text} view")
        self.setToolTip(f"Show the {text} view ({self.key_text})")
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)

    def _fonts(self) -> tuple[QFont, QFont]:
        bold = QFont(self.font())
        bold.setBold(True)
        small = QFont(self.font())
        small.setPointSizeF(max(self.font().pointSizeF() * 0.85, 7.0))
        return bold, small

    def sizeHint(self) -> QSize:
        bold, small = self._fonts()
        name, key = QFontMetrics(bold), QFontMetrics(small)
        w = name.horizontalAdvance(self.text()) + GAP + key.horizontalAdvance(self.key_text)
        return QSize(w + 2 * PAD_X, max(name.height(), key.height()) + 2 * PAD_Y)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        bar = self.bar
        pal = self.palette()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        # the whole bar's rounded outline, in this segment's coordinates: only the two end
        # segments show rounded corners
        whole = QRectF(-self.x(), -self.y(), bar.width(), bar.height()).adjusted(0.5, 0.5,
                                                                                 -0.5, -0.5)
        outline = QPainterPath()
        outline.addRoundedRect(whole, RADIUS, RADIUS)
        p.setClipPath(outline)
        if self.isChecked():
            fill, text_colour = pal.highlight().color(), pal.highlightedText().color()
            key_colour = text_colour
        else:
            fill = pal.button().color()
            if self.underMouse():
                fill = fill.lighter(112) if fill.lightness() < 128 else fill.darker(106)
            text_colour = pal.buttonText().color()
            key_colour = pal.placeholderText().color()
        p.fillRect(self.rect(), fill)
        bold, small = self._fonts()
        name_w = QFontMetrics(bold).horizontalAdvance(self.text())
        key_w = QFontMetrics(small).horizontalAdvance(self.key_text)
        x = (self.width() - name_w - GAP - key_w) / 2
        p.setFont(bold)
        p.setPen(text_colour)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRectF(x, 0, name_w + 1, self.height()), flags, self.text())
        p.setFont(small)
        p.setPen(key_colour)
        p.drawText(QRectF(x + name_w + GAP, 0, key_w + 1, self.height()), flags, self.key_text)
        if self.hasFocus():
            p.setPen(pal.highlight().color() if not self.isChecked() else text_colour)
            p.drawRect(QRectF(self.rect()).adjusted(2.5, 2.5, -2.5, -2.5))


class ModeBar(QWidget):
    """The segments in a rounded frame; ``chosen(name)`` when the user picks one."""

    chosen = Signal(str)

    def __init__(self, modes: Sequence[tuple[str, str, QKeySequence]]) -> None:
        super().__init__()
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, ModeButton] = {}
        lay = QHBoxLayout(self)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.setSpacing(1)  # a hairline of the frame colour between segments
        for name, text, key in modes:
            b = ModeButton(name, text, key, self)
            self.group.addButton(b)
            self.buttons[name] = b
            lay.addWidget(b)
            b.clicked.connect(lambda _=False, n=name: self.chosen.emit(n))
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_current(self, name: str) -> None:
        self.buttons[name].setChecked(True)

    def current(self) -> str:
        b = self.group.checkedButton()
        return b.name if isinstance(b, ModeButton) else ""

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QPainterPath()
        frame.addRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        p.fillPath(frame, self.palette().mid().color())
