"""Blocks in the window: the Blocks menu, opening and closing blocks on the canvas with a
breadcrumb back, and the library's files. The edits themselves are the editor's
(``studio.ui.block_edits``), one undo step each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMenuBar,
    QMessageBox,
)

from studio.core.blockdef import BLOCK
from studio.core.errors import StudioError
from studio.core.shapes import Analysis, analyze

from ..breadcrumb import Breadcrumb

if TYPE_CHECKING:
    from ..main_window import MainWindow

BLOCK_FILES = "Studio blocks (*.studio-block.json);;All files (*)"


class BlocksController(QObject):
    """Group, open, ungroup, rename, share: what the Blocks menu and the canvas offer."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.breadcrumb: Breadcrumb | None = None
        #: asked before a saved block of the same name is replaced (tests answer it)
        self.ask_replace: Callable[[str], bool] = self._ask_replace
        w = window

        def action(text: str, slot: object, shortcut: str | None = None,
                   tip: str = "") -> QAction:
            a = QAction(text, w)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.triggered.connect(lambda _=False: slot())  # type: ignore[operator]
            return a

        self.act_group = action("&Group as Block", self.group, "Ctrl+G",
                                "The selected layers become one block: a card that opens")
        self.act_ungroup = action("&Ungroup", self.ungroup, "Ctrl+Shift+G",
                                  "Put the selected block's layers back in its place")
        self.act_open = action("&Open Block", self.open_selected, "Ctrl+Return",
                               "Show the block's layers (edits change every instance)")
        self.act_close = action("&Close Block", self.close_one, "Ctrl+Backspace",
                                "Back to what holds the block")
        self.act_rename = action("&Rename Block…", self.rename, "F2")
        self.act_unique = action("Make &Unique", self.make_unique,
                                 tip="Give this instance its own copy, to change it alone")
        self.act_save = action("&Save Block to Library…", self.save_to_library,
                               tip="Keep the block in your library: it shows in the palette")
        self.act_export = action("&Export Block File…", self.export_file)
        self.act_import = action("&Import Block File…", self.import_file)
        w.views.changed.connect(lambda _mode: self.update_actions())
        self.actions = [self.act_group, self.act_ungroup, self.act_open, self.act_close,
                        self.act_rename, self.act_unique, self.act_save, self.act_export,
                        self.act_import]

    def add_menu(self, bar: QMenuBar) -> QMenu:
        menu = bar.addMenu("&Blocks")
        for a in self.actions[:4]:
            menu.addAction(a)
        menu.addSeparator()
        for a in self.actions[4:6]:
            menu.addAction(a)
        menu.addSeparator()
        for a in self.actions[6:]:
            menu.addAction(a)
        menu.aboutToShow.connect(self.update_actions)
        return menu

    # -- what is selected -----------------------------------------------------------------

    def _block(self) -> str | None:
        """The one selected block instance, if that is what is selected."""
        ids = self.window.editing.selected_ids()
        g = self.window.editor.graph
        if len(ids) == 1 and ids[0] in g and g.nodes[ids[0]].type == BLOCK:
            return ids[0]
        return None

    def update_actions(self) -> None:
        """Each action on only where it applies (and only while the canvas shows)."""
        design = self.window.views.current in ("design", "")
        block = self._block() if design else None
        self.act_group.setEnabled(design)  # with nothing selected it says what to do
        for a in (self.act_ungroup, self.act_open, self.act_rename, self.act_save,
                  self.act_export):
            a.setEnabled(block is not None)
        g = self.window.editor.graph
        self.act_unique.setEnabled(block is not None and self.window.editor.uses_of(
            g.nodes[block].params["block"]) > 1)
        self.act_close.setEnabled(design and bool(self.window.editor.scope))
        self.act_import.setEnabled(design)

    def context_actions(self, node_id: str) -> list[QAction]:
        """The block entries of a node's right-click menu."""
        self.update_actions()
        if not node_id:
            return [self.act_close] if self.window.editor.scope else []
        if self._block() is not None:
            return [self.act_open, self.act_ungroup, self.act_rename, self.act_unique,
                    self.act_save]
        return [self.act_group]

    # -- actions --------------------------------------------------------------------------

    def group(self) -> None:
        w = self.window
        ids = w.editing.selected_ids()
        if not ids:
            w.show_status("select the layers to group first")
            return
        nid = w.editor.group(ids)
        if nid is not None:
            w.editing.select_node(nid)
            name = w.editor.graph.nodes[nid].params["block"]
            w.show_status(f"grouped {len(ids)} layers as {name}; double-click it to open, "
                          "F2 to rename")

    def ungroup(self) -> None:
        nid = self._block()
        if nid is not None:
            new = self.window.editor.ungroup(nid)
            scene = self.window.scene
            scene.clearSelection()
            for i in new:
                if i in scene.nodes:
                    scene.nodes[i].setSelected(True)

    def open_selected(self) -> None:
        nid = self._block()
        if nid is not None:
            self.window.editor.open_block(nid)

    def close_one(self) -> None:
        editor = self.window.editor
        if editor.scope:
            inst = editor.scope[-1][0]
            editor.close_blocks(len(editor.scope) - 1)
            self.window.editing.select_node(inst)

    def rename(self) -> None:
        w = self.window
        nid = self._block()
        if nid is None:
            return
        old = w.editor.graph.nodes[nid].params["block"]
        new, ok = QInputDialog.getText(w, "Rename Block", "New name for every instance of "
                                       f"{old} (letters, digits and _):",
                                       QLineEdit.EchoMode.Normal, old)
        if ok and new.strip():
            w.editor.rename_block(old, new.strip())

    def make_unique(self) -> None:
        nid = self._block()
        if nid is not None:
            new = self.window.editor.make_unique(nid)
            if new:
                self.window.show_status(f"{nid} now uses its own block {new}")

    def _ask_replace(self, name: str) -> bool:
        answer = QMessageBox.question(
            self.window, "Save Block", f"Your library already holds a block named {name}. "
            "Replace it with this one?", QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def save_to_library(self) -> None:
        from studio.core.block_library import library_path, save_to_library

        w = self.window
        nid = self._block()
        if nid is None:
            return
        name = w.editor.graph.nodes[nid].params["block"]
        if library_path(name).exists() and not self.ask_replace(name):
            return
        try:
            path = save_to_library(w.editor.network, name)
        except (StudioError, OSError) as exc:
            w.show_error("Save Block", f"The block could not be saved: {exc}")
            return
        w.layer_palette.refresh_blocks()
        w.show_status(f"saved {name} to the library: {path}")

    def export_file(self) -> None:
        from studio.core.block_library import export_block

        w = self.window
        nid = self._block()
        if nid is None:
            return
        name = w.editor.graph.nodes[nid].params["block"]
        path, _ = QFileDialog.getSaveFileName(w, "Export Block", f"{name}.studio-block.json",
                                              BLOCK_FILES)
        if not path:
            return
        try:
            export_block(w.editor.network, name, Path(path))
        except (StudioError, OSError) as exc:
            w.show_error("Export Block", f"The block could not be written: {exc}")
            return
        w.show_status(f"wrote {path}")

    def import_file(self, path: str | None = None) -> str | None:
        from studio.core.block_library import import_block_file

        w = self.window
        if path is None:
            path, _ = QFileDialog.getOpenFileName(w, "Import Block", "", BLOCK_FILES)
        if not path:
            return None
        try:
            defn, deps = import_block_file(Path(path))
        except (StudioError, OSError) as exc:
            w.show_error("Import Block", f"{path} could not be read: {exc}")
            return None
        rect = w.scene.itemsBoundingRect()
        pos = (rect.left(), rect.bottom() + 46) if rect.isValid() else (0.0, 0.0)
        nid = w.editor.add_block(defn, deps, pos)
        if nid is not None:
            w.editing.select_node(nid)
        return nid

    def definitions_changed(self) -> None:
        """The palette lists the project's blocks, for another use of one."""
        blocks = self.window.editor.network.blocks
        self.window.layer_palette.tree.show_project_blocks(
            [(name, d.description) for name, d in sorted(blocks.items())])
        self.window.layer_palette.apply_filter(self.window.layer_palette.filter.text())

    # -- the canvas follows the scope -----------------------------------------------------

    def scope_changed(self) -> None:
        w = self.window
        w.show_graph()
        w.scene.show_health(w.runs.health)  # the last run's marks, on this block's layers
        w.reanalyse()
        w.view.fit()

    def show_scope(self) -> None:
        """The breadcrumb over the canvas: where the canvas is, and the way back."""
        w = self.window
        if self.breadcrumb is None:
            self.breadcrumb = Breadcrumb(w.view)
            self.breadcrumb.chosen.connect(lambda depth: w.editor.close_blocks(depth))
        self.breadcrumb.show_path(w.editor.scope)
        self.update_actions()

    def path_of(self, node_id: str) -> str:
        """A node of the canvas by its path in the built network: ``stage1.0.conv1`` for a
        layer of the first repetition of the block opened (``node_id`` on the network)."""
        editor = self.window.editor
        parts: list[str] = []
        graph = editor.network
        for inst, name in editor.scope:
            node = graph.nodes.get(inst)
            parts.append(inst)
            if node is not None and node.params.get("repeat", 1) > 1:
                parts.append("0")
            graph = editor.network.blocks[name].graph
        return ".".join([*parts, node_id])

    def scope_analysis(self, a: Analysis) -> Analysis:
        """The analysis of the instance opened, as the network feeds it (its first
        repetition); the definition alone, with its example inputs, where that is lost."""
        editor = self.window.editor
        current: Analysis | None = a
        for inst, _name in editor.scope:
            info = current.nodes.get(inst) if current is not None else None
            current = info.inner[0] if info is not None and info.inner else None
        return current if current is not None else analyze(editor.graph)
