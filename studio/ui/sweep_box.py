"""The inspector's Sweep box: the project's search space (each path with its range, and a
button that takes it out), the objective and the budget; every change one undo step."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QWidget,
)

from studio.core.sweep_spec import DIRECTIONS, METRICS, PRUNERS, SAMPLERS

from .forms import compact_combo, compact_form, label_text

if TYPE_CHECKING:  # pragma: no cover
    from .editor import Editor


def describe(spec: dict[str, Any]) -> str:
    """``1e-04 … 0.1, log`` / ``16 … 64 step 16`` / ``Adam | SGD``."""
    if spec["type"] == "categorical":
        return " | ".join(str(c) for c in spec["choices"])
    text = f"{spec['low']:g} … {spec['high']:g}"
    if spec.get("step"):
        text += f" step {spec['step']:g}"
    return text + (", log" if spec.get("log") else "")


class SweepBox(QGroupBox):
    def __init__(self, editor: Editor) -> None:
        super().__init__("Sweep (Run ▸ Sweep)")
        self.editor = editor
        sweep = editor.project.sweep or {}
        form = compact_form(self)
        for path, spec in sweep.get("parameters", {}).items():
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            text = QLabel(f"<b>{path.removeprefix('graph.nodes.')}</b><br>{describe(spec)}")
            text.setWordWrap(True)
            text.setToolTip(path)
            remove = QToolButton()
            remove.setText("✕")
            remove.setToolTip(f"Take {path} out of the sweep")
            remove.clicked.connect(lambda _=False, p=path: self._remove(p))
            h.addWidget(text, 1)
            h.addWidget(remove)
            form.addRow(row)
        objective = sweep.get("objective", {})
        metrics = sorted({m for ms in METRICS.values() for m in ms})
        self._choice(form, "objective", metrics, objective.get("metric", "val_loss"),
                     lambda v: self._set_objective("metric", v))
        self._choice(form, "direction", list(DIRECTIONS),
                     objective.get("direction", "minimize"),
                     lambda v: self._set_objective("direction", v))
        self._choice(form, "sampler", list(SAMPLERS), sweep.get("sampler", "tpe"),
                     lambda v: self._set("sampler", v))
        self._choice(form, "pruner", list(PRUNERS), sweep.get("pruner", "median"),
                     lambda v: self._set("pruner", v))
        for key, tip in (("trials", "Trials in all (the budget)"),
                         ("parallel", "Trials at once, each in its own process")):
            spin = QSpinBox()
            spin.setRange(1, 100_000)
            spin.setValue(int(sweep.get(key, 1)))
            spin.setKeyboardTracking(False)
            spin.setToolTip(tip)
            spin.valueChanged.connect(lambda v, k=key: self._set(k, v))
            form.addRow(label_text(key), spin)

    @staticmethod
    def _choice(form: Any, label: str, items: list[str], current: str, apply: Any) -> None:
        combo: QComboBox = compact_combo(items, current)
        combo.currentTextChanged.connect(apply)
        form.addRow(label_text(label), combo)

    def _changed(self, change: Any, text: str) -> None:
        sweep = copy.deepcopy(self.editor.project.sweep or {})
        change(sweep)
        self.editor.set_sweep(sweep if sweep.get("parameters") else None, text)

    def _remove(self, path: str) -> None:
        self._changed(lambda s: s["parameters"].pop(path, None), f"Unsweep {path}")

    def _set(self, key: str, value: Any) -> None:
        self._changed(lambda s: s.__setitem__(key, value), f"Sweep {key}")

    def _set_objective(self, key: str, value: str) -> None:
        self._changed(lambda s: s.setdefault("objective", {}).__setitem__(key, value),
                      f"Sweep objective {key}")
