"""Resuming from a damaged or hand-made checkpoint ends in one line naming the field."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from studio.training import Callback, Trainer
from studio.training.checkpoint import load_checkpoint, save_checkpoint
from tests.training.helpers import mlp


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, epoch, logs):
        self.trainer.stop()


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("run")
    result = Trainer(mlp(epochs=3), out_dir=out, callbacks=[_StopAfterFirstEpoch()]).fit()
    assert result.status == "stopped"
    return load_checkpoint(out / "last.ckpt")


def _resume(tmp_path, ckpt: dict, project=None):
    path = tmp_path / "damaged.ckpt"
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    return Trainer(project or mlp(epochs=3), out_dir=tmp_path / "run").fit(resume_from=path)


REQUIRED = ["project", "epoch", "batch", "step", "model", "optimizer", "rng_torch",
            "rng_shuffle", "rng_shuffle_epoch", "rng_augment", "history"]


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_field_is_named(tmp_path, good, field) -> None:
    damaged = {k: v for k, v in good.items() if k != field}
    result = _resume(tmp_path, damaged)
    assert result.status == "failed"
    assert f"damaged checkpoint: '{field}' is missing" in result.message
    assert str(tmp_path / "damaged.ckpt") in result.message


WRONG = [
    ("epoch", "1", "'epoch' must be a whole number, not str"),
    ("epoch", 10**9, "'epoch' must be between 0 and 100,000, got 1,000,000,000"),
    ("epoch", 2, "claims 2 completed epochs but holds the logs of 1"),
    ("batch", -3, "'batch' must be between"),
    ("step", 1.5, "'step' must be a whole number, not float"),
    ("model", [1, 2], "'model' must map parameter names to tensors"),
    ("optimizer", {"state": {}}, "'optimizer' must be an optimizer state"),
    ("rng_torch", torch.zeros(3), "'rng_torch' must be a random-generator state"),
    ("rng_torch", torch.zeros(7, dtype=torch.uint8), "'rng_torch' is not a valid random state"),
    ("history", "[{", "'history' is not valid JSON"),
    ("history", '{"a": 1}', "'history' must be a list of epochs"),
    ("project", '{"format": "nope"}', "not a Studio project"),
    ("callbacks", {"checkpointer": 3}, "'callbacks' must map callbacks to their states"),
    ("callbacks", {"checkpointer": {"best": 1.0}}, "the state of checkpointer does not load"),
    ("scheduler", "x", "'scheduler' must be an object or empty"),
]


@pytest.mark.parametrize(("field", "value", "expected"), WRONG,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(WRONG)])
def test_a_wrong_value_is_named(tmp_path, good, field, value, expected) -> None:
    result = _resume(tmp_path, {**good, field: value})
    assert result.status == "failed"
    assert expected in result.message
    assert "internal error" not in result.message


def test_weights_of_another_network_name_the_layer(tmp_path, good) -> None:
    model = dict(good["model"])
    model["h.weight"] = torch.zeros(8, 13)
    result = _resume(tmp_path, {**good, "model": model})
    assert result.status == "failed"
    assert "layer 'h': h.weight is [8, 13] in the file, [16, 13] in the network" \
        in result.message


def test_an_optimizer_state_of_another_network_is_one_line(tmp_path, good) -> None:
    opt = {"state": {}, "param_groups": [{**good["optimizer"]["param_groups"][0],
                                          "params": [0, 1]}]}
    result = _resume(tmp_path, {**good, "optimizer": opt})
    assert result.status == "failed"
    assert "the checkpoint's optimizer state does not fit this run" in result.message


def test_a_checkpoint_past_the_projects_epochs_says_what_to_change(tmp_path, good) -> None:
    result = _resume(tmp_path, good, mlp(epochs=3))
    assert result.status == "completed"  # 1 of 3 done: it goes on
    short = mlp(epochs=1)
    ok = _resume(tmp_path, good, short)
    assert ok.status == "completed" and ok.epochs == 1  # exactly done: nothing left to do
    history = '[{"epoch": 1}, {"epoch": 2}]'
    over = _resume(tmp_path, {**good, "epoch": 2, "history": history}, short)
    assert over.status == "failed"
    assert "has completed 2 epochs but the project trains for 1" in over.message


def test_the_cli_answers_a_damaged_checkpoint_with_one_line(tmp_path, good) -> None:
    project = tmp_path / "p.studio.json"
    mlp(epochs=3).save(project)
    path = tmp_path / "bad.ckpt"
    save_checkpoint(path, {k: v for k, v in good.items()
                           if k not in ("format", "version", "rng_torch")})
    proc = subprocess.run([sys.executable, "-m", "studio", "train", str(project), "--resume",
                           str(path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged checkpoint: 'rng_torch' is missing" in lines[0]
