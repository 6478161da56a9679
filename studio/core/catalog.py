"""The layer catalog: one declarative entry per layer, the single source of truth.

The palette, the inspector's forms, shape inference, the module builder, code export and the
docs all read these entries; adding a layer is adding one entry here.

Shapes are *sample* shapes (no batch dimension): ``(1, 28, 28)`` is one MNIST image. Parameters
named ``dim``/``dims`` count the batch as dimension 0, as torch does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .params import Kind, ParamSpec, Schema, as_tuple

Shape = tuple[int, ...]
Params = dict[str, Any]
_Infer = Callable[[Sequence[Shape], Params], Shape]  # a shape rule
_Count = Callable[[Sequence[Shape], Params, Shape], int]  # a parameter or MAC count
TORCH_DOCS = "https://docs.pytorch.org/docs/stable"
SAME_SHAPE = "same shape as the input"


class Misfit(Exception):
    """Raised by a shape rule: the input does not fit. ``field`` names the parameter to blame."""

    def __init__(self, message: str, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.fix = fix


def _zero(_shapes: Sequence[Shape], _p: Params, _out: Shape) -> int:
    return 0


def _no_tensors(_p: Params) -> dict[str, int]:
    return {}


def _weight_bias(weight_dims: int, switch: str = "bias") -> Callable[[Params], dict[str, int]]:
    """A weight of ``weight_dims`` dims and, when ``params[switch]`` is on, a 1-D bias."""
    def tensors(p: Params) -> dict[str, int]:
        return {"weight": weight_dims, **({"bias": 1} if p[switch] else {})}
    return tensors


def _affine(switch: str) -> Callable[[Params], dict[str, int]]:
    """A normalisation's per-channel scale (``weight``) and shift (``bias``), when learned."""
    def tensors(p: Params) -> dict[str, int]:
        return {"weight": 1, "bias": 1} if p[switch] else {}
    return tensors


def _ln_tensors(p: Params) -> dict[str, int]:
    if not p["elementwise_affine"]:
        return {}
    return {"weight": p["dims"], **({"bias": p["dims"]} if p["bias"] else {})}


@dataclass(frozen=True)
class LayerSpec:
    """Everything Studio knows about one layer type.

    ``torch_class`` names the ``torch.nn`` class built; ``None`` means a small Studio module
    (``studio.core.modules``) for ops torch has as functions only. ``ctor`` maps the inferred
    input shapes and the user's parameters to the constructor's keyword arguments, filling the
    ``inferred`` input sizes.
    """

    type: str
    category: str
    doc: str
    schema: Schema
    infer: Callable[[Sequence[Shape], Params], Shape]
    torch_class: str | None = None
    inputs: int | None = 1  # number of input ports; None: two or more
    inferred: tuple[str, ...] = ()
    ctor: Callable[[Sequence[Shape], Params], Params] | None = None
    count_params: Callable[[Sequence[Shape], Params, Shape], int] = _zero
    count_macs: Callable[[Sequence[Shape], Params, Shape], int] = _zero
    dtype: str = "float"  # "float": needs float input; "any": passes the dtype on; "index": ints in
    studio_only: tuple[str, ...] = ()  # parameters Studio uses that the torch class does not take
    #: an index lookup: the parameter holding its table size (input ids must stay below it)
    vocabulary: str | None = None
    #: 2-D convolutions: on CUDA the model runs in channels-last memory order, which is faster
    channels_last: bool = False
    #: what the output already is, for the network doctor: "probabilities" (softmax),
    #: "log_probabilities" (log-softmax) or "sigmoid"; None for raw scores
    squashes: str | None = None
    #: an affine map with nothing non-linear inside (two in a row collapse into one)
    affine: bool = False
    #: functions of studio.core.modules the built module calls (copied into exported code)
    helpers: tuple[str, ...] = ()
    #: names people know the layer by, so a search for them finds it: "Keras: Dense" (where
    #: the name comes from, then the name) or a plain common name ("DropPath")
    aliases: tuple[str, ...] = ()
    #: the tensor families a node's ``init`` may name (``studio.core.init``), each with its
    #: number of dims, given the resolved params: ``weight`` is every weight matrix (all of a
    #: recurrent layer's), ``bias`` every bias
    init_tensors: Callable[[Params], dict[str, int]] = _no_tensors
    # the help the inspector and docs/layers.md show (``doc`` stays the one-line summary)
    #: what it computes, in plain Unicode math; two spaces part clauses (the inspector
    #: breaks the line there)
    formula: str = ""
    #: input shape → output shape, per sample
    shape_rule: str = ""
    #: two sentences: what it does, and when to use it
    about: str = ""
    #: the closest PyTorch documentation page; empty: the torch class's own (``doc_url``)
    url: str = ""

    @property
    def min_inputs(self) -> int:
        return 2 if self.inputs is None else self.inputs

    @property
    def doc_url(self) -> str:
        """Where PyTorch documents what this layer builds."""
        if self.url or not self.torch_class:
            return self.url
        return torch_doc(f"torch.nn.{self.torch_class}")

    def kwargs(self, in_shapes: Sequence[Shape], params: Params) -> Params:
        """Constructor arguments for the built module, inferred sizes included."""
        full = self.schema.resolve(params)
        if self.ctor is not None:
            return self.ctor(in_shapes, full)
        return {k: _jsonable(v) for k, v in full.items() if k not in self.studio_only}

    def module_path(self) -> str:
        """Dotted path of the class built, for code export."""
        if self.torch_class:
            return f"torch.nn.{self.torch_class}"
        return f"studio.core.modules.{self.type}"


def torch_doc(name: str) -> str:
    """The PyTorch reference page of ``name``, a dotted path such as ``torch.nn.Linear``."""
    return f"{TORCH_DOCS}/generated/{name}.html"


def _jsonable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def split_alias(alias: str) -> tuple[str, str]:
    """``("Keras", "Dense")`` from ``"Keras: Dense"``; ``("", "DropPath")`` from a plain name."""
    source, _, name = alias.rpartition(": ")
    return source, name


# ---------------------------------------------------------------------------------------------
# parameter helpers

def P(name: str, kind: Kind, default: Any, doc: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name=name, kind=kind, default=default, doc=doc, **kw)


def _bias(doc: str = "Learn an additive bias.") -> ParamSpec:
    return P("bias", "bool", True, doc)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _prod(xs: Sequence[int]) -> int:
    return math.prod(xs)


def _need_dims(shape: Shape, allowed: Sequence[int], what: str, fix: str | None = None) -> None:
    if len(shape) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise Misfit(
            f"input has {len(shape)} dims {_fmt(shape)}; {what} needs {want}", fix=fix
        )


def _norm_dim(dim: int, ndim: int, field: str = "dim") -> int:
    """Normalise a torch dim (batch included) against a sample of ``ndim - 1`` dims."""
    if not -ndim <= dim < ndim:
        raise Misfit(f"dim {dim} is out of range for {ndim} dims (batch included)", field)
    dim = dim % ndim
    if dim == 0:
        raise Misfit("dim 0 is the batch dimension; use 1 or later", field)
    return dim


def _same(shapes: Sequence[Shape], _p: Params) -> Shape:
    return shapes[0]


# ---------------------------------------------------------------------------------------------
# Input

def _input_infer(_shapes: Sequence[Shape], p: Params) -> Shape:
    shape = tuple(p["shape"])
    if any(d < 1 for d in shape):
        raise Misfit(f"shape {_fmt(shape)} has a size below 1", "shape")
    return shape


# ---------------------------------------------------------------------------------------------
# Linear

def _linear_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    if len(x) >= 3:
        raise Misfit(
            f"input has {len(x)} dims {_fmt(x)}; insert Flatten", fix="Flatten"
        )
    return (*x[:-1], p["out_features"])


def _linear_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    i = shapes[0][-1]
    out: int = p["out_features"]
    return i * out + (out if p["bias"] else 0)


