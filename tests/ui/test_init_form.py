"""The inspector's initialisation rows: a scheme chosen and its number typed are one undo
step each, the saved file holds them, and the box fits the 300 px dock."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core.project import Project
from studio.ui.editor import Editor
from studio.ui.inspector import Inspector
from tests.graphs import net
from tests.ui.test_inspector import type_into


def choose(qtbot, combo, text: str) -> None:
    """Pick an entry as a user does: open the list, move to it, press Enter."""
    combo.setFocus()
    combo.showPopup()
    view = combo.view()
    view.setCurrentIndex(combo.model().index(combo.findText(text), 0))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    QApplication.processEvents()


def test_an_init_is_chosen_as_one_undo_step_and_saved(qtbot, tmp_path) -> None:
    project = Project(graph=net(("input", "Input", {"shape": [4]}),
                                ("dense1", "Linear", {"out_features": 3})))
    editor = Editor(project)
    w = Inspector(editor)
    qtbot.addWidget(w)
    w.resize(300, 700)
    w.show()
    qtbot.waitExposed(w)
    w.show_node("dense1")
    form = w.init_form
    assert form is not None and set(form.combos) == {"weight", "bias"}
    assert "xavier_uniform" not in [form.combos["bias"].itemText(i)
                                    for i in range(form.combos["bias"].count())]  # 1-D

    choose(qtbot, form.combos["weight"], "normal")
    assert editor.stack.count() == 1
    assert project.graph.nodes["dense1"].init == {"weight": {"type": "normal"}}
    qtbot.waitUntil(lambda: "weight" in form.forms)
    type_into(qtbot, form.forms["weight"].widgets["std"], "0.02")
    choose(qtbot, form.combos["bias"], "zeros")
    assert editor.stack.count() == 3
    assert project.graph.nodes["dense1"].init == {
        "weight": {"type": "normal", "std": 0.02}, "bias": {"type": "zeros"}}
    assert w.horizontalScrollBar().maximum() == 0  # fits the dock

    editor.stack.undo()
    assert project.graph.nodes["dense1"].init == {"weight": {"type": "normal", "std": 0.02}}
    qtbot.waitUntil(lambda: form.combos["bias"].currentText() == "default")
    editor.stack.redo()
    project.save(tmp_path / "net.studio.json")
    saved = json.loads((tmp_path / "net.studio.json").read_text())
    assert saved["graph"]["nodes"][1]["init"] == {"weight": {"type": "normal", "std": 0.02},
                                                  "bias": "zeros"}
    again = Project.load(tmp_path / "net.studio.json")
    assert again.graph.structure() == project.graph.structure()
