"""The layer palette: every catalog entry by category, with a filter box."""

from __future__ import annotations

import re

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag, QKeyEvent
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from studio.core import catalog

MIME = "application/x-studio-layer"


def _key(text: str) -> str:
    """Lower case without spaces, dashes and underscores: "max pool" finds MaxPool2d."""
    return re.sub(r"[\s_\-]+", "", text.lower())


def match_rank(spec: catalog.LayerSpec, text: str) -> int | None:
    """How well a layer matches a filter, best 0; None when it does not.

    Names first (exact, prefix, inside), then the catalog's aliases, the category and the
    doc line, so typing "dense" or "pool" finds a layer by what people call it.
    """
    query = text.strip().lower()
    if not query:
        return 0
    key, name = _key(query), _key(spec.type)
    aliases = [_key(a) for a in getattr(spec, "aliases", ())]
    checks = (name == key, name.startswith(key), key in name,
              any(a == key or a.startswith(key) for a in aliases),
              any(key in a for a in aliases), query in spec.category.lower(),
              query in spec.doc.lower())
    return next((rank for rank, hit in enumerate(checks) if hit), None)


def search(text: str, types: list[str] | None = None) -> list[str]:
    """The layer types (of ``types``, default all) matching ``text``, best matches first."""
    specs = [s for group in catalog.by_category().values() for s in group]
    if types is not None:
        wanted = set(types)
        specs = [s for s in specs if s.type in wanted]
    ranked = [(rank, i, s.type) for i, s in enumerate(specs)
              if (rank := match_rank(s, text)) is not None]
    return [t for _, _, t in sorted(ranked)]


def children(item: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    """An item's child rows, in order."""
    kids = []
    for j in range(item.childCount()):
        child = item.child(j)
        if child is None:
            raise IndexError(f"child {j} of {item.childCount()} of {item.text(0)!r} is missing")
        kids.append(child)
    return kids


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
        self.expandAll()
        self.itemDoubleClicked.connect(self._activate)

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
        return [child for top in self.categories() for child in children(top)]

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

    def apply_filter(self, text: str) -> None:
        best = search(text)
        shown_types = set(best)
        for top in self.tree.categories():
            shown = 0
            for child in children(top):
                match = child.text(0) in shown_types
                child.setHidden(not match)
                shown += match
            top.setHidden(shown == 0)
        if text.strip() and best:  # Enter takes the best match; show which one it is
            row = next(it for it in self.tree.layer_items() if it.text(0) == best[0])
            self.tree.setCurrentItem(row)

    def visible_layers(self) -> list[str]:
        return [it.text(0) for it in self.tree.layer_items()
                if not it.isHidden() and not _category_of(it).isHidden()]

    def _enter_in_filter(self) -> None:
        best = search(self.filter.text())
        if best:
            self.tree.activated_layer.emit(best[0])
