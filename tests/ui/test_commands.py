"""Every edit is one undo step; undoing everything restores the start exactly."""

from __future__ import annotations

import pytest

from studio.core.project import Project, default_sample
from studio.ui.commands import Editor

pytest.importorskip("pytestqt")


@pytest.fixture
def editor(qtbot) -> Editor:  # qtbot: a QApplication exists
    return Editor(Project.load(default_sample()))


def test_add_with_after_wires_and_undoes_in_one_step(editor) -> None:
    start = editor.graph.structure()
    nid = editor.add_layer("Dropout", (10, 20), after="dense2", params={"p": 0.3})
    assert nid == "dropout_1"
    assert editor.graph.predecessors(nid) == ["dense2"]
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.graph.structure() == start
    editor.stack.redo()
    assert editor.graph.nodes[nid].params == {"p": 0.3}


def test_delete_restores_node_order_and_edges_on_undo(editor) -> None:
    start = editor.graph.structure()
    assert editor.delete(["conv2", "relu2"])
    assert "conv2" not in editor.graph and editor.graph.successors("pool1") == []
    editor.stack.undo()
    assert editor.graph.structure() == start


def test_refused_connection_emits_reason_and_pushes_nothing(editor, qtbot) -> None:
    editor.add_layer("Input", params={"shape": [1, 28, 28]})
    with qtbot.waitSignal(editor.refused) as blocker:
        assert not editor.connect_nodes("input_1", "conv1")
    assert blocker.args[0] == "every input of 'conv1' is already connected"
    with qtbot.waitSignal(editor.refused) as blocker:
        assert not editor.connect_nodes("dense2", "conv1")
    assert "would make a cycle" in blocker.args[0]
    with qtbot.waitSignal(editor.refused) as blocker:
        assert not editor.connect_nodes("input_1", "conv1", 0)
    assert blocker.args[0] == "input 0 of 'conv1' is already fed by 'input'; disconnect it first"
    assert editor.stack.count() == 1  # only the added Input


def test_a_drag_is_one_move_step(editor) -> None:
    x0 = editor.graph.nodes["conv1"].pos
    for i in range(1, 6):
        editor.move({"conv1": (editor.graph.nodes["conv1"].pos, (x0[0] + i, x0[1]))})
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert editor.graph.nodes["conv1"].pos == x0


def test_paste_of_many_nodes_is_one_step_with_fresh_ids(editor) -> None:
    nodes = [editor.graph.nodes[i].copy() for i in ("conv1", "relu1", "pool1")]
    edges = [e for e in editor.graph.edges if e.src in {"conv1", "relu1"}]
    ids = editor.paste(nodes, edges)
    assert ids == ["conv1_2", "relu1_2", "pool1_2"]
    assert editor.graph.predecessors("pool1_2") == ["relu1_2"]
    assert editor.stack.count() == 1
    editor.stack.undo()
    assert not set(ids) & set(editor.graph.nodes)


def test_param_and_setting_edits_validate_and_undo(editor, qtbot) -> None:
    assert editor.set_params("dense1", {"out_features": 32})
    with qtbot.waitSignal(editor.refused) as blocker:
        assert not editor.set_params("dense1", {"out_features": 0})
    assert "must be ≥ 1" in blocker.args[0]
    assert editor.set_setting("training", "epochs", 12)
    with qtbot.waitSignal(editor.refused) as blocker:
        assert not editor.set_setting("data", "batch_size", 0)
    assert blocker.args[0].startswith("data.batch_size:")
    assert editor.stack.count() == 2
    editor.stack.undo()
    editor.stack.undo()
    assert editor.project.training.epochs == 5
    assert editor.graph.nodes["dense1"].params == {"out_features": 64}
