"""The learning-rate range test: an exponential sweep, a stop at divergence, a suggestion that
trains, and a trainer left exactly as it was."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from studio.core.errors import TrainingError
from studio.training.loop import Loop
from studio.training.lr_find import lr_find, suggest_steepest, suggest_valley
from studio.training.trainer import Trainer
from tests.training.helpers import final_logs, mlp


def _set_up(project) -> Trainer:
    t = Trainer(project, default_callbacks=False)
    t.setup()
    return t


def test_the_rate_grows_exponentially_and_the_test_stops_when_the_loss_explodes() -> None:
    t = _set_up(mlp(optimizer={"type": "SGD", "lr": 0.01}))
    r = lr_find(t, steps=100)
    assert r.lrs[0] == pytest.approx(1e-7)
    ratios = [b / a for a, b in zip(r.lrs, r.lrs[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios)) == pytest.approx(1e8 ** (1 / 99))
    assert r.stopped == "diverged" and len(r.lrs) < 100  # plain SGD cannot take lr 10
    assert r.losses[-1] > 4 * min(r.losses[:-1])
    # the smoothed curve is the debiased moving average of the raw losses
    avg = 0.0
    for i, (raw, smooth) in enumerate(zip(r.raw, r.losses, strict=True)):
        avg = 0.98 * avg + 0.02 * raw
        assert smooth == pytest.approx(avg / (1 - 0.98 ** (i + 1)))


def test_the_suggestion_trains_and_the_rate_it_diverged_at_does_not(tmp_path) -> None:
    opt = {"type": "SGD", "lr": 0.01}
    r = lr_find(_set_up(mlp(optimizer=opt)))
    lowest = r.lrs[r.losses.index(min(r.losses))]
    assert r.lrs[0] < r.suggestion < lowest  # on the way down, short of the turn
    losses = {}
    for name, lr in (("tiny", 1e-6), ("suggested", r.suggestion), ("diverged", r.lrs[-1])):
        out = tmp_path / name
        Trainer(mlp(optimizer={**opt, "lr": lr}, epochs=3), out_dir=out).fit()
        loss = final_logs(out)["loss"]
        losses[name] = loss if math.isfinite(loss) else math.inf
    assert losses["suggested"] < 0.95 * losses["tiny"], losses
    assert losses["suggested"] < losses["diverged"], losses


def test_training_after_the_test_is_bit_identical_to_training_without_it() -> None:
    """Dropout draws from the global generator and the batches from the shuffle generator:
    both, the weights and the optimizer's state come back exactly."""
    project = mlp(epochs=2)
    a = _set_up(project)
    before = {k: v.clone() for k, v in a.model.state_dict().items()}
    lr_find(a, steps=40)
    assert all(torch.equal(before[k], v) for k, v in a.model.state_dict().items())
    assert a.optimizer.state_dict()["state"] == {}
    assert a.optimizer.param_groups[0]["lr"] == 0.01
    Loop(a).run()
    b = _set_up(mlp(epochs=2))
    Loop(b).run()
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_suggestions_on_a_known_curve() -> None:
    lrs = [10 ** (-7 + i * 0.1) for i in range(80)]
    # flat, then a fall between 1e-5 and 1e-2 (steepest near 1e-3), then a climb
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(x) + 3) * 3)) for x in lrs]
    losses = [v + (max(0.0, math.log10(x) + 1.5) ** 2) for v, x in zip(losses, lrs, strict=True)]
    assert suggest_steepest(lrs, losses) == pytest.approx(1e-3, rel=0.3)
    assert 1e-4 < suggest_valley(lrs, losses) < 1e-1


def test_a_range_that_diverges_at_once_is_refused() -> None:
    t = _set_up(mlp(optimizer={"type": "SGD", "lr": 0.01}))
    with pytest.raises(TrainingError, match="diverged"):
        lr_find(t, start=1e6, end=1e9, steps=20)


def test_the_command_prints_the_suggestion_and_writes_the_curve(tmp_path) -> None:
    project = tmp_path / "p.studio.json"
    mlp().save(project)
    out = tmp_path / "lr"
    run = subprocess.run([sys.executable, "-m", "studio", "lr-find", str(project), "--out",
                          str(out), "--steps", "60"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 1 and run.stdout.startswith("suggested learning rate ")
    d = json.loads((out / "lr_find.json").read_text())
    assert {"lrs", "losses", "suggestion"} <= set(d) and len(d["lrs"]) == len(d["losses"])
    assert f"{d['suggestion']:.2e}" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "studio", "lr-find", str(tmp_path / "no.json")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
