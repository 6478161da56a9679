from __future__ import annotations

import pytest
import torch

from studio.core.build import build_module
from studio.core.errors import ShapeError
from studio.core.graph import Graph, Node
from studio.core.project import Project, sample_paths


def residual_graph() -> Graph:
    return Project.load(next(p for p in sample_paths() if "residual" in p.name)).graph


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    g = residual_graph()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = build_module(g, seed=7), build_module(g, seed=7), build_module(g, seed=8)
    assert torch.equal(torch.rand(1), expected_next)
    for (na, pa), (nb, pb), (_, _pc) in zip(a.state_dict().items(), b.state_dict().items(),
                                           c.state_dict().items(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    assert not torch.equal(a.stem.weight, c.stem.weight)


def test_parameters_are_named_by_node_id() -> None:
    names = [n for n, _ in build_module(residual_graph()).named_parameters()]
    assert names[:3] == ["stem.weight", "stem.bias", "stem_bn.weight"]
    assert "fc.weight" in names


def test_residual_add_runs_the_skip_path() -> None:
    g = residual_graph()
    m = build_module(g).eval()
    x = torch.randn(2, 1, 28, 28)
    y1 = m(x)
    # zeroing the block's second BN makes block1_add == its skip input: output must change
    with torch.no_grad():
        m.block1_bn2.weight.zero_()
        m.block1_bn2.bias.zero_()
    assert not torch.allclose(y1, m(x))


def test_multi_input_graph_and_frozen_nodes() -> None:
    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [4]}))
    g.add_node(Node("meta", "Input", {"shape": [2]}))
    g.add_node(Node("cat", "Concat", {"dim": 1}))
    g.add_node(Node("fc", "Linear", {"out_features": 3}, trainable=False))
    g.connect("image", "cat", 0)
    g.connect("meta", "cat", 1)
    g.connect("cat", "fc")
    m = build_module(g)
    y = m(torch.ones(5, 4), torch.zeros(5, 2))
    assert y.shape == (5, 3)
    assert not any(p.requires_grad for p in m.fc.parameters())


def test_invalid_graph_raises_shape_error_naming_node() -> None:
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [3, 8, 8]}))
    g.add_node(Node("fc", "Linear", {}))
    g.connect("x", "fc")
    with pytest.raises(ShapeError) as exc:
        build_module(g)
    assert exc.value.where == "fc" and "insert Flatten" in exc.value.message


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name)
def test_every_sample_trains_one_step_and_moves_devices(path) -> None:
    project = Project.load(path)
    m = build_module(project.graph)
    m.to("meta")  # any device: nothing in the module is pinned to the CPU
    assert all(p.device.type == "meta" for p in m.parameters())
    m = build_module(project.graph).to(torch.float64)
    shape = next(n for n in project.graph if n.type == "Input").params["shape"]
    y = m(torch.randn(4, *shape, dtype=torch.float64))
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_run_time_errors_carry_the_failing_node() -> None:
    """Shape inference stops these before a run; a module called directly still names the node."""
    m = build_module(residual_graph())
    with pytest.raises(RuntimeError) as exc:
        m(torch.randn(2, 3, 28, 28))  # three channels into a one-channel stem
    assert exc.value.studio_node == "stem"


def test_built_for_loading_it_computes_the_same_and_draws_nothing() -> None:
    """A network about to receive trained weights is made without drawing any: torch's global
    generator is left exactly as it was (a run in another thread may be drawing from it), and
    with the weights loaded it computes what the ordinary build does, computed buffers (fixed
    sinusoids) included."""
    import torch

    from studio.core.project import Project, sample_paths
    from tests.graphs import net

    graphs = [Project.load(p).graph for p in sample_paths()]
    graphs.append(net(("x", "Input", {"shape": [12], "dtype": "int64"}),
                      ("emb", "Embedding", {"num_embeddings": 50, "embedding_dim": 16}),
                      ("pos", "PositionalEmbedding", {"kind": "sinusoidal", "max_len": 32}),
                      ("enc", "TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 32}),
                      ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 3})))
    for g in graphs:
        ref = build_module(g, seed=5).eval()
        torch.manual_seed(99)
        state = torch.get_rng_state()
        loaded = build_module(g, for_loading=True)
        assert torch.equal(torch.get_rng_state(), state)
        loaded.load_state_dict(ref.state_dict())
        loaded.eval()
        from studio.core.shapes import analyze

        a = analyze(g)
        xs = []
        for i in a.inputs:
            shape = a.nodes[i].shape
            if str(g.nodes[i].params.get("dtype", "float32")).startswith("int"):
                xs.append(torch.randint(0, 10, (2, *shape)))
            else:
                xs.append(torch.randn(2, *shape))
        with torch.no_grad():
            assert torch.equal(ref(*xs), loaded(*xs))
