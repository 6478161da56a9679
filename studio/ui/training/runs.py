"""The runs list: every run kept in the runs folder; overlay, compare, resume, delete."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .dashboard import Dashboard

WEIGHT_FILES = ("best.ckpt", "last.ckpt", "model.safetensors")
DEFAULT_BATCH = 64  # the data settings' default, for runs whose project file lacks one


@dataclass
class RunInfo:
    path: Path
    status: str = "unknown"
    epochs: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    #: a sweep's trial reads "sweep-wine/trial-0003": trials of two sweeps share names
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.path.name

    @property
    def resumable(self) -> bool:
        return (self.path / "last.ckpt").exists() and self.status in (
            "stopped", "failed", "interrupted")

    def last(self, key: str) -> float | None:
        return self.epochs[-1].get(key) if self.epochs else None

    def history(self) -> list[dict[str, Any]]:
        """The per-epoch lines, each with the ``step`` it ended on: its training samples
        (rate × time) over the batch size, summed, so runs of different batch sizes line up
        on a step axis."""
        batch = self.settings.get("data", {}).get("batch_size") or DEFAULT_BATCH
        out, step = [], 0
        for e in self.epochs:
            rate, secs = e.get("samples_per_s"), e.get("time_s")
            if not isinstance(rate, int | float) or not isinstance(secs, int | float):
                return [dict(x) for x in self.epochs]  # no steps: the view places them
            step += math.ceil(round(rate * secs) / batch)
            out.append({**e, "step": step})
        return out


def run_folders(folder: Path) -> list[Path]:
    """The runs in a runs folder, newest first; a sweep's folder stands for its trials."""
    out: list[Path] = []
    for path in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
        if (path / "study.journal").exists() or (path / "sweep.json").exists():
            out += sorted((p for p in path.iterdir() if p.is_dir()
                           and p.name.startswith("trial-")), reverse=True)
        else:
            out.append(path)
    return out


