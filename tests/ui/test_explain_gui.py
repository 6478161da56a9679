"""The Evaluate view's Explain tab as a user drives it: train, double-click a sample in a
gallery, read its attribution map, change the method, pick a layer on the canvas and see its
feature maps; for a table, a bar chart naming the columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from studio.core.project import DataSettings, Project, TrainingSettings, sample_paths
from tests.graphs import net

from .helpers import open_window


def _trained(qtbot, tmp_path: Path, path: Path, **settings):
    w = open_window(qtbot, tmp_path, path)
    w.runs.set_run_processes(0)  # a thread: the quickest run
    for key, value in settings.items():
        w.editor.set_setting("training", key, value)
    w.act_train.trigger()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=120_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message
    qtbot.waitUntil(lambda: bool(w.evaluation.pred), timeout=30_000)
    w.views.show("evaluate")
    return w


class _Answer:
    """Waits for the panel's answer to what the block does; a failure fails with its text."""

    def __init__(self, qtbot, panel) -> None:
        self.qtbot, self.panel, self.got = qtbot, panel, []

    def __enter__(self) -> _Answer:
        self.panel.job.answered.connect(self._answered)
        self.panel.job.failed.connect(self._answered)
        return self

    def _answered(self, value) -> None:
        self.got.append(value)

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.qtbot.waitUntil(lambda: bool(self.got), timeout=60_000)
        self.panel.job.answered.disconnect(self._answered)
        self.panel.job.failed.disconnect(self._answered)
        assert exc[0] is not None or isinstance(self.got[0], dict), self.got[0]

    @property
    def args(self) -> list:
        return self.got


def _double_click_first(qtbot, gallery) -> int:
    item = gallery.item(0)
    assert gallery.isVisible()
    rect = gallery.visualItemRect(item)
    # a press first: a view takes a double-click on the item it saw pressed
    qtbot.mousePress(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    return int(item.data(Qt.ItemDataRole.UserRole))


def test_a_gallery_sample_is_explained_with_its_feature_maps(qtbot, tmp_path) -> None:
    g = net(("input", "Input", {"shape": [1, 28, 28]}),
            ("conv1", "Conv2d", {"out_channels": 6, "kernel_size": 3}),
            ("relu1", "ReLU", {}),
            ("pool", "MaxPool2d", {"kernel_size": 2}),
            ("conv2", "Conv2d", {"out_channels": 8, "kernel_size": 3}),
            ("relu2", "ReLU", {}),
            ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}))
    path = tmp_path / "cnn.studio.json"
    Project("cnn", g, DataSettings(dataset="mnist-5k", batch_size=64, val_fraction=0.2),
            TrainingSettings(epochs=1, optimizer={"type": "Adam", "lr": 0.003})).save(path)
    w = _trained(qtbot, tmp_path, path)
    ev = w.evaluation
    ev.open_cell(3, 3)  # the confusion matrix's cell: threes taken for threes
    panel = ev.explain
    with _Answer(qtbot, panel) as got:
        row = _double_click_first(qtbot, ev.cell_gallery)
    assert ev.tabs.currentWidget() is panel
    a = got.args[0]
    assert a["question"].index == int(ev.pred["index"][row])  # the sample double-clicked
    assert a["truth"] == "3" and int(ev.pred["y_true"][row]) == 3
    e = a["explanation"]
    assert e.method == "saliency" and e.map.shape == (28, 28) and e.target == 3
    assert len(panel.pictures.images) == 2  # the sample and the map laid over it
    assert a["maps_node"] == "conv2" and len(panel.maps.images) == 8  # the last convolution
    assert panel.maps.images[0].width() == 11
    assert a["filters_node"] == "conv1" and len(panel.filters.images) == 6
    assert "true <b>3</b>" in panel.caption.text()

    with _Answer(qtbot, panel) as got:
        panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    e = got.args[0]["explanation"]
    assert e.method == "gradcam" and e.layer == "conv2" and e.map.shape == (28, 28)
    assert "Grad-CAM on conv2" in panel.caption.text()

    # a node picked on the canvas becomes the layer shown (and Grad-CAM's)
    with _Answer(qtbot, panel) as got:
        w.editing.select_node("conv1")
    a = got.args[0]
    assert panel.layer.currentData() == "conv1"
    assert a["maps_node"] == "conv1" and a["explanation"].layer == "conv1"
    assert panel.maps.images[0].width() == 26 and "conv1" in panel.maps_title.text()

    # another class explained for the same sample: its own map
    with _Answer(qtbot, panel) as got:
        panel.target.setCurrentIndex(panel.target.findData(8))
    assert got.args[0]["explanation"].target == 8
    assert not np.array_equal(got.args[0]["explanation"].map, a["explanation"].map)
    # the galleries' predictions and the answers come from the same weights: the last
    # epoch's, which model.safetensors holds
    assert got.args[0]["weights"].name == "model.safetensors"


def test_a_table_sample_shows_its_columns_as_bars(qtbot, tmp_path) -> None:
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = _trained(qtbot, tmp_path, wine, epochs=3, early_stopping=None)
    ev = w.evaluation
    ev.open_cell(0, 0)
    panel = ev.explain
    panel.method.setCurrentIndex(panel.method.findData("integrated-gradients"))
    with _Answer(qtbot, panel) as got:
        _double_click_first(qtbot, ev.cell_gallery)
    e = got.args[0]["explanation"]
    assert e.method == "integrated-gradients" and e.map.shape == (13,)
    assert panel.left.currentWidget() is panel.bars
    plot = panel.bars.getPlotItem()
    bars = [i for i in plot.items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1
    ticks = [label for _pos, label in plot.getAxis("left")._tickLevels[0]]
    assert len(ticks) == 13 and any(t.startswith("alcohol = ") for t in ticks)
    # the largest attribution in size is on top
    top = ticks[-1].split(" = ")[0]
    assert top == got.args[0]["columns"][int(np.argmax(np.abs(e.map)))]
    assert panel.maps_title.text().startswith("Choose a layer")  # an MLP has no maps
    assert "orange: towards the class" in plot.getAxis("bottom").labelText


def test_during_a_run_the_explain_tab_reads_its_latest_epoch(qtbot, tmp_path) -> None:
    g = net(("input", "Input", {"shape": [1, 28, 28]}),
            ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
            ("relu1", "ReLU", {}),
            ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}))
    path = tmp_path / "live.studio.json"
    Project("live", g, DataSettings(dataset="mnist-5k", batch_size=64),
            TrainingSettings(epochs=200)).save(path)
    w = open_window(qtbot, tmp_path, path)
    w.runs.set_run_processes(0)
    ev = w.evaluation
    assert not ev.tabs.isVisible()  # nothing to explain with before a run
    w.act_train.trigger()
    # Explain turns to the run at its first epoch's end, not before
    qtbot.waitUntil(lambda: ev.explain.job.source is not None, timeout=60_000)
    assert (w.runs.run_dir / "last.ckpt").exists()
    w.views.show("evaluate")
    assert ev.tabs.isVisible() and ev.tabs.indexOf(ev.explain) >= 0
    with _Answer(qtbot, ev.explain) as got:
        ev.explain.explain(7)
    a = got.args[0]
    assert a["weights"].name == "last.ckpt" and a["maps_node"] == "conv1"
    assert len(ev.explain.maps.images) == 4
    w.runs.stop()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
