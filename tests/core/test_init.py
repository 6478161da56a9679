"""Weight initialisation per node: each scheme draws what torch.nn.init draws, the seed fixes
the numbers, the exported model.py starts from the same weights, and a bad ``init`` is refused
at load naming the node and the field."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from studio.core import catalog
from studio.core.build import build_module, make_layer
from studio.core.errors import ParamError, ProjectError
from studio.core.init import SCHEMES, apply_init, family
from studio.core.project import Project
from studio.core.shapes import analyze
from tests.graphs import net


def linear(init: dict[str, Any], n: int = 256) -> torch.nn.Linear:
    torch.manual_seed(0)
    layer = torch.nn.Linear(n, n)
    apply_init(layer, init)
    return layer


def test_constant_zeros_and_ones_are_exact() -> None:
    layer = linear({"weight": {"type": "constant", "val": 0.25}, "bias": {"type": "zeros"}})
    assert torch.equal(layer.weight, torch.full_like(layer.weight, 0.25))
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert torch.equal(linear({"bias": {"type": "ones"}}).bias, torch.ones(256))


def test_orthogonal_gives_orthonormal_rows() -> None:
    w = linear({"weight": {"type": "orthogonal"}}, 64).weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)


@pytest.mark.parametrize(("scheme", "bound"), [
    ("xavier_uniform", math.sqrt(6 / 512)), ("kaiming_uniform", math.sqrt(6 / 256))])
def test_uniform_schemes_fill_their_bounds(scheme: str, bound: float) -> None:
    w = linear({"weight": {"type": scheme}}).weight.detach()
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound  # 65,536 draws reach the edge


@pytest.mark.parametrize(("entry", "std"), [
    ({"type": "xavier_normal"}, math.sqrt(2 / 512)),
    ({"type": "kaiming_normal"}, math.sqrt(2 / 256)),
    ({"type": "kaiming_normal", "mode": "fan_out", "nonlinearity": "linear"}, math.sqrt(1 / 256)),
    ({"type": "normal", "mean": 0.5, "std": 0.02}, 0.02)])
def test_normal_schemes_have_their_spread(entry: dict[str, Any], std: float) -> None:
    w = linear({"weight": entry}).weight.detach()
    assert abs(w.std().item() - std) < 0.02 * std
    assert abs(w.mean().item() - entry.get("mean", 0.0)) < 0.05 * std


def test_uniform_and_trunc_normal_stay_in_range() -> None:
    w = linear({"weight": {"type": "uniform", "a": -0.1, "b": 0.3}}).weight
    assert w.min() >= -0.1 and w.max() < 0.3 and w.max() > 0.29
    t = linear({"weight": {"type": "trunc_normal", "std": 1.0, "a": -0.5, "b": 0.5}}).weight
    assert t.min() >= -0.5 and t.max() <= 0.5


def test_weight_means_every_matrix_of_a_recurrent_layer() -> None:
    lstm = make_layer("LSTM", [(5, 4)], {"hidden_size": 3, "num_layers": 2})
    apply_init(lstm, {"weight": {"type": "orthogonal"}, "bias": {"type": "zeros"}})
    names = [n for n, _ in lstm.named_parameters()]
    assert {family(n) for n in names} == {"weight", "bias"}
    for name, p in lstm.named_parameters():
        if family(name) == "bias":
            assert torch.equal(p, torch.zeros_like(p))
        else:  # 12 × 3 or 12 × 4: orthonormal columns
            assert torch.allclose(p.T @ p, torch.eye(p.shape[1]), atol=1e-5)


#: an input that fits each layer whose tensors an init may name
SHAPES = {"Linear": (8,), "Conv1d": (2, 8), "Conv2d": (2, 8, 8), "ConvTranspose2d": (2, 4, 4),
          "BatchNorm1d": (4,), "BatchNorm2d": (2, 4, 4), "LayerNorm": (3, 4),
          "GroupNorm": (4, 4, 4), "Embedding": (5,), "PositionalEmbedding": (5, 4),
          "RNN": (5, 4), "LSTM": (5, 4), "GRU": (5, 4), "MultiheadAttention": (5, 4)}


@pytest.mark.parametrize("kind", [t for t, s in catalog.CATALOG.items()
                                  if s.init_tensors is not catalog._no_tensors])
@pytest.mark.parametrize("switch", [True, False])
def test_the_catalog_names_the_tensors_the_built_layer_has(kind: str, switch: bool) -> None:
    spec = catalog.CATALOG[kind]
    params = {k: switch for k in ("bias", "affine", "elementwise_affine") if k in spec.schema}
    if kind == "PositionalEmbedding":
        params = {"kind": "learned" if switch else "sinusoidal"}
    if kind == "LayerNorm":
        params["dims"] = 2
    layer = make_layer(kind, [SHAPES[kind]], params)
    built: dict[str, set[int]] = {}
    for name, p in layer.named_parameters():
        built.setdefault(family(name) or name, set()).add(p.dim())
    declared = spec.init_tensors(spec.schema.resolve(params))
    assert built == {t: {d} for t, d in declared.items()}


def project(init: dict[str, Any], seed: int = 0, bias: bool = True) -> dict[str, Any]:
    return {"format": "studio.project", "version": 1, "training": {"seed": seed},
            "graph": {"nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [6, 4]}},
                {"id": "rnn1", "type": "GRU", "params": {"hidden_size": 5},
                 "init": {"weight": "orthogonal"}},
                {"id": "dense1", "type": "Linear", "params": {"out_features": 3, "bias": bias},
                 "init": init}],
                "edges": [{"from": "input", "to": "rnn1"}, {"from": "rnn1", "to": "dense1"}]}}


INIT = {"weight": {"type": "normal", "std": 0.02}, "bias": {"type": "uniform", "a": -1, "b": 1}}


def weights(d: dict[str, Any]) -> dict[str, torch.Tensor]:
    p = Project.from_dict(d)
    return build_module(p.graph, seed=p.training.seed).state_dict()


def test_the_same_seed_gives_the_same_initial_weights() -> None:
    a, b, other = weights(project(INIT)), weights(project(INIT)), weights(project(INIT, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["dense1.weight"], other["dense1.weight"])
    assert a["dense1.weight"].std() < 0.05  # the scheme, not torch's default, drew them


@pytest.mark.parametrize(("init", "bias", "where", "says"), [
    ({"weight": "xavier"}, True, "'dense1'.init.weight", "unknown scheme 'xavier'; choose one"),
    ({"bias": "xavier_uniform"}, True, "'dense1'.init.bias", "bias is 1-D"),
    ({"bias": "zeros"}, False, "'dense1'.init.bias", "no tensor 'bias'"),
    ({"kernel": "zeros"}, True, "'dense1'.init.kernel", "it has: weight, bias"),
    ({"weight": {"type": "normal", "std": 0}}, True, "'dense1'.init.weight.std", "must be > 0"),
    ({"weight": {"type": "uniform", "a": 1, "b": 0}}, True, "'dense1'.init.weight",
     "a (1.0) must be below b (0.0)")])
def test_a_bad_init_is_refused_at_load_naming_node_and_field(init, bias, where, says) -> None:
    with pytest.raises(ProjectError) as caught:
        Project.from_dict(project(init, bias=bias))
    assert where in str(caught.value) and says in str(caught.value)


def test_turning_off_a_tensor_an_init_names_is_a_problem_on_the_node() -> None:
    g = net(("input", "Input", {"shape": [4]}), ("dense1", "Linear", {"out_features": 2}))
    g.set_init("dense1", {"bias": "zeros", "weight": "default"})
    assert g.nodes["dense1"].init == {"bias": {"type": "zeros"}}  # default: as built
    with pytest.raises(ParamError, match="1-D"):
        g.set_init("dense1", {"bias": "kaiming_normal"})
    g.set_params("dense1", {"out_features": 2, "bias": False})
    problem = analyze(g).problems_for("dense1")[0]
    assert "no tensor 'bias'" in problem.message and problem.field == "init.bias"


def test_every_scheme_is_a_torch_init_function() -> None:
    assert all(s.function is None or hasattr(torch.nn.init, s.function)
               for s in SCHEMES.values())
