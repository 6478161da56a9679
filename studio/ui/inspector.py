"""The inspector: a form generated from the catalog entry of the selected node, or the
project's data and training settings when nothing is selected.

Values are validated as they are typed (the field turns red and says why) and applied on
commit (Enter, focus out, a click) through the ``Editor``, so every change is one undo step.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import catalog
from studio.core.blockdef import BLOCK
from studio.core.choices import AUGMENTATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULERS
from studio.core.graph import Node
from studio.core.params import ParamSpec, Schema
from studio.core.settings import (
    DataSettings,
    Distill,
    EarlyStopping,
    LayerStats,
    TrainingSettings,
    setting_specs,
)

from .editor import Editor
from .forms import (  # noqa: F401  (re-exported: the inspector's forms)
    INT_LIMIT,
    ParamForm,
    compact_combo,
    compact_form,
    indented,
    label_text,
    parse_text,
    show_value,
)

if TYPE_CHECKING:  # pragma: no cover
    from .function_plot import FunctionPlot
    from .init_form import InitForm


class Inspector(QScrollArea):
    """Shows the selected node's parameters, or the project settings."""

    devices: list[str] = ["auto", "cpu"]  # noqa: RUF012 - shared: filled once torch loads
    #: a field's right-click ▸ Sweep this…: (path, spec, current value)
    sweep_requested = Signal(str, object, object)
    #: "Choose Teacher…" pressed: the window asks for a run's weights and checks them
    teacher_requested = Signal()

    def __init__(self, editor: Editor) -> None:
        super().__init__()
        self.editor = editor
        self.setWidgetResizable(True)
        self.node_id: str | None = None
        self.form: ParamForm | None = None
        self.init_form: InitForm | None = None
        self.function_plot: FunctionPlot | None = None
        self._graph = editor.graph  # the block opened, or the network
        self._graph.node_changed.connect(self._node_changed)
        self._graph.node_removed.connect(self._node_removed)
        # a settings edit rebuilds the page, but only after the event that made it: the field
        # that committed is still inside its own key or focus handler (deleting it there
        # crashes Qt)
        self._rebuild = QTimer(self, singleShot=True, interval=0)
        self._rebuild.timeout.connect(self._rebuild_settings)
        editor.settings_changed.connect(self._setting_changed)
        self.show_settings()

    def detach(self) -> None:
        """Stop following the graph and the editor (the canvas turns to another block, or
        project; a new inspector takes over)."""
        self._graph.node_changed.disconnect(self._node_changed)
        self._graph.node_removed.disconnect(self._node_removed)
        self.editor.settings_changed.disconnect(self._setting_changed)

    def _setting_changed(self, section: str, name: str) -> None:
        if section != "project" or name == "sweep":
            self._rebuild.start()
        elif self.node_id is None:  # name or description: the field shows it; no rebuild,
            edit = self.name_edit if name == "name" else self.description_edit  # so Tab works
            if edit.text() != getattr(self.editor.project, name):
                edit.setText(getattr(self.editor.project, name))
                edit.setCursorPosition(0)

    # -- nodes ----------------------------------------------------------------------------

    def show_node(self, node_id: str | None) -> None:
        if node_id is None or node_id not in self.editor.graph:
            self.show_settings()
            return
        self.node_id = node_id
        self.init_form = None
        self.function_plot = None
        node = self.editor.graph.nodes[node_id]
        if node.type == BLOCK:
            from .block_page import BlockPage

            self._show_page(BlockPage(self.editor, node_id))
            return
        spec = catalog.get(node.type)
        page = QWidget()
        lay = QVBoxLayout(page)
        title = QLabel(f"<b>{node.type}</b> · {node_id}")
        lay.addWidget(title)
        if spec is not None:
            doc = QLabel(spec.doc + (f"<br><i>Inferred: {', '.join(spec.inferred)}</i>"
                                     if spec.inferred else ""))
            doc.setWordWrap(True)
            lay.addWidget(doc)
            lay.addWidget(self._layer_help(spec, node))
            self.form = ParamForm(spec.schema, spec.schema.resolve(node.params),
                                  path=f"graph.nodes.{node_id}.params")
            self.form.sweep_requested.connect(self.sweep_requested)
            self.form.committed.connect(self._commit_param)
            lay.addWidget(self.form)
            if spec.init_tensors is not catalog._no_tensors:
                from .init_form import InitForm  # it builds on this module's forms

                self.init_form = InitForm(self.editor, node_id)
                lay.addWidget(self.init_form)
            if spec.count_params is not catalog._zero:
                train = QCheckBox("Trainable (uncheck to freeze)")
                train.setChecked(node.trainable)
                train.toggled.connect(lambda v: self.editor.set_trainable(node_id, v))
                lay.addWidget(train)
        lay.addStretch(1)
        self._show_page(page)

    def _layer_help(self, spec: catalog.LayerSpec, node: Node) -> QWidget:
        """The catalog's formula, shape rule and advice, a link to PyTorch's page and, for an
        element-wise activation, the plot of f and f′."""
        # pyqtgraph comes with these: once a layer is shown, never before the window is
        from .function_plot import FunctionPlot, plottable
        from .training.traces import is_dark

        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        pal = self.palette()
        # two spaces part a formula's clauses: each gets a line of its own here
        self.formula_label = QLabel(spec.formula.replace("  ", "\n"))
        self.formula_label.setTextFormat(Qt.TextFormat.PlainText)
        self.formula_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.formula_label.setWordWrap(True)
        self.formula_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formula_label.setToolTip("What the layer computes")
        # a code block's look: the field colour, so it stands apart in either theme
        self.formula_label.setStyleSheet(
            f"QLabel {{ background: {pal.base().color().name()}; padding: 4px 6px;"
            f" border-radius: 3px; }}")
        lay.addWidget(self.formula_label)
        shape = QLabel(f"<b>Shape</b>&nbsp; {html.escape(spec.shape_rule)}")
        shape.setWordWrap(True)
        lay.addWidget(shape)
        about = QLabel(spec.about)
        about.setTextFormat(Qt.TextFormat.PlainText)
        about.setWordWrap(True)
        lay.addWidget(about)
        if plottable(node.type):
            self.function_plot = FunctionPlot(node.type, node.resolved_params())
            lay.addWidget(self.function_plot)
        colour = "#5aa9e6" if is_dark(pal) else "#1f63b4"  # Qt's link blue is unreadable on dark
        self.doc_link = QLabel(f'<a href="{html.escape(spec.doc_url)}" style="color: {colour}">'
                               "PyTorch documentation</a> ↗")
        self.doc_link.setOpenExternalLinks(True)
        self.doc_link.setToolTip(spec.doc_url)
        lay.addWidget(self.doc_link)
        return box

    def _commit_param(self, name: str, value: Any) -> None:
        node_id = self.node_id
        if node_id is None:
            return
        node = self.editor.graph.nodes[node_id]
        spec = catalog.get(node.type)
        params = dict(node.params)
        params[name] = value
        if spec is not None:  # keep files short: only what differs from the default
            params = {k: v for k, v in params.items() if v != spec.schema[k].default}
        self.editor.set_params(node_id, params)

    def _node_changed(self, node: Node) -> None:
        if node.id == self.node_id and node.type == BLOCK:  # its page, anew after the edit
            QTimer.singleShot(0, self, lambda: self.show_node(self.node_id))
            return
        if node.id == self.node_id and self.form is not None:
            full = node.resolved_params()
            for name, w in self.form.widgets.items():
                _set_widget(w, full.get(name))
                self.form.shown[name] = full.get(name)
            if self.init_form is not None:
                self.init_form.refresh()
            if self.function_plot is not None:
                self.function_plot.set_params(full)

    def _node_removed(self, node: Node) -> None:
        if node.id == self.node_id:
            self.show_settings()

    # -- settings -------------------------------------------------------------------------

    def _rebuild_settings(self) -> None:
        if self.node_id is None:  # a node shown since the edit keeps its page
            self.show_settings()

    def show_settings(self) -> None:
        """The project's data and training settings, each form built from the schema."""
        self.node_id = None
        self.form = None
        self.init_form = None
        self.function_plot = None
        p = self.editor.project
        page = QWidget()
        lay = QVBoxLayout(page)
        about = QGroupBox("Project")
        af = compact_form(about)
        self.name_edit = self._text(af, "name", p.name, "Shown in the title bar and summaries.")
        self.description_edit = self._text(
            af, "description", p.description, "One line on what the project is for.")
        lay.addWidget(about)
        data = QGroupBox("Data")
        df = compact_form(data)
        self._combo(df, "dataset", list(DATASETS), p.data.dataset, self._set_dataset)
        kind = DATASETS[p.data.dataset]
        if kind.schema.params:
            opts = ParamForm(kind.schema, kind.schema.resolve(p.data.options))
            opts.committed.connect(lambda n, v: self._set(
                "data", "options", {**p.data.options, n: v}))
            df.addRow(indented(opts))
        self.data_form = self._settings_form(df, DataSettings, "data", p.data.model_dump())
        present = {a["type"]: a for a in p.data.augment}
        note = QLabel("augmentation (images, training batches)")
        note.setWordWrap(True)
        df.addRow(note)
        for name, schema in AUGMENTATIONS.items():
            self._check(df, label_text(name), name in present,
                        partial(self._toggle_augment, name))
            if name in present and schema.params:
                sub = ParamForm(schema, schema.resolve(
                    {k: v for k, v in present[name].items() if k != "type"}))
                sub.committed.connect(lambda k, v, n=name: self._set_augment(n, k, v))
                df.addRow(indented(sub))
        lay.addWidget(data)

        t = p.training
        train = QGroupBox("Training")
        tf = compact_form(train)
        self._typed(tf, "loss", LOSSES, t.loss, lambda d: self._set("training", "loss", d))
        self._typed(tf, "optimizer", OPTIMIZERS, t.optimizer,
                    lambda d: self._set("training", "optimizer", d))
        self._typed(tf, "scheduler", SCHEDULERS, t.scheduler,
                    lambda d: self._set("training", "scheduler", d), optional=True)
        self.training_form = self._settings_form(tf, TrainingSettings, "training",
                                                 t.model_dump())
        for name, model in (("early_stopping", EarlyStopping), ("layer_stats", LayerStats)):
            self._optional_group(tf, name, model, getattr(t, name))
        self._teacher_rows(tf, t.distill)
        if t.init_weights:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            file_name = QLabel(Path(t.init_weights).name)
            file_name.setToolTip(t.init_weights)
            h.addWidget(file_name, 1)
            clear = QPushButton("Clear")
            clear.setToolTip("start from the seeded initial weights instead")
            clear.clicked.connect(lambda: self._set("training", "init_weights", None))
            h.addWidget(clear)
            self.init_weights_clear = clear
            tf.addRow("initial weights", row)
        lay.addWidget(train)
        if p.sweep is not None:
            from .sweep_box import SweepBox

            lay.addWidget(SweepBox(self.editor))
        lay.addStretch(1)
        self._show_page(page)

    #: settings with an editor of their own above (or, for init_weights, a file row)
    _OWN_EDITORS = ("dataset", "init_weights")

    def _settings_form(self, form: QFormLayout, model: type, section: str,
                       values: dict[str, Any]) -> ParamForm:
        specs = []
        for spec in setting_specs(model):
            if spec.name in self._OWN_EDITORS:
                continue
            if spec.name == "device":  # only what this machine has (and the file's choice)
                present = [d for d in spec.choices
                           if d in self.devices or d == values.get("device")]
                spec = replace(spec, choices=tuple(present))
            specs.append(spec)
        sub = ParamForm(Schema(tuple(specs)), values, path=section)
        sub.committed.connect(lambda n, v: self._set(section, n, v))
        sub.sweep_requested.connect(self.sweep_requested)
        form.addRow(sub)
        return sub
    def _show_page(self, page: QWidget) -> None:
        old = self.takeWidget()
        self.setWidget(page)
        if old is not None:
            old.deleteLater()  # never at once: a field of it may be mid-event

    def set_devices(self, devices: list[str]) -> None:
        """Called once torch has loaded (after the window shows): offer what is present."""
        type(self).devices = devices
        if self.node_id is None:
            self.show_settings()

    def _set(self, section: str, name: str, value: Any) -> bool:
        return self.editor.set_setting(section, name, value)

    def _set_dataset(self, name: str) -> None:
        stack = self.editor.stack
        stack.beginMacro(f"Dataset {name}")
        self._set("data", "options", {})  # the old dataset's options do not fit the new one
        self._set("data", "dataset", name)
        stack.endMacro()

    def _set_augment(self, name: str, key: str, value: Any) -> None:
        steps = [{**a, key: value} if a["type"] == name else a
                 for a in self.editor.project.data.augment]
        self._set("data", "augment", steps)

    def _toggle_augment(self, name: str, on: bool) -> None:
        current = [a for a in self.editor.project.data.augment if a["type"] != name]
        if on:
            current.append({"type": name})
        self._set("data", "augment", current)

    def _typed(self, form: QFormLayout, label: str, table: dict[str, Schema],
               value: dict[str, Any] | None, apply: Callable[[Any], Any],
               optional: bool = False) -> None:
        names = (["none"] if optional else []) + list(table)
        current = value["type"] if value else "none"
        combo = self._combo(form, label, names, current,
                            lambda v: apply(None if v == "none" else {"type": v}))
        if label == "optimizer":  # which optimizer is a question a sweep can answer
            kind = ParamSpec(name="type", kind="choice", default=current, doc="",
                             choices=tuple(table))
            combo.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            combo.customContextMenuRequested.connect(
                lambda pos: self._sweep_menu(combo, pos, "training.optimizer.type", kind))
        if value:
            schema = table[value["type"]]
            if label == "scheduler":
                from studio.core.choices import WARMUP

                schema = Schema((*schema.params, WARMUP))
            sub = ParamForm(schema, schema.resolve({k: v for k, v in value.items()
                                                    if k != "type"}), path=f"training.{label}")
            sub.committed.connect(lambda n, v: apply(_short({**value, n: v}, schema)))
            sub.sweep_requested.connect(self.sweep_requested)
            form.addRow(indented(sub))

    def _optional_group(self, form: QFormLayout, name: str, model: type,
                        value: Any) -> None:
        """A training setting that is an object or empty: a check box, and its fields when on."""
        self._check(form, name, value is not None,
                    lambda on: self._set("training", name, {} if on else None))
        if value is not None:
            sub = ParamForm(Schema(tuple(setting_specs(model))), value.model_dump())
            sub.committed.connect(lambda n, v: self._set(
                "training", name, {**value.model_dump(), n: v}))
            form.addRow(indented(sub))

    def _teacher_rows(self, form: QFormLayout, distill: Distill | None) -> None:
        """Distillation: a button to choose the teacher; once chosen, its file (change it,
        clear it) and the temperature and alpha."""
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        tip = ("Learn from a trained network's softened class scores as well as from the "
               "labels (knowledge distillation): pick another run's model.safetensors or "
               "checkpoint")
        self.teacher_button: QAbstractButton
        if distill is None:
            choose = QPushButton("Choose Teacher…")
            choose.setToolTip(tip)
            choose.clicked.connect(self.teacher_requested)
            h.addWidget(choose)
            h.addStretch(1)
            self.teacher_button = choose
            form.addRow(label_text("distill"), row)
            return
        path = Path(distill.teacher)
        name = QLabel(f"{path.parent.name}/{path.name}" if path.parent.name else path.name)
        name.setToolTip(distill.teacher)
        name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        h.addWidget(name, 1)
        change = QToolButton()
        change.setText("…")
        change.setToolTip("Another teacher. " + tip)
        change.clicked.connect(self.teacher_requested)
        clear = QToolButton()
        clear.setText("✕")
        clear.setToolTip("No teacher: train on the labels alone")
        clear.clicked.connect(lambda: self._set("training", "distill", None))
        h.addWidget(change)
        h.addWidget(clear)
        self.teacher_button, self.teacher_clear = change, clear
        form.addRow("teacher", row)
        sub = ParamForm(Schema(tuple(setting_specs(Distill, ["temperature", "alpha"]))),
                        distill.model_dump())
        sub.committed.connect(lambda n, v: self._set(
            "training", "distill", {**distill.model_dump(), n: v}))
        form.addRow(indented(sub))

    def _text(self, form: QFormLayout, name: str, value: str, tip: str) -> QLineEdit:
        edit = QLineEdit(value)
        edit.setCursorPosition(0)  # a long description reads from its start
        edit.setToolTip(f"{value}\n\n{tip}" if value else tip)
        edit.setPlaceholderText(tip)

        def commit() -> None:
            if edit.text() != getattr(self.editor.project, name) and \
                    not self.editor.set_project_text(name, edit.text()):
                edit.setText(getattr(self.editor.project, name))  # refused: show what holds

        edit.editingFinished.connect(commit)
        form.addRow(label_text(name), edit)
        return edit

    @staticmethod
    def _combo(form: QFormLayout, label: str, items: list[str], current: str,
               apply: Callable[[str], Any]) -> QComboBox:
        c = compact_combo(items, current)
        c.currentTextChanged.connect(apply)
        form.addRow(label_text(label), c)
        return c

    def _sweep_menu(self, widget: QWidget, pos: QPoint, path: str, spec: ParamSpec) -> None:
        from PySide6.QtWidgets import QMenu

        menu = QMenu(widget)
        menu.addAction("Sweep this…").triggered.connect(lambda: QTimer.singleShot(
            0, lambda: self.sweep_requested.emit(path, spec, spec.default)))  # menu closed
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.exec(widget.mapToGlobal(pos))

    @staticmethod
    def _check(form: QFormLayout, label: str, value: bool, apply: Callable[[bool], Any]) -> None:
        c = QCheckBox(label_text(label))
        c.setChecked(value)
        c.toggled.connect(apply)
        form.addRow(c)


def _set_widget(w: QWidget, value: Any) -> None:
    """Show a model value without re-emitting it as an edit."""
    w.blockSignals(True)
    try:
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QLineEdit):
            w.setText(show_value(value))
            w.setStyleSheet("")
    finally:
        w.blockSignals(False)


def _short(spec: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """``{"type": …, params}`` with only what differs from the defaults, as files keep it."""
    return {k: v for k, v in spec.items()
            if k == "type" or k not in schema or v != schema[k].default}
