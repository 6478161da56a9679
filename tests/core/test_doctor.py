"""The network doctor: each rule finds its mistake, names the node, and its fix removes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core import fit
from studio.core.choices import DATASETS, LOSSES
from studio.core.doctor import BUILT_IN, LOSS_TAKES, RULES, diagnose, with_rules
from studio.core.findings import (
    Fix,
    InsertLayer,
    RemoveNode,
    SetParams,
    SetSetting,
    problem_list,
)
from studio.core.graph import Edge, Node
from studio.core.health import RUN_RULES
from studio.core.project import Project, sample_paths
from studio.core.shapes import analyze
from tests.graphs import net

MLP = [("input", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
       ("fc1", "Linear", {"out_features": 32}), ("relu", "ReLU", {}),
       ("fc2", "Linear", {"out_features": 10})]


def project(layers: list, dataset: str = "mnist-5k", loss: str = "CrossEntropyLoss",
            **data: object) -> Project:
    p = Project(graph=net(*layers))
    p.data.dataset = dataset
    for k, v in data.items():
        setattr(p.data, k, v)
    p.training.loss = {"type": loss}
    return p


def apply(p: Project, fix: Fix) -> None:
    """The fix's edits on the model itself (the window does them through its undo stack)."""
    g = p.graph
    for e in fix.edits:
        if isinstance(e, RemoveNode):
            links = fit.bridges(g, [e.node])
            g.remove_node(e.node)
            for link in links:
                g.connect(link.src, link.dst, link.port)
        elif isinstance(e, SetParams):
            g.set_params(e.node, dict(e.params))
        elif isinstance(e, SetSetting):
            setattr(getattr(p, e.section), e.name, e.value)
        elif isinstance(e, InsertLayer):
            g.disconnect(Edge(e.src, e.dst, e.port))
            g.add_node(Node("inserted", e.layer))
            g.connect(e.src, "inserted")
            g.connect("inserted", e.dst, e.port)


CASES = {
    "double-softmax": (project([*MLP, ("probs", "Softmax", {})]), "probs"),
    "double-sigmoid": (project([("input", "Input", {"shape": [30]}),
                                ("fc", "Linear", {"out_features": 1}), ("sig", "Sigmoid", {})],
                               "breast-cancer", "BCEWithLogitsLoss"), "sig"),
    "log-softmax-before-cross-entropy": (project([*MLP, ("logp", "LogSoftmax", {})]), "logp"),
    "nll-without-log-softmax": (project(MLP, loss="NLLLoss"), "fc2"),
    "channels-last-input": (project([("input", "Input", {"shape": [28, 28, 1]}),
                                     ("conv", "Conv2d", {"out_channels": 8}),
                                     ("flat", "Flatten", {}),
                                     ("fc", "Linear", {"out_features": 10})]), "input"),
    "output-width": (project([*MLP[:-1], ("fc2", "Linear", {"out_features": 5})]), "fc2"),
    "extra-outputs": (project([*MLP[:-1], ("fc2", "Linear", {"out_features": 12}),
                               ("probs", "Softmax", {})], loss="MultiMarginLoss"), "probs"),
    "regression-loss-on-classes": (project(MLP, loss="MSELoss"), "fc2"),
    "classification-loss-on-regression": (project([("input", "Input", {"shape": [10]}),
                                                   ("fc", "Linear", {"out_features": 1})],
                                                  "diabetes"), "fc"),
    "stacked-linear": (project([*MLP[:3], MLP[4]]), "fc2"),
    "sequence-into-linear": (project([("input", "Input", {"shape": [64]}),
                                      ("rows", "Reshape", {"shape": [8, 8]}),
                                      ("lstm", "LSTM", {"output": "sequence"}),
                                      ("fc", "Linear", {"out_features": 1})],
                                     "npz", "MSELoss", options={"task": "regression"}),
                             "lstm"),
    "images-not-normalized": (project(MLP, normalize=False), "input"),
}


