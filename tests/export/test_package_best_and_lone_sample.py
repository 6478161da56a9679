"""Two runs the catalog's parity cases do not make, trained by the exported package and by
Studio to the same numbers: a training part one sample over a whole number of batches (the
sample joins the last batch, so BatchNorm trains), and a test part scored with the best
epoch's weights, not the last, as Studio scores its best.ckpt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from studio.core.project import Project, sample_paths
from studio.data.bundle import load_data
from studio.export import export
from studio.export.code import package_files
from studio.training import RunResult, Trainer

PROBE = Path(__file__).with_name("package_probe.py")
WINE = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
IGNORED = ("epoch", "time_s", "samples_per_s")


def wine(**changes: Any) -> Project:
    """The wine sample (which has a BatchNorm1d) on the CPU, without early stopping, which the
    package leaves to Studio."""
    d = Project.load(WINE).to_dict()
    d["data"].update(changes.pop("data", {}))
    d["training"].update({"device": "cpu", "early_stopping": None, **changes})
    project = Project.from_dict(d)
    project.path = WINE
    return project


def cases() -> dict[str, Project]:
    project = wine()
    n_train = load_data(project.data, None, project.training.seed).n_train
    return {
        "lone sample": wine(epochs=2, data={
            "batch_size": max(b for b in range(2, 65) if n_train % b == 1)}),
        # val_loss is lowest at epoch 5 of 8: best.ckpt holds epoch 5's weights
        "best weights": wine(epochs=8, seed=0, optimizer={"type": "AdamW", "lr": 0.01}, data={
            "val_fraction": 0.2, "test_fraction": 0.2, "batch_size": 16}),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, tuple[list[dict[str, Any]], RunResult, Path]]:
    """Each case: the logs the package's ``train()`` returns, run where Studio cannot be
    imported (``package_probe.py``); Studio's result; Studio's run folder."""
    tmp = tmp_path_factory.mktemp("edges")
    pkg = tmp / "pkg"
    export(Project.load(WINE), "python", pkg, base_dir=WINE.parent)
    jobs = []
    for i, (name, project) in enumerate(cases().items()):
        config = tmp / f"{i}.json"
        config.write_bytes(package_files(project, WINE.parent)["config.json"])
        jobs.append({"id": name, "config": str(config), "epochs": project.training.epochs})
    listing = tmp / "jobs.json"
    listing.write_text(json.dumps([{"package": str(pkg), "cases": jobs}]))
    r = subprocess.run([sys.executable, str(PROBE), str(listing)], capture_output=True,
                       text=True, timeout=600, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)["results"]
    out = {}
    for name, project in cases().items():
        folder = tmp / "runs" / name
        result = Trainer(project, out_dir=folder, base_dir=WINE.parent).fit()
        assert result.status == "completed", f"{name}: {result.message}"
        out[name] = (got[name]["history"], result, folder)
    return out


def assert_same(mine: dict[str, Any], theirs: dict[str, Any], what: str) -> None:
    shared = [k for k in mine if k in theirs and k not in IGNORED]
    assert shared, what
    for k in shared:
        assert mine[k] == pytest.approx(theirs[k], rel=1e-6, abs=1e-9), f"{what}: {k}"


def assert_same_epochs(package: list[dict[str, Any]], result: RunResult, name: str) -> None:
    assert len(package) == len(result.history) == result.epochs, name
    for e, (mine, theirs) in enumerate(zip(package, result.history, strict=True)):
        assert_same(mine, theirs, f"{name}, epoch {e + 1}")


def test_the_package_trains_batchnorm_through_a_lone_last_sample_like_studio(runs) -> None:
    package, result, _ = runs["lone sample"]
    assert_same_epochs(package, result, "lone sample")


def test_the_package_scores_the_best_epochs_weights_on_the_test_part_like_studio(runs) -> None:
    package, result, folder = runs["best weights"]
    assert_same_epochs(package, result, "best weights")
    studio = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
    assert studio["weights"] == "best.ckpt" and studio["weights_epoch"] < result.epochs
    # the last epoch's logs carry the test metrics, as Studio's summary.json and result do
    test = {k: v for k, v in package[-1].items() if k.startswith("test_")}
    assert test.keys() >= {"test_loss", "test_accuracy"}
    assert_same(test, result.logs, "test metrics")
