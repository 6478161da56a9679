"""The bottom dock: the Keras-style summary table and the problems list, both live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.blockdef import BLOCK
from studio.core.findings import Finding, Fix
from studio.core.graph import Graph
from studio.core.shapes import Analysis, format_shape
from studio.core.summary import human

COLUMNS = ("Layer", "Type", "Output shape", "Params", "Mult-adds")


class SummaryPanel(QWidget):
    """One row per layer; a block's row holds its totals and opens onto its layers (one
    level per repetition when it repeats)."""

    def __init__(self) -> None:
        super().__init__()
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        self.tree.setRootIsDecorated(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.totals = QLabel()
        self.totals.setWordWrap(True)  # one long line would hold the window at its width
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.tree)
        lay.addWidget(self.totals)

    def rows(self) -> dict[str, list[str]]:
        """Every row's cells by its path (``layer1.conv1``; a repetition ``layer1.1``)."""
        out: dict[str, list[str]] = {}
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is None:
                continue
            out[str(item.data(0, PATH_ROLE))] = [item.text(c) for c in range(len(COLUMNS))]
            stack += [item.child(i) for i in range(item.childCount())]
        return out

    def show_analysis(self, graph: Graph, a: Analysis) -> None:
        opened = {path for path, item in self._items().items() if item.isExpanded()}
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        self._fill(self.tree.invisibleRootItem(), graph, a, "", opened)
        self.tree.setUpdatesEnabled(True)
        frozen = a.total_params - a.trainable_params
        self.totals.setText(
            f"Total params: <b>{a.total_params:,}</b> (trainable {a.trainable_params:,}, "
            f"frozen {frozen:,}) · mult-adds per sample: <b>{human(a.total_macs)}</b> · "
            f"activations per sample: <b>{human(4 * a.activation_values, 'B')}</b> (float32)")

    def _items(self) -> dict[str, QTreeWidgetItem]:
        out: dict[str, QTreeWidgetItem] = {}
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item is not None and item.childCount():
                out[str(item.data(0, PATH_ROLE))] = item
                stack += [item.child(i) for i in range(item.childCount())]
        return out

    def _fill(self, parent: QTreeWidgetItem, graph: Graph, a: Analysis, prefix: str,
              opened: set[str]) -> None:
        for nid in a.order:
            node, info = graph.nodes[nid], a.nodes[nid]
            if prefix and node.is_input:
                continue  # a block's ports: the row above shows what feeds them
            kind = node.type
            if node.type == BLOCK:
                repeat = node.params.get("repeat", 1)
                kind = f"Block {node.params.get('block')}" + (f" ×{repeat}" if repeat > 1
                                                               else "")
            item = _row(parent, prefix + nid, (nid, kind, format_shape(info.shape),
                                              f"{info.params:,}", f"{info.macs:,}"))
            if not info.inner:
                continue
            inner = graph.blocks[node.params["block"]].graph
            if len(info.inner) == 1:
                self._fill(item, inner, info.inner[0], f"{prefix}{nid}.", opened)
            else:
                for r, rep in enumerate(info.inner):
                    out = rep.nodes[rep.output].shape if rep.output else None
                    sub = _row(item, f"{prefix}{nid}.{r}", (
                        f"{r}", f"repetition {r + 1}", format_shape(out),
                        f"{rep.total_params:,}", f"{rep.total_macs:,}"))
                    self._fill(sub, inner, rep, f"{prefix}{nid}.{r}.", opened)
                    sub.setExpanded(f"{prefix}{nid}.{r}" in opened)
            item.setExpanded(prefix + nid in opened)


PATH_ROLE = Qt.ItemDataRole.UserRole


def _row(parent: QTreeWidgetItem, path: str, cells: tuple[str, ...]) -> QTreeWidgetItem:
    item = QTreeWidgetItem(list(cells))
    item.setData(0, PATH_ROLE, path)
    for col in (3, 4):
        item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    parent.addChild(item)
    return item


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
