"""Where the canvas is when a block is open: ``Network › layer1_0 (BasicBlock)``, each step
a link back, over the canvas's top-left corner. Hidden on the network itself."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGraphicsView, QHBoxLayout, QLabel

MARGIN = 8


class Breadcrumb(QFrame):
    """An overlay child of the canvas view; ``chosen(depth)``: go back out to that depth."""

    chosen = Signal(int)

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self.setObjectName("breadcrumb")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.linkActivated.connect(lambda depth: self.chosen.emit(int(depth)))
        self.label.setToolTip("Click a name to go back out to it (Ctrl+Backspace: one level)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.label)
        self.path: list[tuple[str, str]] = []
        self.hide()

    def show_path(self, path: list[tuple[str, str]]) -> None:
        """``path``: the blocks opened, outermost first, as (instance id, block name)."""
        self.path = list(path)
        if not path:
            self.hide()
            return
        from .training.traces import is_dark

        pal = self.palette()
        dark = is_dark(pal)
        link = "#5aa9e6" if dark else "#1f63b4"  # Qt's link blue is unreadable on dark
        self.setStyleSheet(
            f"QFrame#breadcrumb {{ background: {pal.window().color().name()};"
            f" border: 1px solid {pal.mid().color().name()}; border-radius: 4px; }}")
        parts = [f'<a href="0" style="color: {link}">Network</a>']
        for depth, (inst, name) in enumerate(path, start=1):
            text = f"{html.escape(inst)} ({html.escape(name)})"
            parts.append(f"<b>{text}</b>" if depth == len(path)
                         else f'<a href="{depth}" style="color: {link}">{text}</a>')
        self.label.setText(" › ".join(parts) + "&nbsp;&nbsp;<i>editing changes every "
                           "instance</i>")
        self.adjustSize()
        self.move(MARGIN, MARGIN)
        self.show()
        self.raise_()

    def text(self) -> str:
        return self.label.text()
