"""The bottom dock: the Keras-style summary table and the problems list, both live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.graph import Graph
from studio.core.shapes import Analysis, format_shape
from studio.core.summary import human

COLUMNS = ("Layer", "Type", "Output shape", "Params", "Mult-adds")


class SummaryPanel(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.totals = QLabel()
        self.totals.setWordWrap(True)  # one long line would hold the window at its width
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table)
        lay.addWidget(self.totals)

    def show_analysis(self, graph: Graph, a: Analysis) -> None:
        self.table.setUpdatesEnabled(False)
        self.table.setRowCount(len(a.order))
        for row, nid in enumerate(a.order):
            info = a.nodes[nid]
            cells = (nid, graph.nodes[nid].type, format_shape(info.shape),
                     f"{info.params:,}", f"{info.macs:,}")
            for col, text in enumerate(cells):
                item = self.table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    if col >= 3:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(row, col, item)
                item.setText(text)
        self.table.setUpdatesEnabled(True)
        frozen = a.total_params - a.trainable_params
        self.totals.setText(
            f"Total params: <b>{a.total_params:,}</b> (trainable {a.trainable_params:,}, "
            f"frozen {frozen:,}) · mult-adds per sample: <b>{human(a.total_macs)}</b> · "
            f"activations per sample: <b>{human(4 * a.activation_values, 'B')}</b> (float32)")


class ProblemsPanel(QListWidget):
    """Every problem; clicking one selects its node."""

    node_clicked = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.itemClicked.connect(self._clicked)

    def show_analysis(self, a: Analysis) -> None:
        self.clear()
        for p in a.problems:
            item = QListWidgetItem(("⚠ " if p.severity == "warning" else "✖ ") + p.message)
            item.setData(Qt.ItemDataRole.UserRole, p.node)
            item.setForeground(QColor("#d62728") if p.severity == "error" else QColor("#b8860b"))
            self.addItem(item)
        if not a.problems:
            ok = QListWidgetItem("✔ No problems")
            ok.setForeground(QColor("#2ca02c"))
            self.addItem(ok)

    def _clicked(self, item: QListWidgetItem) -> None:
        node = item.data(Qt.ItemDataRole.UserRole)
        if node:
            self.node_clicked.emit(node)
