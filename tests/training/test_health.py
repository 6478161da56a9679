"""The run-time doctor on real runs: each rule fires on a network built to have its fault, on
the node that has it, and stays quiet on a healthy sample."""

from __future__ import annotations

import json

from studio.core.health import RUN_RULES, LayerHealth
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training.trainer import Trainer
from tests.graphs import net

from .helpers import mlp, sample


def health_of(project: Project, tmp_path, every: int = 3) -> LayerHealth:
    project.training.layer_stats = {"every": every}
    Trainer(project, out_dir=tmp_path).fit()
    h = LayerHealth({n.id: n.type for n in project.graph})
    for line in (tmp_path / "layer_stats.jsonl").read_text().splitlines():
        h.add(json.loads(line))
    return h


def codes(h: LayerHealth) -> dict[str, str | None]:
    return {f.code: f.node for f in h.findings()}


def stack(*layers, epochs: int = 1, dataset: str = "wine") -> Project:
    g = net(("x", "Input", {"shape": [13]}), *layers,
            ("out", "Linear", {"out_features": 3}))
    return Project("p", g, DataSettings(dataset=dataset, batch_size=16),
                   TrainingSettings(epochs=epochs, optimizer={"type": "SGD", "lr": 0.01}))


def test_a_healthy_sample_has_marks_and_no_findings(tmp_path) -> None:
    h = health_of(sample("wine_classifier"), tmp_path, every=5)
    assert codes(h) == {}
    mark = h.mark("dense1")
    assert mark is not None and mark.level == "ok" and 0 < mark.value < 1
    assert "gradient norm" in mark.text and len(h.recent("dense1", "grad_norm")) > 1
    assert mark.series[0][0] == "gradient norm" and mark.series[0][2]  # drawn on a log scale
    assert "of units dead" in h.mark("relu1").text


def test_dead_relus_are_named(tmp_path) -> None:
    project = mlp(epochs=1)
    project.graph.set_init("h", {"weight": "zeros", "bias": {"type": "constant", "val": -5.0}})
    h = health_of(project, tmp_path)
    assert codes(h) == {"dead-relu": "act"}
    assert h.mark("act").level == "bad"


def test_saturated_tanh_is_named(tmp_path) -> None:
    project = stack(("h", "Linear", {"out_features": 16}), ("t", "Tanh", {}))
    project.graph.set_init("h", {"weight": {"type": "normal", "std": 20.0}})
    h = health_of(project, tmp_path)
    assert codes(h).get("saturated-activation") == "t"
    assert h.mark("t").level == "warn"


def test_vanishing_gradients_through_many_sigmoids(tmp_path) -> None:
    layers = []
    for i in range(10):
        layers += [(f"fc{i}", "Linear", {"out_features": 16}), (f"s{i}", "Sigmoid", {})]
    h = health_of(stack(*layers), tmp_path)
    assert codes(h).get("vanishing-gradients") == "fc0"


def test_exploding_gradients_are_read_from_first_and_last_layers() -> None:
    """A sample as layer_stats.jsonl holds it (small networks that explode this way also
    overflow within a step, so the figures are given)."""
    h = LayerHealth({"x": "Input", "fc0": "Linear", "r": "ReLU", "fc1": "Linear",
                     "out": "Linear"})
    grads = {"fc0": 5e3, "fc1": 40.0, "out": 2.0}
    h.add({"step": 7, "epoch": 1, "layers": {
        n: {"grad_norm": g, "weight_norm": 1.0, "update_ratio": 1e-3} for n, g in grads.items()}})
    [f] = h.findings()
    assert (f.code, f.node, f.severity) == ("exploding-gradients", "fc0", "warning")
    assert "fc0" in f.message and "out" in f.message and "(step 7)" in f.message
    assert h.mark("fc0").level == "bad" and h.mark("out").level == "ok"


def test_the_first_node_with_nan_is_named(tmp_path) -> None:
    """Six frozen layers of weights 10⁶ multiply the input by 1.6·10⁷ each: the sixth
    overflows float32; the ones before it stay finite."""
    layers = [(f"fc{i}", "Linear", {"out_features": 16}) for i in range(6)]
    project = stack(*layers)
    for i in range(6):
        project.graph.set_init(f"fc{i}", {"weight": {"type": "constant", "val": 1e6}})
        project.graph.set_trainable(f"fc{i}", False)
    h = health_of(project, tmp_path, every=1)
    found = {f.code: f for f in h.findings()}
    assert found["nonfinite-activations"].node == "fc5"  # not out, which follows it
    assert found["nonfinite-activations"].severity == "error"
    assert h.mark("fc5").level == "bad" and h.mark("fc4").level == "ok"


def test_every_rule_has_its_words() -> None:
    for r in RUN_RULES:
        assert r.finds and r.reason and r.remedy and r.severity in ("error", "warning")


def test_non_finite_figures_are_marked_not_fatal() -> None:
    """A gradient that overflowed, as an event brings it (a float) and as layer_stats.jsonl
    holds it (text, for strict JSON): the mark turns red, the line skips the point."""
    h = LayerHealth({"x": "Input", "fc": "Linear", "out": "Linear"})
    h.add({"step": 1, "layers": {"fc": {"grad_norm": 0.5, "weight_norm": 1.0,
                                        "update_ratio": 1e-3},
                                 "out": {"grad_norm": 0.1, "weight_norm": 1.0,
                                         "update_ratio": 1e-3}}})
    h.add({"step": 2, "layers": {"fc": {"grad_norm": float("inf"), "weight_norm": 1.0,
                                        "update_ratio": "nan"},
                                 "out": {"grad_norm": "NaN", "weight_norm": 1.0,
                                         "update_ratio": 1e-3}}})
    assert h.mark("fc").level == "bad" and "inf" in h.mark("fc").text
    assert h.mark("out").level == "bad"
    assert h.recent("fc", "grad_norm") == (0.5,)  # the finite point alone
    assert {f.code for f in h.findings()} <= {"exploding-gradients"}
