"""The bottom dock: the Keras-style summary table and the problems list, both live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
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

from studio.core.findings import Finding, Fix
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


FINDING_ROLE = Qt.ItemDataRole.UserRole + 1  # the Finding an item shows


class ProblemsPanel(QListWidget):
    """Every problem and doctor finding, errors (✖, red) apart from warnings (⚠, amber); the
    reason is the tooltip. Clicking one selects its node; double-click or Enter applies its
    fix."""

    node_clicked = Signal(str)
    fix_requested = Signal(object)  # a studio.core.findings.Fix

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)  # messages are sentences; the dock is narrow
        self.itemClicked.connect(self._clicked)
        self.itemDoubleClicked.connect(self._fix)

    def show_problems(self, found: list[Finding]) -> None:
        self.clear()
        for f in found:
            item = QListWidgetItem(("⚠ " if f.severity == "warning" else "✖ ") + f.message)
            item.setData(Qt.ItemDataRole.UserRole, f.node)
            item.setData(FINDING_ROLE, f)
            item.setForeground(QColor("#d62728") if f.severity == "error" else QColor("#b8860b"))
            tip = [f.reason] if f.reason else []
            if f.fix is not None:
                tip.append(f"Double-click to {f.fix.label}.")
            if f.code:
                tip.append(f"Rule {f.code} (docs/doctor.md)")
            item.setToolTip("\n\n".join(tip))
            self.addItem(item)
        if not found:
            ok = QListWidgetItem("✔ No problems")
            ok.setForeground(QColor("#2ca02c"))
            self.addItem(ok)

    def finding(self, row: int) -> Finding | None:
        item = self.item(row)
        found: Finding | None = item.data(FINDING_ROLE) if item is not None else None
        return found

    def _clicked(self, item: QListWidgetItem) -> None:
        node = item.data(Qt.ItemDataRole.UserRole)
        if node:
            self.node_clicked.emit(node)

    def _fix(self, item: QListWidgetItem) -> None:
        found = item.data(FINDING_ROLE)
        fix: Fix | None = found.fix if found is not None else None
        if fix is not None:
            self.fix_requested.emit(fix)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and item is not None:
            self._fix(item)
            return
        super().keyPressEvent(event)
