"""The runs list as Train and Evaluate show it: under a heading that says whose runs these are.

There is one runs list; this box holds it and moves between the two views (a widget has one
parent), so its selection, checked overlays and compare text stay the same in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QFont, QPalette, QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from ..training.runs import RunsPanel


class RunsBox(QWidget):
    def __init__(self, panel: RunsPanel) -> None:
        super().__init__()
        self.panel = panel
        title = QLabel("Runs")
        bold = QFont(title.font())
        bold.setBold(True)
        title.setFont(bold)
        self.folder = QLabel()
        self.folder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        # a long path must not widen the window: it is cut, and whole in the tooltip
        self.folder.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        head = QHBoxLayout()
        head.setContentsMargins(6, 4, 6, 0)
        head.setSpacing(6)
        head.addWidget(title)
        head.addWidget(self.folder, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(head)
        lay.addWidget(panel, 1)

    def showEvent(self, event: QShowEvent) -> None:
        folder = self.panel.folder
        self.folder.setText(f"in {folder}" if folder is not None else "")
        self.folder.setToolTip(str(folder or ""))
        super().showEvent(event)
