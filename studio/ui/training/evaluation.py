"""After a run: per-class metrics, a confusion matrix whose cells open a gallery of those
samples, the most confidently wrong samples, or for regression predicted versus true."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .explain_job import Source
from .inside import ExplainPanel
from .traces import style_plot

GALLERY_LIMIT = 200


def pixmap(image: np.ndarray, scale: int = 3) -> QPixmap:
    h, w, c = image.shape
    data = np.ascontiguousarray(image if c == 3 else image[:, :, 0])
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_Grayscale8
    img = QImage(data.data, w, h, data.strides[0], fmt).copy()
    return QPixmap.fromImage(img).scaled(w * scale, h * scale)


class Gallery(QListWidget):
    """Samples as pictures (or text for tabular data) with their true and predicted class."""

    def __init__(self) -> None:
        super().__init__()
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(84, 84))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setSpacing(4)

    def show_samples(self, pred: dict[str, Any], indices: np.ndarray) -> None:
        self.clear()
        classes = pred["classes"]
        images = pred.get("images")
        for i in indices[:GALLERY_LIMIT]:
            t, p = int(pred["y_true"][i]), int(pred["y_pred"][i])
            text = f"{classes[t]} → {classes[p]}\n{pred['confidence'][i]:.0%}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, int(i))
            if images is not None and i < len(images):
                item.setIcon(QIcon(pixmap(images[i])))
            self.addItem(item)


class ConfusionMatrix(QTableWidget):
    """Rows: true class; columns: predicted. Clicking a cell asks for its samples."""

    cell_chosen = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.cellClicked.connect(self.cell_chosen)

    def show_matrix(self, cm: np.ndarray, classes: list[str]) -> None:
        k = len(classes)
        self.setRowCount(k)
        self.setColumnCount(k)
        self.setHorizontalHeaderLabels([f"→ {c}" for c in classes])
        self.setVerticalHeaderLabels(classes)
        peak = max(int(cm.max()), 1)
        for r in range(k):
            row_total = max(int(cm[r].sum()), 1)
            for c in range(k):
                v = int(cm[r, c])
                item = QTableWidgetItem(str(v))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                share = v / row_total
                base = (44, 160, 44) if r == c else (214, 39, 40)
                alpha = int(255 * (share if r != c else v / peak)) if v else 0
                item.setBackground(QColor(*base, alpha))
                item.setToolTip(f"true {classes[r]}, predicted {classes[c]}: {v} "
                                f"({share:.1%} of {classes[r]})")
                self.setItem(r, c, item)


SPLITS = (("val", "Validation"), ("test", "Test"))

EMPTY_HINT = ("Nothing evaluated yet.\n\nWhen a run finishes, its validation predictions "
              "appear here; to look at any checkpoint, select it in the runs list below and "
              "press Evaluate.")


class EvaluationView(QWidget):
    """The views for one run's predictions on its validation or test part (the split
    selector, shown when the project has a test part); until there are some, what to do.

    Each split's predictions are kept once shown; choosing a split not yet evaluated asks for
    it with ``split_requested``, and the controller answers with ``show_predictions``."""

    split_requested = Signal(str)  # "val" or "test"

    def __init__(self) -> None:
        super().__init__()
        self.split_box = QComboBox()
        for key, label in SPLITS:
            self.split_box.addItem(label, key)
        self.split_box.setToolTip("Which part of the data the predictions are made on: "
                                  "validation, or the test part held out from training")
        self.split_box.hide()
        self.split_box.currentIndexChanged.connect(self._split_chosen)
        #: split → (predictions, logs, the weights that made them, which Explain then uses)
        self.results: dict[str, tuple[dict[str, Any], dict[str, Any], Source | None]] = {}
        self.tabs = QTabWidget()
        self.explain = ExplainPanel()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setContentsMargins(6, 4, 6, 4)
        self.hint = QLabel(EMPTY_HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setMargin(24)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.per_class = QTableWidget(0, 4)
        self.per_class.setHorizontalHeaderLabels(["precision", "recall", "F1", "support"])
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.confusion = ConfusionMatrix()
        self.cell_gallery = Gallery()
        self.wrong = Gallery()
        self.scatter = style_plot(pg.PlotWidget(title="Predicted versus true"), self.palette())
        self.scatter.setLabel("bottom", "true")
        self.scatter.setLabel("left", "predicted")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.summary, 1)
        head.addWidget(self.split_box)
        lay.addLayout(head)
        lay.addWidget(self.hint, 1)
        lay.addWidget(self.tabs, 1)
        self.tabs.hide()
        self.pred: dict[str, Any] = {}
        self.confusion.cell_chosen.connect(self.open_cell)
        for gallery in (self.cell_gallery, self.wrong):
            gallery.itemDoubleClicked.connect(self._explain_item)
            gallery.setToolTip("Double-click a sample to see what its prediction rests on")

    @property
    def split(self) -> str:
        """The split chosen in the selector ("val" without a test part)."""
        return str(self.split_box.currentData()) if self.split_box.isVisibleTo(self) else "val"

    def set_test_available(self, available: bool) -> None:
        """Show the split selector when there is a test part; forget every split shown."""
        self.results.clear()
        self.split_box.setVisible(available)
        if not available:
            self._select("val")

    def _select(self, split: str) -> None:
        self.split_box.blockSignals(True)
        self.split_box.setCurrentIndex(self.split_box.findData(split))
        self.split_box.blockSignals(False)

    def _split_chosen(self) -> None:
        split = self.split
        if split in self.results:
            pred, logs, source = self.results[split]
            self._show(pred, logs, split, source)
        else:
            self.split_requested.emit(split)

    def show_predictions(self, pred: dict[str, Any], logs: dict[str, Any],
                         split: str = "val", source: Source | None = None) -> None:
        """Show (and keep) one split's predictions, and select that split. ``source``: the
        weights that made them, which the Explain tab then answers with."""
        self.results[split] = (pred, logs, source)
        self._select(split)
        self._show(pred, logs, split, source)

    def clear(self) -> None:
        """Nothing to show (another project): no predictions, nothing to explain."""
        self.results.clear()
        self.split_box.hide()
        self._select("val")
        self._show({}, {}, "val", None)

    def _show(self, pred: dict[str, Any], logs: dict[str, Any], split: str,
              source: Source | None) -> None:
        self.pred = pred
        self.explain.set_source(source, galleries=bool(pred))
        self.tabs.clear()
        shown = {k: v for k, v in logs.items() if k.startswith(f"{split}_")
                 and isinstance(v, float)}
        self.summary.setText(" · ".join(f"{k} <b>{v:.4f}</b>" for k, v in shown.items()))
        explainable = self.explain.job.source is not None  # a run's weights, even mid-run
        self.hint.setVisible(not pred and not explainable)
        self.tabs.setVisible(bool(pred) or explainable)
        if not pred:
            if explainable:
                self.tabs.addTab(self.explain, "Explain")
            return
        if pred["task"] == "classification":
            k = len(pred["classes"])
            cm = np.zeros((k, k), dtype=np.int64)
            np.add.at(cm, (pred["y_true"], np.clip(pred["y_pred"], 0, k - 1)), 1)
            self._fill_per_class(cm, pred["classes"])
            self.confusion.show_matrix(cm, pred["classes"])
            wrong = np.flatnonzero(pred["y_true"] != pred["y_pred"])
            wrong = wrong[np.argsort(-pred["confidence"][wrong])]
            self.wrong.show_samples(pred, wrong)
            self.tabs.addTab(self.confusion, "Confusion matrix")
            self.tabs.addTab(self.cell_gallery, "Samples")
            self.tabs.addTab(self.per_class, "Per class")
            self.tabs.addTab(self.wrong, f"Most confidently wrong ({len(wrong)})")
        else:
            self.scatter.clear()
            t, p = pred["y_true"], pred["y_pred"]
            self.scatter.plot(t, p, pen=None, symbol="o", symbolSize=5,
                              symbolBrush=(31, 119, 180, 160))
            lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
            diagonal = pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine)
            self.scatter.plot([lo, hi], [lo, hi], pen=diagonal)  # perfect predictions
            self.tabs.addTab(self.scatter, "Predicted vs true")
        self.tabs.addTab(self.explain, "Explain")

    def explain_with(self, source: Source) -> None:
        """A run's latest weights, during the run: the galleries of earlier weights go, and
        the Explain tab alone answers with these."""
        self.results.clear()
        self._show({}, {}, self.split, source)

    def _explain_item(self, item: QListWidgetItem) -> None:
        """A gallery sample explained: by its number in the dataset as loaded, which the
        predictions carry (a dataset's own test set has none)."""
        index = self.pred.get("index")
        if index is None:
            self.explain.caption.setText("This sample is in the dataset's own test set, which "
                                         "has no number in the dataset as loaded; explain "
                                         "samples of the validation part.")
        else:
            self.explain.explain(int(index[int(item.data(Qt.ItemDataRole.UserRole))]))
        self.tabs.setCurrentWidget(self.explain)

    def _fill_per_class(self, cm: np.ndarray, classes: list[str]) -> None:
        tp = np.diag(cm).astype(float)
        support, predicted = cm.sum(1), cm.sum(0)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(tp), where=(precision + recall) > 0)
        self.per_class.setRowCount(len(classes))
        self.per_class.setVerticalHeaderLabels(classes)
        for r in range(len(classes)):
            for c, v in enumerate((f"{precision[r]:.3f}", f"{recall[r]:.3f}", f"{f1[r]:.3f}",
                                   str(int(support[r])))):
                self.per_class.setItem(r, c, QTableWidgetItem(v))

    def open_cell(self, true: int, predicted: int) -> None:
        p = self.pred
        idx = np.flatnonzero((p["y_true"] == true) & (p["y_pred"] == predicted))
        idx = idx[np.argsort(-p["confidence"][idx])]
        self.cell_gallery.show_samples(p, idx)
        classes = p["classes"]
        self.tabs.setTabText(1, f"Samples: {classes[true]} → {classes[predicted]} ({len(idx)})")
        self.tabs.setCurrentWidget(self.cell_gallery)
