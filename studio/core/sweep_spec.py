"""A project's ``sweep``: the search space of a hyperparameter sweep, checked before anything
runs, and the values of one trial written into a copy of the project.

Paths name any setting or node parameter: ``training.optimizer.lr``, ``data.batch_size``,
``graph.nodes.<id>.params.out_features``. Each range is checked by writing its ends (or each
choice) into the project and loading it with the project's own validation, so a sweep accepts
exactly the values a project file would.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from .blockdef import BLOCK
from .errors import ProjectError, StudioError

if TYPE_CHECKING:  # pragma: no cover
    from .project import Project

SAMPLERS = ("tpe", "random", "grid", "gp")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
#: metrics each epoch logs, by task; the objective is one of them
METRICS = {
    "classification": ("val_loss", "val_accuracy", "val_top5_accuracy", "val_precision",
                       "val_recall", "val_f1", "loss", "accuracy"),
    "regression": ("val_loss", "val_mae", "val_mse", "val_rmse", "val_r2", "loss"),
}
KEYS = {"objective", "parameters", "sampler", "pruner", "trials", "parallel"}


def default_sweep() -> dict[str, Any]:
    """An empty search space with the defaults: what "Sweep this…" starts from."""
    return {"objective": {"metric": "val_loss", "direction": "minimize"}, "parameters": {},
            "sampler": "tpe", "pruner": "median", "trials": 20, "parallel": 1}


def where(path: str) -> str:
    return f'sweep.parameters["{path}"]'


def validate_sweep(sweep: Any, project: Project) -> dict[str, Any]:
    """The sweep with its defaults filled in; raises ProjectError naming the field."""
    if not isinstance(sweep, dict):
        raise ProjectError("must be an object", "sweep")
    unknown = set(sweep) - KEYS
    if unknown:
        raise ProjectError(f"unknown field {sorted(unknown)[0]!r}", "sweep")
    out = {**default_sweep(), **copy.deepcopy(sweep)}
    obj = out["objective"]
    if not isinstance(obj, dict) or set(obj) - {"metric", "direction"}:
        raise ProjectError('must be {"metric": ..., "direction": ...}', "sweep.objective")
    obj.setdefault("metric", "val_loss")
    obj.setdefault("direction", "minimize")
    known = sorted({m for ms in METRICS.values() for m in ms})
    if obj["metric"] not in known:
        raise ProjectError(f"unknown metric {obj['metric']!r}; one of {', '.join(known)}",
                           "sweep.objective.metric")
    if obj["direction"] not in DIRECTIONS:
        raise ProjectError("must be maximize or minimize", "sweep.objective.direction")
    for key, names in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if out[key] not in names:
            raise ProjectError(f"unknown {key} {out[key]!r}; one of {', '.join(names)}",
                               f"sweep.{key}")
    for key in ("trials", "parallel"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100_000:
            raise ProjectError("must be a whole number from 1", f"sweep.{key}")
    params = out["parameters"]
    if not isinstance(params, dict):
        raise ProjectError("must be an object of path: range", "sweep.parameters")
    for path, spec in params.items():
        _check_range(path, spec, out["sampler"])
        for value in candidates(spec):
            try:
                apply_params(project, {path: value})
            except StudioError as exc:
                said = exc.message if exc.where == where(path) else \
                    f"{exc} (value {value!r})"
                raise ProjectError(said, where(path)) from None
    return out


def candidates(spec: dict[str, Any]) -> list[Any]:
    """The values that stand for a range when it is checked: its ends, or every choice."""
    if spec["type"] == "categorical":
        return list(spec["choices"])
    return [spec["low"], spec["high"]]


def _check_range(path: str, spec: Any, sampler: str) -> None:
    at = where(path)
    if not isinstance(spec, dict) or spec.get("type") not in ("float", "int", "categorical"):
        raise ProjectError('needs "type": float, int or categorical', at)
    allowed = {"type", "choices"} if spec["type"] == "categorical" else \
        {"type", "low", "high", "log", "step"}
    extra = set(spec) - allowed
    if extra:
        raise ProjectError(f"unknown field {sorted(extra)[0]!r}", at)
    if spec["type"] == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ProjectError("choices must be a non-empty list", at)
        return
    lo, hi = spec.get("low"), spec.get("high")
    number = (int,) if spec["type"] == "int" else (int, float)
    if any(isinstance(v, bool) or not isinstance(v, number) for v in (lo, hi)):
        raise ProjectError(f"low and high must be {'whole ' if number == (int,) else ''}"
                           "numbers", at)
    assert isinstance(lo, int | float) and isinstance(hi, int | float)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ProjectError(f"an empty range: low {lo} must be below high {hi}", at)
    if spec.get("log") and lo <= 0:
        raise ProjectError("a log range needs low above 0", at)
    step = spec.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, number) or step <= 0:
            raise ProjectError("step must be above 0", at)
        if spec.get("log"):
            raise ProjectError("a range takes log or step, not both", at)
    if sampler == "grid" and spec["type"] == "float":
        raise ProjectError("the grid sampler needs values it can list: an int range, or "
                           "categorical choices (a float range has no grid)", at)


def apply_params(project: Project, params: dict[str, Any]) -> Project:
    """A copy of the project with each path set, loaded with the file format's validation."""
    d = project.to_dict()
    d.pop("sweep", None)  # a trial is a plain run
    for path, value in params.items():
        _set(d, path, value)
    loaded = type(project).from_dict(d)  # (the project module imports this one)
    loaded.path = project.path
    return loaded


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    if parts[0] == "graph":
        if len(parts) != 5 or parts[1] != "nodes" or parts[3] != "params":
            raise ProjectError("a node parameter is graph.nodes.<id>.params.<name>", where(path))
        node = next((n for n in d["graph"]["nodes"] if n["id"] == parts[2]), None)
        if node is None:
            raise ProjectError(f"no node {parts[2]!r}", where(path))
        from . import catalog

        spec = catalog.get(node["type"])
        names = [p.name for p in spec.schema.params] if spec else \
            ["repeat", "block"] if node["type"] == BLOCK else []  # a block: how many times
        if parts[4] not in names:
            raise ProjectError(f"node {parts[2]!r} ({node['type']}) has no parameter "
                               f"{parts[4]!r}; it has {', '.join(names) or 'none'}", where(path))
        node["params"][parts[4]] = value
        return
    if parts[0] not in ("training", "data") or len(parts) < 2:
        raise ProjectError("a path starts with training., data. or graph.nodes.", where(path))
    from .settings import DataSettings, TrainingSettings

    model = TrainingSettings if parts[0] == "training" else DataSettings
    if parts[1] not in model.model_fields:
        raise ProjectError(f"no setting {parts[0]}.{parts[1]}", where(path))
    section = d.setdefault(parts[0], {})
    if len(parts) == 2:
        section[parts[1]] = value
        return
    inner = section.get(parts[1])
    if inner is None:
        inner = section[parts[1]] = {}
    if not isinstance(inner, dict):
        raise ProjectError(f"{parts[0]}.{parts[1]} holds no fields", where(path))
    for key in parts[2:-1]:
        inner = inner.setdefault(key, {})
    inner[parts[-1]] = value