def _linear_macs(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    x = shapes[0]
    out: int = p["out_features"]
    return _prod(x[:-1]) * x[-1] * out


def _linear_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"in_features": shapes[0][-1], "out_features": p["out_features"], "bias": p["bias"]}


# ---------------------------------------------------------------------------------------------
# Convolutions

def _conv_schema(n: int, transpose: bool = False) -> Schema:
    ps = [
        P("out_channels", "int", 32, "Number of filters (output channels).", min=1, max=65536),
        P("kernel_size", "ints", 3, "Filter size; one number or one per spatial dim.",
          min=1, max=1024, length=n),
        P("stride", "ints", 1, "Step between filter positions.", min=1, max=1024, length=n),
    ]
    if transpose:
        ps += [
            P("padding", "ints", 0, "Zeros removed from each side of the output.",
              min=0, max=1024, length=n),
            P("output_padding", "ints", 0, "Extra size added to one side of the output.",
              min=0, max=1024, length=n),
        ]
    else:
        ps.append(P("padding", "padding", 0,
                    "Zeros added on each side; 'same' keeps the size (stride 1 only).",
                    min=0, max=1024, length=n))
    ps += [
        P("dilation", "ints", 1, "Spacing between filter taps.", min=1, max=1024, length=n),
        P("groups", "int", 1, "Split channels into groups convolved separately.",
          min=1, max=65536),
        _bias(),
    ]
    if not transpose:
        ps.append(P("padding_mode", "choice", "zeros", "How padding values are made.",
                    choices=("zeros", "reflect", "replicate", "circular")))
    return Schema(tuple(ps))


