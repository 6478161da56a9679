"""Any settings the schema can describe either train or are refused when the file loads.

Hypothesis draws every data and training setting from the schema itself (its types, limits and
choices, a little past the limits too, and now and then a wrong type), builds a project on a
tiny real dataset and trains it: ``studio validate`` must accept exactly what ``studio train``
can run, so each draw ends either in a ProjectError naming the field or in a run that took at
least one optimizer step — never in an internal error. (``compile`` is left out: compiling
takes longer than the rest of the test.)
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from studio.core.choices import (
    AUGMENTATIONS,
    CLASSIFICATION_LOSSES,
    LOSSES,
    OPTIMIZERS,
    REGRESSION_LOSSES,
    SCHEDULERS,
    WARMUP,
)
from studio.core.errors import ProjectError, StudioError
from studio.core.params import ParamSpec
from studio.core.project import Project
from studio.core.settings import DataSettings, EarlyStopping, TrainingSettings, setting_specs
from studio.training import Trainer

#: small enough to train in a moment; the schema's own limits are exercised by validation
SMALL = {"epochs": 3, "batch_size": 4096, "patience": 3, "warmup_epochs": 3, "step_size": 3,
         "T_max": 5}


def _rarely(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any],
            one_in: int = 40) -> st.SearchStrategy[Any]:
    """``usual``, and one draw in ``one_in`` ``odd`` (Hypothesis favours a one_of's first
    branches and small numbers, so the odd one is the largest)."""
    return st.integers(0, one_in - 1).flatmap(lambda i: odd if i == one_in - 1 else usual)


def _number(spec: ParamSpec, whole: bool) -> st.SearchStrategy[Any]:
    lo = spec.min if spec.min is not None else -1e6
    hi = min(spec.max if spec.max is not None else 1e6, SMALL.get(spec.name, math.inf))
    if whole:
        inside = st.integers(math.ceil(lo), int(hi))
        edges = st.sampled_from([int(lo) - 1, int(hi) + 1, int(lo), int(hi)])
    else:
        inside = st.floats(lo, hi, allow_nan=False)
        edges = st.sampled_from([lo, hi, lo - 1e-3, hi + 1.0, math.nan, math.inf])
    return _rarely(inside, edges)


def value(spec: ParamSpec) -> st.SearchStrategy[Any]:
    """A value for one setting: mostly within the schema, sometimes past it or mistyped."""
    if spec.kind == "int":
        good = _number(spec, True)
    elif spec.kind == "float":
        good = _number(spec, False)
    elif spec.kind == "bool":
        good = st.booleans()
    elif spec.kind == "choice":
        good = _rarely(st.sampled_from(spec.choices), st.just("no-such-choice"))
    elif spec.kind == "str":
        good = st.one_of(st.sampled_from(["val_loss", "val_accuracy", "loss"]), st.text(
            max_size=12))
    else:
        good = st.just(spec.default)
    if spec.nullable:
        good = st.one_of(st.none(), good)
    return _rarely(good, st.sampled_from(["1", [1], {"x": 1}, None]))


@st.composite
def params_of(draw: Any, specs: list[ParamSpec]) -> dict[str, Any]:
    """Some of the parameters (a file names only what differs from the defaults)."""
    chosen = draw(st.lists(st.sampled_from(specs), unique_by=lambda p: p.name)) if specs else []
    return {p.name: draw(value(p)) for p in chosen}


@st.composite
def typed(draw: Any, table: dict[str, Any], names: tuple[str, ...] | None = None,
          extra: tuple[ParamSpec, ...] = ()) -> dict[str, Any]:
    kind = draw(st.sampled_from(names or tuple(table)))
    return {"type": kind, **draw(params_of(list(table[kind].params) + list(extra)))}


def _scalars(model: type, skip: tuple[str, ...] = ()) -> list[ParamSpec]:
    return [p for p in setting_specs(model) if p.name not in skip]


@st.composite
def projects(draw: Any) -> dict[str, Any]:
    classification = draw(st.booleans())
    data = {"dataset": "iris" if classification else "diabetes",
            **draw(params_of(_scalars(DataSettings, ("dataset",))))}
    if draw(st.booleans()):
        data["augment"] = draw(st.lists(typed(AUGMENTATIONS), max_size=2))
    training = draw(params_of(_scalars(TrainingSettings, ("compile", "init_weights",
                                                          "device"))))
    training["epochs"] = draw(st.integers(1, 2))
    training["device"] = draw(st.sampled_from(["auto", "cpu"]))
    training["loss"] = draw(typed(LOSSES, CLASSIFICATION_LOSSES if classification
                                  else REGRESSION_LOSSES))
    training["optimizer"] = draw(typed(OPTIMIZERS))
    if draw(st.booleans()):
        training["scheduler"] = draw(typed(SCHEDULERS, extra=(WARMUP,)))
    if draw(st.booleans()):
        training["early_stopping"] = draw(params_of(_scalars(EarlyStopping)))
    width = 3 if classification else 1
    inputs = 4 if classification else 10
    graph = {"nodes": [{"id": "x", "type": "Input", "params": {"shape": [inputs]}},
                       {"id": "h", "type": "Linear", "params": {"out_features": 8}},
                       {"id": "act", "type": "ReLU"},
                       {"id": "out", "type": "Linear", "params": {"out_features": width}}],
             "edges": [{"from": a, "to": b} for a, b in (("x", "h"), ("h", "act"),
                                                         ("act", "out"))]}
    return {"format": "studio.project", "version": 1, "name": "drawn", "graph": graph,
            "data": data, "training": training}


# found by this test: torch refuses ReduceLROnPlateau's factor 1.0, which the schema let in
_FACTOR_ONE = {
    "format": "studio.project", "version": 1, "name": "drawn",
    "graph": {"nodes": [{"id": "x", "type": "Input", "params": {"shape": [10]}},
                        {"id": "h", "type": "Linear", "params": {"out_features": 8}},
                        {"id": "act", "type": "ReLU"},
                        {"id": "out", "type": "Linear", "params": {"out_features": 1}}],
              "edges": [{"from": "x", "to": "h"}, {"from": "h", "to": "act"},
                        {"from": "act", "to": "out"}]},
    "data": {"dataset": "diabetes"},
    "training": {"epochs": 1, "loss": {"type": "MSELoss"}, "optimizer": {"type": "SGD"},
                 "scheduler": {"type": "ReduceLROnPlateau", "factor": 1.0}}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projects())
@example(_FACTOR_ONE)
def test_settings_train_a_step_or_are_refused_with_a_message(raw) -> None:
    try:
        project = Project.from_dict(raw)
    except ProjectError as exc:
        assert exc.message and exc.where, exc
        return
    trainer = Trainer(project, report_hz=0)
    result = trainer.fit()
    assert trainer.step >= 1, f"accepted by validation but did not train: {result.message}"
    if result.status == "failed":  # e.g. a learning rate that makes the loss NaN
        assert isinstance(result.error, StudioError)
        assert "internal error" not in result.message, result.message


@pytest.mark.parametrize("model", [DataSettings, TrainingSettings, EarlyStopping])
def test_every_scalar_setting_has_a_description_and_its_default_passes(model) -> None:
    for spec in setting_specs(model):
        assert spec.doc, spec.name
        assert spec.validate(spec.default) == spec.default


@pytest.mark.parametrize(("pct_start", "total"), [(0.5, 2), (0.25, 4), (0.1, 10), (0.999, 3)])
def test_one_cycle_whose_rise_ends_at_the_first_step_trains(pct_start, total) -> None:
    """Found by the test above: torch divides 0 by 0 when pct_start × steps is exactly 1."""
    from studio.training.builders import make_scheduler

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _, sched = make_scheduler({"type": "OneCycleLR", "pct_start": pct_start}, opt, total, 1)
    for _ in range(total):
        opt.step()
        sched.step()
    assert all(math.isfinite(g["lr"]) for g in opt.param_groups)
