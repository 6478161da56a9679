"""Keras and common names find the PyTorch layer in the palette filter and in quick-add, and
the row says which name matched, so the PyTorch name is learned alongside."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt

from studio.core import catalog
from studio.core.project import Project, default_sample
from studio.core.shapes import analyze
from studio.ui.canvas import CanvasScene
from studio.ui.editor import Editor
from studio.ui.palette import Palette, _key
from studio.ui.view import CanvasView

from .test_canvas import send
from .test_quick_add import viewport_point, wire_middle

#: what a learner types (Keras spellings, underscores, spaces) → the layers it is, best first
FAMILIAR = {
    "Dense": ["Linear"],
    "Conv1D": ["Conv1d"],
    "Conv2D": ["Conv2d"],
    "Conv2DTranspose": ["ConvTranspose2d"],
    "MaxPooling1D": ["MaxPool1d"],
    "MaxPooling2D": ["MaxPool2d"],
    "AveragePooling1D": ["AvgPool1d"],
    "AveragePooling2D": ["AvgPool2d"],
    "GlobalAveragePooling1D": ["AdaptiveAvgPool1d"],
    "GlobalAveragePooling2D": ["AdaptiveAvgPool2d"],
    "BatchNormalization": ["BatchNorm1d", "BatchNorm2d"],
    "batch_normalization": ["BatchNorm1d", "BatchNorm2d"],
    "Layer Normalization": ["LayerNorm"],
    "SimpleRNN": ["RNN"],
    "MultiHeadAttention": ["MultiheadAttention"],
    "Concatenate": ["Concat"],
    "SpatialDropout2D": ["Dropout2d"],
    "swish": ["SiLU"],
    "PositionalEncoding": ["PositionalEmbedding"],
}


@pytest.fixture
def palette(qtbot) -> Palette:
    p = Palette()
    qtbot.addWidget(p)
    return p


@pytest.mark.parametrize("typed", FAMILIAR)
def test_the_palette_filter_finds_layers_by_their_familiar_names(palette, qtbot, typed) -> None:
    qtbot.keyClicks(palette.filter, typed)
    want = FAMILIAR[typed]
    assert palette.tree.currentItem().data(0, Qt.ItemDataRole.UserRole) == want[0]  # Enter
    shown = dict(zip(palette.visible_layers(), palette.visible_labels(), strict=True))
    for kind in want:
        label = shown[kind]
        # the PyTorch name, and the familiar one it was found by when that differs
        alias = label.removeprefix(kind).removeprefix(" — ")
        assert label == kind or alias in catalog.CATALOG[kind].aliases


def test_the_palette_row_names_the_alias_then_goes_back_to_the_layer_name(palette, qtbot
                                                                          ) -> None:
    qtbot.keyClicks(palette.filter, "dense")
    assert palette.visible_labels() == ["Linear — Keras: Dense"]
    with qtbot.waitSignal(palette.tree.activated_layer) as chosen:
        qtbot.keyClick(palette.filter, Qt.Key.Key_Return)
    assert chosen.args == ["Linear"]
    palette.filter.clear()
    assert palette.visible_labels() == [s.type for g in catalog.by_category().values()
                                        for s in g]


def test_names_and_activations_still_come_before_aliases(palette, qtbot) -> None:
    qtbot.keyClicks(palette.filter, "relu")
    assert palette.tree.currentItem().text(0) == "ReLU"  # what Enter takes
    palette.filter.clear()
    qtbot.keyClicks(palette.filter, "softmax")
    assert palette.visible_labels() == ["Softmax", "LogSoftmax"]


def test_no_alias_shadows_another_layers_name() -> None:
    names = {_key(t) for t in catalog.CATALOG}
    for spec in catalog.CATALOG.values():
        for alias in spec.aliases:
            _source, name = catalog.split_alias(alias)
            assert name and _key(name) not in names - {_key(spec.type)}, alias


# -- quick-add on the canvas --------------------------------------------------------------------

@pytest.fixture
def view(qtbot) -> CanvasView:
    editor = Editor(Project.load(default_sample()))
    scene = CanvasScene(editor)
    scene.show_analysis(analyze(editor.graph))
    v = CanvasView(scene)
    v.resize(1000, 600)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    v.fit()
    return v


def open_quick_add(qtbot, view: CanvasView):
    send(view, QEvent.Type.MouseMove, QPointF(420, 300), Qt.MouseButton.NoButton)
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert view.quick_add.isVisible()
    return view.quick_add


def test_quick_add_adds_the_pytorch_layer_for_a_keras_name(view, qtbot) -> None:
    popup = open_quick_add(qtbot, view)
    qtbot.keyClicks(popup.edit, "Dense")
    assert popup.shown_types() == ["Linear"]
    assert popup.shown_labels() == ["Linear — Keras: Dense"]
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    editor = view.canvas.editor
    assert editor.graph.nodes["linear_1"].type == "Linear"
    assert editor.stack.count() == 1


def test_quick_add_says_a_keras_global_pooling_also_flattens(view, qtbot) -> None:
    popup = open_quick_add(qtbot, view)
    qtbot.keyClicks(popup.edit, "GlobalAveragePooling2D")
    assert popup.shown_labels() == ["AdaptiveAvgPool2d — Keras: GlobalAveragePooling2D"]
    assert "GlobalAveragePooling2D is this followed by Flatten" in popup.doc.text()
    assert "Flatten" in popup.list.item(0).toolTip()


def test_quick_add_on_a_wire_offers_only_the_alias_that_fits(view, qtbot) -> None:
    editor = view.canvas.editor
    at = wire_middle(view, "conv1", "relu1")
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=viewport_point(view, at))
    popup = view.quick_add
    assert popup.title.text() == "Into conv1 → relu1: (N, 32, 26, 26)"
    qtbot.keyClicks(popup.edit, "BatchNormalization")  # BatchNorm1d does not take the maps
    assert popup.shown_labels() == ["BatchNorm2d — Keras: BatchNormalization"]
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    assert editor.graph.predecessors("relu1") == ["batch_norm2d_1"]
