"""Weights from one run into an edited network, matched by node id (transfer learning)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from studio.core.build import build_module
from studio.core.errors import TrainingError
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training import Trainer
from studio.training.checkpoint import load_weights
from studio.training.transfer import check, load_into, transfer
from tests.graphs import net

from .helpers import mlp


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    result = Trainer(mlp(epochs=3), out_dir=out).fit()
    assert result.status == "completed"
    return out, result


def edited(**training) -> Project:
    """The wine MLP with a new hidden layer before the head: 'h' fits, 'out' no longer does."""
    g = net(("x", "Input", {"shape": [13]}), ("h", "Linear", {"out_features": 16}),
            ("act", "ReLU", {}), ("h2", "Linear", {"out_features": 8}), ("act2", "ReLU", {}),
            ("out", "Linear", {"out_features": 3}))
    t = {"epochs": 2, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("edited", g, DataSettings(dataset="wine", batch_size=16), TrainingSettings(**t))


def test_matching_nodes_load_and_the_rest_keep_their_seeded_weights(trained) -> None:
    out, _ = trained
    source, _ = load_weights(out / "model.safetensors")
    model = build_module(edited().graph, seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_into(model, out / "model.safetensors")
    assert report.loaded == ["h"] and report.tensors == 2
    assert set(report.mismatched) == {"out"} and report.missing == ["h2"] and not report.unused
    assert "[3, 16] in the file, [3, 8] in the network" in report.mismatched["out"]
    state = model.state_dict()
    assert torch.equal(state["h.weight"], source["h.weight"])
    assert not torch.equal(initial["h.weight"], source["h.weight"])
    for k in ("out.weight", "out.bias", "h2.weight"):
        assert torch.equal(state[k], initial[k])
    assert "1 layer(s) loaded" in report.summary() and "1 new" in report.summary()
    assert any("h2" in line for line in report.lines())


def test_a_node_loads_whole_or_not_at_all() -> None:
    g = net(("x", "Input", {"shape": [1, 8, 8]}), ("c", "Conv2d", {"out_channels": 4}),
            ("bn", "BatchNorm2d", {}), ("f", "Flatten", {}), ("o", "Linear", {"out_features": 2}))
    model = build_module(g, seed=0)
    state = {k: torch.full_like(v, 7) for k, v in model.state_dict().items()}
    del state["bn.running_var"]  # a torn BatchNorm: its weights alone must not load
    state["stale.weight"] = torch.zeros(3)
    before = model.state_dict()["bn.weight"].clone()
    report = transfer(model, state)
    assert report.loaded == ["c", "o"] and list(report.mismatched) == ["bn"]
    assert report.unused == ["stale"]
    assert torch.equal(model.state_dict()["bn.weight"], before)
    assert bool((model.state_dict()["c.weight"] == 7).all())


def test_a_run_started_from_weights_evaluates_like_the_run_that_wrote_them(trained, tmp_path
                                                                           ) -> None:
    out, result = trained
    project = mlp(epochs=1, init_weights=str(out / "best.ckpt"))
    messages: list[str] = []
    trainer = Trainer(project, default_callbacks=False)
    trainer.message = messages.append  # type: ignore[method-assign]
    trainer.setup()
    logs = trainer.evaluate("val")
    best = min(result.history, key=lambda e: e["val_loss"])  # best.ckpt monitors val_loss
    assert logs["val_loss"] == pytest.approx(best["val_loss"], rel=1e-6)
    assert logs["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert messages[0].startswith("initial weights: 2 layer(s) loaded from best.ckpt")


def test_frozen_layers_keep_the_transferred_weights_while_the_rest_trains(trained, tmp_path
                                                                         ) -> None:
    out, _ = trained
    project = edited(init_weights="../source/model.safetensors")
    project.graph.nodes["h"].trainable = False
    project.save(tmp_path / "p" / "edited.studio.json")  # the path is relative to the file
    (tmp_path / "source").symlink_to(out)
    project = Project.load(tmp_path / "p" / "edited.studio.json")
    result = Trainer(project, out_dir=tmp_path / "run").fit()
    assert result.status == "completed", result.message
    trained_state, _ = load_weights(tmp_path / "run" / "model.safetensors")
    source, _ = load_weights(out / "model.safetensors")
    assert torch.equal(trained_state["h.weight"], source["h.weight"])  # frozen, transferred
    fresh = build_module(project.graph, seed=0).state_dict()
    assert not torch.equal(trained_state["h2.weight"], fresh["h2.weight"])  # trained
    assert result.logs["val_accuracy"] > 0.8
    run_copy = Project.load(tmp_path / "run" / "project.studio.json")
    assert run_copy.training.init_weights == str((out / "model.safetensors").resolve())


def test_missing_or_unfit_weights_fail_the_run_naming_the_setting(tmp_path) -> None:
    result = Trainer(mlp(init_weights="nowhere.safetensors"), base_dir=tmp_path).fit()
    assert result.status == "failed"
    assert result.error.where == "training.init_weights"
    assert "weights file not found" in result.message and "nowhere.safetensors" in result.message
    other = build_module(net(("x", "Input", {"shape": [4]}),
                             ("z", "Linear", {"out_features": 2})), seed=0)
    from studio.training.checkpoint import save_weights

    save_weights(tmp_path / "other.safetensors", other.state_dict(), {})
    with pytest.raises(TrainingError, match="none of the weights fit this network"):
        check(mlp(), tmp_path / "other.safetensors")
    (tmp_path / "torn.safetensors").write_bytes(b"\x10\x00\x00")
    result = Trainer(mlp(init_weights=str(tmp_path / "torn.safetensors"))).fit()
    assert result.status == "failed" and "not a readable .safetensors" in result.message


def test_cli_checks_and_trains_from_another_runs_weights(trained, tmp_path) -> None:
    out, _ = trained
    path = tmp_path / "edited.studio.json"
    edited().save(path)

    def studio(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                              text=True, timeout=300)

    r = studio("validate", str(path), "--weights", str(out / "model.safetensors"))
    assert r.returncode == 0, r.stderr
    assert "initial weights: 1 layer(s) loaded" in r.stdout
    assert "note: changed, initial weights kept: 'out'" in r.stderr
    r = studio("train", str(path), "--epochs", "1", "--out", str(tmp_path / "run"),
               "--init-weights", str(out / "model.safetensors"))
    assert r.returncode == 0, r.stderr
    assert "initial weights: 1 layer(s) loaded" in r.stdout + r.stderr
    r = studio("train", str(path), "--init-weights", str(tmp_path / "missing.ckpt"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: training.init_weights")
