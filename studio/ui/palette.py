"""The layer palette: every catalog entry by category, with a filter box."""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag, QKeyEvent
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from studio.core import catalog

MIME = "application/x-studio-layer"


def _key(text: str) -> str:
    """Lower case without spaces, dashes and underscores: "max pool" finds MaxPool2d."""
    return re.sub(r"[\s_\-]+", "", text.lower())


def match(spec: catalog.LayerSpec, text: str) -> tuple[int, str | None] | None:
    """How well a layer matches a filter (best 0) and the alias that matched, if one did;
    None when it does not.

    Exact names first, then the catalog's aliases said exactly ("swish" is SiLU before it is
    part of Hardswish), then prefixes and insides of names and aliases, the category and the
    doc line; so typing "dense" or "pool" finds a layer by what people call it, and the list
    can say which name it was.
    """
    query = text.strip().lower()
    if not query:
        return 0, None
    key, name = _key(query), _key(spec.type)
    aliases = [(a, _key(catalog.split_alias(a)[1])) for a in spec.aliases]
    tests: tuple[Callable[[str], bool], ...] = (
        lambda k: k == key, lambda k: k.startswith(key), lambda k: key in k)
    for rank, test in enumerate(tests):
        if test(name):
            return 2 * rank, None
        alias = next((a for a, k in aliases if test(k)), None)
        if alias is not None:
            return 2 * rank + 1, alias
    if query in spec.category.lower():
        return 6, None
    if query in spec.doc.lower():
        return 7, None
    return None


def search_matches(text: str, types: list[str] | None = None) -> list[tuple[str, str | None]]:
    """The layer types (of ``types``, default all) matching ``text``, best matches first, each
    with the alias it was found by (None: its own name, category or doc)."""
    specs = [s for group in catalog.by_category().values() for s in group]
    if types is not None:
        wanted = set(types)
        specs = [s for s in specs if s.type in wanted]
    ranked = [(found[0], i, s.type, found[1]) for i, s in enumerate(specs)
              if (found := match(s, text)) is not None]
    return [(t, alias) for _, _, t, alias in sorted(ranked, key=lambda r: r[:2])]


def search(text: str, types: list[str] | None = None) -> list[str]:
    """The layer types (of ``types``, default all) matching ``text``, best matches first."""
    return [t for t, _ in search_matches(text, types)]


def label(kind: str, alias: str | None) -> str:
    """A row's text: the type, and the alias it was found by ("Linear — Keras: Dense"), so the
    PyTorch name is learned alongside the familiar one."""
    return f"{kind} — {alias}" if alias else kind


def children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    """An item's child rows, in order."""
    kids = []
    for j in range(item.childCount()):
        child = item.child(j)
        if child is None:
            raise IndexError(f"child {j} of {item.childCount()} of {item.text(0)!r} is missing")
        kids.append(child)
    return kids


def _kind(layer: QTreeWidgetItem) -> str:
    """The layer type of a row (its text may also name the alias it was found by)."""
    return str(layer.data(0, Qt.ItemDataRole.UserRole))


def _category_of(layer: QTreeWidgetItem) -> QTreeWidgetItem:
    parent = layer.parent()
    if parent is None:
        raise ValueError(f"layer row {layer.text(0)!r} is not under a category")
    return parent


