"""``studio train`` as users run it: real subprocesses on real data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from studio.core.project import Project, sample_paths
from studio.data import load_data
from studio.training.checkpoint import load_checkpoint

from .helpers import final_logs
from .test_data import make_cifar


def train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", "train", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_mnist_cnn_reaches_95_percent_in_3_epochs(tmp_path) -> None:
    path = next(p for p in sample_paths() if p.name == "mnist_cnn.studio.json")
    r = train(str(path), "--epochs", "3", "--out", str(tmp_path / "x"))
    assert r.returncode == 0, r.stderr
    assert final_logs(tmp_path / "x")["val_accuracy"] >= 0.95
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("completed 3 epochs: loss") and "val_accuracy 0.9" in last
    for f in ("metrics.jsonl", "last.ckpt", "best.ckpt", "model.safetensors",
              "project.studio.json"):
        assert (tmp_path / "x" / f).exists()


def test_mnist_mlp_reaches_90_percent(tmp_path) -> None:
    path = next(p for p in sample_paths() if p.name == "mnist_mlp.studio.json")
    r = train(str(path), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert final_logs(tmp_path)["val_accuracy"] >= 0.90


def test_regression_beats_predicting_the_mean(tmp_path) -> None:
    path = next(p for p in sample_paths() if p.name == "regression_mlp.studio.json")
    r = train(str(path), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    project = Project.load(path)
    b = load_data(project.data, seed=project.training.seed)
    m, s = b.target_norm
    y_val = b.y_val.numpy() * s + m
    y_train_mean = (b.y_train.numpy() * s + m).mean()
    baseline = float(np.mean((y_val - y_train_mean) ** 2))
    assert final_logs(tmp_path)["val_mse"] < baseline


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name)
def test_every_sample_trains_one_epoch(path, tmp_path) -> None:
    project = Project.load(path)
    if project.data.dataset == "cifar10":
        make_cifar(tmp_path / "cifar", per_batch=40)
        project.data.options = {"root": str(tmp_path / "cifar")}
    project.training.device = "cpu"
    copy = project.save(tmp_path / path.name)
    r = train(str(copy), "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert final_logs(tmp_path / "run")["epoch"] == 1


def test_ctrl_c_stops_cleanly_after_writing_last_checkpoint(tmp_path) -> None:
    path = next(p for p in sample_paths() if p.name == "mnist_mlp.studio.json")
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(path), "--epochs",
                             "200", "--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # epoch 1 is saved; the stop comes within epoch 2
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.strip().splitlines()[-1].startswith("stopped after epoch")
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    assert ckpt["epoch"] >= 1
    r = train(str(path), "--epochs", str(ckpt["epoch"] + 1), "--resume",
              str(tmp_path / "last.ckpt"))
    assert r.returncode == 0, r.stderr
    assert final_logs(tmp_path)["epoch"] == ckpt["epoch"] + 1


def test_training_failures_exit_2_with_one_line(tmp_path) -> None:
    project = Project.load(next(p for p in sample_paths() if p.name == "mnist_cnn.studio.json"))
    project.data.dataset = "fashion-mnist"
    project.data.options = {"root": str(tmp_path / "nowhere")}
    f = project.save(tmp_path / "p.studio.json")
    r = train(str(f), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.startswith("studio:")]
    assert len(err) == 1 and "FashionMNIST files not found" in err[0]
    r = train(str(f), "--epochs", "0")
    assert r.returncode == 2 and "epochs" in r.stderr and "Traceback" not in r.stderr


def test_tensorboard_flag_without_the_package_is_a_clear_error(tmp_path) -> None:
    path = next(p for p in sample_paths() if p.name == "wine_classifier.studio.json")
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.modules['tensorboard'] = None; "
                        "from studio.cli import main; raise SystemExit(main(sys.argv[1:]))",
                        "train", str(path), "--tensorboard", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "pip install tensorboard" in r.stderr
