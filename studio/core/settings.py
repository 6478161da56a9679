"""The one settings schema: every data and training setting of a project, and the resolve step.

Each setting is one pydantic field with its type, limits, default, unit and a one-line
description. Validation (loading a file, an edit in the window, a CLI override), the
inspector's forms (``setting_specs``), the format's reference tables and the trainer all read
them from here. Choices with parameters of their own (loss, optimizer, scheduler,
augmentations, dataset options) are allow-lists in ``choices.py`` with a ``Schema`` each.

A project file stores only what differs from the defaults (``{"type": "SGD"}``). Resolving
fills every parameter from the allow-list's schema, maps Studio's names onto torch's
(``beta1``/``beta2`` → ``betas``, ``mode: auto`` → ``min``/``max``), and checks combinations
torch would refuse only at run time. The trainer and the exported ``train.py`` both build
from the resolved form (``studio/training/builders.py``), so a default is written down once
and ``studio validate`` accepts exactly what ``studio train`` can run.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from .choices import (
    AUGMENTATIONS,
    DATASETS,
    DEVICES,
    LOSSES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULERS,
    WARMUP,
)
from .errors import ParamError
from .params import Kind, ParamSpec, Schema


def _setting(default: Any, description: str, unit: str = "", **limits: Any) -> Any:
    """A settings field: its default, one line saying what it does, its unit and limits."""
    extra: JsonDict | None = {"unit": unit} if unit else None
    if callable(default):
        return Field(default_factory=default, description=description,
                     json_schema_extra=extra, **limits)
    return Field(default, description=description, json_schema_extra=extra, **limits)


def _typed(value: Any, allowed: dict[str, Schema], what: str,
           extra: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Validate ``{"type": NAME, **params}`` against an allow-list."""
    if not isinstance(value, dict):
        raise ValueError(f"must be an object like {{\"type\": ...}}, not {type(value).__name__}")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise ValueError(f"unknown {what} {kind!r}; choose one of {', '.join(allowed)}")
    schema = allowed[kind]
    if extra:
        schema = Schema(schema.params + tuple(extra))
    params = {k: v for k, v in value.items() if k != "type"}
    try:
        return {"type": kind, **schema.validate(params, "")}
    except ParamError as exc:
        where = (exc.where or "").lstrip(".")
        raise ValueError(f"{where}: {exc.message}" if where else exc.message) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class EarlyStopping(_Strict):
    monitor: str = _setting("val_loss", "Metric watched, e.g. val_loss or val_accuracy.",
                            min_length=1, max_length=200)
    mode: Literal["auto", "min", "max"] = _setting(
        "auto", "min: lower is better; max: higher; auto from the metric's name.")
    patience: int = _setting(5, "Epochs without improvement before stopping.", "epochs",
                             ge=0, le=100_000)
    min_delta: float = _setting(0.0, "Smallest change that counts as an improvement.",
                                ge=0.0, le=1e9)
    restore_best: bool = _setting(True, "Go back to the best epoch's weights when stopping.")


class LayerStats(_Strict):
    # 100: sampling costs a small MLP's 1 ms steps about 2 ms (docs/performance.md)
    every: int = _setting(100, "Optimizer steps between two samples of the statistics.",
                          "steps", ge=1, le=1_000_000)
    bins: int = _setting(32, "Histogram bins of each layer's activations.", ge=4, le=256)


class Distill(_Strict):
    teacher: Annotated[str, Field(min_length=1, max_length=4096)] = _setting(
        ..., "A run's weights (.safetensors or .ckpt, carrying its project) whose network "
        "teaches this one; relative to the project.")
    temperature: float = _setting(4.0, "Softens both networks' class scores before they are "
                                  "compared; higher shows more of the teacher's second "
                                  "choices.", ge=1.0, le=100.0)
    alpha: float = _setting(0.5, "Share of the loss that comes from the teacher (the rest is "
                            "the ordinary loss on the labels).", ge=0.0, le=1.0)