def test_every_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(r.code for r in RULES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rule_names_its_node_and_its_fix_clears_it(code: str) -> None:
    p, node = CASES[code]
    p = p.copy()
    [found] = [f for f in diagnose(p) if f.code == code]
    rule = next(r for r in RULES if r.code == code)
    assert (found.node, found.severity, found.reason) == (node, rule.severity, rule.reason)
    assert f"'{node}'" in found.message
    json.dumps(found.to_dict())  # what validate --json prints
    assert found.fix is not None and found.fix.label
    apply(p, found.fix)
    after = diagnose(p)
    assert not [f for f in after if f.code == code], after
    assert analyze(p.graph).ok


def test_the_shipped_samples_have_no_findings() -> None:
    for path in sample_paths():
        assert diagnose(Project.load(path)) == [], path.name


def test_correct_pairings_are_left_alone() -> None:
    ok = [project([*MLP, ("logp", "LogSoftmax", {})], loss="NLLLoss"),
          project([("input", "Input", {"shape": [30]}), ("fc", "Linear", {"out_features": 1})],
                  "breast-cancer", "BCEWithLogitsLoss"),
          project([("input", "Input", {"shape": [3, 32, 32]}),
                   ("conv", "Conv2d", {"out_channels": 8})], "csv"),  # channels first
          project([*MLP[:3], ("drop", "Dropout", {}), MLP[4]], "csv")]  # task unknown
    for p in ok:
        assert diagnose(p) == [], p.graph.nodes


def test_channels_last_explains_the_convolution_error_right_after_it() -> None:
    p, _ = CASES["channels-last-input"]
    a = analyze(p.graph)
    listed = problem_list(p.graph, a, diagnose(p, a))
    assert [(f.code, f.severity, f.node) for f in listed[:2]] == [
        (None, "error", "conv"), ("channels-last-input", "warning", "input")]
    assert "does not fit the input [28, 1]" in listed[0].message
    assert listed[1].message.endswith("make it [1, 28, 28]; this is why Conv2d 'conv' "
                                      "does not fit")
    assert listed[1].fix.edits == (SetParams("input", {"shape": [1, 28, 28]}),)


def test_a_shape_problems_suggested_layer_is_an_insert_fix() -> None:
    p = project([("input", "Input", {"shape": [1, 28, 28]}),
                 ("fc", "Linear", {"out_features": 10})])
    [f] = problem_list(p.graph, analyze(p.graph), diagnose(p))
    assert (f.code, f.severity, f.node) == (None, "error", "fc")
    assert f.to_dict()["fix"] == {"label": "insert Flatten before Linear 'fc'", "edits": [
        {"op": "insert_layer", "layer": "Flatten", "src": "input", "dst": "fc", "port": 0}]}


def test_every_loss_and_built_in_dataset_is_described() -> None:
    assert set(LOSS_TAKES) == set(LOSSES)
    assert set(BUILT_IN) == {n for n, d in DATASETS.items() if d.source != "file"}


def test_docs_list_exactly_the_rules_of_the_table() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "doctor.md"
    text = doc.read_text()
    headed = [line.split("`")[1] for line in text.splitlines() if line.startswith("### `")]
    assert headed == [r.code for r in RULES] + [r.code for r in RUN_RULES]
    assert text == with_rules(text), "run: python -m studio.core.doctor --write"


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast-cancer", "diabetes",
                                  "mnist-5k"])
def test_what_the_doctor_knows_of_a_dataset_is_what_loading_it_gives(name) -> None:
    """BUILT_IN repeats facts the loaders hold; the bundled sets load fast enough to check."""
    from studio.core.doctor import BUILT_IN
    from studio.data.sources import load_arrays

    facts, arrays = BUILT_IN[name], load_arrays(name, {})
    assert facts.task == arrays.task
    assert facts.sample == arrays.sample_shape
    assert facts.image == arrays.image
    if arrays.task == "classification":
        assert facts.classes == len(arrays.classes)
    else:
        assert facts.targets == arrays.y.shape[1]
