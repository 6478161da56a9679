"""What torch is given equals what the catalog documents: defaults, renames, combinations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from studio.core.choices import LOSSES, OPTIMIZERS, SCHEDULERS, WARMUP
from studio.core.errors import ProjectError
from studio.core.project import Project
from studio.core.settings import resolve_loss, resolve_optimizer, resolve_scheduler
from studio.training import Trainer
from studio.training.builders import make_loss, make_optimizer, make_scheduler

from .helpers import mlp


def _params() -> list[nn.Parameter]:
    return list(nn.Linear(3, 2).parameters())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_given_only_its_type_gets_the_documented_defaults(name) -> None:
    opt = make_optimizer(resolve_optimizer({"type": name}), _params())
    for p in OPTIMIZERS[name].params:
        if p.name in ("beta1", "beta2"):
            assert opt.defaults["betas"][p.name == "beta2"] == p.default
        else:
            assert opt.defaults[p.name] == p.default, p.name


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_scheduler_given_only_its_type_gets_the_documented_defaults(name) -> None:
    spec = resolve_scheduler({"type": name})
    assert spec is not None and spec["warmup_epochs"] == WARMUP.default
    opt = make_optimizer(resolve_optimizer({"type": "SGD"}), _params())
    epoch_s, batch_s = make_scheduler(spec, opt, epochs=7, steps_per_epoch=3)
    sched = epoch_s or batch_s
    for p in SCHEDULERS[name].params:
        if p.name in ("monitor", "mode"):
            continue
        got = getattr(sched, p.name, None)
        if name == "CosineAnnealingLR" and p.name == "T_max":
            assert got == 7  # empty means the whole run
        elif name == "OneCycleLR":
            continue  # stored inside its phases; checked by the learning rate below
        elif name == "ReduceLROnPlateau" and p.name == "min_lr":
            assert sched.min_lrs == [p.default]
        else:
            assert got == p.default, p.name
    if name == "ReduceLROnPlateau":
        assert sched.mode == "min"  # auto on val_loss
    if name == "OneCycleLR":
        assert batch_s.total_steps == 21
        assert max(g["max_lr"] for g in opt.param_groups) == pytest.approx(10 * 0.01)


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_loss_given_only_its_type_gets_the_documented_defaults(name) -> None:
    loss = make_loss(resolve_loss({"type": name}))
    for p in LOSSES[name].params:
        assert getattr(loss, p.name) == p.default, p.name


def test_sgd_with_only_its_type_trains_at_the_documented_rate() -> None:
    project = mlp(epochs=1, optimizer={"type": "SGD"})
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert result.logs["lr"] == OPTIMIZERS["SGD"]["lr"].default == 0.01


def test_adam_with_only_beta1_trains() -> None:
    project = mlp(epochs=1, optimizer={"type": "Adam", "beta1": 0.8})
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert trainer.optimizer.defaults["betas"] == (0.8, 0.999)


def test_nesterov_without_momentum_is_refused_when_the_file_loads() -> None:
    text = mlp().dumps().replace('"type": "Adam", "lr": 0.01',
                                 '"type": "SGD", "nesterov": true')
    with pytest.raises(ProjectError) as err:
        Project.loads(text)
    assert err.value.where.endswith("training.optimizer.nesterov")
    assert "momentum > 0" in err.value.message


def test_plateau_mode_follows_the_monitored_metric() -> None:
    spec = resolve_scheduler({"type": "ReduceLROnPlateau", "monitor": "val_accuracy"})
    opt = torch.optim.SGD(_params(), lr=0.1)
    sched, _ = make_scheduler(spec, opt, 3, 3)
    assert sched.mode == "max"


@pytest.mark.parametrize(("optimizer", "cycles"), [
    ({"type": "Adagrad"}, False), ({"type": "SGD"}, False),
    ({"type": "SGD", "momentum": 0.9}, True), ({"type": "AdamW"}, True)])
def test_one_cycle_cycles_momentum_only_where_the_optimizer_has_one(optimizer, cycles) -> None:
    project = mlp(epochs=1, optimizer=optimizer, scheduler={"type": "OneCycleLR"})
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert trainer.batch_scheduler.cycle_momentum is cycles
    if optimizer == {"type": "SGD"}:
        assert trainer.optimizer.param_groups[0]["momentum"] == 0.0  # none added
