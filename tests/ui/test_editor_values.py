"""Values set by path (a sweep's best trial applied): one undo step, refused whole."""

from __future__ import annotations

from studio.core.project import Project, sample_paths
from studio.ui.editor import Editor


def _wine() -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith("wine_classifier")))


def test_settings_and_node_params_change_as_one_undo_step(qtbot) -> None:
    project = _wine()
    editor = Editor(project)
    node = next(n.id for n in project.graph if n.type == "Linear")
    old_lr = project.training.optimizer.get("lr")
    old_width = project.graph.nodes[node].params.get("out_features")
    old_type = project.training.optimizer["type"]
    assert editor.set_values({"training.optimizer.lr": 0.0123,
                              "training.optimizer.type": "SGD",
                              f"graph.nodes.{node}.params.out_features": 48,
                              "data.batch_size": 7}, "Apply best trial")
    assert project.training.optimizer["lr"] == 0.0123
    assert project.training.optimizer["type"] == "SGD"
    assert project.graph.nodes[node].params["out_features"] == 48
    assert project.data.batch_size == 7
    assert editor.stack.count() == 1 and editor.stack.undoText() == "Apply best trial"
    editor.stack.undo()
    assert project.training.optimizer.get("lr") == old_lr
    assert project.training.optimizer["type"] == old_type
    assert project.graph.nodes[node].params.get("out_features") == old_width


def test_a_value_that_does_not_fit_refuses_them_all(qtbot) -> None:
    project = _wine()
    editor = Editor(project)
    refused: list[str] = []
    editor.refused.connect(refused.append)
    node = next(n.id for n in project.graph if n.type == "Linear")
    before = project.to_dict()
    assert not editor.set_values({"training.optimizer.lr": 0.5,
                                  f"graph.nodes.{node}.params.out_features": 0}, "Apply")
    assert not editor.set_values({"graph.nodes.nope.params.out_features": 8}, "Apply")
    assert len(refused) == 2 and "out_features" in refused[0] and "nope" in refused[1]
    assert project.to_dict() == before and editor.stack.count() == 0
