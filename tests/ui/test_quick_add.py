"""Adding layers where the user is: quick-add, wires dropped on nothing, drops onto wires."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from studio.core.graph import Edge
from studio.core.project import Project, default_sample
from studio.core.shapes import analyze
from studio.ui.canvas import NODE_H, NODE_W, CanvasScene
from studio.ui.editor import Editor
from studio.ui.palette import MIME
from studio.ui.view import CanvasView

from .test_canvas import drag, send


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
    v.fit()  # 100 %, the top of the chain: input … conv2 in view
    return v


def viewport_point(view: CanvasView, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def card_centre(view: CanvasView, node_id: str) -> QPointF:
    return view.canvas.nodes[node_id].mapToScene(QPointF(NODE_W / 2, NODE_H / 2))


EMPTY = QPointF(420, 300)  # right of the chain: nothing there


def open_with_space(qtbot, view: CanvasView) -> None:
    """The cursor on empty canvas, then Space."""
    send(view, QEvent.Type.MouseMove, EMPTY, Qt.MouseButton.NoButton)
    qtbot.keyClick(view, Qt.Key.Key_Space)


def choose(qtbot, view: CanvasView, kind: str) -> None:
    """Click the row of ``kind`` in the open popup."""
    popup = view.quick_add
    row = popup.shown_types().index(kind)
    rect = popup.list.visualItemRect(popup.list.item(row))
    qtbot.mouseClick(popup.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# -- quick-add on empty canvas ------------------------------------------------------------------

def test_double_click_on_empty_canvas_adds_the_typed_layer_there(view, qtbot) -> None:
    editor, start = view.canvas.editor, view.canvas.editor.graph.structure()
    at = QPointF(420, 260)  # right of the chain, on nothing
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=viewport_point(view, at))
    popup = view.quick_add
    assert popup.isVisible() and popup.title.isHidden()
    assert len(popup.shown_types()) > 30  # every layer type
    qtbot.keyClicks(popup.edit, "dropout")
    assert popup.shown_types()[0] == "Dropout"
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    assert not popup.isVisible()
    centre = card_centre(view, "dropout_1")
    assert abs(centre.x() - at.x()) <= 2 and abs(centre.y() - at.y()) <= 2
    assert view.canvas.nodes["dropout_1"].isSelected()
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.graph.structure() == start and "dropout_1" not in view.canvas.nodes


def test_typing_on_the_canvas_opens_quick_add_at_the_cursor(view, qtbot) -> None:
    at = QPointF(400, 120)
    send(view, QEvent.Type.MouseMove, at, Qt.MouseButton.NoButton)
    qtbot.keyClick(view, "r")
    popup = view.quick_add
    assert popup.isVisible() and popup.edit.text() == "r"
    qtbot.keyClicks(popup.edit, "elu")
    assert popup.shown_types()[:2] == ["ReLU", "ReLU6"]
    qtbot.keyClick(popup.edit, Qt.Key.Key_Down)  # the arrows move in the list
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    centre = card_centre(view, "relu6_1")
    assert abs(centre.x() - at.x()) <= 2 and abs(centre.y() - at.y()) <= 2
    view.canvas.editor.stack.undo()
    assert "relu6_1" not in view.canvas.editor.graph


def test_space_opens_an_empty_filter_and_escape_closes_without_a_step(view, qtbot) -> None:
    open_with_space(qtbot, view)
    popup = view.quick_add
    assert popup.isVisible() and popup.edit.text() == ""
    qtbot.keyClicks(popup.edit, "zzzz")
    assert popup.shown_types() == [] and popup.doc.text() == "Nothing matches."
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)  # nothing to choose: stays open
    assert popup.isVisible()
    qtbot.keyClick(popup.edit, Qt.Key.Key_Escape)
    assert not popup.isVisible() and view.canvas.editor.stack.count() == 0


def test_quick_add_finds_layers_by_category_and_doc(view, qtbot) -> None:
    open_with_space(qtbot, view)
    popup = view.quick_add
    qtbot.keyClicks(popup.edit, "max pool")
    assert popup.shown_types() == ["MaxPool1d", "MaxPool2d"]
    popup.edit.clear()
    qtbot.keyClicks(popup.edit, "fully connected")  # Linear's doc line
    assert popup.shown_types() == ["Linear"]


# -- a wire dropped on nothing --------------------------------------------------------------------

def test_a_wire_dropped_on_nothing_offers_what_fits_and_connects_it(view, qtbot) -> None:
    scene, editor = view.canvas, view.canvas.editor
    start = editor.project.dumps()
    drop = QPointF(360, 470)
    drag(view, scene.nodes["conv2"].output_port(), drop)
    popup = view.quick_add
    assert popup.isVisible()
    assert popup.title.text() == "After conv2: (N, 64, 11, 11)"
    offered = popup.shown_types()
    for kind in ("Conv2d", "MaxPool2d", "Flatten", "BatchNorm2d", "ReLU"):
        assert kind in offered
    for kind in ("Linear", "BatchNorm1d", "Conv1d", "LSTM", "Embedding", "Input"):
        assert kind not in offered
    choose(qtbot, view, "BatchNorm2d")
    assert editor.graph.predecessors("batch_norm2d_1") == ["conv2"]
    port = scene.nodes["batch_norm2d_1"].input_port(0)
    assert abs(port.x() - drop.x()) <= 2 and abs(port.y() - drop.y()) <= 2
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.project.dumps() == start


def test_a_wire_dropped_on_a_node_still_connects_without_the_popup(view) -> None:
    editor = view.canvas.editor
    editor.add_layer("ReLU", (420, 300))
    drag(view, view.canvas.nodes["conv1"].output_port(), card_centre(view, "relu_1"))
    assert editor.graph.predecessors("relu_1") == ["conv1"]
    assert not view.quick_add.isVisible()


# -- splicing into wires --------------------------------------------------------------------------

def wire_middle(view: CanvasView, src: str, dst: str) -> QPointF:
    return view.canvas.edge_items[Edge(src, dst, 0)].path().pointAtPercent(0.5)


def test_dragging_a_free_node_onto_a_wire_inserts_it_in_one_step(view) -> None:
    scene, editor = view.canvas, view.canvas.editor
    editor.add_layer("BatchNorm2d", (400, 60))
    before = editor.project.dumps()
    grab = card_centre(view, "batch_norm2d_1")
    target = wire_middle(view, "conv1", "relu1")
    left = Qt.MouseButton.LeftButton
    send(view, QEvent.Type.MouseButtonPress, grab, left)
    for t in (0.3, 0.6, 1.0):
        send(view, QEvent.Type.MouseMove, grab + (target - grab) * t, left)
    assert scene.edge_items[Edge("conv1", "relu1", 0)].target  # the wire shows where it goes
    send(view, QEvent.Type.MouseButtonRelease, target, Qt.MouseButton.NoButton)
    g = editor.graph
    assert g.predecessors("batch_norm2d_1") == ["conv1"]
    assert g.successors("batch_norm2d_1") == ["relu1"]
    assert not scene.edge_items[Edge("conv1", "batch_norm2d_1", 0)].target
    # it sits in the chain, and what follows moved down a row to make room
    assert g.nodes["batch_norm2d_1"].pos == (0.0, 220.0)
    assert g.nodes["relu1"].pos == (0.0, 330.0) and g.nodes["dense2"].pos == (0.0, 1430.0)
    assert editor.stack.count() == 2
    after = editor.project.dumps()
    editor.stack.undo()
    assert editor.project.dumps() == before
    assert scene.nodes["batch_norm2d_1"].pos() == QPointF(400, 60)
    editor.stack.redo()
    assert editor.project.dumps() == after


def test_a_node_that_does_not_fit_the_wire_is_only_moved(view) -> None:
    editor = view.canvas.editor
    editor.add_layer("Linear", (400, 60))  # Linear cannot take (N, 32, 26, 26)
    target = wire_middle(view, "conv1", "relu1")
    drag(view, card_centre(view, "linear_1"), target)
    assert editor.graph.predecessors("linear_1") == []
    assert editor.graph.successors("conv1") == ["relu1"]
    assert editor.stack.undoText() == "Move linear_1"


def drop_from_palette(view: CanvasView, kind: str, scene_pos: QPointF) -> QDragMoveEvent:
    mime = QMimeData()
    mime.setData(MIME, kind.encode())
    pos = QPointF(view.mapFromScene(scene_pos))
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(view.viewport(), QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, buttons, mods))
    move = QDragMoveEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(view.viewport(), move)
    highlighted = view.canvas._target
    QApplication.sendEvent(view.viewport(), QDropEvent(
        pos, Qt.DropAction.CopyAction, mime, buttons, mods))
    return highlighted


def test_a_palette_drop_on_a_wire_inserts_the_layer(view) -> None:
    editor = view.canvas.editor
    start = editor.project.dumps()
    highlighted = drop_from_palette(view, "Dropout", wire_middle(view, "relu1", "pool1"))
    assert highlighted == Edge("relu1", "pool1", 0)
    assert editor.graph.predecessors("dropout_1") == ["relu1"]
    assert editor.graph.successors("dropout_1") == ["pool1"]
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.project.dumps() == start


def test_a_palette_drop_that_does_not_fit_the_wire_is_placed_beside_it(view) -> None:
    editor = view.canvas.editor
    highlighted = drop_from_palette(view, "Linear", wire_middle(view, "relu1", "pool1"))
    assert highlighted is None
    assert editor.graph.successors("relu1") == ["pool1"] and "linear_1" in editor.graph


def test_double_click_on_a_wire_offers_what_fits_and_splices_it_in(view, qtbot) -> None:
    editor = view.canvas.editor
    start = editor.project.dumps()
    at = wire_middle(view, "conv1", "relu1")
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=viewport_point(view, at))
    popup = view.quick_add
    assert popup.title.text() == "Into conv1 → relu1: (N, 32, 26, 26)"
    assert "Linear" not in popup.shown_types()
    qtbot.keyClicks(popup.edit, "batchnorm2d")
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    assert editor.graph.predecessors("relu1") == ["batch_norm2d_1"]
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.project.dumps() == start


def test_a_click_on_the_canvas_closes_quick_add(view, qtbot) -> None:
    open_with_space(qtbot, view)
    assert view.quick_add.isVisible()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=viewport_point(view, QPointF(-300, 300)))
    assert not view.quick_add.isVisible()
    assert view.canvas.editor.stack.count() == 0