def read_run(path: Path) -> RunInfo:
    info = RunInfo(path)
    try:
        info.status = json.loads((path / "summary.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        # no summary: running now, or ended with its process (the window's list marks the
        # active run); either way its last checkpoint can continue it
        info.status = "interrupted" if (path / "metrics.jsonl").exists() else "unknown"
    try:
        for line in (path / "metrics.jsonl").read_text().splitlines():
            logs = json.loads(line)
            if "epoch" in logs:  # the final test line has none
                info.epochs.append(logs)
    except (OSError, ValueError):
        pass
    try:
        project = json.loads((path / "project.studio.json").read_text())
        info.settings = {"data": project.get("data", {}), "training": project.get("training", {})}
    except (OSError, ValueError):
        pass
    return info


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def compare_settings(runs: list[RunInfo]) -> str:
    """The settings that differ between runs, one line each."""
    flat = [flatten(r.settings) for r in runs]
    keys = sorted(set().union(*flat))
    lines = []
    for k in keys:
        values = [json.dumps(f.get(k)) for f in flat]
        if len(set(values)) > 1:
            lines.append(f"{k}: " + " | ".join(f"{r.name}={v}" for r, v in zip(runs, values,
                                                                               strict=True)))
    return "\n".join(lines) or "These runs have the same settings."


class RunsPanel(QWidget):
    """The runs of a folder. Checked runs are overlaid on the Train view's charts: the panel
    emits their histories (``overlays_changed``) and the view draws them."""

    resume_requested = Signal(object)  # RunInfo
    evaluate_requested = Signal(object, object)  # RunInfo, the weights file
    overlays_changed = Signal(dict)  # run name → its history (RunInfo.history)

    def __init__(self, view: Dashboard | None = None) -> None:
        super().__init__()
        self.view = view
        self.folder: Path | None = None
        self.runs: dict[str, RunInfo] = {}
        self.chosen: list[str] = []  # the checked runs, in the order they were checked
        if self.view is not None:
            self.overlays_changed.connect(self.view.set_overlays)
        self.confirm_delete: Callable[[list[str]], bool] = lambda names: True
        self.tree = QTreeWidget()
        self.tree.setColumnCount(5)
        self.tree.setHeaderLabels(["run", "status", "epochs", "val_loss", "val_accuracy"])
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.itemChanged.connect(self._checked)
        self.compare_text = QPlainTextEdit()
        self.compare_text.setReadOnly(True)
        self.compare_text.setPlaceholderText("Select two or more runs and press Compare.")
        self.compare_text.hide()  # the list keeps the room until there is something to compare
        buttons = QHBoxLayout()
        self.btn_refresh = QPushButton("Refresh")
        self.btn_compare = QPushButton("Compare settings")
        self.btn_resume = QPushButton("Resume")
        self.btn_evaluate = QPushButton("Evaluate")
        self.btn_evaluate.setToolTip("Metrics, confusion matrix and galleries of the selected "
                                     "checkpoint (a run: its best one)")
        self.btn_delete = QPushButton("Delete")
        for b in (self.btn_refresh, self.btn_compare, self.btn_resume, self.btn_evaluate,
                  self.btn_delete):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.tree, 3)
        lay.addLayout(buttons)
        lay.addWidget(self.compare_text, 1)
        self.btn_refresh.clicked.connect(self.refresh)
        self.btn_compare.clicked.connect(self.compare)
        self.btn_resume.clicked.connect(self.resume)
        self.btn_evaluate.clicked.connect(self.evaluate)
        self.btn_delete.clicked.connect(self.delete)

    def set_folder(self, folder: Path) -> None:
        self.folder = folder
        self.refresh()

    def refresh(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        self.runs.clear()
        if self.folder is not None and self.folder.is_dir():
            for path in run_folders(self.folder):
                info = read_run(path)
                if path.parent != self.folder:
                    info.label = f"{path.parent.name}/{path.name}"
                self.runs[info.name] = info
                vl, va = info.last("val_loss"), info.last("val_accuracy")
                item = QTreeWidgetItem([info.name, info.status, str(len(info.epochs)),
                                        "" if vl is None else f"{vl:.4f}",
                                        "" if va is None else f"{va:.4f}"])
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if info.name in self.chosen
                                   else Qt.CheckState.Unchecked)
                for fname in WEIGHT_FILES:  # each checkpoint can be evaluated on its own
                    if (path / fname).exists():
                        child = QTreeWidgetItem([fname])
                        child.setData(0, Qt.ItemDataRole.UserRole, str(path / fname))
                        item.addChild(child)
                self.tree.addTopLevelItem(item)
        shown = bool(self.chosen)
        self.chosen = [n for n in self.chosen if n in self.runs]
        self.tree.blockSignals(False)
        if shown:  # a deleted run goes; a run still going has grown since the last refresh
            self._emit_overlays()

    def selected(self) -> list[RunInfo]:
        return [self.runs[i.text(0)] for i in self.tree.selectedItems() if i.text(0) in self.runs]

    def item(self, name: str) -> QTreeWidgetItem | None:
        found = self.tree.findItems(name, Qt.MatchFlag.MatchExactly, 0)
        return found[0] if found else None

    @property
    def overlays(self) -> dict[str, pg.PlotDataItem | None]:
        """The overlaid runs, each to its validation-loss curve in the view."""
        traces = {n: self.view.overlay_trace(n) if self.view is not None else None
                  for n in self.chosen}
        return {n: t.raw_item if t is not None else None for n, t in traces.items()}

    def _checked(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0:
            return
        name = item.text(0)
        on = item.checkState(0) == Qt.CheckState.Checked
        if on and name not in self.chosen and name in self.runs:
            self.chosen.append(name)
        elif not on and name in self.chosen:
            self.chosen.remove(name)
        else:
            return
        self._emit_overlays()

    def _emit_overlays(self) -> None:
        self.overlays_changed.emit({n: self.runs[n].history() for n in self.chosen})
        colours = self.view.run_colours if self.view is not None else {}
        self.tree.blockSignals(True)  # icons are no check-state change
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is None:
                continue
            colour = colours.get(item.text(0))
            item.setIcon(0, _swatch(colour) if colour is not None else QIcon())
        self.tree.blockSignals(False)

    def compare(self) -> None:
        runs = self.selected()
        self.compare_text.setPlainText(compare_settings(runs) if len(runs) >= 2
                                       else "Select two or more runs.")
        self.compare_text.show()

    def resume(self) -> None:
        runs = [r for r in self.selected() if r.resumable]
        if len(runs) == 1:
            self.resume_requested.emit(runs[0])

    def evaluate(self) -> None:
        items = self.tree.selectedItems()
        if len(items) != 1:
            return
        item = items[0]
        parent = item.parent()
        if parent is not None:
            self.evaluate_requested.emit(self.runs[parent.text(0)],
                                         Path(item.data(0, Qt.ItemDataRole.UserRole)))
            return
        info = self.runs.get(item.text(0))
        if info is None:
            return
        weights = next((info.path / f for f in WEIGHT_FILES if (info.path / f).exists()), None)
        if weights is not None:
            self.evaluate_requested.emit(info, weights)

    def delete(self) -> None:
        runs = self.selected()
        if not runs or not self.confirm_delete([r.name for r in runs]):
            return
        for r in runs:
            shutil.rmtree(r.path, ignore_errors=True)
        self.refresh()


def _swatch(colour: QColor) -> QIcon:
    """The run's colour in the list: the same as its curves on every chart."""
    pix = QPixmap(12, 12)
    pix.fill(colour)
    return QIcon(pix)
