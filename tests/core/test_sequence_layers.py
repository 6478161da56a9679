"""The plain RNN, positions, causal attention and 1-D pooling: shapes, counts and behaviour
checked against real torch, and the exported model.py building the same network."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.core import catalog
from studio.core.build import build_module
from studio.core.graph import Graph, Node
from studio.core.project import Project
from studio.core.shapes import analyze
from studio.export.code import model_source
from tests.graphs import net

ROOT = Path(__file__).resolve().parents[2]

#: (layer, input sample shape, params): configurations across each new layer's options
CONFIGS = [
    ("RNN", (7, 5), {"hidden_size": 6}),
    ("RNN", (7, 5), {"hidden_size": 4, "nonlinearity": "relu", "output": "sequence"}),
    ("RNN", (3, 2), {"hidden_size": 5, "num_layers": 3, "bidirectional": True,
                     "bias": False, "dropout": 0.2}),
    ("RNN", (4, 3), {"hidden_size": 2, "num_layers": 2, "bidirectional": True,
                     "output": "sequence"}),
    ("PositionalEmbedding", (7, 6), {"max_len": 7}),
    ("PositionalEmbedding", (3, 5), {"max_len": 40, "kind": "sinusoidal"}),
    ("AvgPool1d", (3, 10), {}),
    ("AvgPool1d", (2, 11), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                            "count_include_pad": False}),
    ("AvgPool1d", (1, 5), {"kernel_size": 5}),
    ("AdaptiveAvgPool1d", (4, 9), {}),
    ("AdaptiveAvgPool1d", (4, 9), {"output_size": 4}),
    ("AdaptiveAvgPool1d", (2, 3), {"output_size": 7}),  # larger than the input: repeats
    ("MultiheadAttention", (6, 8), {"num_heads": 2, "causal": True}),
    ("TransformerEncoderLayer", (6, 8), {"nhead": 4, "dim_feedforward": 16, "causal": True,
                                         "norm_first": True}),
]


def chain(shape: tuple[int, ...], kind: str, params: dict) -> Graph:
    return net(("x", "Input", {"shape": list(shape)}), ("y", kind, params))


@pytest.mark.parametrize(("kind", "shape", "params"), CONFIGS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_inferred_shape_and_counts_match_the_built_module(kind, shape, params) -> None:
    g = chain(shape, kind, params)
    info = analyze(g).nodes["y"]
    m = build_module(g).eval()
    with torch.no_grad():
        y = m(torch.randn(3, *shape))
    assert tuple(y.shape) == (3, *info.shape)
    assert info.params == sum(p.numel() for p in m.parameters())


def test_rnn_multiply_adds_follow_the_one_gate_formula() -> None:
    spec = catalog.CATALOG["RNN"]
    p = spec.schema.resolve({"hidden_size": 3, "num_layers": 2, "bidirectional": True})
    # layer 0: 2 dirs × 5 steps × 3 × (4 + 3); layer 1 takes both directions, 6 wide
    assert spec.count_macs([(5, 4)], p, (6,)) == 2 * 5 * 3 * (4 + 3) + 2 * 5 * 3 * (6 + 3)


def test_rnn_last_output_is_the_final_step_of_each_direction() -> None:
    seq = build_module(chain((5, 3), "RNN", {"hidden_size": 4, "bidirectional": True,
                                              "output": "sequence"})).eval()
    last = build_module(chain((5, 3), "RNN", {"hidden_size": 4, "bidirectional": True})).eval()
    last.load_state_dict(seq.state_dict())
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        s, h = seq(x), last(x)
    assert torch.allclose(h[:, :4], s[:, -1, :4]) and torch.allclose(h[:, 4:], s[:, 0, 4:])


def test_the_rnn_learns_a_tiny_sequence_task() -> None:
    g = net(("x", "Input", {"shape": [6, 2]}),
            ("rnn", "RNN", {"hidden_size": 8, "nonlinearity": "relu"}),
            ("out", "Linear", {"out_features": 1}))
    m = build_module(g, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, 2, generator=gen)
    y = x[:, :, 0].mean(dim=1, keepdim=True)  # the mean of the first feature over time
    losses = []
    for _ in range(40):  # plain gradient descent, written out
        loss = torch.nn.functional.mse_loss(m(x), y)
        m.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in m.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("features", [6, 7])
def test_sinusoidal_positions_are_the_papers_formula(features: int) -> None:
    g = chain((9, features), "PositionalEmbedding", {"kind": "sinusoidal", "max_len": 12})
    m = build_module(g)
    out = m(torch.zeros(1, 9, features))[0]
    for pos in range(9):
        for i in range(features):
            angle = pos / 10000 ** (2 * (i // 2) / features)
            want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert out[pos, i].item() == pytest.approx(want, abs=1e-6)
    assert not list(m.parameters()) and not m.state_dict()  # a formula, not weights


def test_learned_positions_receive_gradients_for_the_steps_seen() -> None:
    m = build_module(chain((5, 4), "PositionalEmbedding", {"max_len": 8}))
    (weight,) = m.parameters()
    assert weight.shape == (8, 4)
    (m(torch.randn(3, 5, 4)) ** 2).sum().backward()
    assert weight.grad is not None
    assert weight.grad[:5].abs().sum(dim=1).gt(0).all()
    assert torch.equal(weight.grad[5:], torch.zeros(3, 4))  # positions never seen


def test_a_sequence_longer_than_max_len_is_refused_naming_the_field() -> None:
    problems = analyze(chain((20, 4), "PositionalEmbedding", {"max_len": 16})).problems
    assert [(p.node, p.field) for p in problems] == [("y", "max_len")]
    assert "20 steps, more than max_len 16" in problems[0].message
    m = build_module(chain((1, 4), "PositionalEmbedding", {"max_len": 1}))
    with pytest.raises(ValueError, match="max_len"):  # a one-row table would broadcast
        m(torch.zeros(2, 3, 4))


@pytest.mark.parametrize(("kind", "params"), [
    ("MultiheadAttention", {"num_heads": 2}),
    ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16}),
])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])  # torch's two paths
def test_causal_attention_never_looks_ahead(kind: str, params: dict, grad: bool) -> None:
    x = torch.randn(2, 6, 8)
    later = x.clone()
    later[:, 4] += 3.0  # change step 4 only

    def outputs(causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        m = build_module(chain((6, 8), kind, {**params, "causal": causal})).eval()
        with torch.set_grad_enabled(grad):
            return m(x), m(later)

    a, b = outputs(causal=True)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)  # steps before 4 never saw it
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)
    a, b = outputs(causal=False)
    assert not torch.allclose(a[:, :4], b[:, :4], atol=1e-3)  # without it, they do


def new_layers_project() -> Project:
    """Every new layer and option in one network: positions, causal attention, both RNN
    outputs and 1-D pooling, joined by Concat."""
    g = Graph()
    for node in [
        Node("x", "Input", {"shape": [12, 8]}),
        Node("pos", "PositionalEmbedding", {"kind": "sinusoidal", "max_len": 16}),
        Node("learned", "PositionalEmbedding", {"max_len": 12}),
        Node("encoder", "TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16,
                                                    "causal": True}),
        Node("attend", "MultiheadAttention", {"num_heads": 2, "causal": True}),
        Node("last", "RNN", {"hidden_size": 5}),
        Node("steps", "RNN", {"hidden_size": 3, "nonlinearity": "relu",
                              "bidirectional": True, "output": "sequence"}),
        Node("channels", "Permute", {"dims": [0, 2, 1]}),
        Node("pool", "AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": 1}),
        Node("squeeze", "AdaptiveAvgPool1d", {"output_size": 2}),
        Node("flat", "Flatten", {}),
        Node("both", "Concat", {"dim": 1}),
        Node("out", "Linear", {"out_features": 3}),
    ]:
        g.add_node(node)
    for src, dst in [("x", "pos"), ("pos", "learned"), ("learned", "encoder"),
                     ("encoder", "attend"), ("attend", "last"), ("attend", "steps"),
                     ("steps", "channels"), ("channels", "pool"), ("pool", "squeeze"),
                     ("squeeze", "flat")]:
        g.connect(src, dst)
    g.connect("last", "both", 0)
    g.connect("flat", "both", 1)
    g.connect("both", "out")
    return Project("new layers", g)


def test_exported_model_builds_the_same_network(tmp_path: Path) -> None:
    project = new_layers_project()
    assert analyze(project.graph).ok
    built = build_module(project.graph, seed=3).eval()
    src = model_source(project)
    (tmp_path / "model.py").write_text(src)
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import torch",
                       "from torch import nn"]
    spec = importlib.util.spec_from_file_location("exported_new_layers", tmp_path / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.Net().eval()
    exported.load_state_dict(built.state_dict())  # strict: the same names and shapes
    x = torch.randn(4, 12, 8)
    with torch.no_grad():
        assert torch.equal(exported(x), built(x))
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                           str(ROOT / "pyproject.toml"), "--no-cache", "model.py"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