def _conv_out_len(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _make_conv_infer(n: int, transpose: bool = False) -> Callable[[Sequence[Shape], Params], Shape]:
    what = f"{'ConvTranspose' if transpose else 'Conv'}{n}d"
    layout = "[C, L]" if n == 1 else "[C, H, W]"

    def infer(shapes: Sequence[Shape], p: Params) -> Shape:
        x = shapes[0]
        _need_dims(x, [n + 1], f"{what} ({layout})",
                   fix="Reshape" if len(x) < n + 1 else None)
        c, spatial = x[0], x[1:]
        g = p["groups"]
        if c % g:
            raise Misfit(f"input channels {c} are not divisible by groups {g}", "groups")
        if p["out_channels"] % g:
            raise Misfit(f"out_channels {p['out_channels']} is not divisible by groups {g}",
                         "groups")
        k = as_tuple(p["kernel_size"], n)
        s = as_tuple(p["stride"], n)
        d = as_tuple(p["dilation"], n)
        out: list[int] = []
        if transpose:
            pad = as_tuple(p["padding"], n)
            op = as_tuple(p["output_padding"], n)
            for i in range(n):
                if op[i] >= max(s[i], d[i]):
                    raise Misfit(
                        f"output_padding {op[i]} must be smaller than stride or dilation",
                        "output_padding")
                out.append((spatial[i] - 1) * s[i] - 2 * pad[i] + d[i] * (k[i] - 1) + op[i] + 1)
        else:
            padding = p["padding"]
            if padding == "same":
                if any(si != 1 for si in s):
                    raise Misfit("padding 'same' needs stride 1", "padding")
                total = [d[i] * (k[i] - 1) for i in range(n)]
                sides = [(t // 2, t - t // 2) for t in total]  # torch pads the extra on the right
                out = list(spatial)
            else:
                pad = (0,) * n if padding == "valid" else as_tuple(padding, n)
                sides = [(q, q) for q in pad]
                out = [_conv_out_len(spatial[i], k[i], s[i], pad[i], d[i]) for i in range(n)]
            mode = p.get("padding_mode", "zeros")
            for i in range(n):
                widest = max(sides[i])
                if mode == "reflect" and widest >= spatial[i]:
                    raise Misfit(f"reflect padding {widest} must be smaller than the input "
                                 f"size {spatial[i]}", "padding")
                if mode == "circular" and widest > spatial[i]:
                    raise Misfit(f"circular padding {widest} must not exceed the input size "
                                 f"{spatial[i]}", "padding")
        if any(o < 1 for o in out):
            raise Misfit(
                f"kernel {_fmt(k)} does not fit the input {_fmt(spatial)}; "
                f"output would be {_fmt(out)}", "kernel_size")
        return (p["out_channels"], *out)

    return infer


def _conv_params(n: int, transpose: bool = False) -> _Count:
    def count(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
        c = shapes[0][0]
        oc: int = p["out_channels"]
        g: int = p["groups"]
        k = _prod(as_tuple(p["kernel_size"], n))
        w = c * (oc // g) * k if transpose else oc * (c // g) * k
        return w + (oc if p["bias"] else 0)
    return count


def _conv_macs(n: int, transpose: bool = False) -> _Count:
    def count(shapes: Sequence[Shape], p: Params, out: Shape) -> int:
        c = shapes[0][0]
        oc: int = p["out_channels"]
        g: int = p["groups"]
        k = _prod(as_tuple(p["kernel_size"], n))
        if transpose:
            return _prod(shapes[0][1:]) * c * (oc // g) * k
        return _prod(out[1:]) * oc * (c // g) * k
    return count


def _conv_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    kw = {"in_channels": shapes[0][0]}
    kw.update({k: _jsonable(v) for k, v in p.items()})
    return kw


# ---------------------------------------------------------------------------------------------
# Pooling

def _pool_schema(n: int, kind: str) -> Schema:
    ps = [
        P("kernel_size", "ints", 2, "Window size.", min=1, max=1024, length=n),
        P("stride", "ints", None, "Step between windows; empty means the kernel size.",
          min=1, max=1024, length=n, nullable=True),
        P("padding", "ints", 0, "Implicit padding on each side (at most half the kernel).",
          min=0, max=512, length=n),
    ]
    if kind == "max":
        ps.append(P("dilation", "ints", 1, "Spacing between window elements.",
                    min=1, max=1024, length=n))
    ps.append(P("ceil_mode", "bool", False, "Round the output size up instead of down."))
    if kind == "avg":
        ps.append(P("count_include_pad", "bool", True, "Count padded zeros in the average."))
    return Schema(tuple(ps))


def _pool_out_len(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _make_pool_infer(n: int, kind: str) -> _Infer:
    what = f"{'Max' if kind == 'max' else 'Avg'}Pool{n}d"
    layout = "[C, L]" if n == 1 else "[C, H, W]"

    def infer(shapes: Sequence[Shape], p: Params) -> Shape:
        x = shapes[0]
        _need_dims(x, [n + 1], f"{what} ({layout})")
        k = as_tuple(p["kernel_size"], n)
        s = as_tuple(p["stride"], n) if p["stride"] is not None else k
        pad = as_tuple(p["padding"], n)
        d = as_tuple(p.get("dilation", 1), n)
        out = []
        for i in range(n):
            if pad[i] > k[i] // 2:
                raise Misfit(f"padding {pad[i]} is more than half the kernel {k[i]}", "padding")
            out.append(_pool_out_len(x[i + 1], k[i], s[i], pad[i], d[i], p["ceil_mode"]))
        if any(o < 1 for o in out):
            raise Misfit(f"window {_fmt(k)} does not fit the input {_fmt(x[1:])}",
                         "kernel_size")
        return (x[0], *out)

    return infer


def _make_adaptive_infer(n: int) -> _Infer:
    layout = "[C, L]" if n == 1 else "[C, H, W]"

    def infer(shapes: Sequence[Shape], p: Params) -> Shape:
        x = shapes[0]
        _need_dims(x, [n + 1], f"AdaptiveAvgPool{n}d ({layout})")
        return (x[0], *as_tuple(p["output_size"], n))

    return infer


# ---------------------------------------------------------------------------------------------
# Reshaping

def _flatten_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    nd = len(x) + 1
    s = _norm_dim(p["start_dim"], nd, "start_dim")
    e = p["end_dim"]
    if not -nd <= e < nd:
        raise Misfit(f"end_dim {e} is out of range for {nd} dims (batch included)", "end_dim")
    e %= nd
    if e < s:
        raise Misfit(f"end_dim {p['end_dim']} comes before start_dim {p['start_dim']}",
                     "end_dim")
    full = (0, *x)
    return (*full[1:s], _prod(full[s:e + 1]), *full[e + 1:])


def _reshape_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    target = list(p["shape"])
    total = _prod(x)
    if -1 in target:
        known = _prod([d for d in target if d != -1])
        if known == 0 or total % known:
            raise Misfit(f"cannot reshape {_fmt(x)} ({total} values) into {_fmt(target)}",
                         "shape")
        target[target.index(-1)] = total // known
    if _prod(target) != total:
        raise Misfit(
            f"cannot reshape {_fmt(x)} ({total} values) into {_fmt(target)} "
            f"({_prod(target)} values)", "shape")
    return tuple(target)


def _permute_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    full = (0, *x)
    dims = list(p["dims"])
    if sorted(dims) != list(range(len(full))):
        raise Misfit(f"dims {_fmt(dims)} must order all {len(full)} dims "
                     f"0..{len(full) - 1} (batch included)", "dims")
    if dims[0] != 0:
        raise Misfit("dims must start with 0: the batch stays first", "dims")
    return tuple(full[d] for d in dims[1:])


# ---------------------------------------------------------------------------------------------
# Normalisation

def _make_bn_infer(allowed: Sequence[int], what: str) -> _Infer:
    def infer(shapes: Sequence[Shape], _p: Params) -> Shape:
        _need_dims(shapes[0], allowed, what)
        return shapes[0]
    return infer


def _bn_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    return 2 * shapes[0][0] if p["affine"] else 0


def _bn_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"num_features": shapes[0][0], **p}


def _ln_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    if p["dims"] > len(x):
        raise Misfit(f"dims {p['dims']} is more than the input's {len(x)} dims {_fmt(x)}",
                     "dims")
    return x


def _ln_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    if not p["elementwise_affine"]:
        return 0
    n = _prod(shapes[0][-p["dims"]:])
    return n * (2 if p["bias"] else 1)


def _ln_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"normalized_shape": tuple(shapes[0][-p["dims"]:]), "eps": p["eps"],
            "elementwise_affine": p["elementwise_affine"], "bias": p["bias"]}


def _gn_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    if x[0] % p["num_groups"]:
        raise Misfit(f"{x[0]} channels are not divisible by num_groups {p['num_groups']}",
                     "num_groups")
    return x


def _gn_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"num_channels": shapes[0][0], **p}


# ---------------------------------------------------------------------------------------------
# Embedding, recurrent, attention

def _emb_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    pi = p["padding_idx"]
    if pi is not None and not -p["num_embeddings"] <= pi < p["num_embeddings"]:
        raise Misfit(f"padding_idx {pi} is outside 0..{p['num_embeddings'] - 1}", "padding_idx")
    return (*shapes[0], p["embedding_dim"])


def _pos_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    _need_dims(x, [2], "PositionalEmbedding ([sequence, features])", fix="Reshape")
    if x[0] > p["max_len"]:
        raise Misfit(f"the sequence has {x[0]} steps, more than max_len {p['max_len']}; "
                     "raise max_len", "max_len")
    return x


def _pos_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"max_len": p["max_len"], "embed_dim": shapes[0][1], "kind": p["kind"]}


def _pos_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    n: int = p["max_len"] * shapes[0][1]
    return n if p["kind"] == "learned" else 0


def _rnn_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    x = shapes[0]
    _need_dims(x, [2], "a recurrent layer ([sequence, features])", fix="Reshape")
    width = p["hidden_size"] * (2 if p["bidirectional"] else 1)
    return (x[0], width) if p["output"] == "sequence" else (width,)


def _rnn_counts(gates: int) -> tuple[_Count, _Count]:
    def params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
        h, dirs = p["hidden_size"], 2 if p["bidirectional"] else 1
        total = 0
        for layer in range(p["num_layers"]):
            i = shapes[0][1] if layer == 0 else h * dirs
            total += dirs * (gates * h * (i + h) + (2 * gates * h if p["bias"] else 0))
        return total

    def macs(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
        h, dirs = p["hidden_size"], 2 if p["bidirectional"] else 1
        steps = shapes[0][0]
        total = 0
        for layer in range(p["num_layers"]):
            i = shapes[0][1] if layer == 0 else h * dirs
            total += dirs * steps * gates * h * (i + h)
        return total

    return params, macs


def _rnn_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    kw = {k: v for k, v in p.items()}
    kw["input_size"] = shapes[0][1]
    return kw


def _attn_infer(shapes: Sequence[Shape], p: Params, heads: str = "num_heads") -> Shape:
    x = shapes[0]
    _need_dims(x, [2], "attention ([sequence, features])", fix="Reshape")
    if x[1] % p[heads]:
        raise Misfit(f"features {x[1]} are not divisible by {heads} {p[heads]}", heads)
    return x


def _mha_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    e = shapes[0][-1]
    return 4 * e * e + (4 * e if p["bias"] else 0)


def _mha_macs(shapes: Sequence[Shape], _p: Params, _o: Shape) -> int:
    seq, e = shapes[0]
    return 4 * seq * e * e + 2 * seq * seq * e


def _tel_params(shapes: Sequence[Shape], p: Params, _o: Shape) -> int:
    e, b = shapes[0][-1], p["bias"]
    f: int = p["dim_feedforward"]
    attn = 4 * e * e + (4 * e if b else 0)
    ff = 2 * e * f + ((f + e) if b else 0)
    norms = 2 * (2 * e if b else e)
    return attn + ff + norms


def _tel_macs(shapes: Sequence[Shape], p: Params, o: Shape) -> int:
    seq, e = shapes[0]
    f: int = p["dim_feedforward"]
    return _mha_macs(shapes, p, o) + 2 * seq * e * f


def _tel_ctor(shapes: Sequence[Shape], p: Params) -> Params:
    return {"d_model": shapes[0][-1], **p}


# ---------------------------------------------------------------------------------------------
# Activations and merges

def _dim_check(shapes: Sequence[Shape], p: Params) -> Shape:
    _norm_dim(p["dim"], len(shapes[0]) + 1)
    return shapes[0]


def _elementwise_infer(shapes: Sequence[Shape], _p: Params) -> Shape:
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        if s != first:
            raise Misfit(f"input {i} has shape {_fmt(s)} but input 0 has {_fmt(first)}; "
                         "merged tensors must have the same shape")
    return first


def _broadcast_infer(shapes: Sequence[Shape], _p: Params) -> Shape:
    first = shapes[0]
    out = list(first)
    for i, s in enumerate(shapes[1:], start=1):
        if len(s) != len(first):
            raise Misfit(f"input {i} has shape {_fmt(s)} but input 0 has {_fmt(first)}; "
                         "multiplied tensors need the same number of dims")
        for d, (a, b) in enumerate(zip(out, s, strict=True)):
            if a != b and 1 not in (a, b):
                raise Misfit(f"input {i} has shape {_fmt(s)} but input 0 has "
                             f"{_fmt(first)}; sizes must match or be 1")
            out[d] = max(a, b) if 1 in (a, b) else a
    return tuple(out)


def _concat_infer(shapes: Sequence[Shape], p: Params) -> Shape:
    first = shapes[0]
    nd = len(first) + 1
    d = _norm_dim(p["dim"], nd)
    total = 0
    for i, s in enumerate(shapes):
        if len(s) != len(first) or any(a != b for j, (a, b) in enumerate(zip(s, first, strict=True))
                                       if j != d - 1):
            raise Misfit(f"input {i} has shape {_fmt(s)} but input 0 has {_fmt(first)}; "
                         f"only dim {d} may differ")
        total += s[d - 1]
    out = list(first)
    out[d - 1] = total
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# the entries

_P_DROP = P("p", "float", 0.5, "Probability of zeroing an element during training.",
            min=0.0, max=1.0)
_EPS = P("eps", "float", 1e-5, "Added to the variance for numerical stability.",
         min=0.0, min_exclusive=True)


_CAUSAL = P("causal", "bool", False,
            "Each step attends only to itself and earlier steps (for predicting what comes "
            "next).")


def _activation(name: str, doc: str, *params: ParamSpec, formula: str, about: str,
                squashes: str | None = None, aliases: tuple[str, ...] = ()) -> LayerSpec:
    infer = _dim_check if any(q.name == "dim" for q in params) else _same
    return LayerSpec(name, "Activation", doc, Schema(params), infer, torch_class=name,
                     squashes=squashes, aliases=aliases, formula=formula,
                     shape_rule=SAME_SHAPE, about=about)


_LSTM_P, _LSTM_M = _rnn_counts(4)
_GRU_P, _GRU_M = _rnn_counts(3)


_RNN_P, _RNN_M = _rnn_counts(1)
_RNN_SHAPES = ("[L, F] → [hidden_size] (output 'last') or [L, hidden_size] ('sequence'); "
               "×2 if bidirectional")


def _rnn_schema(*extra: ParamSpec) -> Schema:
    return Schema((
        P("hidden_size", "int", 64, "Features in the hidden state.", min=1, max=65536),
        P("num_layers", "int", 1, "Stacked recurrent layers.", min=1, max=64),
        *extra,
        _bias(),
        P("dropout", "float", 0.0, "Dropout between stacked layers.", min=0.0, max=1.0),
        P("bidirectional", "bool", False, "Also read the sequence backwards."),
        P("output", "choice", "last",
          "'last': the final hidden state; 'sequence': the output at every step.",
          choices=("last", "sequence")),
    ))


_SPECS: list[LayerSpec] = [
    LayerSpec(
        "Input", "Input", "The network's input: one sample's shape, without the batch.",
        Schema((
            P("shape", "shape", [1, 28, 28], "Sample shape without the batch, e.g. [1, 28, 28].",
              min=1, max=1 << 24),
            P("dtype", "choice", "float32",
              "float32 for measurements and images; int64 for token ids (Embedding).",
              choices=("float32", "int64")),
        )),
        _input_infer, inputs=0, dtype="source", aliases=("Keras: InputLayer",),
        formula="x ∈ ℝ^(N × shape), or integer ids with dtype int64",
        shape_rule="no input → shape  (the batch N is added in front)",
        about=("Declares the shape and dtype of one sample the network receives; the batch "
               "dimension is added by the data loader, so [1, 28, 28] is one grey 28×28 image. "
               "It plays the part of keras.Input: float32 for measurements and images, int64 for "
               "token ids that go into an Embedding."),
        url=f"{TORCH_DOCS}/tensors.html",
    ),
    LayerSpec(
        "Linear", "Core", "Fully connected layer: y = x·Wᵀ + b over the last dim.",
        Schema((P("out_features", "int", 10, "Output features.", min=1, max=1 << 20), _bias())),
        _linear_infer, torch_class="Linear", inferred=("in_features",), ctor=_linear_ctor,
        count_params=_linear_params, count_macs=_linear_macs, affine=True,
        init_tensors=_weight_bias(2),
        aliases=("Keras: Dense", "FullyConnected", "FC"),
        formula="y = x·Wᵀ + b",
        shape_rule="[in_features] → [out_features]; [L, in_features] → [L, out_features]",
        about=("Multiplies the last dimension by a learned weight matrix and adds a bias, so "
               "every output feature is a weighted sum of all input features (Keras calls it "
               "Dense). Use it for MLPs and classifier heads on feature vectors, with Flatten or "
               "global pooling before it when the input is an image."),
    ),
    LayerSpec(
        "Conv1d", "Convolution", "1-D convolution over [channels, length].",
        _conv_schema(1), _make_conv_infer(1), torch_class="Conv1d", inferred=("in_channels",),
        ctor=_conv_ctor, count_params=_conv_params(1), count_macs=_conv_macs(1),
        aliases=("Keras: Conv1D",), init_tensors=_weight_bias(3),
        formula="y[o,i] = b[o] + Σ_c Σ_u W[o,c,u]·x[c, s·i + d·u]  (x padded by p)",
        shape_rule="[C, L] → [out_channels, ⌊(L + 2p − d(k−1) − 1)/s⌋ + 1]",
        about=("Slides out_channels learned filters of width kernel_size along the sequence, "
               "each a weighted sum over all input channels in its window, so a pattern is found "
               "wherever it occurs. Use it on time series, audio or token features laid out as "
               "[channels, length] (Keras's Conv1D takes [length, channels], so add a Permute "
               "when porting)."),
    ),
    LayerSpec(
        "Conv2d", "Convolution", "2-D convolution over [channels, height, width].",
        _conv_schema(2), _make_conv_infer(2), torch_class="Conv2d", inferred=("in_channels",),
        ctor=_conv_ctor, count_params=_conv_params(2), count_macs=_conv_macs(2),
        channels_last=True, aliases=("Keras: Conv2D",), init_tensors=_weight_bias(4),
        formula=("y[o,i,j] = b[o] + Σ_c Σ_u Σ_v W[o,c,u,v]·x[c, s·i + d·u, s·j + d·v]  "
                 "(x padded by p)"),
        shape_rule=("[C, H, W] → [out_channels, ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1, "
                    "⌊(W + 2p − d(k−1) − 1)/s⌋ + 1]; padding 'same' keeps H and W"),
        about=("Slides out_channels learned filters of kernel_size × kernel_size over the image, "
               "each combining all input channels in its window, so a feature is found wherever "
               "it appears with few weights. It is the building block of image networks, usually "
               "followed by BatchNorm2d, an activation and pooling (or a stride of 2)."),
    ),
    LayerSpec(
        "ConvTranspose2d", "Convolution", "Transposed 2-D convolution: learnable upsampling.",
        _conv_schema(2, transpose=True), _make_conv_infer(2, transpose=True),
        torch_class="ConvTranspose2d", inferred=("in_channels",), ctor=_conv_ctor,
        count_params=_conv_params(2, True), count_macs=_conv_macs(2, True), channels_last=True,
        aliases=("Keras: Conv2DTranspose", "Deconvolution"), init_tensors=_weight_bias(4),
        formula=("y[o, s·i + d·u − p, s·j + d·v − p] += W[c,o,u,v]·x[c,i,j]  "
                 "(summed over c, i, j, u, v; plus b[o])"),
        shape_rule=("[C, H, W] → [out_channels, (H − 1)·s − 2p + d(k−1) + output_padding + 1, "
                    "(W − 1)·s − 2p + d(k−1) + output_padding + 1]"),
        about=("Spreads each input pixel over a kernel_size window of the output through learned "
               "weights (the transpose of a convolution), so stride 2 roughly doubles height and "
               "width. Use it for learnable upsampling in decoders, autoencoders, segmentation "
               "networks and GAN generators."),
    ),
    LayerSpec("MaxPool1d", "Pooling", "Largest value in each window along the length.",
              _pool_schema(1, "max"), _make_pool_infer(1, "max"), torch_class="MaxPool1d",
              aliases=("Keras: MaxPooling1D", "Keras: MaxPool1D"),
              formula="y[c,i] = max_u x[c, s·i + d·u],  0 ≤ u < k",
              shape_rule="[C, L] → [C, ⌊(L + 2p − d(k−1) − 1)/s⌋ + 1]; s defaults to k",
              about=("Keeps the largest value in each window of kernel_size steps, channel by "
                     "channel, so the default window of 2 halves the length. Use it after Conv1d "
                     "to shorten the sequence and tolerate small shifts; it has no weights.")),
    LayerSpec("MaxPool2d", "Pooling", "Largest value in each 2-D window.",
              _pool_schema(2, "max"), _make_pool_infer(2, "max"), torch_class="MaxPool2d",
              aliases=("Keras: MaxPooling2D", "Keras: MaxPool2D"),
              formula="y[c,i,j] = max_{u,v} x[c, s·i + d·u, s·j + d·v],  0 ≤ u, v < k",
              shape_rule=("[C, H, W] → [C, ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1, "
                          "⌊(W + 2p − d(k−1) − 1)/s⌋ + 1]; s defaults to k"),
              about=("Keeps the largest value in each kernel_size × kernel_size window of every "
                     "channel, so the default 2 × 2 window halves height and width. Use it "
                     "between convolution blocks (as LeNet and VGG do) to shrink the maps and "
                     "tolerate small shifts; it has no weights.")),
    LayerSpec("AvgPool1d", "Pooling", "Mean of each window along the length.",
              _pool_schema(1, "avg"), _make_pool_infer(1, "avg"), torch_class="AvgPool1d",
              aliases=("Keras: AveragePooling1D", "Keras: AvgPool1D"),
              formula="y[c,i] = (1/k)·Σ_u x[c, s·i + u],  0 ≤ u < k",
              shape_rule="[C, L] → [C, ⌊(L + 2p − k)/s⌋ + 1]; s defaults to k",
              about=("Replaces each window of kernel_size steps by its mean, channel by channel, "
                     "shortening the sequence. Use it to downsample smoothly where max pooling "
                     "would keep only the peaks; it has no weights.")),
    LayerSpec("AvgPool2d", "Pooling", "Mean of each 2-D window.",
              _pool_schema(2, "avg"), _make_pool_infer(2, "avg"), torch_class="AvgPool2d",
              aliases=("Keras: AveragePooling2D", "Keras: AvgPool2D"),
              formula="y[c,i,j] = (1/k²)·Σ_u Σ_v x[c, s·i + u, s·j + v],  0 ≤ u, v < k",
              shape_rule=("[C, H, W] → [C, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1]; "
                          "s defaults to k"),
              about=("Replaces each kernel_size × kernel_size window of every channel by its "
                     "mean, so the default 2 × 2 window halves height and width. Use it to "
                     "downsample smoothly where max pooling would keep only the peaks; it has no "
                     "weights.")),
    LayerSpec(
        "AdaptiveAvgPool1d", "Pooling",
        "Averages [C, L] to a fixed length whatever the input length (global pooling with 1; "
        "Keras's GlobalAveragePooling1D is this followed by Flatten).",
        Schema((P("output_size", "ints", 1, "Output length.", min=1, max=4096, length=1),)),
        _make_adaptive_infer(1), torch_class="AdaptiveAvgPool1d",
        aliases=("Keras: GlobalAveragePooling1D", "Keras: GlobalAvgPool1D"),
        formula="y[c,i] = mean of x[c, ⌊i·L/n⌋ … ⌈(i+1)·L/n⌉ − 1],  n = output_size",
        shape_rule="[C, L] → [C, output_size]",
        about=("Averages each channel over output_size windows whose size is worked out from the "
               "input length, so the output length is fixed whatever comes in. With output_size "
               "1 it is global average pooling: put it before a Linear head so the network takes "
               "sequences of any length."),
    ),
    LayerSpec(
        "AdaptiveAvgPool2d", "Pooling",
        "Averages to a fixed output size whatever the input size (global pooling with 1; "
        "Keras's GlobalAveragePooling2D is this followed by Flatten).",
        Schema((P("output_size", "ints", 1, "Output height and width.", min=1, max=4096,
                  length=2),)),
        _make_adaptive_infer(2), torch_class="AdaptiveAvgPool2d",
        aliases=("Keras: GlobalAveragePooling2D", "Keras: GlobalAvgPool2D"),
        formula="y[c,i,j] = mean of x[c, ⌊i·H/h⌋ … ⌈(i+1)·H/h⌉ − 1, ⌊j·W/w⌋ … ⌈(j+1)·W/w⌉ − 1]",
        shape_rule="[C, H, W] → [C, h, w],  (h, w) = output_size",
        about=("Averages each channel over a grid of windows sized from the input, so the output "
               "is always output_size whatever the image size. With output_size 1 it is global "
               "average pooling (with Flatten after it, Keras's GlobalAveragePooling2D), the "
               "usual way to turn a ResNet's last feature maps into one vector."),
    ),
    LayerSpec(
        "Flatten", "Core", "Merges dims start_dim..end_dim (batch is dim 0) into one.",
        Schema((
            P("start_dim", "int", 1, "First dim to merge (batch is 0).", min=-64, max=64),
            P("end_dim", "int", -1, "Last dim to merge; -1 is the last.", min=-64, max=64),
        )),
        _flatten_infer, torch_class="Flatten", dtype="any",
        formula="y[c·H·W + h·W + w] = x[c, h, w]  (row-major order)",
        shape_rule="[C, H, W] → [C·H·W]; dims start_dim … end_dim become their product",
        about=("Merges dimensions into one without changing any value, by default everything but "
               "the batch, so [64, 7, 7] becomes [3136]. Use it between the convolutional part "
               "and the first Linear layer; global average pooling before it keeps that Linear "
               "layer far smaller."),
    ),
    LayerSpec(
        "Reshape", "Core", "Reshapes each sample to a target shape (one entry may be -1).",
        Schema((P("shape", "shape", [-1], "Target sample shape without the batch.",
                  min=1, max=1 << 24, allow_negative_one=True),)),
        _reshape_infer, dtype="any", aliases=("torch: view",),
        formula="y = reshape(x, shape)  (values kept in row-major order)",
        shape_rule="[d₁, …, d_k] → shape; a −1 entry is worked out so the count is unchanged",
        about=("Regroups each sample's values into the target shape, reading and writing them in "
               "row-major order, so only the dimensions change and no value moves. Use it to "
               "give a flat vector image form ([784] → [1, 28, 28]) or to cut features into a "
               "sequence; to swap axes use Permute instead."),
        url=torch_doc("torch.reshape"),
    ),
    LayerSpec(
        "Permute", "Core", "Reorders dims; the batch (dim 0) stays first, e.g. [0, 2, 1].",
        Schema((P("dims", "shape", [0, 2, 1], "New order of all dims, batch included.",
                  min=0, max=64),)),
        _permute_infer, dtype="any", aliases=("torch: transpose",),
        formula="y[i_dims[0], …, i_dims[k]] = x[i₀, …, i_k]",
        shape_rule="[d₁, …, d_k] → [d_dims[1], …, d_dims[k]]  (dims counts the batch as 0)",
        about=("Reorders the axes of each sample, so [C, L] with dims [0, 2, 1] becomes [L, C]; "
               "values move but none change. Use it to switch between the channels-first layout "
               "of convolutions and the [sequence, features] layout of recurrent and attention "
               "layers, or to port a channels-last Keras model."),
        url=torch_doc("torch.permute"),
    ),
    LayerSpec("Dropout", "Regularization", "Zeroes random elements while training.",
              Schema((_P_DROP,)), _same, torch_class="Dropout",
              formula=("y = m ⊙ x / (1 − p),  m ~ Bernoulli(1 − p) while training;  y = x in "
                       "evaluation"),
              shape_rule=SAME_SHAPE,
              about=("While training it sets each element to zero with probability p and scales "
                     "the rest by 1/(1 − p), so the expected value stays the same; in evaluation "
                     "it passes the input through. Use it against overfitting, typically with p "
                     "between 0.2 and 0.5 between Linear layers.")),
    LayerSpec(
        "Dropout2d", "Regularization", "Zeroes whole random channels of [C, H, W] maps.",
        Schema((_P_DROP,)), _make_bn_infer([3], "Dropout2d ([C, H, W])"),
        torch_class="Dropout2d", aliases=("Keras: SpatialDropout2D",),
        formula="y[c] = m_c·x[c] / (1 − p),  m_c ~ Bernoulli(1 − p) per channel while training",
        shape_rule="[C, H, W] → [C, H, W]",
        about=("While training it zeroes whole channels of a feature map at random and scales "
               "the rest by 1/(1 − p), because neighbouring pixels are so alike that dropping "
               "single ones barely regularises. Use it between convolution blocks, with a "
               "smaller p (0.1 to 0.2) than between Linear layers."),
    ),
    LayerSpec(
        "StochasticDepth", "Regularization", "Drops whole residual branches at random while "
        "training (row: per sample); identity in evaluation. Used by EfficientNet.",
        Schema((P("p", "float", 0.2, "Probability of dropping.", min=0.0, max=1.0),
                P("mode", "choice", "row", "row: per sample; batch: all at once.",
                  choices=("row", "batch")))), _same, aliases=("timm: DropPath",),
        formula=("y = m·x / (1 − p),  m ~ Bernoulli(1 − p) per sample (row) or per batch while "
                 "training;  y = x in evaluation"),
        shape_rule=SAME_SHAPE,
        about=("While training it zeroes the whole input of random samples and scales the rest "
               "by 1/(1 − p), so at the end of a residual branch it sometimes turns the block "
               "into the identity. Put it on the branch just before the Add of a residual block, "
               "as EfficientNet and ConvNeXt do, to regularise deep networks."),
        url="https://docs.pytorch.org/vision/stable/generated/torchvision.ops.StochasticDepth.html",
    ),
    LayerSpec(
        "BatchNorm1d", "Normalization", "Normalises each feature over the batch ([C] or [C, L]).",
        Schema((
            _EPS,
            P("momentum", "float", 0.1, "Running-average momentum; empty: cumulative average.",
              min=0.0, max=1.0, nullable=True),
            P("affine", "bool", True, "Learn a scale and shift."),
            P("track_running_stats", "bool", True, "Keep running mean and variance for eval."),
        )),
        _make_bn_infer([1, 2], "BatchNorm1d ([C] or [C, L])"), torch_class="BatchNorm1d",
        inferred=("num_features",), ctor=_bn_ctor, count_params=_bn_params,
        aliases=("Keras: BatchNormalization",), init_tensors=_affine("affine"),
        formula=("y = γ·(x − μ_B)/√(σ²_B + ε) + β,  "
                 "μ_B, σ²_B per feature over the batch (and length)"),
        shape_rule="[C] → [C]; [C, L] → [C, L]",
        about=("Normalises each feature to zero mean and unit variance with the statistics of "
               "the current batch, then applies a learned scale γ and shift β; in evaluation it "
               "uses running averages instead. Use it after Linear or Conv1d layers to train "
               "faster at higher learning rates, with batches of more than one sample."),
    ),
    LayerSpec(
        "BatchNorm2d", "Normalization", "Normalises each channel over the batch ([C, H, W]).",
        Schema((
            _EPS,
            P("momentum", "float", 0.1, "Running-average momentum; empty: cumulative average.",
              min=0.0, max=1.0, nullable=True),
            P("affine", "bool", True, "Learn a scale and shift."),
            P("track_running_stats", "bool", True, "Keep running mean and variance for eval."),
        )),
        _make_bn_infer([3], "BatchNorm2d ([C, H, W])"), torch_class="BatchNorm2d",
        inferred=("num_features",), ctor=_bn_ctor, count_params=_bn_params,
        aliases=("Keras: BatchNormalization",), init_tensors=_affine("affine"),
        formula=("y = γ·(x − μ_B)/√(σ²_B + ε) + β,  "
                 "μ_B, σ²_B per channel over batch, height and width"),
        shape_rule="[C, H, W] → [C, H, W]",
        about=("Normalises each channel to zero mean and unit variance over the batch and all "
               "pixels, then applies a learned scale γ and shift β; in evaluation it uses "
               "running averages gathered while training. Use it after Conv2d (which can then "
               "drop its bias) in most CNNs, but prefer GroupNorm when batches are tiny."),
    ),
    LayerSpec(
        "LayerNorm", "Normalization", "Normalises each sample over its last `dims` dims.",
        Schema((
            P("dims", "int", 1, "How many trailing dims to normalise over.", min=1, max=8),
            _EPS,
            P("elementwise_affine", "bool", True, "Learn a per-element scale (and shift)."),
            _bias("Learn a per-element shift (with elementwise_affine)."),
        )),
        _ln_infer, torch_class="LayerNorm", inferred=("normalized_shape",), ctor=_ln_ctor,
        count_params=_ln_params, studio_only=("dims",),
        aliases=("Keras: LayerNormalization",), init_tensors=_ln_tensors,
        formula="y = γ·(x − μ)/√(σ² + ε) + β,  μ, σ² per sample over its last dims dimensions",
        shape_rule=SAME_SHAPE,
        about=("Normalises each sample on its own over its last dims dimensions, then applies a "
               "learned per-element scale and shift, so it acts the same in training and "
               "evaluation and for any batch size. It is the normalisation of transformers and "
               "works well in recurrent networks too."),
    ),
    LayerSpec(
        "GroupNorm", "Normalization", "Normalises groups of channels within each sample.",
        Schema((
            P("num_groups", "int", 4, "Groups to split the channels into.", min=1, max=65536),
            _EPS,
            P("affine", "bool", True, "Learn a per-channel scale and shift."),
        )),
        _gn_infer, torch_class="GroupNorm", inferred=("num_channels",), ctor=_gn_ctor,
        count_params=lambda s, p, _o: 2 * s[0][0] if p["affine"] else 0,
        aliases=("Keras: GroupNormalization",), init_tensors=_affine("affine"),
        formula=("y = γ·(x − μ_g)/√(σ²_g + ε) + β,  "
                 "μ_g, σ²_g over each group of C/G channels of a sample"),
        shape_rule="[C, …] → [C, …]  (C divisible by num_groups)",
        about=("Splits the channels into num_groups groups and normalises each group within each "
               "sample, then applies a learned per-channel scale and shift, so it does not "
               "depend on the batch. Use it instead of BatchNorm when batches are small "
               "(detection, segmentation, large images)."),
    ),
    LayerSpec(
        "Embedding", "Embedding", "Looks up a learned vector for each integer token id.",
        Schema((
            P("num_embeddings", "int", 1000, "Vocabulary size (ids 0..n-1).", min=1,
              max=1 << 24),
            P("embedding_dim", "int", 64, "Length of each vector.", min=1, max=1 << 16),
            P("padding_idx", "int", None, "Id whose vector stays zero; empty for none.",
              min=-(1 << 24), max=1 << 24, nullable=True),
        )),
        _emb_infer, torch_class="Embedding", dtype="index", vocabulary="num_embeddings",
        count_params=lambda _s, p, _o: p["num_embeddings"] * p["embedding_dim"],
        init_tensors=lambda _p: {"weight": 2},
        formula="y = W[x],  row x of W ∈ ℝ^(num_embeddings × embedding_dim)",
        shape_rule="[L] integer ids → [L, embedding_dim]; any shape gains a last dim",
        about=("Looks up a learned vector of embedding_dim numbers for each integer id, the same "
               "as multiplying a one-hot vector by a weight matrix but far cheaper. Use it first "
               "for words, tokens or categories, after an int64 Input whose ids stay below "
               "num_embeddings."),
    ),
    LayerSpec(
        "PositionalEmbedding", "Embedding",
        "Adds a vector per position to [sequence, features], so later layers (attention) can "
        "tell the order: learned (trained) or sinusoidal (fixed, as in 'Attention is all you "
        "need').",
        Schema((
            P("kind", "choice", "learned",
              "learned: a trained vector per position; sinusoidal: fixed sines and cosines.",
              choices=("learned", "sinusoidal")),
            P("max_len", "int", 512, "Longest sequence taken (positions 0..max_len-1).",
              min=1, max=1 << 16),
        )),
        _pos_infer, inferred=("embed_dim",), ctor=_pos_ctor, count_params=_pos_params,
        helpers=("_sinusoid",),
        init_tensors=lambda p: {"weight": 2} if p["kind"] == "learned" else {},
        aliases=("PositionalEncoding", "KerasHub: PositionEmbedding",
                 "KerasHub: SinePositionEncoding"),
        formula=("y[t] = x[t] + P[t];  "
                 "sinusoidal: P[t,2i] = sin(t/10000^(2i/d)), P[t,2i+1] = cos(t/10000^(2i/d))"),
        shape_rule="[L, d] → [L, d]  (L ≤ max_len)",
        about=("Adds to each step of a [sequence, features] input a vector that depends only on "
               "its position, because attention on its own sees the input as an unordered set. "
               "Put it right after the Embedding of a transformer: learned positions (an "
               "Embedding table) suit a fixed maximum length, sinusoidal ones need no training."),
        url=torch_doc("torch.nn.Embedding"),
    ),
    LayerSpec(
        "RNN", "Recurrent",
        "Plain (Elman) recurrent layer over [sequence, features]: h = act(W·x + U·h + b).",
        _rnn_schema(P("nonlinearity", "choice", "tanh", "Activation of the hidden state.",
                      choices=("tanh", "relu"))),
        _rnn_infer, inferred=("input_size",), ctor=_rnn_ctor,
        count_params=_RNN_P, count_macs=_RNN_M, helpers=("_last",), init_tensors=_weight_bias(2),
        aliases=("Keras: SimpleRNN", "Elman"),
        formula="h_t = tanh(W_ih·x_t + b_ih + W_hh·h_(t−1) + b_hh)  (or ReLU)",
        shape_rule=_RNN_SHAPES,
        about=("Reads the sequence one step at a time, updating a hidden state from the current "
               "input and the previous state with the same weights at every step. It is the "
               "simplest recurrent layer and mostly of teaching value, since its gradients "
               "vanish over long sequences: prefer LSTM or GRU in practice."),
        url=torch_doc("torch.nn.RNN"),
    ),
    LayerSpec(
        "LSTM", "Recurrent", "Long short-term memory over [sequence, features].",
        _rnn_schema(), _rnn_infer, inferred=("input_size",), ctor=_rnn_ctor,
        count_params=_LSTM_P, count_macs=_LSTM_M, helpers=("_last",), init_tensors=_weight_bias(2),
        formula=("[i, f, g, o] = W·x_t + U·h_(t−1) + b;  c_t = σ(f)⊙c_(t−1) + σ(i)⊙tanh(g);  "
                 "h_t = σ(o)⊙tanh(c_t)"),
        shape_rule=_RNN_SHAPES,
        about=("A recurrent layer with a memory cell that learned gates decide, step by step, to "
               "write, keep or forget, so information and gradients survive over many steps. Use "
               "it for text, time series and other ordered data: output 'last' feeds a "
               "classifier, 'sequence' feeds another recurrent or attention layer."),
        url=torch_doc("torch.nn.LSTM"),
    ),
    LayerSpec(
        "GRU", "Recurrent", "Gated recurrent unit over [sequence, features].",
        _rnn_schema(), _rnn_infer, inferred=("input_size",), ctor=_rnn_ctor,
        count_params=_GRU_P, count_macs=_GRU_M, helpers=("_last",), init_tensors=_weight_bias(2),
        formula=("r, z = σ(W·x_t + U·h_(t−1) + b);  n = tanh(W_n·x_t + r⊙(U_n·h_(t−1) + b_hn) "
                 "+ b_in);  h_t = (1 − z)⊙n + z⊙h_(t−1)"),
        shape_rule=_RNN_SHAPES,
        about=("A recurrent layer with two gates, reset and update, that decide how much of the "
               "previous state to keep, giving most of an LSTM's memory with fewer weights. Use "
               "it wherever you would use an LSTM, especially on small data; the two usually "
               "perform about the same."),
        url=torch_doc("torch.nn.GRU"),
    ),
    LayerSpec(
        "MultiheadAttention", "Attention",
        "Self-attention over [sequence, features]: each step attends to every step (causal: "
        "only to itself and earlier steps).",
        Schema((
            P("num_heads", "int", 4, "Parallel heads; must divide the features.", min=1,
              max=1024),
            P("dropout", "float", 0.0, "Dropout on attention weights.", min=0.0, max=1.0),
            _bias(),
            _CAUSAL,
        )),
        _attn_infer, inferred=("embed_dim",),
        ctor=lambda s, p: {"embed_dim": s[0][-1], **p},
        count_params=_mha_params, count_macs=_mha_macs, helpers=("_causal_mask",),
        init_tensors=_weight_bias(2),
        aliases=("Keras: MultiHeadAttention", "SelfAttention"),
        formula=("head_h = softmax(Q_h·K_hᵀ/√d)·V_h,  Q, K, V = x·W_Q, x·W_K, x·W_V;  "
                 "y = [head_1 ‖ … ‖ head_n]·W_O  (causal: later steps masked)"),
        shape_rule="[L, E] → [L, E]  (E divisible by num_heads, d = E/num_heads)",
        about=("Each step takes a weighted average of all steps' values, weighted by how well "
               "its query matches their keys, in num_heads subspaces whose results are joined "
               "and projected. It lets every position see every other at once, the core of "
               "transformers; add a PositionalEmbedding before it, since it ignores order."),
        url=torch_doc("torch.nn.MultiheadAttention"),
    ),
    LayerSpec(
        "TransformerEncoderLayer", "Attention",
        "Self-attention plus feed-forward block with residuals and LayerNorm.",
        Schema((
            P("nhead", "int", 4, "Attention heads; must divide the features.", min=1, max=1024),
            P("dim_feedforward", "int", 2048, "Hidden width of the feed-forward part.", min=1,
              max=1 << 20),
            P("dropout", "float", 0.1, "Dropout rate.", min=0.0, max=1.0),
            P("activation", "choice", "relu", "Feed-forward activation.",
              choices=("relu", "gelu")),
            P("layer_norm_eps", "float", 1e-5, "LayerNorm epsilon.", min=0.0,
              min_exclusive=True),
            P("norm_first", "bool", False, "LayerNorm before (pre-norm) instead of after."),
            _bias(),
            _CAUSAL,
        )),
        lambda s, p: _attn_infer(s, p, "nhead"), inferred=("d_model",), ctor=_tel_ctor,
        count_params=_tel_params, count_macs=_tel_macs, helpers=("_causal_mask",),
        aliases=("KerasHub: TransformerEncoder",),
        formula=("z = LN(x + MHA(x));  y = LN(z + W₂·act(W₁·z + b₁) + b₂)  "
                 "(norm_first: z = x + MHA(LN(x)), y = z + FF(LN(z)))"),
        shape_rule="[L, E] → [L, E]  (E divisible by nhead)",
        about=("One standard transformer block: multi-head self-attention and then a two-layer "
               "feed-forward network, each wrapped in a residual connection with LayerNorm and "
               "dropout. Stack several after an Embedding and a PositionalEmbedding to build a "
               "BERT-style encoder; norm_first (pre-norm) trains more stably in deep stacks."),
        url=torch_doc("torch.nn.TransformerEncoderLayer"),
    ),
    _activation("ReLU", "max(0, x).",
                formula="f(x) = max(0, x)",
                about=("Passes positive values unchanged and sets negative ones to zero, which "
                       "is cheap and keeps the gradient of active units at 1. It is the default "
                       "activation after Linear and convolution layers; if many units stay at "
                       "zero (dead ReLUs), try LeakyReLU or a lower learning rate.")),
    _activation("LeakyReLU", "x for x > 0, negative_slope·x otherwise.",
                P("negative_slope", "float", 0.01, "Slope for negative inputs.",
                  min=-1e3, max=1e3),
                formula="f(x) = x if x > 0, negative_slope·x otherwise",
                about=("Like ReLU, but negative inputs are multiplied by a small negative_slope "
                       "instead of zeroed, so a unit never stops receiving gradient. Use it "
                       "instead of ReLU when units die, and in GAN discriminators (a slope of "
                       "0.2 is common).")),
    _activation("ELU", "x for x > 0, alpha·(eˣ − 1) otherwise.",
                P("alpha", "float", 1.0, "Value approached for very negative inputs.",
                  min=0.0, max=1e3),
                formula="f(x) = x if x > 0, alpha·(eˣ − 1) otherwise",
                about=("The identity for positive inputs and a smooth exponential that levels "
                       "off at −alpha for negative ones, which pulls mean activations towards "
                       "zero. Use it as a smooth alternative to ReLU in MLPs and CNNs, at the "
                       "cost of an exponential per element.")),
    _activation("GELU", "Gaussian error linear unit, as in transformers.",
                P("approximate", "choice", "none", "Exact, or the tanh approximation.",
                  choices=("none", "tanh")),
                formula=("f(x) = x·Φ(x),  Φ the standard normal CDF  "
                         "(tanh: ½x·(1 + tanh(√(2/π)·(x + 0.044715·x³))))"),
                about=("Weights each input by the probability that a standard normal variable "
                       "lies below it: a smooth ReLU that lets small negative values through. It "
                       "is the activation of BERT, GPT and ViT, so use it in transformer "
                       "feed-forward blocks and other modern architectures.")),
    _activation("ReLU6", "min(max(0, x), 6): ReLU capped at 6 (MobileNet).",
                formula="f(x) = min(max(0, x), 6)",
                about=("A ReLU whose output is capped at 6, which keeps activations in a small "
                       "range that survives low-precision arithmetic. Use it in mobile networks "
                       "such as MobileNetV2 and in models you plan to quantise.")),
    _activation("Hardswish", "x·ReLU6(x + 3)/6: a cheap swish (MobileNetV3).",
                formula="f(x) = x·ReLU6(x + 3)/6",
                about=("A piecewise approximation of SiLU (swish) built from ReLU6: zero below "
                       "−3, the identity above 3 and a parabola between, so it needs no "
                       "exponential. Use it where SiLU helps but compute is tight, as "
                       "MobileNetV3 does.")),
    _activation("Hardsigmoid", "ReLU6(x + 3)/6: a cheap sigmoid (MobileNetV3 gates).",
                formula="f(x) = ReLU6(x + 3)/6",
                about=("A piecewise-linear approximation of the sigmoid: 0 below −3, 1 above 3 "
                       "and a straight line between. Use it for cheap gates, such as the "
                       "squeeze-and-excitation blocks of MobileNetV3.")),
    _activation("SiLU", "x·sigmoid(x) (swish).", aliases=("Keras: swish",),
                formula="f(x) = x·σ(x) = x/(1 + e⁻ˣ)",
                about=("Multiplies each input by its own sigmoid, a smooth curve that dips "
                       "slightly below zero for negative inputs (also called swish). Use it in "
                       "modern CNNs such as EfficientNet and in many transformer variants, where "
                       "it often does a little better than ReLU.")),
    _activation("Sigmoid", "1 / (1 + e⁻ˣ): squashes to (0, 1).", squashes="sigmoid",
                formula="f(x) = 1/(1 + e⁻ˣ)",
                about=("Squashes every value into (0, 1), so it can be read as a probability or "
                       "used as a gate. Use it in gates and to read binary or multi-label "
                       "outputs as probabilities (for training, BCEWithLogitsLoss on raw scores "
                       "is more stable than Sigmoid then BCELoss), not between hidden layers, "
                       "where its gradient of at most 0.25 slows learning.")),
    _activation("Tanh", "Hyperbolic tangent: squashes to (−1, 1).",
                formula="f(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)",
                about=("Squashes every value into (−1, 1), centred on zero, with a gradient of "
                       "at most 1. Use it for outputs that must lie in (−1, 1), such as images "
                       "scaled to that range in a GAN generator; in deep feed-forward stacks "
                       "ReLU-like activations train faster.")),
    _activation("Softmax", "Turns scores into probabilities along dim.",
                P("dim", "int", -1, "Dim to normalise (batch is 0).", min=-64, max=64),
                squashes="probabilities",
                formula="softmax(x)_i = e^(x_i) / Σ_j e^(x_j) along dim",
                about=("Turns a vector of scores into probabilities that are positive and sum to "
                       "1 along dim, larger scores getting exponentially more weight. Use it to "
                       "read class probabilities, but not before CrossEntropyLoss, which applies "
                       "log-softmax itself.")),
    _activation("LogSoftmax", "log(softmax(x)) along dim; pair with NLLLoss.",
                P("dim", "int", -1, "Dim to normalise (batch is 0).", min=-64, max=64),
                squashes="log_probabilities",
                formula="log softmax(x)_i = x_i − log Σ_j e^(x_j) along dim",
                about=("Computes the logarithm of softmax along dim in one numerically stable "
                       "step. Use it as the last layer when training with NLLLoss; together they "
                       "equal CrossEntropyLoss on raw scores.")),
    LayerSpec("Add", "Merge", "Element-wise sum of its inputs (residual connections).",
              Schema(), _elementwise_infer, inputs=None,
              formula="y = x₁ + x₂ + … + x_n",
              shape_rule="n inputs of one shape → that shape",
              about=("Sums its inputs element by element. Use it for residual (skip) "
                     "connections, y = x + F(x), which let very deep networks such as ResNets "
                     "train."),
              url=torch_doc("torch.add")),
    LayerSpec("Multiply", "Merge", "Element-wise product of its inputs (gating); sizes of 1 "
              "broadcast, as in squeeze-and-excitation ([C, 1, 1] × [C, H, W]).",
              Schema(), _broadcast_infer, inputs=None,
              formula="y = x₁ ⊙ x₂ ⊙ … ⊙ x_n  (sizes of 1 broadcast)",
              shape_rule="inputs with equal sizes, or 1, in each dim → the larger size in each dim",
              about=("Multiplies its inputs element by element, stretching any dimension of size "
                     "1 to match the others. Use it for gating, where one branch (often ending "
                     "in a Sigmoid) scales another, as in squeeze-and-excitation blocks."),
              url=torch_doc("torch.mul")),
    LayerSpec(
        "Concat", "Merge", "Joins its inputs along dim (batch is 0).",
        Schema((P("dim", "int", 1, "Dim to join along (channels/features: 1).",
                  min=-64, max=64),)),
        _concat_infer, inputs=None, aliases=("Keras: Concatenate",),
        formula="y = [x₁ ‖ x₂ ‖ … ‖ x_n] along dim",
        shape_rule="[…, a, …] and […, b, …] → […, a + b, …]  (all other dims equal)",
        about=("Joins its inputs end to end along dim (channels or features with the default 1), "
               "keeping all their values. Use it to merge parallel branches, as in Inception, "
               "DenseNet and U-Net skip connections, or features from different inputs."),
        url=torch_doc("torch.cat"),
    ),
]

CATALOG: dict[str, LayerSpec] = {spec.type: spec for spec in _SPECS}
CATEGORIES: tuple[str, ...] = (
    "Input", "Core", "Convolution", "Pooling", "Normalization", "Regularization", "Embedding",
    "Recurrent", "Attention", "Activation", "Merge",
)


def get(layer_type: str) -> LayerSpec | None:
    return CATALOG.get(layer_type)


def by_category() -> dict[str, list[LayerSpec]]:
    """Catalog entries grouped for the palette, categories in a teaching order."""
    out: dict[str, list[LayerSpec]] = {c: [] for c in CATEGORIES}
    for spec in _SPECS:
        out.setdefault(spec.category, []).append(spec)
    return {k: v for k, v in out.items() if v}
