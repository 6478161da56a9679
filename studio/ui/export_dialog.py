"""File ▸ Export: pick a format, the weights and a destination; the export runs as
``studio export`` in a child process (the window stays responsive, a crash in an exporter
cannot take it down) and its verification is shown when it ends. Writing a Python package
into a folder that holds other files is asked first (``ask_overwrite``, which tests answer)."""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project, file_stem
from studio.export import DEFAULT_OPSET, MARKER, PACKAGE_FILES, files_in_the_way, opset_range

from .training.runs import WEIGHT_FILES

FORMATS = (("onnx", "ONNX (.onnx), checked and run in onnxruntime", ".onnx"),
           ("pt2", "torch.export program (.pt2)", ".pt2"),
           ("safetensors", "Weights with the project embedded (.safetensors)", ".safetensors"),
           ("python", "Python package: model.py, weights, train.py with its config", ""))


def candidate_weights(runs_dir: Path | None, project_path: Path | None = None,
                      limit: int = 20) -> list[Path]:
    """The newest runs' weight files, best first: this project's runs before others (samples
    and unsaved projects share one runs folder), each group newest first."""
    if runs_dir is None or not runs_dir.is_dir():
        return []
    stem = file_stem(project_path) if project_path is not None else "untitled"
    mine = re.compile(re.escape(stem) + r"-\d{8}-\d{6}(-\d+)?")

    def order(run: Path) -> tuple[bool, float]:
        try:
            return bool(mine.fullmatch(run.name)), run.stat().st_mtime
        except OSError:
            return False, 0.0

    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=order,
                  reverse=True)[:limit]
    return [r / f for r in runs for f in WEIGHT_FILES if (r / f).exists()]


