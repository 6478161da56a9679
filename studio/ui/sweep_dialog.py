"""Right-click a field ▸ Sweep this…: the range a sweep tries for it, proposed from the field's
current value and limits and edited before it joins the project's search space."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from studio.core.params import ParamSpec

from .forms import parse_text, show_value


def propose(spec: ParamSpec, value: Any) -> dict[str, Any]:
    """A first range: a decade either side of a positive float (log scale), half to double
    an int, every choice of a choice, both states of a switch; inside the field's limits."""
    if spec.kind == "bool":
        return {"type": "categorical", "choices": [True, False]}
    if spec.kind == "choice":
        return {"type": "categorical", "choices": list(spec.choices)}
    lo_limit = spec.min if spec.min is not None else -math.inf
    hi_limit = spec.max if spec.max is not None else math.inf
    if spec.kind == "int":
        n = int(value if value is not None else spec.default or 1)
        first = max(int(max(lo_limit, -2**31)), n // 2 if n > 1 else n)
        last = min(int(min(hi_limit, 2**31 - 1)), max(n * 2, n + 1))
        step = max(1, (last - first) // 8) if last - first >= 16 else 1
        last = first + (last - first) // step * step  # Optuna wants high on the step's grid
        return {"type": "int", "low": first, "high": last, "step": step}
    v = float(value if value is not None else spec.default or 0.0)
    if v > 0:
        low, high = max(v / 10, lo_limit), min(v * 10, hi_limit)
        if spec.min_exclusive and low <= lo_limit:
            low = v / 10
        return {"type": "float", "low": low, "high": high, "log": low > 0}
    low, high = max(v - 1, lo_limit), min(v + 1, hi_limit)
    return {"type": "float", "low": low, "high": high, "log": False}


class SweepFieldDialog(QDialog):
    """The range for one path; ``result_spec()`` once accepted."""

    def __init__(self, path: str, spec: ParamSpec, value: Any,
                 existing: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sweep this field")
        self.path, self.spec = path, spec
        self.proposal = dict(existing or propose(spec, value))
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{path}</b><br>now {show_value(value)}"
                      + (f" · {spec.doc}" if spec.doc else ""))
        head.setWordWrap(True)
        lay.addWidget(head)
        form = QFormLayout()
        lay.addLayout(form)
        self.fields: dict[str, QLineEdit] = {}
        self.log: QCheckBox | None = None
        self.choices: list[tuple[Any, QCheckBox]] = []
        if self.proposal["type"] == "categorical":
            options = (list(spec.choices) if spec.kind == "choice"
                       else [True, False] if spec.kind == "bool" else self.proposal["choices"])
            for option in options:
                box = QCheckBox(show_value(option))
                box.setChecked(option in self.proposal["choices"])
                self.choices.append((option, box))
                form.addRow(box)
        else:
            for key in ("low", "high") + (("step",) if self.proposal["type"] == "int" else ()):
                edit = QLineEdit(show_value(self.proposal.get(key)))
                self.fields[key] = edit
                form.addRow(key, edit)
            if self.proposal["type"] == "float":
                self.log = QCheckBox("log scale (values spanning decades, like a learning rate)")
                self.log.setChecked(bool(self.proposal.get("log")))
                form.addRow(self.log)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d62728")
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add to sweep")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def result_spec(self) -> dict[str, Any]:
        """The range as the project's ``sweep.parameters`` entry holds it."""
        kind = self.proposal["type"]
        if kind == "categorical":
            return {"type": kind, "choices": [o for o, box in self.choices if box.isChecked()]}
        out: dict[str, Any] = {"type": kind}
        for key, edit in self.fields.items():
            v = parse_text(edit.text())
            out[key] = int(v) if kind == "int" and isinstance(v, int | float) else v
        if self.log is not None:
            out["log"] = self.log.isChecked()
        return out

    def _accept(self) -> None:
        r = self.result_spec()
        if r["type"] == "categorical":
            problem = "" if len(r["choices"]) >= 2 else "choose at least two values"
        elif not all(isinstance(r.get(k), int | float) for k in ("low", "high")):
            problem = "low and high must be numbers"
        elif r["low"] >= r["high"]:
            problem = "low must be below high"
        elif r.get("log") and r["low"] <= 0:
            problem = "a log scale needs low above 0"
        elif r["type"] == "int" and (not isinstance(r.get("step"), int) or r["step"] < 1):
            problem = "step must be a whole number ≥ 1"
        else:
            problem = ""
        if problem:
            self.error.setText(problem)
            return
        self.accept()
