"""The main window driven as a user drives it: palette, canvas, inspector, files, undo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QSpinBox

from studio.core.project import Project, default_sample
from studio.ui.main_window import MainWindow
from studio.ui.palette import MIME

from .test_canvas import drag


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    w.errors = []
    w.answers = []
    w.show_error = lambda title, text: w.errors.append(text)
    w.files.ask_save = lambda: (w.answers.pop(0) if w.answers
                          else QMessageBox.StandardButton.Discard)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def drop_layer(w: MainWindow, kind: str, scene_pos: QPointF) -> None:
    mime = QMimeData()
    mime.setData(MIME, kind.encode())
    pos = QPointF(w.view.mapFromScene(scene_pos))
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w.view.viewport(), enter)
    assert enter.isAccepted()
    ev = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w.view.viewport(), ev)


def settle() -> None:
    """Let the window re-validate: it coalesces edits into one analysis per event-loop turn."""
    QApplication.processEvents()


def type_into(qtbot, widget, text: str) -> None:
    target = widget.lineEdit() if isinstance(widget, QSpinBox) else widget
    target.selectAll()
    qtbot.keyClicks(target, text)
    qtbot.keyClick(target, Qt.Key.Key_Return)
    settle()


def test_opens_on_the_default_sample_with_shapes_and_summary(window) -> None:
    assert window.project.path == default_sample()
    assert window.scene.nodes["dense2"].shape_text == "(N, 10)"
    assert "93,322" in window.summary.totals.text()
    assert window.problems.item(0).text() == "✔ No problems"
    assert not window.isWindowModified()


def test_drop_from_palette_edit_in_inspector_undo_redo(window, qtbot) -> None:
    before = len(window.editor.graph)
    drop_layer(window, "Dropout", QPointF(400, 300))
    [new] = [n for n in window.editor.graph.nodes if n.startswith("dropout")]
    assert len(window.editor.graph) == before + 1 and new in window.scene.nodes
    assert window.isWindowModified()
    window.editing.select_node("dense1")
    spin = window.inspector.form.widgets["out_features"]
    type_into(qtbot, spin, "100")
    assert window.editor.graph.nodes["dense1"].params == {"out_features": 100}
    assert window.scene.nodes["dense1"].shape_text == "(N, 100)"
    assert window.summary.rows()["dense1"][3] == "57,700"  # 576 · 100 + 100
    window.editor.stack.undo()
    settle()
    assert window.scene.nodes["dense1"].shape_text == "(N, 64)"
    assert spin.value() == 64  # the form follows the model
    window.editor.stack.redo()
    settle()
    assert window.scene.nodes["dense1"].shape_text == "(N, 100)"


def test_rebuild_the_mnist_cnn_from_an_empty_canvas_with_keyboard_and_mouse(window, qtbot,
                                                                             tmp_path) -> None:
    window.act_new.trigger()
    assert len(window.editor.graph) == 0
    layers = [("Input", {"shape": "1, 28, 28"}),
              ("Conv2d", {"out_channels": "32"}), ("ReLU", {}), ("MaxPool2d", {}),
              ("Conv2d", {"out_channels": "64"}), ("ReLU", {}), ("MaxPool2d", {}),
              ("Conv2d", {"out_channels": "64"}), ("ReLU", {}),
              ("Flatten", {}), ("Linear", {"out_features": "64"}), ("ReLU", {}),
              ("Linear", {"out_features": "10"})]
    for kind, edits in layers:
        window.layer_palette.filter.setFocus()
        window.layer_palette.filter.selectAll()
        qtbot.keyClicks(window.layer_palette.filter, kind)
        qtbot.keyClick(window.layer_palette.filter, Qt.Key.Key_Return)  # append after the selection
        settle()
        for name, text in edits.items():
            type_into(qtbot, window.inspector.form.widgets[name], text)
    a = window.analysis
    assert a.ok, a.problems
    assert a.total_params == 93_322
    assert a.output_shape() == (10,)
    path = tmp_path / "rebuilt.studio.json"
    assert window.files.save_to(path)
    assert not window.isWindowModified()
    saved = Project.load(path)
    assert [n.type for n in saved.graph] == [k for k, _ in layers]
    reference = Project.load(default_sample())
    assert [n.resolved_params() for n in saved.graph] == \
        [n.resolved_params() for n in reference.graph]
    assert [(e.src, e.dst) for e in saved.graph.edges] == [
        (a.id, b.id) for a, b in zip(list(saved.graph)[:-1], list(saved.graph)[1:], strict=True)]


def test_save_reopen_round_trip_and_recent_files(window, tmp_path) -> None:
    window.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 5})
    path = tmp_path / "edited.studio.json"
    assert window.files.save_to(path)
    window.act_new.trigger()
    assert window.files.open_path(path)
    settle()
    assert window.editor.graph.nodes["conv1"].params == {"out_channels": 8, "kernel_size": 5}
    assert window.scene.nodes["conv1"].shape_text == "(N, 8, 24, 24)"
    assert window.files.recent_files()[0] == str(path.resolve())
    assert json.loads(path.read_text())["graph"]["nodes"][1]["params"]["kernel_size"] == 5


def test_a_file_that_fails_to_load_leaves_the_project_untouched(window, tmp_path) -> None:
    bad = tmp_path / "bad.studio.json"
    bad.write_text('{"format": "studio.project", "version": 1, "graph": {"nodes": 3}}')
    window.editor.set_params("dense1", {"out_features": 7})
    assert not window.files.open_path(bad, ask=False)
    assert window.errors == [f"{bad}: graph.nodes: must be a list"]
    assert window.editor.graph.nodes["dense1"].params == {"out_features": 7}


def test_an_invalid_connection_is_refused_with_a_reason(window, qtbot) -> None:
    s = window.scene
    with qtbot.waitSignal(s.message):
        drag(window.view, s.nodes["dense2"].output_port(), s.nodes["conv1"].input_port(0))
    assert "cycle" in window.statusBar().currentMessage()
    assert window.editor.stack.count() == 0


def test_a_broken_graph_shows_its_problem_and_the_quick_fix_repairs_it(window) -> None:
    window.editor.delete(["flatten"])
    window.editor.connect_nodes("relu3", "dense1")
    window.reanalyse()
    assert window.scene.nodes["dense1"].problem.endswith("insert Flatten")
    item = window.problems.item(0)
    assert item.text().startswith("✖ Linear 'dense1': input has 3 dims")
    window.problems.itemClicked.emit(item)
    assert window.editing.selected_ids() == ["dense1"]
    [fix] = [a for a in window.editing.context_actions("dense1") if a.text().startswith("Insert")]
    assert fix.text() == "Insert Flatten here"
    fix.trigger()
    window.reanalyse()
    assert window.analysis.ok and window.analysis.total_params == 93_322
    fixed = window.editor.graph.predecessors("dense1")[0]
    assert window.editor.graph.nodes[fixed].type == "Flatten"


def test_copy_paste_duplicate_delete_are_single_steps(window) -> None:
    window.editing.select_node("conv1")
    window.scene.nodes["relu1"].setSelected(True)
    window.act_duplicate.trigger()
    assert set(window.editing.selected_ids()) == {"conv1_2", "relu1_2"}
    assert window.editor.graph.predecessors("relu1_2") == ["conv1_2"]
    window.act_delete.trigger()
    assert "conv1_2" not in window.editor.graph
    assert window.editor.stack.count() == 2
    window.editor.stack.undo()
    window.editor.stack.undo()
    assert "conv1_2" not in window.editor.graph and len(window.editor.graph) == 13


def test_auto_layout_is_one_step(window) -> None:
    for i, nid in enumerate(window.editor.graph.nodes):
        window.editor.graph.move_node(nid, (i * 37.0, -i * 11.0))
    window.act_layout.trigger()
    assert window.editor.graph.nodes["conv1"].pos == (0.0, 110.0)
    window.editor.stack.undo()
    assert window.editor.graph.nodes["conv1"].pos == (37.0, -11.0)


def test_settings_form_edits_are_undoable(window, qtbot) -> None:
    window.scene.clearSelection()
    assert window.inspector.node_id is None
    window.editor.set_setting("training", "epochs", 9)
    assert window.project.training.epochs == 9
    window.editor.stack.undo()
    assert window.project.training.epochs == 5


def test_closing_with_unsaved_changes_asks(window) -> None:
    window.editor.set_params("dense1", {"out_features": 3})
    window.answers = [QMessageBox.StandardButton.Cancel]
    assert not window.close()
    assert window.isVisible()
    window.answers = [QMessageBox.StandardButton.Discard]
    assert window.close()


def test_window_geometry_and_docks_persist(window, qtbot, tmp_path) -> None:
    window.bottom_dock.hide()
    window.close()
    w2 = MainWindow(settings=window.settings)
    qtbot.addWidget(w2)
    w2.show()
    assert not w2.bottom_dock.isVisible()


def test_window_shows_before_torch_is_imported(tmp_path) -> None:
    env = dict(os.environ, STUDIO_STARTUP_PROBE="1", QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "studio"], capture_output=True, text=True,
                       env=env, timeout=60)
    line = [x for x in r.stdout.splitlines() if x.startswith("{")][-1]
    report = json.loads(line)
    assert report["visible"] is True
    assert report["torch_loaded"] is False
    assert report["pyqtgraph_loaded"] is False  # Train and Evaluate come a moment later


def test_screenshot_of_the_window(window, tmp_path) -> None:
    path = tmp_path / "window.png"
    window.grab().save(str(path))
    assert path.stat().st_size > 20_000


def test_wheel_zooms_and_rubber_band_selects(window, qtbot) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent

    view = window.view
    scale = view.transform().m11()
    centre = QPointF(view.viewport().rect().center())
    ev = QWheelEvent(centre, QPointF(view.viewport().mapToGlobal(centre.toPoint())), QPoint(),
                     QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)
    assert view.transform().m11() > scale
    window.act_fit.trigger()
    s = window.scene
    top_left = s.nodes["input"].mapToScene(QPointF(-30, -30))
    bottom_right = s.nodes["relu1"].mapToScene(QPointF(220, 90))
    drag(view, top_left, bottom_right)  # from the empty background: a rubber band
    assert set(window.editing.selected_ids()) == {"input", "conv1", "relu1"}