class ExportDialog(QDialog):
    finished_export = Signal(bool, str)  # ok, the report or the error

    def __init__(self, project: Project, runs_dir: Path | None, base_dir: Path | None,
                 parent: QWidget | None = None, weights: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.project = project.copy()
        self.base_dir = base_dir
        self.format = QComboBox()
        for key, text, _ext in FORMATS:
            self.format.addItem(text, key)
        self.weights = QComboBox()
        self.weights.addItem("untrained (the project's initial weights)", None)
        for p in ([weights] if weights else []) + candidate_weights(runs_dir, project.path):
            self.weights.addItem(f"{p.parent.name}/{p.name}", str(p))
        if self.weights.count() > 1:
            self.weights.setCurrentIndex(1)
        browse_w = QPushButton("…")
        browse_w.clicked.connect(self._browse_weights)
        self.out = QLineEdit()
        browse_o = QPushButton("…")
        browse_o.clicked.connect(self._browse_out)
        self.opset = QSpinBox()
        low, high = opset_range()  # nothing the exporter can never write
        self.opset.setRange(low, high)
        self.opset.setValue(DEFAULT_OPSET)
        self.opset.setToolTip(f"Below {DEFAULT_OPSET} only some networks convert; the "
                              "export says when one does not")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.btn_export = QPushButton("Export")
        self.btn_export.setDefault(True)
        self.btn_export.clicked.connect(self.start)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        form = QFormLayout()
        form.addRow("Format", self.format)
        row = QHBoxLayout()
        row.addWidget(self.weights, 1)
        row.addWidget(browse_w)
        form.addRow("Weights", row)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse_o)
        form.addRow("Save to", row)
        form.addRow("ONNX opset", self.opset)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.btn_export)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.result_label)
        lay.addLayout(buttons)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.proc: QProcess | None = None
        #: answers "write into this folder of other files?" (folder, its entries) → yes
        self.ask_overwrite: Callable[[Path, list[str]], bool] = self._ask_overwrite
        self.force = False  # the user agreed to write into a folder of other files
        self._format_changed()
        self.resize(560, 220)

    def _stem(self) -> str:
        p = self.project.path
        return file_stem(p) if p else "model"

    def _format_changed(self) -> None:
        key = self.format.currentData()
        ext = next(e for k, _t, e in FORMATS if k == key)
        from studio.core.project import samples_dir

        p = self.project.path
        folder = p.parent if p is not None and p.parent != samples_dir() else Path.home()
        self.out.setText(str(folder / f"{self._stem()}{ext or '_python'}"))
        self.opset.setEnabled(key == "onnx")

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights", "", "Weights (*.ckpt *.safetensors)")
        if path:
            self.weights.addItem(Path(path).name, path)
            self.weights.setCurrentIndex(self.weights.count() - 1)

    def _browse_out(self) -> None:
        if self.format.currentData() == "python":
            path = QFileDialog.getExistingDirectory(self, "Folder for the package")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.out.text())
        if path:
            self.out.setText(path)

    def command(self) -> list[str]:
        self._snapshot = Path(tempfile.mkdtemp(prefix="studio-export-")) / "p.studio.json"
        self.project.copy().save(self._snapshot)  # a copy: saving moves a project's path
        args = ["-m", "studio", "export", str(self._snapshot), "--format",
                self.format.currentData(), "--out", self.out.text().strip(),
                "--opset", str(self.opset.value())]
        if self.force:
            args.append("--force")
        if self.weights.currentData():
            args += ["--weights", self.weights.currentData()]
        if self.base_dir is not None:
            args += ["--base-dir", str(self.base_dir)]
        return args

    def _ask_overwrite(self, folder: Path, names: list[str]) -> bool:
        B = QMessageBox.StandardButton
        shown = "\n".join(names[:8]) + (f"\n… and {len(names) - 8} more" if len(names) > 8
                                          else "")
        ours = ", ".join(n for n in (*PACKAGE_FILES, MARKER) if n in names)
        fate = (f"{ours} will be replaced, the other files kept" if ours
                else "Studio's files are added beside them")
        return QMessageBox.question(
            self, "Folder in use",
            f"“{folder}” holds files that are not from a Studio export:\n\n{shown}\n\n"
            f"Export into it anyway? {fate}.", B.Yes | B.No, B.No) == B.Yes

    def _may_write(self) -> bool:
        """Whether the destination is free, or the user agreed to share it."""
        self.force = False
        out = Path(self.out.text().strip())
        if self.format.currentData() != "python":
            return True
        names = files_in_the_way(out)
        if names and not self.ask_overwrite(out, names):
            self.result_label.setStyleSheet("color: #d62728;")
            self.result_label.setText(f"✗ not exported: {out} holds other files; choose an "
                                      "empty folder")
            return False
        self.force = bool(names)
        return True

    def start(self) -> None:
        if self.proc is not None or not self.out.text().strip() or not self._may_write():
            return
        self.btn_export.setEnabled(False)
        self.result_label.setStyleSheet("")
        self.result_label.setText("exporting and verifying…")
        self.proc = QProcess(self)
        self.proc.finished.connect(self._done)
        self.proc.start(sys.executable, self.command())

    def _done(self, code: int, status: QProcess.ExitStatus) -> None:
        assert self.proc is not None
        out = bytes(self.proc.readAllStandardOutput().data()).decode("utf-8", "replace")
        err = bytes(self.proc.readAllStandardError().data()).decode("utf-8", "replace")
        self.proc = None
        self.btn_export.setEnabled(True)
        ok = code == 0 and status == QProcess.ExitStatus.NormalExit
        notes = [ln.removeprefix("note: ") for ln in err.splitlines() if ln.startswith("note: ")]
        if ok:
            text = "✓ " + out.strip() + "".join(f"\n{n}" for n in notes)
            self.result_label.setStyleSheet("color: #2ca02c;")
        else:
            last = [ln for ln in err.splitlines() if ln.strip()]
            text = "✗ " + (last[-1].removeprefix("studio: error: ") if last
                           else f"the export ended with code {code}")
            self.result_label.setStyleSheet("color: #d62728;")
        self.result_label.setText(text)
        self.finished_export.emit(ok, text)
