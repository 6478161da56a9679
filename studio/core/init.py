"""Weight initialisation per node: torch.nn.init's schemes, one table.

A node's ``init`` maps a tensor name to a scheme: ``{"weight": "xavier_uniform", "bias":
"zeros"}``, or with numbers ``{"weight": {"type": "normal", "std": 0.02}}``. Validation, the
inspector, the builder, the exported ``model.py`` and the docs all read ``SCHEMES``.

Tensor names are families, not torch's attribute names: ``weight`` is every weight matrix of
the layer (``weight_ih_l0``, ``weight_hh_l0``, … of an LSTM; ``in_proj_weight`` and
``out_proj.weight`` of attention) and ``bias`` every bias, so a recurrent layer is set up with
one choice per family. The catalog says which families a layer has and how many dims they have
(``LayerSpec.init_tensors``); the built module's parameters are matched by ``family``.

torch is imported only inside ``apply_init``, so importing the core stays instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ParamError
from .params import Kind, ParamSpec, Schema

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def P(name: str, kind: Kind, default: Any, doc: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name=name, kind=kind, default=default, doc=doc, **kw)


_NO_ARGS = Schema()
_BIG = 1e6  # numbers past this make no sense as initial weights, and overflow float16
_GAIN = P("gain", "float", 1.0, "Scale on the computed range.", min=0.0, max=100.0,
          min_exclusive=True)
_MEAN = P("mean", "float", 0.0, "Mean of the distribution.", min=-_BIG, max=_BIG)
_STD = P("std", "float", 1.0, "Standard deviation.", min=0.0, max=_BIG, min_exclusive=True)
_KAIMING = (
    P("mode", "choice", "fan_in", "fan_in keeps the forward pass's variance; fan_out the "
      "backward pass's.", choices=("fan_in", "fan_out")),
    P("nonlinearity", "choice", "relu", "The activation that follows the layer (sets the "
      "gain).", choices=("relu", "leaky_relu", "tanh", "sigmoid", "linear", "selu")),
)


@dataclass(frozen=True)
class Scheme:
    """One ``torch.nn.init`` function (``name`` + ``_``) with its arguments.

    ``min_dims``: fewest dims of a tensor it works on (fan-in and fan-out, or a matrix to make
    orthogonal, need two). ``ordered``: two arguments where the first must be below the second.
    """

    name: str
    doc: str
    schema: Schema = _NO_ARGS
    min_dims: int = 1
    ordered: tuple[str, str] | None = None

    @property
    def function(self) -> str | None:
        """The torch.nn.init function called; None for ``default`` (the layer as built)."""
        return None if self.name == "default" else f"{self.name}_"


_SCHEMES = (
    Scheme("default", "torch's own initialisation for the layer (left as built)."),
    Scheme("xavier_uniform", "Glorot: uniform in ±gain·√(6 / (fan_in + fan_out)); for tanh "
           "and sigmoid layers.", Schema((_GAIN,)), min_dims=2),
    Scheme("xavier_normal", "Glorot: normal with std gain·√(2 / (fan_in + fan_out)).",
           Schema((_GAIN,)), min_dims=2),
    Scheme("kaiming_uniform", "He: uniform in ±gain·√(3 / fan); for ReLU layers.",
           Schema(_KAIMING), min_dims=2),
    Scheme("kaiming_normal", "He: normal with std gain / √fan; for ReLU layers.",
           Schema(_KAIMING), min_dims=2),
    Scheme("normal", "Normal with the given mean and std (Keras's RandomNormal).",
           Schema((_MEAN, _STD))),
    Scheme("trunc_normal", "Normal redrawn outside [a, b] (ViT and BERT start with std "
           "0.02).", Schema((_MEAN, _STD,
                             P("a", "float", -2.0, "Lowest value.", min=-_BIG, max=_BIG),
                             P("b", "float", 2.0, "Highest value.", min=-_BIG, max=_BIG))),
           ordered=("a", "b")),
    Scheme("uniform", "Uniform in [a, b) (Keras's RandomUniform).",
           Schema((P("a", "float", 0.0, "Lowest value.", min=-_BIG, max=_BIG),
                   P("b", "float", 1.0, "Highest value (excluded).", min=-_BIG, max=_BIG))),
           ordered=("a", "b")),
    Scheme("constant", "Every value the same.",
           Schema((P("val", "float", 0.0, "The value.", min=-_BIG, max=_BIG),))),
    Scheme("zeros", "Every value 0 (the usual start for biases)."),
    Scheme("ones", "Every value 1 (the usual start for normalisation scales)."),
    Scheme("orthogonal", "A (semi-)orthogonal matrix, times gain: keeps a recurrent state's "
           "size over many steps.", Schema((_GAIN,)), min_dims=2),
)

#: scheme name → its description; the order is the inspector's
SCHEMES: dict[str, Scheme] = {s.name: s for s in _SCHEMES}

#: what a node's ``init`` holds once validated: family → {"type": scheme, explicit args}
Init = dict[str, dict[str, Any]]


def family(param_name: str) -> str | None:
    """The tensor family of a module parameter (``weight_hh_l0`` → ``weight``), or None."""
    leaf = param_name.rsplit(".", 1)[-1]
    if "bias" in leaf:
        return "bias"
    if "weight" in leaf:
        return "weight"
    return None


def _dims(n: int) -> str:
    return f"{n}-D"


def validate_init(raw: Any, tensors: Mapping[str, int], where: str = "init") -> Init:
    """Check a node's ``init`` against the tensors its layer has (family → dims).

    Returns the canonical form, ``default`` entries dropped; raises ParamError whose ``where``
    is the field (``init.weight``).
    """
    if not isinstance(raw, Mapping):
        raise ParamError("must be an object: tensor → scheme", where)
    out: Init = {}
    for tensor, entry in raw.items():
        field = f"{where}.{tensor}"
        if tensor not in tensors:
            has = ", ".join(tensors) if tensors else "none"
            raise ParamError(f"the layer has no tensor {tensor!r} to initialise (it has: "
                             f"{has})", field)
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, Mapping):
            raise ParamError("must be a scheme name or {\"type\": scheme, …}", field)
        name = entry.get("type")
        scheme = SCHEMES.get(name) if isinstance(name, str) else None
        if scheme is None:
            raise ParamError(f"unknown scheme {name!r}; choose one of {', '.join(SCHEMES)}",
                             field)
        args = scheme.schema.validate({k: v for k, v in entry.items() if k != "type"}, field)
        if tensors[tensor] < scheme.min_dims:
            raise ParamError(f"{scheme.name} needs a tensor of {scheme.min_dims} or more dims; "
                             f"{tensor} is {_dims(tensors[tensor])} here (try normal, "
                             "uniform, constant, zeros or ones)", field)
        if scheme.ordered:
            lo, hi = scheme.ordered
            full = scheme.schema.resolve(args)
            if not full[lo] < full[hi]:
                raise ParamError(f"{lo} ({full[lo]}) must be below {hi} ({full[hi]})", field)
        if scheme.name != "default":
            out[tensor] = {"type": scheme.name, **args}
    return out


def compact(init: Init) -> dict[str, Any]:
    """The file form: a bare scheme name where no number is given."""
    return {t: e["type"] if len(e) == 1 else dict(e) for t, e in init.items()}


def calls(module: nn.Module, init: Init) -> list[tuple[str, str, dict[str, Any]]]:
    """``(parameter name, torch.nn.init function, arguments)`` in the module's parameter
    order: what the builder runs and the exported ``model.py`` writes, in the same order so
    that the same seed draws the same numbers."""
    out = []
    for pname, _ in module.named_parameters():
        entry = init.get(family(pname) or "")
        if entry is None:
            continue
        scheme = SCHEMES[entry["type"]]
        if scheme.function is None:
            continue
        args = scheme.schema.resolve({k: v for k, v in entry.items() if k != "type"})
        out.append((pname, scheme.function, args))
    return out


def apply_init(module: nn.Module, init: Init) -> None:
    """Initialise a freshly built layer in place, drawing from torch's global generator (the
    builder seeds it)."""
    import torch
    from torch import nn

    params = dict(module.named_parameters())
    with torch.no_grad():
        for pname, function, args in calls(module, init):
            getattr(nn.init, function)(params[pname], **args)
