"""A test part for every dataset: ``data.test_fraction`` holds it out (stratified, fixed by the
seed, apart from validation), the run scores its kept weights on it at the end, and ``studio
evaluate --split test`` gives the same numbers; a dataset's own test set is kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.core.errors import ProjectError, TrainingError
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.data.bundle import load_data
from studio.data.sources import load_arrays
from studio.data.split import split_indices, split_parts
from studio.training import Trainer
from studio.training.predictions import evaluate_weights, load_predictions
from tests.graphs import net
from tests.training.test_data import make_mnist


def project(dataset: str = "wine", **data: object) -> Project:
    a = load_arrays(dataset, {})
    graph = net(("input", "Input", {"shape": list(a.sample_shape)}),
                ("hidden", "Linear", {"out_features": 8}), ("act", "ReLU", {}),
                ("out", "Linear", {"out_features": len(a.classes)}))
    return Project("split", graph, DataSettings(dataset=dataset, batch_size=16, **data),
                   TrainingSettings(device="cpu", epochs=2, seed=5))


def test_three_parts_are_disjoint_cover_the_data_stratified_and_fixed_by_the_seed() -> None:
    y = np.random.RandomState(0).randint(0, 10, 1800)  # classes of unequal sizes
    train, val, test = split_parts(y, 0.2, 0.25, seed=3, stratify=True)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == 0
    assert len(np.intersect1d(val, test)) == 0
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(y)))
    for part, share in ((test, 0.25), (val, 0.2)):  # every class keeps its share
        counts = np.bincount(y[part], minlength=10) / np.bincount(y, minlength=10)
        assert np.allclose(counts, share, atol=0.02), counts
    again = split_parts(y, 0.2, 0.25, seed=3, stratify=True)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test), strict=True))
    assert not np.array_equal(split_parts(y, 0.2, 0.25, seed=4, stratify=True)[2], test)
    # no test part: the split projects made before the setting existed
    old = split_indices(y, 0.2, 3, True)
    new = split_parts(y, 0.2, 0.0, 3, True)
    assert np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1]) and not len(new[2])


def test_a_tiny_class_keeps_a_training_sample_and_regression_splits_too() -> None:
    y = np.array([0] * 10 + [1, 1])
    train, val, test = split_parts(y, 0.4, 0.5, seed=0, stratify=True)
    assert 1 in y[train].tolist() and 0 in y[train].tolist()
    assert y[test].tolist().count(1) == 1 and 1 not in y[val].tolist()  # its other one
    train, _val, test = split_parts(np.linspace(0, 1, 3), 0.5, 0.4, 0, stratify=False)
    assert len(train) >= 1 and len(test) == 1


def test_fractions_that_leave_nothing_to_train_are_refused_naming_the_field() -> None:
    d = project().to_dict()
    d["data"].update(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ProjectError) as exc:
        Project.from_dict(d)
    assert exc.value.where == "data.test_fraction" and "val_fraction + test_fraction" in \
        exc.value.message


def test_run_scores_the_best_weights_on_the_test_part_as_studio_evaluate_does(
        tmp_path: Path) -> None:
    p = project(val_fraction=0.2, test_fraction=0.25)
    out = tmp_path / "run"
    result = Trainer(p, out_dir=out).fit()
    assert result.ok, result.message
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [ln["epoch"] for ln in lines[:-1]] == [1, 2]
    final = lines[-1]
    assert "epoch" not in final and final["weights"] == "best.ckpt"
    best = min(lines[:-1], key=lambda ln: ln["val_loss"])
    assert final["weights_epoch"] == best["epoch"]
    summary = json.loads((out / "summary.json").read_text())["logs"]
    names = {k.removeprefix("val_") for k in best if k.startswith("val_")}
    assert {k for k in final if k.startswith("test_")} == {f"test_{n}" for n in names}
    for k, v in final.items():
        if k.startswith("test_"):
            assert v == result.logs[k] and summary.get(k, v) == v, k
    assert "test_accuracy" in summary
    assert sum(map(sum, result.logs["test_confusion"])) == 45  # a quarter of wine's 178
    project_file = out / "project.studio.json"
    code = main(["evaluate", str(project_file), "--weights", str(out / "best.ckpt"),
                 "--split", "test", "--predictions", str(tmp_path / "p.npz")])
    assert code == 0
    _, logs = load_predictions(tmp_path / "p.npz")
    scores = {k: v for k, v in final.items() if k.startswith("test_") and k != "test_confusion"}
    assert {k: v for k, v in logs.items() if k.startswith("test_")} == scores


def test_without_validation_the_last_weights_are_scored(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = Trainer(project("iris", val_fraction=0.0, test_fraction=0.2), out_dir=out).fit()
    final = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["weights"] == "model.safetensors" and final["weights_epoch"] == 2
    _, logs = evaluate_weights(Project.load(out / "project.studio.json"),
                               out / "model.safetensors", split="test")
    assert logs["test_accuracy"] == final["test_accuracy"] == result.logs["test_accuracy"]


def test_a_dataset_with_its_own_test_set_keeps_it(tmp_path: Path) -> None:
    make_mnist(tmp_path, n=60, n_test=20)
    settings = DataSettings(dataset="mnist", options={"root": "."}, val_fraction=0.2,
                            test_fraction=0.3)
    b = load_data(settings, tmp_path, seed=0)
    assert b.n_test == 20 and b.n_train + b.n_val == 60
    assert any("data.test_fraction is ignored" in m for m in b.messages)
    plain = load_data(DataSettings(dataset="mnist", options={"root": "."}), tmp_path, seed=0)
    assert np.array_equal(b.x_test.numpy(), plain.x_test.numpy())


def test_evaluating_a_missing_test_part_names_a_real_field(tmp_path: Path, capsys) -> None:
    p = project("iris")
    out = tmp_path / "run"
    assert Trainer(p, out_dir=out).fit().ok
    assert "test_loss" not in (out / "metrics.jsonl").read_text()  # no test part, no line
    with pytest.raises(TrainingError) as exc:
        evaluate_weights(p, out / "model.safetensors", split="test")
    assert exc.value.where == "data.test_fraction" and "data.test_fraction" in \
        exc.value.message
    assert "test_fraction" in DataSettings.model_fields
    code = main(["evaluate", str(out / "project.studio.json"), "--weights",
                 str(out / "model.safetensors"), "--split", "test"])
    assert code != 0 and "data.test_fraction" in capsys.readouterr().err