class LayerTree(QTreeWidget):
    """Drag a layer out to place it; double-click or Enter to append it after the selection."""

    activated_layer = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setRootIsDecorated(True)
        for category, specs in catalog.by_category().items():
            top = QTreeWidgetItem([category])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.addTopLevelItem(top)
            for spec in specs:
                item = QTreeWidgetItem([spec.type])
                item.setToolTip(0, spec.doc)
                item.setData(0, Qt.ItemDataRole.UserRole, spec.type)
                top.addChild(item)
        self.project_row = QTreeWidgetItem(["Project Blocks"])
        self.project_row.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.project_row.setToolTip(0, "Another use of a block of this project: it shares the "
                                       "definition (edit once, all follow)")
        self.addTopLevelItem(self.project_row)
        self.project_row.setHidden(True)
        self.blocks_row = QTreeWidgetItem(["Blocks"])
        self.blocks_row.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.blocks_row.setToolTip(0, "Ready-made groups of layers, and the ones you saved "
                                      "(Blocks ▸ Save Block to Library…)")
        self.addTopLevelItem(self.blocks_row)
        self.refresh_blocks()
        self.expandAll()
        self.itemDoubleClicked.connect(self._activate)

    def refresh_blocks(self) -> None:
        """The library's blocks: built-in ones, then the user's files (read again)."""
        from studio.core.block_library import library

        from .block_edits import LIBRARY_PREFIX

        self.blocks_row.takeChildren()
        for entry in library():
            item = QTreeWidgetItem([entry.name])
            where = "built in" if entry.builtin else str(entry.source)
            item.setToolTip(0, f"{entry.description}\n({where})" if entry.description
                            else where)
            item.setData(0, Qt.ItemDataRole.UserRole, LIBRARY_PREFIX + entry.name)
            item.setData(0, Qt.ItemDataRole.UserRole + 1, f"{entry.name} {entry.description}")
            self.blocks_row.addChild(item)

    def show_project_blocks(self, blocks: list[tuple[str, str]]) -> None:
        """The open project's blocks, (name, description) each."""
        from .block_edits import PROJECT_PREFIX

        self.project_row.takeChildren()
        for name, description in blocks:
            item = QTreeWidgetItem([name])
            item.setToolTip(0, description or name)
            item.setData(0, Qt.ItemDataRole.UserRole, PROJECT_PREFIX + name)
            item.setData(0, Qt.ItemDataRole.UserRole + 1, f"{name} {description}")
            self.project_row.addChild(item)
        self.project_row.setHidden(not blocks)
        self.project_row.setExpanded(True)

    def block_items(self) -> list[QTreeWidgetItem]:
        """The library's blocks (the project's own are ``project_items``)."""
        return children(self.blocks_row)

    def project_items(self) -> list[QTreeWidgetItem]:
        return children(self.project_row)

    def categories(self) -> list[QTreeWidgetItem]:
        """The category rows, in order."""
        tops = []
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            if top is None:
                raise IndexError(f"category row {i} of {self.topLevelItemCount()} is missing")
            tops.append(top)
        return tops

    def layer_items(self) -> list[QTreeWidgetItem]:
        """The catalog's layers (the library's blocks are ``block_items``)."""
        return [child for top in self.categories()
                if top is not self.blocks_row and top is not self.project_row
                for child in children(top)]

    def _activate(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        kind = item.data(0, Qt.ItemDataRole.UserRole)
        if kind:
            self.activated_layer.emit(kind)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and item is not None:
            self._activate(item)
            return
        super().keyPressEvent(event)

    def startDrag(self, actions: Qt.DropAction) -> None:
        item = self.currentItem()
        kind = item.data(0, Qt.ItemDataRole.UserRole) if item else None
        if not kind:
            return
        mime = QMimeData()
        mime.setData(MIME, kind.encode())
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


class Palette(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter layers…")
        self.filter.setClearButtonEnabled(True)
        self.tree = LayerTree()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree)
        self.filter.textChanged.connect(self.apply_filter)
        self.filter.returnPressed.connect(self._enter_in_filter)

    def refresh_blocks(self) -> None:
        self.tree.refresh_blocks()
        self.tree.blocks_row.setExpanded(True)
        self.apply_filter(self.filter.text())

    def apply_filter(self, text: str) -> None:
        found = dict(search_matches(text))
        words = [_key(w) for w in text.split()]
        for row in (self.tree.project_row, self.tree.blocks_row):
            shown_blocks = 0
            for item in children(row):
                about = _key(str(item.data(0, Qt.ItemDataRole.UserRole + 1)))
                hit = all(w in about for w in words)
                item.setHidden(not hit)
                shown_blocks += hit
            row.setHidden(shown_blocks == 0)
        for top in self.tree.categories():
            if top is self.tree.blocks_row or top is self.tree.project_row:
                continue
            shown = 0
            for child in children(top):
                kind = _kind(child)
                hit = kind in found
                child.setHidden(not hit)
                child.setText(0, label(kind, found.get(kind)))
                shown += hit
            top.setHidden(shown == 0)
        if text.strip() and found:  # Enter takes the best match; show which one it is
            best = next(iter(found))
            row = next(it for it in self.tree.layer_items() if _kind(it) == best)
            self.tree.setCurrentItem(row)

    def visible_layers(self) -> list[str]:
        """The layer types shown now, in palette order."""
        return [_kind(it) for it in self.tree.layer_items()
                if not it.isHidden() and not _category_of(it).isHidden()]

    def visible_labels(self) -> list[str]:
        """The rows' text as shown now: "Linear — Keras: Dense" where an alias matched."""
        return [it.text(0) for it in self.tree.layer_items()
                if not it.isHidden() and not _category_of(it).isHidden()]

    def _enter_in_filter(self) -> None:
        best = search(self.filter.text())
        if best:
            self.tree.activated_layer.emit(best[0])
            return
        blocks = [i for row in (self.tree.project_row, self.tree.blocks_row)
                  for i in children(row) if not i.isHidden() and not row.isHidden()]
        if blocks and self.filter.text().strip():  # no layer of that name: the first block
            self.tree.activated_layer.emit(_kind(blocks[0]))
