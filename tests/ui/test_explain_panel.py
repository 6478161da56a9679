"""The Explain tab when its weights change: another run or project clears what the last one
showed (its classes, layers and sample count), and an answer about the old weights that
arrives late is not shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.build import build_module
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training.checkpoint import save_weights
from studio.ui.training.explain_job import Source
from studio.ui.training.inside import ExplainPanel
from tests.graphs import net


def _source(folder: Path, project: Project) -> Source:
    folder.mkdir()
    save_weights(folder / "w.safetensors", build_module(project.graph).state_dict(), {})
    project.save(folder / "project.studio.json")
    return Source(folder / "project.studio.json", folder / "w.safetensors", folder)


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Source, Source]:
    digits = net(("x", "Input", {"shape": [784]}), ("h", "Linear", {"out_features": 16}),
                 ("act", "ReLU", {}), ("out", "Linear", {"out_features": 10}))
    reg = net(("x", "Input", {"shape": [10]}), ("h", "Linear", {"out_features": 8}),
              ("act", "ReLU", {}), ("out", "Linear", {"out_features": 1}))
    cpu = TrainingSettings(device="cpu", loss={"type": "MSELoss"})
    return (_source(tmp_path / "a", Project("flat", digits, DataSettings(dataset="mnist-5k"),
                                            TrainingSettings(device="cpu"))),
            _source(tmp_path / "b", Project("reg", reg, DataSettings(dataset="diabetes"), cpu)))


def _answer(qtbot, panel: ExplainPanel, ask) -> dict:
    with qtbot.waitSignal(panel.job.answered, timeout=60_000) as got:
        ask()
    qtbot.waitUntil(lambda: panel.answer is got.args[0], timeout=5_000)
    return got.args[0]


def test_other_weights_clear_what_the_last_ones_showed(qtbot, sources) -> None:
    digits, reg = sources
    panel = ExplainPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    panel.set_source(digits, galleries=False)
    assert "Type a sample's number" in panel.hint.text()
    a = _answer(qtbot, panel, lambda: panel.explain(4321))
    # a picture read flat by its Input: shown as the picture, its map laid over it
    assert a["explanation"].map.shape == (28, 28)
    assert panel.left.currentWidget() is panel.pictures and len(panel.pictures.images) == 2
    assert panel.index.maximum() == 4999 and panel.target.count() == 11
    other = (a["explanation"].target + 1) % 10  # not the predicted class
    a = _answer(qtbot, panel, lambda: panel.target.setCurrentIndex(panel.target.findData(other)))
    assert a["explanation"].target == other and f"for class {other}" in panel.caption.text()
    late = panel.answer

    panel.explain(10**6)  # about the old weights, and failing…
    panel.set_source(reg, galleries=True)  # another project: nothing of the old one is left
    with qtbot.waitSignal(panel.job._done, timeout=60_000):  # …its failure arrives late
        pass
    assert panel.answer is None and not panel.split.isVisible() and panel.hint.isVisible()
    assert panel.caption.text() == ""  # the late failure is about weights no longer shown
    assert panel.target.count() == 1 and panel.target.currentData() is None
    assert panel.index.maximum() > 4999  # the new data's size is not known yet
    panel.show_answer(late)  # the old weights' answer, arriving late
    assert panel.answer is None and not panel.split.isVisible()

    a = _answer(qtbot, panel, lambda: panel.explain(5))
    assert panel.index.maximum() == 441 and panel.target.count() == 1  # 442 patients
    assert panel.left.currentWidget() is panel.bars
    truth, said = float(a["truth"]), float(a["predicted"])
    assert f"true <b>{a['truth']}</b>" in panel.caption.text() and "for output 0" in \
        panel.caption.text()
    assert 25 <= truth <= 346 and said > 20  # disease scores, not normalised values
    # an MLP has no map to show: the maps area says how to get one, and no filters
    assert panel.maps_title.text().startswith("Choose a layer")
    assert panel.filters.images == []


def test_grad_cam_on_a_layer_without_a_map_says_which_it_read(qtbot, tmp_path) -> None:
    g = net(("input", "Input", {"shape": [1, 28, 28]}),
            ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
            ("relu1", "ReLU", {}), ("flat", "Flatten", {}),
            ("fc", "Linear", {"out_features": 10}))
    src = _source(tmp_path / "cnn", Project("cnn", g, DataSettings(dataset="mnist-5k"),
                                            TrainingSettings(device="cpu")))
    panel = ExplainPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_source(src)
    panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    # the Input selected on the canvas before any answer: it has no layer to read
    panel.choose_node("input")
    a = _answer(qtbot, panel, lambda: panel.explain(0))
    assert a["explanation"].layer == "conv1" and "input is not one" in panel.caption.text()
    # a vector, not a map: Grad-CAM reads the last convolution and says so
    a = _answer(qtbot, panel, lambda: panel.choose_node("fc"))
    assert a["explanation"].layer == "conv1"
    assert "fc is not one, so it reads the last convolution" in panel.caption.text()
    # its output is a strip of 10 values, said so (not "the first 1")
    assert a["maps_node"] == "fc" and "as a strip" in panel.maps_title.text()
    assert "first" not in panel.maps_title.text()
