"""The Train view's fixed rows: the run header (state, figures, Pause and Stop) on top and the
log that folds away at the bottom, showing its last line when folded."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .charts import clock
from .traces import dim

STATUS_COLOURS = {"idle": "#7a7f87", "starting": "#7a7f87", "running": "#2a9d3a",
                  "paused": "#c98a00", "stopped": "#b35c00", "completed": "#2f6fd0",
                  "failed": "#d03a2f"}
FIGURES = (("epoch", "epoch"), ("step", "step"), ("elapsed", "elapsed"), ("eta", "ETA"),
           ("lr", "learning rate"), ("device", "device"), ("rate", "samples/s"))


class ElidedLabel(QLabel):
    """One line that ends in … rather than widening its parent."""

    def __init__(self) -> None:
        super().__init__()
        self.full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_full_text(self, text: str) -> None:
        self.full = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self.full, Qt.TextElideMode.ElideRight,
                                                   max(self.width(), 10)))


class RunHeader(QWidget):
    """What the run is doing, in figures that fit one row; Pause/Resume and Stop."""

    pause_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.status = "idle"
        self.pill = QLabel()
        self.pill.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pill.setMinimumWidth(88)
        self.values: dict[str, QLabel] = {}
        row = QHBoxLayout()
        row.setContentsMargins(8, 6, 8, 4)
        row.setSpacing(18)
        row.addWidget(self.pill)
        grey = dim(self.palette()).name()
        for key, caption in FIGURES:
            cap = QLabel(caption)
            small = QFont(cap.font())
            small.setPointSizeF(max(7.5, small.pointSizeF() * 0.85))
            cap.setFont(small)
            cap.setStyleSheet(f"color: {grey}")
            value = QLabel("–")
            big = QFont(value.font())
            big.setPointSizeF(big.pointSizeF() * 1.1)
            big.setWeight(QFont.Weight.DemiBold)
            value.setFont(big)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            col = QVBoxLayout()
            col.setSpacing(0)
            col.addWidget(cap)
            col.addWidget(value)
            row.addLayout(col)
            self.values[key] = value
        self.message = ElidedLabel()
        self.message.setStyleSheet(f"color: {grey}")
        row.addWidget(self.message, 1)
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        for b in (self.pause_button, self.stop_button):
            b.setEnabled(False)
            row.addWidget(b)
        self.pause_button.clicked.connect(self.pause_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(row)
        lay.addWidget(self.bar)
        self.set_status("idle")

    def figure(self, key: str) -> str:
        return self.values[key].text()

    def _set(self, key: str, text: str) -> None:
        label = self.values[key]
        if label.text() != text:  # each change repaints; most reports change few figures
            label.setText(text)

    def clear(self) -> None:
        for key in self.values:
            self._set(key, "–")
        self.bar.setValue(0)
        self.message.set_full_text("")

    def set_status(self, status: str, message: str | None = None) -> None:
        self.status = status
        self.pill.setText(status)
        self.pill.setStyleSheet(
            f"background: {STATUS_COLOURS.get(status, '#7a7f87')}; color: white; "
            "border-radius: 9px; padding: 3px 10px; font-weight: 600")
        if message is not None:
            self.message.set_full_text(message)

    def set_info(self, info: dict[str, Any]) -> None:
        """A run started: where it trains and how long it will be."""
        where = str(info.get("device", "–"))
        if info.get("processes", 1) > 1:
            where = f"{info['processes']} × {where}"
        self._set("device", where)
        epochs = info.get("epochs")
        if epochs:
            self._set("epoch", f"{info.get('start_epoch', 0)} / {epochs}")
            spe = info.get("steps_per_epoch")
            if spe:
                self.bar.setMaximum(int(epochs * spe))
                self.bar.setValue(int(info.get("start_epoch", 0) * spe))

    def set_progress(self, logs: dict[str, Any]) -> None:
        epochs, batches, step = logs.get("epochs"), logs.get("batches"), logs.get("step")
        if "epoch" in logs:
            self._set("epoch", f"{logs['epoch']} / {epochs}" if epochs else str(logs["epoch"]))
        if step is not None:
            total = epochs * batches if epochs and batches else None
            self._set("step", f"{step:,} / {total:,}" if total else f"{step:,}")
            if total:
                self.bar.setMaximum(int(total))
                self.bar.setValue(min(int(step), int(total)))
        if "lr" in logs:
            self._set("lr", f"{logs['lr']:.3g}")
        rate = logs.get("samples_per_s")
        if isinstance(rate, float | int) and math.isfinite(rate):
            self._set("rate", f"{rate:,.0f}")
        eta = logs.get("eta_s")
        if eta is not None and math.isfinite(eta):
            self._set("eta", clock(eta))

    def set_epoch(self, logs: dict[str, Any]) -> None:
        if "lr" in logs:
            self._set("lr", f"{logs['lr']:.3g}")

    def set_elapsed(self, seconds: float) -> None:
        self._set("elapsed", clock(seconds))

    def set_run_state(self, running: bool, paused: bool) -> None:
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and paused else "Pause")
        if running:
            self.set_status("paused" if paused else "running")

    def finish(self, status: str, message: str) -> None:
        self.set_run_state(False, False)
        self.set_status(status, message)
        if status == "completed":
            self._set("eta", clock(0))
            self.bar.setValue(self.bar.maximum())


class FoldingLog(QWidget):
    """The trainer's messages; folded to one row that shows the last of them."""

    def __init__(self) -> None:
        super().__init__()
        self.toggle = QToolButton()
        self.toggle.setText("Log")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAutoRaise(True)
        self.last = ElidedLabel()
        self.last.setStyleSheet(f"color: {dim(self.palette()).name()}")
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(5000)
        row = QHBoxLayout()
        row.setContentsMargins(4, 0, 8, 0)
        row.addWidget(self.toggle)
        row.addWidget(self.last, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(row)
        lay.addWidget(self.text, 1)
        self.toggle.toggled.connect(self._show)
        self.set_folded(True)

    @property
    def folded(self) -> bool:
        return not self.toggle.isChecked()

    def set_folded(self, folded: bool) -> None:
        self.toggle.setChecked(not folded)
        self._show(not folded)

    def _show(self, unfolded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if unfolded else Qt.ArrowType.RightArrow)
        self.text.setVisible(unfolded)
        self.last.setVisible(not unfolded)
        if unfolded:
            bar = self.text.verticalScrollBar()
            bar.setValue(bar.maximum())

    def append(self, text: str) -> None:
        self.text.appendPlainText(text)
        lines = text.strip().splitlines()
        if lines:
            self.last.set_full_text(lines[-1])
