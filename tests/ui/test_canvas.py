"""The canvas as a user drives it: real mouse events on a real view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QFontInfo, QMouseEvent, QPainter, QTransform
from PySide6.QtWidgets import QApplication, QGraphicsView

from studio.core.graph import Edge
from studio.core.project import Project, default_sample
from studio.core.shapes import analyze
from studio.ui.canvas import CanvasScene, EdgeItem, NodeItem
from studio.ui.cards import BOX, FULL, LEGIBLE_SCALE, MIN_TEXT_PX, TITLE
from studio.ui.editor import Editor
from studio.ui.view import CanvasView


@pytest.fixture
def canvas(qtbot):
    editor = Editor(Project.load(default_sample()))
    scene = CanvasScene(editor)
    view = QGraphicsView(scene)
    view.resize(900, 1400)
    qtbot.addWidget(view)
    view.show()
    view.fitInView(scene.itemsBoundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
    scene.show_analysis(analyze(editor.graph))
    return editor, scene, view


def send(view: QGraphicsView, kind: QEvent.Type, scene_pos: QPointF, buttons) -> None:
    pos = QPointF(view.mapFromScene(scene_pos))
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else \
        Qt.MouseButton.NoButton
    ev = QMouseEvent(kind, pos, QPointF(view.viewport().mapToGlobal(QPoint(int(pos.x()),
                     int(pos.y())))), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), ev)


def drag(view: QGraphicsView, a: QPointF, b: QPointF) -> None:
    left = Qt.MouseButton.LeftButton
    send(view, QEvent.Type.MouseButtonPress, a, left)
    for t in (0.25, 0.5, 0.75, 1.0):
        send(view, QEvent.Type.MouseMove, a + (b - a) * t, left)
    send(view, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)


def test_scene_mirrors_the_graph_through_undo(canvas) -> None:
    editor, scene, _ = canvas
    assert set(scene.nodes) == set(editor.graph.nodes)
    assert len([i for i in scene.items() if isinstance(i, EdgeItem)]) == len(editor.graph.edges)
    editor.delete(["flatten"])
    assert "flatten" not in scene.nodes and len(scene.edge_items) == len(editor.graph.edges)
    editor.stack.undo()
    assert "flatten" in scene.nodes and len(scene.edge_items) == 12


def test_shapes_and_problems_are_shown_on_the_right_node(canvas) -> None:
    editor, scene, _ = canvas
    assert scene.nodes["conv1"].shape_text == "(N, 32, 26, 26)"
    assert scene.edge_items[editor.graph.in_edges("relu1")[0]].label == "(N, 32, 26, 26)"
    editor.delete(["flatten"])
    editor.connect_nodes("pool2", "dense1")
    scene.show_analysis(analyze(editor.graph))
    item = scene.nodes["dense1"]
    assert item.problem == "Linear 'dense1': input has 3 dims [64, 5, 5]; insert Flatten"
    assert item.toolTip() == item.problem
    assert scene.nodes["conv1"].problem == ""


def test_dragging_from_an_output_to_an_input_connects(canvas, qtbot) -> None:
    editor, scene, view = canvas
    editor.graph.disconnect(editor.graph.in_edges("dense2")[0])
    assert editor.graph.predecessors("dense2") == []
    drag(view, scene.nodes["relu4"].output_port(), scene.nodes["dense2"].input_port(0))
    assert editor.graph.predecessors("dense2") == ["relu4"]
    assert editor.stack.count() == 1


def test_an_illegal_drag_is_refused_with_a_reason(canvas, qtbot) -> None:
    editor, scene, view = canvas
    with qtbot.waitSignal(scene.message) as blocker:
        drag(view, scene.nodes["dense2"].output_port(), scene.nodes["conv2"].input_port(0))
    assert "cycle" in blocker.args[0]
    assert editor.stack.count() == 0


def test_moving_a_node_is_one_undoable_step(canvas) -> None:
    editor, scene, view = canvas
    item: NodeItem = scene.nodes["conv2"]
    start = editor.graph.nodes["conv2"].pos
    grab = item.mapToScene(QPointF(60, 30))
    drag(view, grab, grab + QPointF(150, 20))
    moved = editor.graph.nodes["conv2"].pos
    assert moved != start and editor.stack.count() == 1
    assert (item.pos().x(), item.pos().y()) == moved
    editor.stack.undo()
    assert (item.pos().x(), item.pos().y()) == start == editor.graph.nodes["conv2"].pos


def test_canvas_screenshot(canvas, tmp_path) -> None:
    _, _, view = canvas
    path = tmp_path / "canvas.png"
    assert view.grab().save(str(path))
    assert path.stat().st_size > 10_000


def test_painting_does_not_leak_references_to_none(canvas) -> None:
    """PySide6 6.12.0 dropped a reference to None per void call; on Python 3.11 a canvas
    painted long enough then crashed the interpreter. Guards the version exclusion."""
    import gc
    import sys

    from PySide6.QtGui import QImage, QPainter

    _, scene, _ = canvas
    image = QImage(800, 1400, QImage.Format.Format_ARGB32)
    gc.collect()  # garbage of earlier tests, freed mid-loop, would drop references too
    gc.disable()
    try:
        before = sys.getrefcount(None)
        for _ in range(20):
            painter = QPainter(image)
            scene.render(painter)
            painter.end()
        after = sys.getrefcount(None)
    finally:
        gc.enable()
    assert after >= before - 5


def test_deleting_a_link_of_the_chain_reconnects_and_the_scene_follows(canvas) -> None:
    editor, scene, _ = canvas
    start = editor.graph.structure()
    assert editor.delete_and_reconnect(["relu2"])
    assert Edge("conv2", "pool2", 0) in scene.edge_items and "relu2" not in scene.nodes
    editor.stack.undo()
    assert editor.graph.structure() == start
    assert set(scene.edge_items) == set(editor.graph.edges) and "relu2" in scene.nodes


# -- level of detail, fit and the minimap ---------------------------------------------------------

@pytest.fixture
def wide_view(qtbot):
    """The default sample in a laptop-sized canvas, fitted as the window fits it on opening."""
    editor = Editor(Project.load(default_sample()))
    scene = CanvasScene(editor)
    scene.show_analysis(analyze(editor.graph))
    view = CanvasView(scene)
    view.resize(1366, 640)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return view


def painted_text_sizes(view, monkeypatch) -> list[float]:
    """Paint the view and return the on-screen pixel size of every text drawn."""
    sizes: list[float] = []
    original = QPainter.drawText

    def spy(painter, *args):
        sizes.append(QFontInfo(painter.font()).pixelSize() * painter.worldTransform().m11())
        return original(painter, *args)

    monkeypatch.setattr(QPainter, "drawText", spy)
    view.grab()
    monkeypatch.setattr(QPainter, "drawText", original)
    return sizes


@pytest.mark.parametrize("scale, detail", [(1.0, FULL), (LEGIBLE_SCALE, FULL), (0.6, TITLE),
                                           (0.3, TITLE), (0.2, BOX), (0.1, BOX)])
def test_cards_simplify_instead_of_drawing_text_below_8_px(wide_view, monkeypatch, scale,
                                                          detail) -> None:
    wide_view.setTransform(QTransform.fromScale(scale, scale))
    wide_view.centerOn(95, 300)
    sizes = painted_text_sizes(wide_view, monkeypatch)
    shown = [i for i in wide_view.canvas.nodes.values()
             if wide_view.mapToScene(wide_view.viewport().rect()).boundingRect()
             .intersects(i.sceneBoundingRect())]
    assert shown and {i.detail for i in shown} == {detail}
    assert min(sizes, default=99) >= MIN_TEXT_PX - 0.01
    assert (len(sizes) == 0) == (detail == BOX)  # boxes carry no text at all


def test_fit_keeps_a_long_chain_readable_and_scrolls_to_the_rest(wide_view) -> None:
    view = wide_view
    assert view.transform().m11() >= LEGIBLE_SCALE
    assert view.verticalScrollBar().maximum() > 0  # the chain goes on below
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.canvas.nodes["input"].sceneBoundingRect())  # from the top
    view.grab()
    assert all(i.detail == FULL for i in view.canvas.nodes.values() if i.isVisible()
               and seen.intersects(i.sceneBoundingRect()))


def test_fit_shows_a_small_graph_whole(wide_view) -> None:
    editor = wide_view.canvas.editor
    editor.delete([n for n in list(editor.graph.nodes) if n not in ("input", "conv1", "relu1")])
    wide_view.fit()
    seen = wide_view.mapToScene(wide_view.viewport().rect()).boundingRect()
    assert seen.contains(wide_view.canvas.itemsBoundingRect())
    assert wide_view.transform().m11() == 1.0
    assert not wide_view.minimap.isVisible()  # nothing hidden: nothing to show


def test_the_minimap_toggles_and_a_click_in_it_pans_the_view(wide_view, qtbot) -> None:
    view, minimap = wide_view, wide_view.minimap
    assert view.minimap_visible() and minimap.isVisible()
    with qtbot.waitSignal(view.minimap_toggled) as blocker:
        view.set_minimap_visible(False)
    assert blocker.args == [False] and not minimap.isVisible() and not view.minimap_visible()
    view.set_minimap_visible(True)
    assert minimap.isVisible()
    corner = minimap.geometry()
    assert view.viewport().geometry().contains(corner)
    target = view.canvas.nodes["dense2"].sceneBoundingRect().center()
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton,
                     pos=minimap.to_map(target, minimap.world()).toPoint())
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.canvas.nodes["dense2"].sceneBoundingRect())
    assert not seen.contains(view.canvas.nodes["input"].sceneBoundingRect())
    # dragging in the map follows the cursor back up
    up = minimap.to_map(view.canvas.nodes["conv1"].sceneBoundingRect().center(), minimap.world())
    QApplication.sendEvent(minimap, QMouseEvent(
        QEvent.Type.MouseMove, up, minimap.mapToGlobal(up), Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(view.canvas.nodes["conv1"].sceneBoundingRect())
