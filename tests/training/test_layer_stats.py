"""Live layer statistics (training.layer_stats): sampled at the right steps, faithful to the
weights the run holds, blind to nothing (a dead ReLU reads 100% zeros), and free: a run with
statistics trains exactly as one without."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from studio.core.errors import ProjectError
from studio.core.project import Project
from studio.training.checkpoint import load_checkpoint
from studio.training.trainer import Trainer

from .helpers import mlp, sample


def lines(out) -> list[dict]:
    return [json.loads(x) for x in (out / "layer_stats.jsonl").read_text().splitlines()]


def test_sampled_every_n_steps_with_figures_that_match_the_weights(tmp_path) -> None:
    project = mlp(epochs=2)  # wine: 142 training samples in batches of 16, 9 steps an epoch
    project.training.layer_stats = {"every": 9}
    result = Trainer(project, out_dir=tmp_path).fit()
    assert result.status == "completed", result.message
    got = lines(tmp_path)
    assert [(r["step"], r["epoch"]) for r in got] == [(9, 1), (18, 2)]
    last = got[-1]["layers"]
    assert list(last) == ["h", "act", "drop", "out"]  # every node that has an output, in order
    for node in ("h", "out"):
        d = last[node]
        assert d["grad_norm"] > 0 and 0 < d["update_ratio"] < 1
    # step 18 ends epoch 2: the weights the figures describe are those of last.ckpt
    state = load_checkpoint(tmp_path / "last.ckpt", torch.device("cpu"))["model"]
    norm = math.sqrt(sum(float(state[k].double().pow(2).sum()) for k in ("h.weight", "h.bias")))
    assert last["h"]["weight_norm"] == pytest.approx(norm, rel=1e-5)
    act = last["act"]
    assert 0 < act["zero_frac"] < 1 and act["act_std"] > 0
    hist = act["hist"]
    assert len(hist["counts"]) == 32 and hist["lo"] == 0.0 < hist["hi"]
    assert sum(hist["counts"]) == 36 * 16  # the 36 validation samples × 16 units, every value


def test_a_dead_relu_reads_all_zeros(tmp_path) -> None:
    project = mlp(epochs=1)
    project.graph.set_init("h", {"weight": "zeros", "bias": {"type": "constant", "val": -100.0}})
    project.training.layer_stats = {"every": 3, "bins": 8}
    assert Trainer(project, out_dir=tmp_path).fit().status == "completed"
    for record in lines(tmp_path):
        assert record["layers"]["act"]["zero_frac"] == 1.0
        assert record["layers"]["h"]["grad_norm"] == 0.0  # nothing flows back through it


def test_a_run_with_statistics_trains_exactly_as_one_without(tmp_path) -> None:
    """Dropout draws random numbers and BatchNorm keeps running statistics: the probe must
    touch neither."""
    weights = []
    for stats in (None, {"every": 2}):
        project = sample("wine_classifier")
        project.training.epochs = 2
        project.training.layer_stats = stats
        trainer = Trainer(project, out_dir=tmp_path / str(bool(stats)))
        assert trainer.fit().status == "completed"
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert "running_mean" in " ".join(weights[0])  # BatchNorm's statistics were compared too


def test_cli_streams_them_as_events_and_a_resumed_run_keeps_the_file_consistent(
        tmp_path) -> None:
    project = mlp(epochs=3)
    project.training.layer_stats = {"every": 4}
    path = project.save(tmp_path / "p.studio.json")
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(path), "--events",
                             "--epochs", "2", "--out", str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []  # stdin stays open: its end would stop the run
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "end":
            break
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert events[-1]["status"] == "completed"
    streamed = [{k: e[k] for k in ("step", "epoch", "layers")} for e in events
                if e["event"] == "layer_stats"]
    assert [e["step"] for e in streamed] == [4, 8, 12, 16]
    assert streamed == lines(out)
    # continue from epoch 2 (step 18) to 3: the file goes on where the checkpoint stood
    r = subprocess.run([sys.executable, "-m", "studio", "train", str(path), "--resume",
                        str(out / "last.ckpt"), "--out", str(out)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [x["step"] for x in lines(out)] == [4, 8, 12, 16, 20, 24]


def test_bad_settings_are_refused_naming_the_field() -> None:
    d = mlp().to_dict()
    d["training"]["layer_stats"] = {"every": 0}
    with pytest.raises(ProjectError) as exc:
        Project.from_dict(d)
    assert "layer_stats" in str(exc.value) and "every" in str(exc.value)


def test_images_read_from_disk_train_exactly_as_without_statistics(tmp_path,
                                                                   monkeypatch) -> None:
    """The probe's batch comes through a DataLoader there, which seeds itself from the
    global generator: Dropout's masks must not move."""
    from studio.core.project import DataSettings, TrainingSettings
    from tests.graphs import net

    from .test_lone_last_sample import image_folder

    monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")
    image_folder(tmp_path / "img", 12)
    weights = []
    for stats in (None, {"every": 2}):
        graph = net(("x", "Input", {"shape": [3, 8, 8]}), ("flat", "Flatten", {}),
                    ("hidden", "Linear", {"out_features": 8}), ("drop", "Dropout", {"p": 0.5}),
                    ("out", "Linear", {"out_features": 2}))
        project = Project(name="lazy", graph=graph, data=DataSettings(
            dataset="image-folder", options={"path": "img", "size": [8, 8]}, batch_size=4),
            training=TrainingSettings(epochs=2, device="cpu", layer_stats=stats))
        trainer = Trainer(project, base_dir=tmp_path, out_dir=tmp_path / str(bool(stats)))
        assert trainer.fit().status == "completed"
        assert trainer.bundle.files is not None
        weights.append(trainer.model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert lines(tmp_path / "True")  # and it did sample


def test_3d_outputs_count_units_on_the_right_axis() -> None:
    """[N, channels, length] after a 1-D convolution (and the activations after it);
    [N, length, features] after a recurrent layer or a Linear on a sequence."""
    from studio.training.feature_maps import channels_first
    from tests.graphs import net

    g = net(("x", "Input", {"shape": [64]}), ("rows", "Reshape", {"shape": [8, 8]}),
            ("conv", "Conv1d", {"out_channels": 6, "kernel_size": 3}), ("r", "ReLU", {}),
            ("d", "Dropout", {}), ("lstm", "LSTM", {"hidden_size": 5}), ("r2", "ReLU", {}),
            ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 10}))
    assert [n for n in g.nodes if channels_first(g, n)] == ["conv", "r", "d"]
