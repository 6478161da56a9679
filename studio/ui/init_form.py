"""The inspector's initialisation box: one compact row per tensor family of the selected node
(a scheme choice, its numbers below it), built from ``studio.core.init.SCHEMES``.

Every change goes through ``Editor.set_init``: one undo step.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.core.init import SCHEMES

from .editor import Editor
from .forms import ParamForm, compact_combo, indented


class InitForm(QGroupBox):
    """How the node's tensors start. ``combos``/``forms`` are keyed by tensor family."""

    def __init__(self, editor: Editor, node_id: str) -> None:
        super().__init__("Initialisation")
        self.editor, self.node_id = editor, node_id
        self.setToolTip("How the tensors start (drawn from the project's seed); default: "
                        "as torch builds the layer.")
        self.combos: dict[str, Any] = {}
        self.forms: dict[str, ParamForm] = {}
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(6, 6, 6, 6)
        self._shown: tuple[Any, ...] | None = None
        # rebuilt after the event that changed the node: the widget that committed is still
        # inside its own handler (deleting it there crashes Qt)
        self._rebuild = QTimer(self, singleShot=True, interval=0)
        self._rebuild.timeout.connect(self._build)
        self._build()

    def _state(self) -> tuple[Any, ...]:
        node = self.editor.graph.nodes[self.node_id]
        spec = node.spec
        tensors = spec.init_tensors(node.resolved_params()) if spec else {}
        return tuple(tensors.items()), repr(node.init)

    def refresh(self) -> None:
        """The node changed: rebuild only if its tensors or init did."""
        if self.node_id in self.editor.graph and self._state() != self._shown:
            self._rebuild.start()

    def _build(self) -> None:
        if self.node_id not in self.editor.graph:
            return
        while self._lay.count():
            item = self._lay.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self.combos.clear()
        self.forms.clear()
        self._shown = self._state()
        node = self.editor.graph.nodes[self.node_id]
        spec = node.spec
        tensors = spec.init_tensors(node.resolved_params()) if spec else {}
        self.setVisible(bool(tensors))
        # the choices line up: every name gets the widest name's width
        width = max((self.fontMetrics().horizontalAdvance(t) for t in tensors), default=0) + 6
        for tensor, dims in tensors.items():
            entry = node.init.get(tensor, {"type": "default"})
            names = [s.name for s in SCHEMES.values() if s.min_dims <= dims]
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            label = QLabel(tensor)
            label.setFixedWidth(width)
            h.addWidget(label)
            combo = compact_combo(names, entry["type"])
            combo.setToolTip(SCHEMES[entry["type"]].doc)
            combo.currentTextChanged.connect(lambda v, t=tensor: self._set_scheme(t, v))
            h.addWidget(combo, 1)
            self.combos[tensor] = combo
            self._lay.addWidget(row)
            schema = SCHEMES[entry["type"]].schema
            if schema.params:
                form = ParamForm(schema, schema.resolve(
                    {k: v for k, v in entry.items() if k != "type"}))
                form.committed.connect(lambda n, v, t=tensor: self._set_arg(t, n, v))
                self.forms[tensor] = form
                self._lay.addWidget(indented(form))

    def _set_scheme(self, tensor: str, name: str) -> None:
        init = {k: v for k, v in self.editor.graph.nodes[self.node_id].init.items()
                if k != tensor}
        if name != "default":
            init[tensor] = {"type": name}
        if not self.editor.set_init(self.node_id, init):
            self._rebuild.start()  # refused: show the model again

    def _set_arg(self, tensor: str, name: str, value: Any) -> None:
        init = dict(self.editor.graph.nodes[self.node_id].init)
        entry = {**init.get(tensor, {"type": "default"}), name: value}
        schema = SCHEMES[entry["type"]].schema
        # keep files short: only numbers that differ from the scheme's defaults
        init[tensor] = {k: v for k, v in entry.items()
                        if k == "type" or v != schema[k].default}
        if not self.editor.set_init(self.node_id, init):
            self._rebuild.start()
