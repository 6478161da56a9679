"""Model ▸ Compress…: prune or quantize a run's weights and see what it bought and cost.

The work runs as ``studio prune`` or ``studio quantize`` in a child process (minutes of
measuring and fine-tuning never freeze the window; a crash in a library cannot take it down).
When it ends, ``report.json`` fills a before/after table: parameters, multiply-adds, file
size, latency at batch 1 and 64, and the project's metrics. A pruned network is a new project
in its own folder, which opens in a window beside this one; an int8 network is an ONNX file
beside the run's weights.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project, file_stem

from .export_dialog import candidate_weights

METHODS = (("prune", "Remove weights (unstructured pruning): sparsity, same layers"),
           ("prune-structured", "Remove channels (structured pruning): smaller layers"),
           ("quantize", "int8 through ONNX Runtime (quantization)"))
#: the table's rows: (report key, label, how to show it)
ROWS = (("params", "parameters", "count"), ("nonzero_params", "non-zero weights", "count"),
        ("macs", "multiply-adds per sample", "count"), ("file_bytes", "file size", "bytes"),
        ("gzip_bytes", "file size, compressed", "bytes"),
        ("latency_ms_batch1", "latency, batch 1 (ms)", "ms"),
        ("latency_ms_batch64", "latency, batch 64 (ms)", "ms"))


#: the metrics shown (the report holds every one the project logs)
METRICS = ("loss", "accuracy", "f1", "mae", "rmse", "r2")


def _human(value: float, how: str) -> str:
    if how == "count":
        return f"{int(value):,}"
    if how == "bytes":
        for unit in ("B", "KB", "MB", "GB"):
            if value < 1024 or unit == "GB":
                return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            value /= 1024
    if how == "ms":
        return f"{value:.3g}"
    return f"{value:.4f}"


def _change(before: float, after: float, how: str) -> str:
    if not before:
        return ""
    if how in ("count", "bytes"):
        return f"{after / before:.0%} of before"
    if how == "ms":
        return f"{before / after:.2f}× as fast" if after else ""
    return f"{after - before:+.4f}"


class CompressDialog(QDialog):
    """Choose weights and a method; run; read the before/after table."""

    opened = Signal(Path)  # a pruned project to open beside the original
    finished_work = Signal(bool, str)  # ok, the report's path or the error

    def __init__(self, project: Project, runs_dir: Path | None, base_dir: Path | None,
                 parent: QWidget | None = None, weights: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compress")
        self.project = project.copy()
        self.runs_dir, self.base_dir = runs_dir, base_dir
        self.weights = QComboBox()
        for p in ([weights] if weights else []) + candidate_weights(runs_dir, project.path):
            self.weights.addItem(f"{p.parent.name}/{p.name}", str(p))
        browse = QPushButton("…")
        browse.setToolTip("another run's .safetensors or .ckpt")
        browse.clicked.connect(self._browse)
        self.method = QComboBox()
        for key, text in METHODS:
            self.method.addItem(text, key)
        self.amount = QSpinBox()
        self.amount.setRange(5, 95)
        self.amount.setSingleStep(5)
        self.amount.setValue(50)
        self.amount.setSuffix(" %")
        self.amount.setToolTip("The share of weights (or channels) removed")
        self.per_layer = QCheckBox("the same share in every layer")
        self.per_layer.setToolTip("Unchecked: the smallest weights of the whole network go, "
                                  "so some layers lose more than others")
        self.finetune = QSpinBox()
        self.finetune.setRange(0, 1000)
        self.finetune.valueChanged.connect(
            lambda v: self.finetune.setSuffix(" epoch" if v == 1 else " epochs"))
        self.finetune.setValue(2)
        self.finetune.setToolTip("Train the pruned network this many more epochs with the "
                                 "project's settings (0: not at all)")
        self.calibration = QSpinBox()
        self.calibration.setRange(1, 1_000_000)
        self.calibration.setValue(512)
        self.calibration.setSuffix(" samples")
        self.calibration.setToolTip("Training samples whose activations set the int8 ranges "
                                    "(convolutional networks; the rest quantize on the fly)")
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.weights, 1)
        row.addWidget(browse)
        form.addRow("Weights", row)
        form.addRow("Method", self.method)
        form.addRow("Remove", self.amount)
        form.addRow("", self.per_layer)
        form.addRow("Fine-tune", self.finetune)
        form.addRow("Calibrate on", self.calibration)
        self.form = form
        self.status = QLabel("Choose the weights and a method, then Compress.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["before", "after", "change"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(
            self.fontMetrics().height() + 8)  # the whole table without scrolling
        self.table.hide()
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.btn_run = QPushButton("Compress")
        self.btn_run.setDefault(True)
        self.btn_run.clicked.connect(self.start)
        self.btn_open = QPushButton("Open Result")
        self.btn_open.setToolTip("The pruned project, in a window beside this one")
        self.btn_open.clicked.connect(self._open_result)
        self.btn_open.hide()
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.btn_open, self.btn_run, close):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.notes)
        lay.addLayout(buttons)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.proc: QProcess | None = None
        self.out: Path | None = None
        self.report: dict[str, Any] | None = None
        self._method_changed()
        self.resize(660, 640)  # the whole table, at a laptop's 768 pixels

    # -- choosing -------------------------------------------------------------------------

    def _method_changed(self) -> None:
        quantize = self.method.currentData() == "quantize"
        for w in (self.amount, self.per_layer, self.finetune):
            w.setEnabled(not quantize)
        self.calibration.setEnabled(quantize)

    def _browse(self) -> None:
        start = str(self.runs_dir) if self.runs_dir is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Weights", start,
                                              "Weights (*.ckpt *.safetensors)")
        if path:
            self.weights.addItem(Path(path).name, path)
            self.weights.setCurrentIndex(self.weights.count() - 1)

    def destination(self) -> Path:
        """A new folder for a pruned project (in the runs folder), or an .onnx file in a new
        folder beside the weights for an int8 network."""
        weights = Path(str(self.weights.currentData()))
        stem = file_stem(self.project.path) if self.project.path else "untitled"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if self.method.currentData() == "quantize":  # a folder of its own, for report.json
            return weights.parent / f"int8-{weights.stem}-{stamp}" / "model-int8.onnx"
        kind = "channels" if self.method.currentData() == "prune-structured" else "weights"
        folder = self.runs_dir or weights.parent.parent
        return folder / f"{stem}-{kind}-pruned-{self.amount.value()}-{stamp}"

    def command(self) -> list[str]:
        snapshot = Path(tempfile.mkdtemp(prefix="studio-compress-")) / "p.studio.json"
        self.project.copy().save(snapshot)  # a copy: saving moves a project's own path
        self.out = self.destination()
        method = self.method.currentData()
        args = ["-m", "studio", "quantize" if method == "quantize" else "prune", str(snapshot),
                "--weights", str(self.weights.currentData()), "--out", str(self.out)]
        if method == "quantize":
            args += ["--calibration", str(self.calibration.value())]
        else:
            args += ["--amount", f"{self.amount.value() / 100:g}",
                     "--finetune-epochs", str(self.finetune.value())]
            if method == "prune-structured":
                args.append("--structured")
            if self.per_layer.isChecked():
                args.append("--per-layer")
        if self.base_dir is not None:
            args += ["--base-dir", str(self.base_dir)]
        return args

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        if self.proc is not None or self.weights.currentData() is None:
            if self.weights.currentData() is None:
                self.status.setText("No weights to compress: train the network first, or "
                                    "choose a weights file with …")
            return
        self.btn_run.setEnabled(False)
        self.btn_open.hide()
        self.table.hide()
        self.notes.setText("")
        self.status.setStyleSheet("")
        self.status.setText("compressing and measuring (fine-tuning and the latency pairs "
                            "take a while)…")
        self.proc = QProcess(self)
        self.proc.finished.connect(self._done)
        self.proc.start(sys.executable, self.command())

    def _done(self, code: int, status: QProcess.ExitStatus) -> None:
        assert self.proc is not None and self.out is not None
        err = bytes(self.proc.readAllStandardError().data()).decode("utf-8", "replace")
        self.proc = None
        self.btn_run.setEnabled(True)
        report = (self.out / "report.json" if self.out.suffix != ".onnx"
                  else self.out.parent / "report.json")
        if code != 0 or status != QProcess.ExitStatus.NormalExit or not report.exists():
            last = [ln for ln in err.splitlines() if ln.strip()]
            text = last[-1].removeprefix("studio: error: ") if last else \
                f"ended with code {code}"
            self.status.setStyleSheet("color: #d62728;")
            self.status.setText(f"✗ {text}")
            self.finished_work.emit(False, text)
            return
        self.show_report(json.loads(report.read_text()))
        self.finished_work.emit(True, str(report))

    def show_report(self, r: dict[str, Any]) -> None:
        """The before/after table of a ``report.json``, and what to do with the result."""
        self.report = r
        before, after = (r["fp32"], r["int8"]) if "int8" in r else (r["before"], r["after"])
        rows = [(key, label, how) for key, label, how in ROWS if key in before and key in after]
        for key in sorted(k for k in after if k.startswith(("val_", "test_")) and k in before
                          and k.split("_", 1)[1] in METRICS):
            rows.append((key, key.replace("_", " "), "metric"))
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([label for _, label, _ in rows])
        for i, (key, _label, how) in enumerate(rows):
            for j, text in enumerate((_human(before[key], how), _human(after[key], how),
                                      _change(before[key], after[key], how))):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.show()
        self.status.setStyleSheet("color: #2ca02c;")
        if "int8" in r:
            self.status.setText(f"✓ int8 ({r['mode']}) → {self.out}")
        else:
            self.status.setText(f"✓ {r['method']} pruning of {r['amount']:.0%} → {self.out}"
                                + (f", fine-tuned {r['finetune_epochs']} epoch"
                                   f"{'' if r['finetune_epochs'] == 1 else 's'}"
                                   if r["finetune_epochs"] else ""))
            self.btn_open.show()
        notes = list(r.get("notes", []))
        if r.get("onnx_check"):
            notes.append(f"ONNX export check {r['onnx_check']}")
        self.notes.setText("\n".join(notes))

    def _open_result(self) -> None:
        if self.out is not None:
            self.opened.emit(self.out / "project.studio.json")
