"""File ▸ Open Sample says what each sample is, and a project's name and description are
edited in the inspector like any setting: one undo step each, saved with the file."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from studio.core.project import Project, sample_paths

from .helpers import open_window


def test_open_sample_lists_each_sample_with_its_description_and_opens_it(qtbot,
                                                                          tmp_path) -> None:
    w = open_window(qtbot, tmp_path)
    w.samples_menu.aboutToShow.emit()  # what opening the menu does
    texts = [a.text() for a in w.samples_menu.actions()]
    projects = [Project.load(p) for p in sample_paths()]
    assert texts == [f"{p.name} — {p.description}" for p in projects]
    assert all(p.description and "\n" not in p.description for p in projects)
    w.samples_menu.aboutToShow.emit()  # filled once
    assert len(w.samples_menu.actions()) == len(projects)
    rnn = next(a for a in w.samples_menu.actions() if a.text().startswith("RNN classifier"))
    rnn.trigger()
    assert w.project.path is not None and w.project.path.name == "rnn_mnist.studio.json"
    assert w.project.description.startswith("Keras' SimpleRNN")
    assert w.inspector.description_edit.text() == w.project.description


def test_name_and_description_are_edited_in_the_inspector_and_saved(qtbot, tmp_path) -> None:
    w = open_window(qtbot, tmp_path)
    edit = w.inspector.name_edit
    edit.selectAll()
    qtbot.keyClicks(edit, "My digits")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert w.project.name == "My digits" and w.windowTitle().startswith("My digits")
    assert w.editor.stack.count() == 1
    desc = w.inspector.description_edit
    desc.selectAll()
    qtbot.keyClicks(desc, "  first try,   with  dropout ")
    qtbot.keyClick(desc, Qt.Key.Key_Return)
    assert w.project.description == "first try, with dropout"  # one line, spaces tidied
    assert w.editor.stack.count() == 2
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClick(edit, Qt.Key.Key_Return)  # a blank name is refused and the field restored
    assert w.project.name == "My digits" and edit.text() == "My digits"
    assert w.editor.stack.count() == 2
    w.editor.stack.undo()
    assert desc.text() == w.project.description != "first try, with dropout"
    w.editor.stack.redo()
    path = tmp_path / "mine.studio.json"
    assert w.files.save_to(path)
    saved = json.loads(path.read_text())
    assert (saved["name"], saved["description"]) == ("My digits", "first try, with dropout")
