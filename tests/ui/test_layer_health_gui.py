"""Layer health while a run trains, as a user sees it: a mark on each card and on the Train
view's network map, its history in the tooltip, and the run-time doctor's finding in the
Problems list and the run's log, naming the node."""

from __future__ import annotations

from studio.core.project import sample_paths
from studio.ui.canvas import NodeItem

from .helpers import open_window


def hover(scene, item) -> None:
    """The pointer comes onto the item, as the scene tells it."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QGraphicsSceneHoverEvent

    event = QGraphicsSceneHoverEvent(QEvent.Type.GraphicsSceneHoverEnter)
    event.setScenePos(item.sceneBoundingRect().center())
    scene.sendEvent(item, event)


def test_a_run_marks_each_layer_and_names_its_dead_relu(qtbot, tmp_path) -> None:
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = open_window(qtbot, tmp_path, wine)
    w.runs.set_run_processes(0)  # a thread: the quickest run
    w.editor.set_setting("training", "epochs", 2)
    w.editor.set_setting("training", "early_stopping", None)
    w.editor.set_setting("training", "layer_stats", {"every": 3})
    w.editor.set_init("dense2", {"weight": "zeros", "bias": {"type": "constant", "val": -5.0}})
    assert not w.scene.nodes["dense1"].health  # no marks before a run
    w.act_train.trigger()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message
    card: NodeItem = w.scene.nodes["output"]
    assert card.health is not None and card.health.level == "ok"
    assert "Layer health" in card.toolTip() and "gradient norm" in card.toolTip()
    assert "<img" not in card.toolTip()  # drawn when the pointer comes, not at each refresh
    hover(w.scene, card)
    assert "<img src='data:image/png;base64," in card.toolTip()  # its history, drawn
    box = w.dashboard.map.boxes["output"]
    hover(box.scene(), box)
    assert "<img src='data:image/png;base64," in box.toolTip()
    # behind the dead layer no gradient arrives: amber, and the tooltip says why
    assert w.scene.nodes["dense1"].health.level == "warn"
    hover(w.scene, w.scene.nodes["dense1"])
    assert "gradient norm 0<br>" in w.scene.nodes["dense1"].toolTip()
    relu2 = w.scene.nodes["relu2"]
    assert relu2.health.level == "bad" and "100% of units dead" in relu2.toolTip()
    assert w.dashboard.map.boxes["relu2"].health.level == "bad"  # the Train view's map too
    problems = [w.problems.finding(i) for i in range(w.problems.count())]
    dead = [f for f in problems if f is not None and f.code == "dead-relu"]
    assert [f.node for f in dead] == ["relu2"]
    assert "doctor: relu2: 100% of its units are dead" in w.dashboard.log.toPlainText()
    # a layer clicked in the map shows its figures and its histograms over the run
    w.dashboard.map.node_selected.emit("relu1")
    view = w.dashboard.layer_panel.health_view
    assert view is not None and view.isVisibleTo(w.dashboard.layer_panel)
    assert "units dead" in view.text.text()
    samples = len(w.runs.health.steps)
    ridges = [i for i in view.plot.getPlotItem().items if type(i).__name__ == "PlotCurveItem"]
    assert samples >= 4 and len(ridges) == min(samples, 24)
    # the marks stay after the run, through edits and the map's redraws
    w.editor.delete(["relu2"])
    w.editor.stack.undo()  # the card is drawn anew
    w.reanalyse()
    assert w.scene.nodes["relu2"].health.level == "bad"
    w.dashboard.set_network(w.editor.graph, w.analysis)
    assert w.dashboard.map.boxes["relu2"].health.level == "bad"


def test_a_resumed_run_keeps_the_layer_history_it_had(qtbot, tmp_path) -> None:
    """The marks' sparklines and the ridges go on from where the stopped run was, read from
    its ``layer_stats.jsonl``, not from an empty history."""
    from studio.training.callbacks import read_lines
    from studio.ui.training.runs import read_run

    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = open_window(qtbot, tmp_path, wine)
    w.runs.set_run_processes(0)
    w.editor.set_setting("training", "epochs", 6)
    w.editor.set_setting("training", "early_stopping", None)
    w.editor.set_setting("training", "layer_stats", {"every": 2})
    w.act_train.trigger()
    qtbot.waitUntil(lambda: w.runs.health is not None and len(w.runs.health.steps) >= 4,
                    timeout=60_000)
    w.runs.stop()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
    run_dir = w.runs.run_dir
    w.runs.last_result = None
    assert w.runs.resume(read_run(run_dir))
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message
    on_file = [r["step"] for r in read_lines(run_dir / "layer_stats.jsonl")]
    assert w.runs.health.steps == on_file  # the whole run, once each, in order
    assert on_file[0] == 2 and on_file == sorted(set(on_file))
