"""A project's sweep: refused with the field named when it cannot run, and trial values
written into a copy of the project with the file format's own validation."""

from __future__ import annotations

import copy

import pytest

from studio.core.errors import ProjectError
from studio.core.project import Project, sample_paths
from studio.core.sweep_spec import apply_params, validate_sweep


def _wine() -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith("wine_classifier")))


GOOD = {"objective": {"metric": "val_accuracy", "direction": "maximize"},
        "parameters": {
            "training.optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
            "graph.nodes.dense1.params.out_features": {"type": "int", "low": 16, "high": 64,
                                                       "step": 16},
            "training.optimizer.type": {"type": "categorical", "choices": ["Adam", "SGD"]}},
        "sampler": "tpe", "pruner": "median", "trials": 20, "parallel": 2}


def _with(path: str, spec: dict | None = None, **top) -> dict:
    s = copy.deepcopy(GOOD)
    if spec is not None:
        s["parameters"][path] = spec
    s.update(top)
    return s


@pytest.mark.parametrize(("sweep", "where", "says"), [
    (_with("graph.nodes.fc9.params.out_features", {"type": "int", "low": 1, "high": 4}),
     'sweep.parameters["graph.nodes.fc9.params.out_features"]', "no node 'fc9'"),
    (_with("graph.nodes.dense1.params.width", {"type": "int", "low": 1, "high": 4}),
     'sweep.parameters["graph.nodes.dense1.params.width"]', "no parameter 'width'"),
    (_with("training.speed", {"type": "float", "low": 1, "high": 4}),
     'sweep.parameters["training.speed"]', "no setting training.speed"),
    (_with("training.optimizer.lr", {"type": "float", "low": 0.1, "high": 0.1}),
     'sweep.parameters["training.optimizer.lr"]', "empty range"),
    (_with("training.optimizer.lr", {"type": "float", "low": 0.0, "high": 0.1, "log": True}),
     'sweep.parameters["training.optimizer.lr"]', "log range needs low above 0"),
    (_with("training.optimizer.lr", {"type": "float", "low": -1.0, "high": 0.1}),
     'sweep.parameters["training.optimizer.lr"]', "lr: must be > 0"),
    (_with("training.optimizer.type", {"type": "categorical", "choices": ["Adam", "Nope"]}),
     'sweep.parameters["training.optimizer.type"]', "unknown optimizer 'Nope'"),
    (_with("training.optimizer.type", {"type": "categorical", "choices": []}),
     'sweep.parameters["training.optimizer.type"]', "non-empty"),
    (_with("graph.nodes.dense1.params.out_features", {"type": "int", "low": 0, "high": 8}),
     'sweep.parameters["graph.nodes.dense1.params.out_features"]', "must be ≥ 1"),
    (_with("x", None, sampler="grid"),
     'sweep.parameters["training.optimizer.lr"]', "a float range has no grid"),
    (_with("x", None, objective={"metric": "val_speed", "direction": "maximize"}),
     "sweep.objective.metric", "unknown metric 'val_speed'"),
    (_with("x", None, pruner="sometimes"), "sweep.pruner", "unknown pruner"),
    (_with("x", None, trials=0), "sweep.trials", "whole number"),
])
def test_a_sweep_that_cannot_run_is_refused_naming_the_field(sweep, where, says) -> None:
    with pytest.raises(ProjectError) as info:
        validate_sweep(sweep, _wine())
    assert info.value.where == where and says in info.value.message


def test_a_project_file_keeps_its_sweep_and_refuses_a_bad_one(tmp_path) -> None:
    p = _wine()
    assert "sweep" not in p.to_dict()  # absent without one: older files stay as they were
    p.sweep = copy.deepcopy(GOOD)
    p.save(tmp_path / "s.studio.json")
    again = Project.load(tmp_path / "s.studio.json")
    assert again.sweep == GOOD
    d = again.to_dict()
    d["sweep"]["parameters"]["graph.nodes.fc9.params.out_features"] = {
        "type": "int", "low": 1, "high": 2}
    with pytest.raises(ProjectError, match="fc9"):
        Project.from_dict(d)


def test_trial_values_go_into_a_copy_at_their_paths() -> None:
    p = _wine()
    q = apply_params(p, {"training.optimizer.lr": 0.02, "training.optimizer.type": "SGD",
                         "graph.nodes.dense1.params.out_features": 48, "data.batch_size": 8})
    assert q.training.optimizer["lr"] == 0.02 and q.training.optimizer["type"] == "SGD"
    assert q.graph.nodes["dense1"].params["out_features"] == 48 and q.data.batch_size == 8
    assert p.graph.nodes["dense1"].params.get("out_features") != 48  # the original is kept
    with pytest.raises(ProjectError, match="beta1"):  # a combination that does not fit
        apply_params(p, {"training.optimizer.type": "SGD", "training.optimizer.beta1": 0.9})
