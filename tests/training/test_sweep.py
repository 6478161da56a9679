"""Sweeps on Optuna: trials are ordinary runs, sweep.json follows them, the median pruner
stops bad trials, workers share one journal file, and a killed sweep resumes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from studio.core.project import Project
from studio.training.sweep import open_study, read_sweep, run_sweep
from tests.training.helpers import mlp


def _project(**sweep) -> Project:
    p = mlp(epochs=3, optimizer={"type": "Adam", "lr": 0.01})
    p.sweep = {"objective": {"metric": "val_accuracy", "direction": "maximize"},
               "parameters": {
                   "training.optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.05,
                                             "log": True},
                   "graph.nodes.h.params.out_features": {"type": "int", "low": 8, "high": 32,
                                                         "step": 8}},
               "sampler": "random", "pruner": "none", "trials": 4, "parallel": 1, **sweep}
    return Project.from_dict(p.to_dict())


def test_a_sweep_writes_its_trials_as_runs_and_keeps_sweep_json(tmp_path) -> None:
    seen = []
    data = run_sweep(_project(), tmp_path, on_trial=seen.append)
    assert [e["trial"]["number"] for e in seen] == [0, 1, 2, 3]
    assert data == read_sweep(tmp_path)
    assert set(data) >= {"best", "trials"} and len(data["trials"]) == 4
    for t in data["trials"]:
        assert set(t) >= {"number", "state", "value", "params", "run"}
        assert t["state"] == "complete"
        run = tmp_path / t["run"]
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert max(x["val_accuracy"] for x in lines if "val_accuracy" in x) == t["value"]
        assert (run / "best.ckpt").exists() and (run / "project.studio.json").exists()
        trained = Project.load(run / "project.studio.json")
        assert trained.graph.nodes["h"].params["out_features"] == \
            t["params"]["graph.nodes.h.params.out_features"]
        assert trained.training.optimizer["lr"] == t["params"]["training.optimizer.lr"]
    best = max(data["trials"], key=lambda t: t["value"])
    assert data["best"]["value"] == best["value"]


def test_the_median_pruner_stops_trials_worse_than_the_others(tmp_path) -> None:
    p = _project(pruner="median", trials=6)
    p.sweep["parameters"] = {"training.optimizer.lr": {
        "type": "categorical", "choices": [0.03, 1e-7]}}  # a rate that cannot learn
    p.training.epochs = 5
    data = run_sweep(p, tmp_path)
    states = {t["state"] for t in data["trials"]}
    assert "pruned" in states, data["trials"]
    pruned = [t for t in data["trials"] if t["state"] == "pruned"]
    assert all(t["params"]["training.optimizer.lr"] == 1e-7 for t in pruned)


def test_a_resumed_sweep_keeps_its_trials_and_fails_the_one_a_kill_left_running(tmp_path
                                                                               ) -> None:
    p = _project(trials=2)
    first = run_sweep(p, tmp_path)
    study = open_study(p, tmp_path)
    study.ask()  # a trial a killed worker left running
    data = run_sweep(p, tmp_path, trials=5)
    states = [t["state"] for t in data["trials"]]
    assert data["trials"][:2] == first["trials"]
    assert states[2] == "failed" and states[3:] == ["complete", "complete"]
    assert len({json.dumps(t["params"], sort_keys=True) for t in data["trials"]
                if t["state"] == "complete"}) == 4  # the resumed sweep drew new values


def test_two_workers_share_one_journal_file(tmp_path) -> None:
    p = _project(trials=6, parallel=2)
    path = tmp_path / "p.studio.json"
    p.save(path)
    run = subprocess.run([sys.executable, "-m", "studio", "sweep", str(path), "--out",
                          str(tmp_path / "sweep")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    data = read_sweep(tmp_path / "sweep")
    numbers = [t["number"] for t in data["trials"]]
    assert len(numbers) == len(set(numbers)) >= 6  # distinct, none lost (a race may add one)
    assert all(t["state"] == "complete" for t in data["trials"])
    runs = {t["run"] for t in data["trials"]}
    assert len(runs) == len(numbers) and all((tmp_path / "sweep" / r).is_dir() for r in runs)
    lines = [x for x in run.stdout.splitlines() if x.startswith("trial ")]
    assert len(lines) == len(numbers) and run.stdout.splitlines()[-1].startswith("sweep done")


@pytest.mark.parametrize("sweep", [{"parameters": {"graph.nodes.fc9.params.out_features": {
    "type": "int", "low": 1, "high": 4}}}])
def test_a_bad_sweep_is_refused_with_one_line(tmp_path, sweep) -> None:
    d = mlp().to_dict()
    d["sweep"] = sweep
    path = tmp_path / "bad.studio.json"
    path.write_text(json.dumps(d))
    for cmd in ("sweep", "validate"):
        run = subprocess.run([sys.executable, "-m", "studio", cmd, str(path)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and run.stderr.count("\n") == 1
        assert 'sweep.parameters["graph.nodes.fc9.params.out_features"]: no node' in run.stderr


def test_a_second_sweep_into_a_folder_in_use_is_refused(tmp_path) -> None:
    """It would take the first one's running trials for a killed sweep's and fail them."""
    from studio.core.errors import TrainingError
    from studio.training.run_folder import RunLock

    with RunLock(tmp_path), pytest.raises(TrainingError, match="another run"):
        run_sweep(_project(trials=1), tmp_path)
    assert not (tmp_path / "trial-0000").exists()
