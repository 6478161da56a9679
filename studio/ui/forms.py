"""The inspector's building blocks: a form generated from a schema (``ParamForm``) and the
compact widgets it is made of, shared by the node form, the settings form and the
initialisation box (``init_form``), which would otherwise import the inspector back.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QSpinBox,
    QWidget,
)

from studio.core.errors import ParamError
from studio.core.params import ParamSpec, Schema

INT_LIMIT = 2**31 - 1


def parse_text(text: str) -> Any:
    """What a user types into a free field: numbers, lists ("3, 3" or "[3, 3]"), words."""
    text = text.strip()
    if text == "":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        try:
            return json.loads(f"[{text}]")
        except json.JSONDecodeError:
            pass
    return text


def show_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same number
    return str(value)


def compact_form(widget: QWidget | None = None) -> QFormLayout:
    """A form that fits a narrow dock: fields wrap below their labels rather than push the
    dock wider (no horizontal scrolling at 300 px)."""
    form = QFormLayout(widget)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def label_text(name: str) -> str:
    """A setting's name as a label: ``val_fraction`` → ``val fraction``."""
    return name.replace("_", " ")


def compact_combo(items: list[str], current: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(items)
    combo.setCurrentText(current)
    # a long entry (CosineAnnealingLR) must not set the dock's width
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


def indented(widget: QWidget, by: int = 14) -> QWidget:
    """A sub-form under the row that chose it, spanning the form's width."""
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(by, 0, 0, 0)
    lay.addWidget(widget)
    return box


def _current(widget: QWidget, shown: Any) -> Any:
    """What a field holds now (a text field: what it last committed)."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QSpinBox):
        return widget.value()
    return shown


def sweepable(spec: ParamSpec) -> bool:
    """A field a sweep can vary: a number, a switch or a choice (not a shape or a list)."""
    return spec.kind in ("int", "float", "bool", "choice")


class ParamForm(QWidget):
    """Widgets for one Schema. ``committed(name, value)`` fires with a validated value."""

    committed = Signal(str, object)
    #: right-click ▸ Sweep this…: (path, spec, current value), for forms given a ``path``
    sweep_requested = Signal(str, object, object)

    def __init__(self, schema: Schema, values: dict[str, Any], path: str | None = None) -> None:
        super().__init__()
        self.schema = schema
        self.path = path  # where the fields live in the project, for a sweep
        self.widgets: dict[str, QWidget] = {}
        #: what each text field shows, as a value: leaving a field unchanged commits nothing
        self.shown: dict[str, Any] = {p.name: values.get(p.name, p.default)
                                      for p in schema.params}
        form = compact_form(self)
        form.setContentsMargins(0, 0, 0, 0)
        for spec in schema.params:
            w = self._widget(spec, values.get(spec.name, spec.default))
            w.setToolTip(f"{spec.name}: {spec.doc}" if spec.doc else spec.name)
            self.widgets[spec.name] = w
            form.addRow(label_text(spec.name), w)
            if path is not None and sweepable(spec):
                w.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
                w.customContextMenuRequested.connect(
                    lambda pos, w=w, s=spec: self._menu(w, s, pos))

    def _menu(self, widget: QWidget, spec: ParamSpec, pos: QPoint) -> None:
        """The field's usual menu (a text field's cut and paste) and "Sweep this…"."""
        menu = (widget.createStandardContextMenu() if isinstance(widget, QLineEdit)
                else QMenu(widget))
        if not menu.isEmpty():
            menu.addSeparator()
        action = menu.addAction("Sweep this…")
        action.setToolTip("Add this field to the project's search space (Run ▸ Sweep)")
        path, value = f"{self.path}.{spec.name}", _current(widget, self.shown.get(spec.name))
        # once the menu has closed: what follows (a dialog, the form rebuilt) must not run
        # inside the menu's own loop, nor delete the field the menu hangs from under it
        action.triggered.connect(lambda: QTimer.singleShot(
            0, lambda: self.sweep_requested.emit(path, spec, value)))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.exec(widget.mapToGlobal(pos))

    def _widget(self, spec: ParamSpec, value: Any) -> QWidget:
        name = spec.name
        if spec.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda v, n=name: self.committed.emit(n, v))
            return box
        if spec.kind == "choice":
            combo = compact_combo(list(spec.choices), str(value))
            combo.currentTextChanged.connect(lambda v, n=name: self.committed.emit(n, v))
            return combo
        if spec.kind == "int" and not spec.nullable:
            spin = QSpinBox()
            spin.setRange(int(max(spec.min if spec.min is not None else -INT_LIMIT,
                                  -INT_LIMIT)),
                          int(min(spec.max if spec.max is not None else INT_LIMIT, INT_LIMIT)))
            spin.setValue(int(value))
            if spec.unit:
                spin.setSuffix(f" {spec.unit}")
            spin.setKeyboardTracking(False)  # commit on Enter/focus-out, not per digit
            spin.valueChanged.connect(lambda v, n=name: self.committed.emit(n, v))
            return spin
        # numbers span 1e-8 (eps) to 1e3: typed as text and shown exactly, never rounded to
        # a spin box's fixed decimals (which showed 1e-8 as 0 and would have saved 0)
        edit = QLineEdit(show_value(value))  # numbers, tuples, shapes, optional values, text
        if spec.nullable:
            edit.setPlaceholderText("empty")
        edit.textEdited.connect(lambda _t, e=edit, s=spec: self._check(e, s))
        edit.editingFinished.connect(lambda e=edit, s=spec: self._commit_text(e, s))
        return edit

    def _check(self, edit: QLineEdit, spec: ParamSpec) -> Any:
        try:
            value = spec.validate(parse_text(edit.text()) if spec.kind != "str"
                                  else edit.text())
        except ParamError as exc:
            edit.setStyleSheet("QLineEdit { border: 2px solid #d62728; }")
            edit.setToolTip(f"{spec.name} {exc.message}")
            edit.setProperty("invalid", True)
            return ParamError
        edit.setStyleSheet("")
        edit.setToolTip(spec.doc)
        edit.setProperty("invalid", False)
        return value

    def _commit_text(self, edit: QLineEdit, spec: ParamSpec) -> None:
        value = self._check(edit, spec)
        if value is ParamError or value == self.shown.get(spec.name):
            return  # focus left an unchanged field: no edit, no undo step
        self.shown[spec.name] = value
        self.committed.emit(spec.name, value)