class DataSettings(_Strict):
    dataset: str = _setting("mnist-5k", "Where the samples come from.")
    options: dict[str, Any] = _setting(dict, "The dataset's own options (path, target, …).")
    val_fraction: float = _setting(0.2, "Share of the samples held out for validation.",
                                   ge=0.0, lt=1.0)
    test_fraction: float = _setting(
        0.0, "Share of the samples held out for testing (stratified, fixed by the seed, apart "
        "from validation): the run's best weights are scored on it at the end (test_ "
        "metrics). val_fraction + test_fraction must be < 1. Ignored, with a note, for "
        "datasets with their own test set (mnist, fashion-mnist, cifar10), which is used.",
        ge=0.0, lt=1.0)
    batch_size: int = _setting(64, "Samples per optimizer step (over all processes).",
                               "samples", ge=1, le=1 << 20)
    normalize: bool = _setting(True, "Scale inputs with the training part's statistics.")
    # a field of its own, not a third value of ``normalize``: project files that say
    # ``"normalize": true`` keep loading, and meaning, exactly what they did
    scaling: Literal["standard", "minmax"] = _setting(
        "standard", "How normalize scales inputs: standard (zero mean, unit variance) or minmax "
        "(0…1 on the training part); regression targets are standardised either way.")
    augment: list[dict[str, Any]] = _setting(
        list, "Image augmentations applied to training batches, in order.")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown dataset {v!r}; choose one of {', '.join(DATASETS)}")
        return v

    @field_validator("test_fraction")
    @classmethod
    def _leaves_training(cls, v: float, info: Any) -> float:
        val = info.data.get("val_fraction", 0.0)
        if v > 0 and val + v >= 1.0:
            raise ValueError(f"val_fraction + test_fraction must be < 1 to leave samples to "
                             f"train on; got {val:g} + {v:g}")
        return v

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = DATASETS.get(info.data.get("dataset", ""))
        if kind is None:
            return v
        try:
            return kind.schema.validate(v, "")
        except ParamError as exc:
            where = (exc.where or "").lstrip(".")
            raise ValueError(f"{where}: {exc.message}" if where else exc.message) from None

    @field_validator("augment")
    @classmethod
    def _augment(cls, v: list[Any]) -> list[dict[str, Any]]:
        out = []
        for i, a in enumerate(v):
            try:
                out.append(_typed(a, AUGMENTATIONS, "augmentation"))
            except ValueError as exc:
                raise ValueError(f"[{i}].{exc}" if ": " in str(exc) else f"[{i}]: {exc}"
                                 ) from None
        return out


class TrainingSettings(_Strict):
    loss: dict[str, Any] = _setting(lambda: {"type": "CrossEntropyLoss"},
                                    "What the network minimises.")
    optimizer: dict[str, Any] = _setting(lambda: {"type": "Adam", "lr": 0.001},
                                         "How the weights are updated.")
    scheduler: dict[str, Any] | None = _setting(
        None, "How the learning rate changes over the run; empty: constant.")
    epochs: int = _setting(5, "Passes over the training data.", "epochs", ge=1, le=100_000)
    device: Literal[DEVICES] = _setting(  # type: ignore[valid-type]
        "auto", "Where to train; auto picks CUDA, then Apple's MPS, then the CPU.")
    seed: int = _setting(0, "Seeds weights, the split, shuffling and augmentation.",
                         ge=0, le=2**32 - 1)
    early_stopping: EarlyStopping | None = _setting(
        None, "Stop when a metric stops improving; empty: train every epoch.")
    precision: Literal[PRECISIONS] = _setting(  # type: ignore[valid-type]
        "auto", "auto: bf16 mixed precision on GPUs that have it, fp32 elsewhere.")
    compile: bool = _setting(False, "Compile the model with torch.compile (slow to start).")
    l1: float = _setting(0.0, "L1 penalty on the weights, added to the loss.", ge=0.0,
                         le=10.0)
    l2: float = _setting(0.0, "L2 penalty on the weights, added to the loss.", ge=0.0,
                         le=10.0)
    grad_clip: Annotated[float, Field(gt=0.0, le=1e9)] | None = _setting(
        None, "Clip the gradient norm to this; empty: no clipping.")
    init_weights: Annotated[str, Field(min_length=1, max_length=4096)] | None = _setting(
        None, "A run's weights to start from, matched by node id (relative to the project).")
    layer_stats: LayerStats | None = _setting(
        None, "Each layer's gradient, weight and activation statistics, sampled every so many "
        "steps into layer_stats.jsonl; empty: off.")
    distill: Distill | None = _setting(
        None, "Learn from a trained teacher's softened outputs as well as from the labels "
        "(knowledge distillation); empty: off.")

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: Any) -> dict[str, Any]:
        return _typed(v, LOSSES, "loss")

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: Any) -> dict[str, Any]:
        spec = _typed(v, OPTIMIZERS, "optimizer")
        resolve_optimizer(spec)  # combinations torch refuses only when it runs
        return spec

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: Any) -> dict[str, Any] | None:
        return None if v is None else _typed(v, SCHEDULERS, "scheduler", (WARMUP,))


def error_message(err: Any) -> str:
    """One of pydantic's errors in the words every other check uses (``must be ≥ 1, got 0``).
    """
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = _show(value)
    bounds = {"greater_than_equal": ("≥", "ge"), "greater_than": (">", "gt"),
              "less_than_equal": ("≤", "le"), "less_than": ("<", "lt")}
    if kind in bounds:
        op, key = bounds[kind]
        return f"must be {op} {_show(ctx.get(key))}, got {got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, not {got}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a finite number, not {got}" if kind == "finite_number" \
            else f"must be a number, not {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {got}"
    if kind in ("string_type", "dict_type", "list_type", "model_type", "model_attributes_type"):
        what = {"string_type": "text", "dict_type": "an object", "list_type": "a list"}.get(
            kind, "an object")
        return f"must be {what}, not {got}"
    if kind == "literal_error":
        return f"must be one of {str(ctx.get('expected', '')).replace(chr(39), '')}; got {got}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "extra_forbidden":
        return "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_SCALARS: dict[type, Kind] = {bool: "bool", int: "int", float: "float", str: "str"}


