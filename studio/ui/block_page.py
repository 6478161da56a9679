"""The inspector's page for a block instance: which block it uses and who shares it, its
shapes and size, how many times it repeats, the layers inside, and the block's actions."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.blockdef import MAX_REPEAT
from studio.core.shapes import format_shape
from studio.core.summary import human

if TYPE_CHECKING:
    from .editor import Editor


class BlockPage(QWidget):
    """Everything about one block instance; each change goes through the editor (undoable)."""

    def __init__(self, editor: Editor, node_id: str) -> None:
        super().__init__()
        self.editor, self.node_id = editor, node_id
        node = editor.graph.nodes[node_id]
        name = node.params["block"]
        defn = editor.network.blocks.get(name)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"<b>Block</b> · {html.escape(node_id)}"))
        shared = editor.uses_of(name)
        about = QLabel(
            f"Uses the block <b>{html.escape(name)}</b>"
            + (f": {html.escape(defn.description)}" if defn and defn.description else ".")
            + ("<br><i>Shared by " + str(shared) + " instances: editing its layers changes "
               "them all. Make Unique to change this one alone.</i>" if shared > 1 else ""))
        about.setWordWrap(True)
        lay.addWidget(about)

        form = QFormLayout()
        self.name_edit = QLineEdit(name)
        self.name_edit.setToolTip("The block's name (every instance's); Enter renames it")
        self.name_edit.returnPressed.connect(self._rename)
        form.addRow("Name", self.name_edit)
        self.description_edit = QLineEdit(defn.description if defn else "")
        self.description_edit.setPlaceholderText("What the block is for")
        self.description_edit.setCursorPosition(0)
        self.description_edit.setToolTip(defn.description if defn else "")
        self.description_edit.editingFinished.connect(self._describe)
        form.addRow("About", self.description_edit)
        self.repeat = QSpinBox()
        self.repeat.setRange(1, MAX_REPEAT)
        self.repeat.setValue(int(node.params.get("repeat", 1)))
        self.repeat.setSuffix(" ×")
        self.repeat.setToolTip("Run the block this many times in a row, each with its own "
                               "weights (its output must fit its own input)")
        self.repeat.editingFinished.connect(self._set_repeat)
        form.addRow("Repeat", self.repeat)
        self.trainable = QCheckBox("Trainable (uncheck to freeze)")
        self.trainable.setToolTip("Unchecked, every layer of this instance keeps its weights")
        self.trainable.setChecked(node.trainable)
        self.trainable.toggled.connect(lambda v: editor.set_trainable(node_id, v))
        form.addRow(self.trainable)
        lay.addLayout(form)

        self.sizes = QLabel()
        self.sizes.setWordWrap(True)
        lay.addWidget(self.sizes)
        self.layers = QTreeWidget()
        self.layers.setHeaderLabels(["Layer", "Type", "Output"])
        self.layers.setRootIsDecorated(False)
        self.layers.setToolTip("Double-click a layer to open the block at it")
        self.layers.itemDoubleClicked.connect(self._open_at)
        lay.addWidget(self.layers)

        buttons = QGridLayout()
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Show the block's layers on the canvas (double-click the "
                                    "card does the same)")
        self.open_button.clicked.connect(lambda: editor.open_block(node_id))
        self.ungroup_button = QPushButton("Ungroup")
        self.ungroup_button.clicked.connect(lambda: editor.ungroup(node_id))
        self.unique_button = QPushButton("Make Unique")
        self.unique_button.setEnabled(shared > 1)
        self.unique_button.clicked.connect(lambda: editor.make_unique(node_id))
        self.save_button = QPushButton("Save to Library…")
        self.save_button.setToolTip("Keep this block in your library (it shows in the palette)")
        self.save_button.clicked.connect(self._save)
        for k, b in enumerate((self.open_button, self.ungroup_button, self.unique_button,
                               self.save_button)):
            buttons.addWidget(b, k // 2, k % 2)
        lay.addLayout(buttons)
        lay.addStretch(1)
        self.analysis_changed()

    def analysis_changed(self) -> None:
        """Shapes, size and the layers inside, as the network feeds this instance."""
        editor = self.editor
        window = self.window()
        analysis = getattr(window, "shown_analysis", None)
        info = analysis.nodes.get(self.node_id) if analysis is not None else None
        if info is None:
            from studio.core.shapes import analyze

            info = analyze(editor.graph).nodes.get(self.node_id)
        self.layers.clear()
        if info is None or info.shape is None:
            self.sizes.setText("<i>Shapes unknown until the problems above it are fixed.</i>")
            return
        ins = ", ".join(format_shape(s) for s in info.in_shapes)
        self.sizes.setText(f"{ins} → {format_shape(info.shape)}<br>{info.params:,} parameters"
                           f" · {human(info.macs)} multiply-adds"
                           + (f" (all {len(info.inner)} repetitions)" if len(info.inner) > 1
                              else ""))
        inner = info.inner[0] if info.inner else None
        if inner is None:
            return
        defn = editor.network.blocks[editor.graph.nodes[self.node_id].params["block"]]
        for nid in inner.order:
            node = defn.graph.nodes[nid]
            if node.is_input:
                continue  # a port: the shapes above say what comes in
            kind = node.params.get("block", node.type) if node.type == "Block" else node.type
            row = QTreeWidgetItem([nid, kind, format_shape(inner.nodes[nid].shape)])
            row.setData(0, Qt.ItemDataRole.UserRole, nid)
            self.layers.addTopLevelItem(row)
        for c in range(3):
            self.layers.resizeColumnToContents(c)
        self.layers.setMaximumHeight(24 + 22 * min(8, len(inner.order)))

    def _rename(self) -> None:
        node = self.editor.graph.nodes.get(self.node_id)
        if node is None:
            return
        if not self.editor.rename_block(node.params["block"], self.name_edit.text().strip()):
            self.name_edit.setText(node.params["block"])

    def _describe(self) -> None:
        node = self.editor.graph.nodes.get(self.node_id)
        if node is not None:
            self.editor.describe_block(node.params["block"], self.description_edit.text())

    def _set_repeat(self) -> None:
        node = self.editor.graph.nodes.get(self.node_id)
        if node is None or self.repeat.value() == node.params.get("repeat", 1):
            return
        if not self.editor.set_block_params(self.node_id, {**node.params,
                                                           "repeat": self.repeat.value()}):
            self.repeat.setValue(int(node.params.get("repeat", 1)))

    def _open_at(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        nid = item.data(0, Qt.ItemDataRole.UserRole)
        window = self.window()
        if self.editor.open_block(self.node_id) and hasattr(window, "editing"):
            window.editing.select_node(str(nid))

    def _save(self) -> None:
        blocks = getattr(self.window(), "blocks", None)  # the window's controller does files
        if blocks is not None:
            blocks.save_to_library()
