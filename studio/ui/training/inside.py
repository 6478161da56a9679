"""The Evaluate view's Explain tab: why the network decided as it did on one sample, and what
its layers saw.

For an image: the sample beside the attribution map laid over it (Saliency, Integrated
Gradients, Grad-CAM or Occlusion, computed by Captum), the chosen layer's feature maps, each
channel scaled on its own, and the first convolution's filters. For a table: a bar chart of
each column's attribution. The layer follows the node selected on the canvas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from studio.training.explain import heatmap

from .explain_job import ExplainJob, Question, Source
from .traces import style_plot

METHODS = (("saliency", "Saliency"), ("integrated-gradients", "Integrated gradients"),
           ("gradcam", "Grad-CAM"), ("occlusion", "Occlusion"))
METHOD_HELP = {
    "saliency": "how strongly each input value moves the class score (the gradient's size); "
                "fast, and noisy",
    "integrated-gradients": "each input's share of the score, summed along the way from a "
                            "black image (or the mean row) to this sample",
    "gradcam": "where in the image the chosen convolution's maps drive the class score; "
               "coarse, at that layer's resolution",
    "occlusion": "how much the score drops when a patch of the input is hidden; slow, and "
                 "easy to trust",
}
BAR_LIMIT = 20  # table columns shown, the most attributed first
HINT = ("Double-click a sample in a gallery, or type its number, to see which parts of it "
        "the prediction rests on.")
HINT_NO_GALLERY = ("Type a sample's number (its place in the dataset as loaded) to see which "
                   "parts of it the prediction rests on.")
_MAPS = pg.colormap.get("viridis").getLookupTable(nPts=256)


def _rgb(tile: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """A [h, w] tile in [0, 1] through a colour table, or an [h, w, 3] tile as it is."""
    if tile.ndim == 3:
        return np.asarray((np.clip(tile, 0, 1) * 255).astype(np.uint8))
    return np.asarray(lut[(np.clip(tile, 0, 1) * 255).astype(np.uint8)])


class TileGrid(QWidget):
    """Small images in a grid that fills the width (strips one under another), drawn
    without smoothing so each pixel stays a square; hovering names the tile."""

    def __init__(self, cell: int = 56, grow_to: int = 0) -> None:
        super().__init__()
        self.cell = cell
        #: when set, a few big tiles grow with the widget up to this size (the sample and its
        #: map fill the pane at any window size)
        self.grow_to = grow_to
        self.images: list[QImage] = []
        self.names: list[str] = []
        self.strips = False
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding
                           if grow_to else QSizePolicy.Policy.Preferred)

    def set_tiles(self, tiles: list[np.ndarray], lut: np.ndarray = _MAPS,
                  names: list[str] | None = None) -> None:
        self.images = []
        for t in tiles:
            rgb = np.ascontiguousarray(_rgb(t, lut))
            h, w = rgb.shape[:2]
            self.images.append(QImage(rgb.data, w, h, rgb.strides[0],
                                      QImage.Format.Format_RGB888).copy())
        self.names = names or [f"channel {i}" for i in range(len(tiles))]
        self.strips = bool(tiles) and all(t.ndim == 2 and t.shape[0] == 1 for t in tiles)
        self.updateGeometry()
        self.update()

    def _cell(self, width: int) -> int:
        if not self.grow_to or not self.images:
            return self.cell
        n = len(self.images)
        fits = min((width - 8 * (n - 1)) // n, self.height() - 22 if self.height() > 0
                   else self.grow_to)
        return max(self.cell, min(self.grow_to, fits))

    def _columns(self, width: int) -> int:
        gap = 8 if self.grow_to else 4
        return 1 if self.strips else max(1, (width + gap) // (self._cell(width) + gap))

    def _rect(self, i: int, width: int) -> QRect:
        if self.strips:
            return QRect(0, i * 14, width, 10)
        cols, cell = self._columns(width), self._cell(width)
        gap = 8 if self.grow_to else 4
        return QRect((i % cols) * (cell + gap), (i // cols) * (cell + 18), cell, cell)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if not self.images:
            return 0
        if self.strips:
            return len(self.images) * 14
        if self.grow_to:
            return self.cell + 22  # grows into the height it is given
        rows = math.ceil(len(self.images) / self._columns(width))
        return rows * (self.cell + 18)

    def sizeHint(self) -> QSize:
        return QSize(4 * (self.cell + 4), self.heightForWidth(4 * (self.cell + 4)))

    def minimumSizeHint(self) -> QSize:
        return QSize(self.cell, 0)

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        font = p.font()
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        for i, img in enumerate(self.images):
            r = self._rect(i, self.width())
            if not self.strips:  # keep the tile's aspect inside its square
                s = min(r.width() / img.width(), r.height() / img.height())
                w, h = max(1, round(img.width() * s)), max(1, round(img.height() * s))
                target = QRect(r.x() + (r.width() - w) // 2, r.y() + (r.height() - h) // 2, w, h)
                p.drawImage(target, img)
                if self.grow_to:  # big tiles carry their names below
                    p.drawText(QRect(r.x(), r.bottom() + 2, r.width(), 16),
                               Qt.AlignmentFlag.AlignCenter, self.names[i])
            else:
                p.drawImage(r, img)
        p.end()

    def tile_at(self, pos: QPoint) -> int | None:
        for i in range(len(self.images)):
            if self._rect(i, self.width()).contains(pos):
                return i
        return None

    def mouseMoveEvent(self, event: Any) -> None:
        i = self.tile_at(event.position().toPoint())
        if i is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), self.names[i], self)


class ExplainPanel(QWidget):
    """One sample explained. ``ask`` (or the controls) sends a question to the job; the answer
    fills the views. ``node_chosen`` follows the canvas selection."""

    asked = Signal(object)  # the Question sent

    def __init__(self, job: ExplainJob | None = None) -> None:
        super().__init__()
        self.job = job or ExplainJob(self)
        self.classes: list[str] = []  # what the Class box offers: classes, or outputs
        self.answer: dict[str, Any] | None = None
        self.index = QSpinBox()
        self.index.setRange(0, 10**9)
        self.index.setToolTip("The sample's number in the dataset as loaded, before the split "
                              "(as `studio explain --index` takes it)")
        self.index.setKeyboardTracking(False)
        self.method = QComboBox()
        for key, label in METHODS:
            self.method.addItem(label, key)
            self.method.setItemData(self.method.count() - 1, METHOD_HELP[key],
                                    Qt.ItemDataRole.ToolTipRole)
        self.target = QComboBox()
        self.target.setToolTip("The class whose score is explained (for a regression with "
                               "several outputs, the output)")
        self.target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer = QComboBox()
        self.layer.setToolTip("The layer whose feature maps are shown and Grad-CAM reads "
                              "(follows the node selected on the canvas)")
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        controls = QHBoxLayout()
        for text, w in (("Sample", self.index), ("Method", self.method),
                        ("Class", self.target), ("Layer", self.layer)):
            controls.addWidget(QLabel(text))
            controls.addWidget(w)
        controls.addStretch(1)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.pictures = TileGrid(cell=140, grow_to=360)
        self.bars = style_plot(pg.PlotWidget(), self.palette())
        self.bars.setMinimumHeight(160)
        self.bars.showGrid(x=True, alpha=0.25)
        self.left = QStackedWidget()
        self.left.addWidget(self.pictures)
        self.left.addWidget(self.bars)
        self.maps_title = QLabel()
        self.maps_title.setWordWrap(True)
        self.maps = TileGrid(cell=56)
        self.filters_title = QLabel()
        self.filters_title.setWordWrap(True)
        self.filters = TileGrid(cell=40)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 6, 6)
        for part in (self.maps_title, self.maps, self.filters_title, self.filters):
            rl.addWidget(part)
        rl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(right)
        self.split = QSplitter()
        self.split.addWidget(self.left)
        self.split.addWidget(scroll)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(controls)
        lay.addWidget(self.caption)
        lay.addWidget(self.hint, 1)
        lay.addWidget(self.split, 1)
        self.split.hide()
        self.index.valueChanged.connect(self._changed)
        self.method.currentIndexChanged.connect(self._changed)
        self.target.currentIndexChanged.connect(self._changed)
        self.layer.currentIndexChanged.connect(self._changed)
        self.job.answered.connect(self.show_answer)
        self.job.failed.connect(self._failed)
        self._asking = False
        self.wanted: str | None = None  # the node selected on the canvas

    # -- what to explain -------------------------------------------------------------------

    def set_source(self, source: Source | None, galleries: bool = True) -> None:
        """The weights to explain with. Other weights than before (another run or project)
        clear what was shown: its classes, layers and sample count may all differ.
        ``galleries``: whether there are galleries to pick samples from (the hint says)."""
        self.hint.setText(HINT if galleries else HINT_NO_GALLERY)
        if source == self.job.source:
            return
        self.job.set_source(source)
        self.answer = None
        self.caption.setText("")
        self.split.hide()
        self.hint.show()
        self._asking = True  # resetting the boxes must not ask
        try:
            self.index.setMaximum(10**9)
            self._fill_classes([])
            self._fill_layers([])
        finally:
            self._asking = False

    def _fill_classes(self, classes: list[str]) -> None:
        current = self.target.currentData()
        self.classes = list(classes)
        self.target.clear()
        self.target.addItem("predicted", None)
        for i, c in enumerate(self.classes):
            self.target.addItem(c, i)
        if current is not None and current < len(self.classes):
            self.target.setCurrentIndex(current + 1)

    def _fill_layers(self, nodes: list[str]) -> None:
        current = self.layer.currentData() or self.wanted
        self.layer.clear()
        self.layer.addItem("last convolution", None)
        for node in nodes:
            self.layer.addItem(node, node)
        if current is not None and self.layer.findData(current) >= 0:
            self.layer.setCurrentIndex(self.layer.findData(current))

    def choose_node(self, node: str | None) -> None:
        """The canvas selection: a layer the panel offers becomes the one shown (kept for
        when the layers are known, before the first answer)."""
        self.wanted = node
        i = self.layer.findData(node) if node else -1
        if i >= 0 and i != self.layer.currentIndex():
            self.layer.setCurrentIndex(i)

    def explain(self, index: int) -> None:
        """Explain one sample (its dataset index), with the chosen method, class and layer."""
        if self.index.value() == index:
            self._changed()
        else:
            self.index.setValue(index)  # asks through valueChanged

    def refresh(self) -> None:
        """Ask again about the sample shown, when it is on screen: the weights may be newer
        (a run's latest epoch)."""
        if self.answer is not None and self.isVisible():
            self._changed()

    def question(self) -> Question:
        layer = self.layer.currentData()
        if layer is None and self.layer.count() <= 1:  # the layers are not known yet
            layer = self.wanted
        return Question(self.index.value(), str(self.method.currentData()),
                        self.target.currentData(), layer)

    def _changed(self) -> None:
        if self._asking:
            return
        q = self.question()
        self.caption.setText(f"explaining sample {q.index}…")
        self.asked.emit(q)
        self.job.ask(q)

    def _failed(self, text: str) -> None:
        self.caption.setText(f"<b>Cannot explain:</b> {text}")

    # -- the answer ------------------------------------------------------------------------

    def show_answer(self, a: dict[str, Any]) -> None:
        if a.get("source") != self.job.source:  # asked of weights no longer shown
            return
        self.answer = a
        e, q = a["explanation"], a["question"]
        self._asking = True  # the boxes follow the network; that is not a new question
        try:
            self.index.setMaximum(max(0, a["count"] - 1))
            if a["targets"] != self.classes:
                self._fill_classes(a["targets"])
            if a["nodes"] != [self.layer.itemData(i) for i in range(1, self.layer.count())]:
                self._fill_layers(a["nodes"])
        finally:
            self._asking = False
        method = dict(METHODS)[e.method]
        where = f" on {e.layer}" if e.layer else ""
        note = ""
        if e.method == "gradcam" and q.layer and e.layer != q.layer:
            note = (f" (Grad-CAM needs a layer with a map [channels, height, width] on the "
                    f"way to the output; {q.layer} is not one, so it reads the last "
                    "convolution)")
        self.caption.setText(
            f"Sample {q.index}: true <b>{a['truth']}</b>, predicted <b>{a['predicted']}</b> · "
            f"{method}{where} for {a['explained']}{note}<br><span style='font-size:small'>"
            f"{method}: {METHOD_HELP[e.method]}.</span>")
        self.hint.hide()
        if not self.split.isVisible():  # first shown: the two sides share the width
            self.split.show()
            self.split.setSizes([self.width() * 2 // 5, self.width() * 3 // 5])
        if a["image"] is not None and e.map.ndim == 2:
            img = a["image"]
            rgb = img if img.shape[2] == 3 else np.repeat(img, 3, axis=2)
            self.pictures.set_tiles([rgb.astype(np.float32) / 255.0,
                                     heatmap(e.map, img, min_side=1) / 255.0],
                                    names=["the sample", f"{method}{where}"])
            self.left.setCurrentWidget(self.pictures)
        else:
            self._show_bars(np.ravel(e.map), a["columns"], a["values"], e.method)
            self.left.setCurrentWidget(self.bars)
        self._show_maps(a)

    def _show_bars(self, attr: np.ndarray, columns: list[str], values: np.ndarray | None,
                   method: str) -> None:
        order = np.argsort(-np.abs(attr))[:BAR_LIMIT][::-1]  # the largest on top
        names = [columns[i] if i < len(columns) else f"feature {i}" for i in order]
        if values is not None:
            names = [f"{n} = {float(values[i]):.4g}" for n, i in zip(names, order, strict=True)]
        plot = self.bars.getPlotItem()
        plot.clear()
        ys = np.arange(len(order))
        vals = attr[order]
        brushes = [pg.mkBrush(230, 120, 30) if v >= 0 else pg.mkBrush(50, 110, 200)
                   for v in vals]
        plot.addItem(pg.BarGraphItem(x0=np.minimum(vals, 0), y=ys, height=0.7,
                                     width=np.abs(vals), brushes=brushes))
        plot.getAxis("left").setTicks([list(zip(ys.tolist(), names, strict=True))])
        plot.setLabel("bottom", "attribution: the gradient's size (saliency has no sign)"
                      if method == "saliency" else
                      "attribution (orange: towards the class, blue: against)")
        plot.setYRange(-0.6, len(order) - 0.4, padding=0)
        plot.enableAutoRange(axis="x")

    def _show_maps(self, a: dict[str, Any]) -> None:
        if "maps" in a:
            dims = a["maps_shape"]
            shape = " × ".join(str(d) for d in dims)
            n = len(a["maps"])
            if len(dims) <= 1:
                how = "as a strip, dark low, bright high"
            else:
                first = "" if n >= dims[0] else f"the first {n} of {dims[0]} channels, "
                how = f"{first}each channel scaled on its own"
            self.maps_title.setText(f"<b>{a['maps_node']}</b> on this sample: [{shape}], {how}")
            self.maps.set_tiles(a["maps"])
        else:
            self.maps_title.setText("Choose a layer to see what it makes of this sample.")
            self.maps.set_tiles([])
        if "filters" in a:
            shape = " × ".join(str(d) for d in a["filters_shape"])
            self.filters_title.setText(f"<b>{a['filters_node']}</b>'s filters [{shape}] "
                                       "(grey 0, light positive, dark negative)")
            self.filters.set_tiles(a["filters"], lut=_GREY,
                                   names=[f"filter {i}" for i in range(len(a["filters"]))])
        else:
            self.filters_title.setText("")
            self.filters.set_tiles([])


_GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