def _limit(value: object) -> float:
    """A field's ``ge``/``gt``/``le``/``lt``: the settings schema sets numbers only."""
    assert isinstance(value, int | float), f"non-numeric settings limit {value!r}"
    return value


def setting_specs(model: type[BaseModel], names: list[str] | None = None) -> list[ParamSpec]:
    """The scalar settings of ``model`` (numbers, flags, choices, text) as ``ParamSpec``s for
    forms and reference tables, with the field's limits, default, unit and description.
    Fields holding objects (loss, optimizer, augmentations, …) are left to their own editors."""
    out = []
    for name, info in model.model_fields.items():
        if names is not None and name not in names:
            continue
        annotation, nullable = info.annotation, False
        args = typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is \
                typing.Union:
            rest = [a for a in args if a is not type(None)]
            if len(rest) != 1:
                continue
            annotation, nullable = rest[0], True
        metadata = list(info.metadata)
        if typing.get_origin(annotation) is Annotated:
            annotation, *more = typing.get_args(annotation)
            for m in more:
                metadata += list(getattr(m, "metadata", [m]))
        choices: tuple[str, ...] = ()
        kind: Kind
        if typing.get_origin(annotation) is Literal:
            kind, choices = "choice", tuple(typing.get_args(annotation))
        elif annotation in _SCALARS:
            kind = _SCALARS[annotation]
        else:
            continue
        lo: float | None = None
        hi: float | None = None
        lo_open = hi_open = False
        for m in metadata:
            if isinstance(m, at.Ge):
                lo = _limit(m.ge)
            elif isinstance(m, at.Gt):
                lo, lo_open = _limit(m.gt), True
            elif isinstance(m, at.Le):
                hi = _limit(m.le)
            elif isinstance(m, at.Lt):
                hi, hi_open = _limit(m.lt), True
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = info.get_default(call_default_factory=True)
        out.append(ParamSpec(name=name, kind=kind, default=default,
                             doc=info.description or "", min=lo, max=hi, choices=choices,
                             nullable=nullable, min_exclusive=lo_open, max_exclusive=hi_open,
                             unit=str(extra.get("unit", ""))))
    return out


def better_mode(monitor: str, mode: str = "auto") -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("acc", "f1", "precision", "recall", "r2")) \
        else "min"


def resolve_loss(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"type": name, **every torch argument}``."""
    kind = spec["type"]
    return {"type": kind, **LOSSES[kind].resolve(_params(spec))}


def resolve_optimizer(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"type": torch.optim class name, **its keyword arguments}``; raises ValueError for a
    combination torch refuses."""
    kind = spec["type"]
    kw = OPTIMIZERS[kind].resolve(_params(spec))
    if "beta1" in kw:
        kw["betas"] = [kw.pop("beta1"), kw.pop("beta2")]
    if kind == "SGD" and kw["nesterov"] and (kw["momentum"] <= 0 or kw["dampening"] != 0):
        raise ValueError("nesterov: Nesterov momentum needs momentum > 0 and dampening 0")
    return {"type": kind, **kw}


def resolve_scheduler(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"type": name, "warmup_epochs": n, **torch arguments}``; ReduceLROnPlateau also
    keeps ``monitor`` (the metric it steps on) with ``mode`` decided from it."""
    if spec is None:
        return None
    kind = spec["type"]
    params = _params(spec)
    warmup = params.pop(WARMUP.name, WARMUP.default)
    kw = SCHEDULERS[kind].resolve(params)
    if kind == "ReduceLROnPlateau":
        kw["mode"] = better_mode(kw["monitor"], kw["mode"])
    return {"type": kind, "warmup_epochs": warmup, **kw}


def resolve_training(training: Any) -> dict[str, Any]:
    """Everything the training loop needs from ``TrainingSettings``, resolved."""
    optimizer = resolve_optimizer(training.optimizer)
    scheduler = resolve_scheduler(training.scheduler)
    if scheduler is not None and scheduler["type"] == "OneCycleLR":
        # torch cycles the momentum by default: it fails for optimizers without one and
        # would quietly add momentum to SGD without it
        scheduler["cycle_momentum"] = "betas" in optimizer or optimizer.get("momentum", 0) > 0
    return {"loss": resolve_loss(training.loss), "optimizer": optimizer, "scheduler": scheduler}


def _params(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "type"}
