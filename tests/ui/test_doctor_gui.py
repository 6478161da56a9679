"""The network doctor in the Problems list, driven as a user drives it: warnings apart from
errors with their reason as tooltip, double-click or Enter applies the fix as one undo step,
and the list follows every edit, settings included."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.doctor import RULES
from studio.core.findings import Fix, RemoveNode, SetParams
from studio.core.project import Project
from tests.graphs import net

from .helpers import open_window

REASON = {r.code: r.reason for r in RULES}


def listed(w) -> list[str]:
    return [w.problems.item(i).text() for i in range(w.problems.count())]


def row_of(w, code: str) -> int:
    return next(i for i in range(w.problems.count())
                if w.problems.finding(i) is not None and w.problems.finding(i).code == code)


def double_click(qtbot, panel, row: int) -> None:
    """A real double-click: Qt sees a press and release, then the double-click."""
    at = panel.visualItemRect(panel.item(row)).center()
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=at)


def test_warnings_show_their_reason_and_one_click_fixes_them_in_one_undo_step(qtbot,
                                                                             tmp_path) -> None:
    p = Project(name="keras", graph=net(
        ("input", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
        ("fc1", "Linear", {"out_features": 64}), ("fc2", "Linear", {"out_features": 10}),
        ("probs", "Softmax", {})))
    p.data.normalize = False
    w = open_window(qtbot, tmp_path, p.save(tmp_path / "keras.studio.json"))
    w.bottom_tabs.setCurrentWidget(w.problems)
    panel, stack = w.problems, w.editor.stack
    qtbot.waitUntil(lambda: len(listed(w)) == 3)
    assert all(text.startswith("⚠ ") for text in listed(w))  # warnings: the project trains
    assert w.bottom_tabs.tabText(1) == "Problems (3)"
    softmax = panel.item(row_of(w, "double-softmax"))
    assert softmax.text() == ("⚠ Softmax 'probs' gives probabilities but CrossEntropyLoss "
                              "wants raw scores and applies log-softmax itself; remove it")
    assert softmax.toolTip().startswith(REASON["double-softmax"])
    assert "Double-click to remove Softmax 'probs' and join its neighbours." in softmax.toolTip()
    assert softmax.foreground().color().name() == "#b8860b"
    card = w.scene.nodes["probs"]  # the canvas marks the node too, in the same amber
    assert card.warning == softmax.text().removeprefix("⚠ ") and not card.problem
    assert card.toolTip() == card.warning

    # double-click: the Softmax goes, fc2 is the output again, one undo step
    double_click(qtbot, panel, row_of(w, "double-softmax"))
    qtbot.waitUntil(lambda: len(listed(w)) == 2)
    assert "probs" not in w.editor.graph and w.analysis.output == "fc2"
    assert stack.count() == 1 and stack.undoText() == \
        "Remove Softmax 'probs' and join its neighbours"

    # Enter on the stacked Linear layers: a ReLU goes into the wire between them
    panel.setFocus()
    panel.setCurrentRow(row_of(w, "stacked-linear"))
    qtbot.keyClick(panel, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(listed(w)) == 1)
    [relu] = w.editor.graph.successors("fc1")
    assert w.editor.graph.nodes[relu].type == "ReLU"
    assert w.editor.graph.successors(relu) == ["fc2"] and stack.count() == 2

    # a settings fix: the list follows the data settings too
    double_click(qtbot, panel, row_of(w, "images-not-normalized"))
    qtbot.waitUntil(lambda: listed(w) == ["✔ No problems"])
    assert w.project.data.normalize is True and stack.count() == 3
    assert w.bottom_tabs.tabText(1) == "Problems"

    for count in (1, 2, 3):  # each fix undoes as one step, and its warning comes back
        stack.undo()
        qtbot.waitUntil(lambda n=count: len(listed(w)) == n)
    assert "probs" in w.editor.graph and w.project.data.normalize is False
    assert w.editor.graph.successors("fc1") == ["fc2"]

    # the canvas's context menu offers the same fix on the node
    labels = [a.text() for a in w.editing.context_actions("probs")]
    assert "Remove Softmax 'probs' and join its neighbours" in labels

    # a fix the editor refuses half-way leaves no step behind, not even one to redo
    stack.redo()
    bad = Fix("remove and break", (RemoveNode("fc2"), SetParams("input", {"shape": [0]})))
    assert not w.editing.apply_fix(bad)
    assert w.editor.graph.predecessors("fc2") == ["fc1"] and "probs" not in w.editor.graph
    assert (stack.count(), stack.index(), stack.canRedo()) == (1, 1, False)


def test_f5_is_refused_while_the_doctor_reports_an_error(qtbot, tmp_path) -> None:
    w = open_window(qtbot, tmp_path)  # the MNIST CNN: ten classes
    w.editor.set_params("dense2", {"out_features": 5})  # shapes fine, the classes are not
    w.reanalyse()
    assert w.analysis.ok and any(f.severity == "error" for f in w.findings)
    w.act_train.trigger()
    assert not w.runs.running and w.views.current == "design"
    assert w.statusBar().currentMessage().startswith("fix the problems first:")
    assert "10 classes" in w.statusBar().currentMessage()
