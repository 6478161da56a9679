"""Every edit is one undo step; undoing everything restores the start exactly."""

from __future__ import annotations

import pytest

from studio.core.graph import Edge
from studio.core.project import Project, default_sample
from studio.ui.editor import Editor

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


def test_undoing_a_delete_or_disconnect_keeps_the_file_edge_order(editor) -> None:
    editor.add_layer("ReLU", after="conv1")  # conv1 now feeds relu1, then relu_1
    before = editor.project.dumps()
    editor.delete(["relu1"])
    editor.stack.undo()
    assert editor.project.dumps() == before
    editor.disconnect_edge(editor.graph.out_edges("conv1")[0])
    editor.stack.undo()
    assert editor.project.dumps() == before


def test_insert_layer_splices_it_into_a_wire_in_one_step(editor) -> None:
    before = editor.project.dumps()
    nid = editor.insert_layer("BatchNorm2d", (0, 165), Edge("conv1", "relu1", 0),
                              moves={"relu1": ((0.0, 220.0), (0.0, 330.0))})
    assert nid == "batch_norm2d_1" and editor.stack.count() == 1
    assert editor.graph.predecessors(nid) == ["conv1"]
    assert editor.graph.successors(nid) == ["relu1"]
    assert editor.graph.nodes["relu1"].pos == (0.0, 330.0)
    after = editor.project.dumps()
    editor.stack.undo()
    assert editor.project.dumps() == before
    editor.stack.redo()
    assert editor.project.dumps() == after


def test_insert_layer_is_refused_when_the_wire_does_not_fit(editor, qtbot) -> None:
    with qtbot.waitSignal(editor.refused) as blocker:
        assert editor.insert_layer("Linear", (0, 0), Edge("conv1", "relu1", 0)) is None
    assert blocker.args[0] == "Linear does not take (N, 32, 26, 26) from 'conv1'"
    assert editor.stack.count() == 0


def test_insert_node_takes_only_a_free_node_and_undoes_exactly(editor, qtbot) -> None:
    nid = editor.add_layer("Dropout", (400, 400))
    before = editor.project.dumps()
    with qtbot.waitSignal(editor.refused):
        assert not editor.insert_node("relu3", Edge("conv1", "relu1", 0))  # wired already
    assert editor.insert_node(nid, Edge("dense1", "relu4", 0),
                              {nid: ((400.0, 400.0), (0.0, 990.0))})
    assert editor.graph.predecessors("relu4") == [nid]
    assert editor.graph.nodes[nid].pos == (0.0, 990.0)
    assert editor.stack.count() == 2
    editor.stack.undo()
    assert editor.project.dumps() == before


def test_delete_and_reconnect_closes_the_gap_in_one_step(editor) -> None:
    before = editor.project.dumps()
    assert editor.delete_and_reconnect(["relu2"])
    assert editor.graph.successors("conv2") == ["pool2"]
    assert editor.stack.count() == 1 and editor.stack.undoText() == "Delete relu2"
    after = editor.project.dumps()
    editor.stack.undo()
    assert editor.project.dumps() == before
    editor.stack.redo()
    assert editor.project.dumps() == after


def test_delete_and_reconnect_leaves_a_gap_that_would_not_fit(editor) -> None:
    assert editor.delete_and_reconnect(["flatten"])
    assert editor.graph.predecessors("dense1") == []  # not relu3 → dense1: Linear needs flat
    editor.stack.undo()
    assert editor.graph.predecessors("dense1") == ["flatten"]
