"""Imported torchvision models show their blocks: repeated module classes arrive as block
definitions and instances, with torchvision's parameter counts and outputs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from studio.core.blockdef import BLOCK
from studio.core.blocks import expand
from studio.core.build import build_module
from studio.core.graph import Graph
from studio.core.project import Project
from studio.core.shapes import analyze
from studio.export.torchvision_import import (
    ImportResult,
    graph_from_module,
    import_torchvision,
)

SIZE = 64


def _instances(graph: Graph) -> dict[str, str]:
    return {n.id: n.params["block"] for n in graph if n.type == BLOCK}


def _tv_params(name: str) -> int:
    return sum(p.numel() for p in torchvision.models.get_model(name).parameters())


def _assert_same_outputs(result: ImportResult, name: str) -> None:
    tv = torchvision.models.get_model(name).eval()
    net = build_module(result.project.graph, seed=None).eval()
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in tv.parameters())
    # strict: every torchvision key lands on exactly one nested Studio key
    net.load_state_dict({result.key_map[k]: v for k, v in tv.state_dict().items()})
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net(x), tv(x), atol=1e-5)


def _assert_laid_out(graph: Graph) -> None:
    for g in [graph, *(d.graph for d in graph.blocks.values())]:
        assert len({n.pos for n in g}) == len(g)


def test_resnet18_arrives_as_a_stem_eight_blocks_and_a_head() -> None:
    result = import_torchvision("resnet18", size=SIZE)
    g = result.project.graph
    assert [(n.id, n.type) for n in g if n.type != BLOCK] == [
        ("input", "Input"), ("conv1", "Conv2d"), ("bn1", "BatchNorm2d"), ("relu", "ReLU"),
        ("maxpool", "MaxPool2d"), ("avgpool", "AdaptiveAvgPool2d"), ("flatten", "Flatten"),
        ("fc", "Linear")]
    blocks = _instances(g)
    assert list(blocks) == [f"layer{i}_{j}" for i in range(1, 5) for j in range(2)]
    assert result.params == analyze(g).total_params == 11_689_512
    # equal structure shares a definition; a downsampling block or another width does not
    assert blocks["layer1_0"] == blocks["layer1_1"] == "BasicBlock"
    assert len(set(blocks.values())) == 7 and len(g.blocks) == 7
    assert all(name.startswith("BasicBlock") for name in g.blocks)
    plain, down = g.blocks["BasicBlock"], g.blocks[blocks["layer2_0"]]
    assert [n.id for n in plain.graph] == ["x", "conv1", "bn1", "relu", "conv2", "bn2", "add",
                                           "relu_2"]
    assert {"downsample_0", "downsample_1"} <= set(down.graph.nodes)
    assert plain.graph.nodes["x"].params == {"shape": [64, SIZE // 4, SIZE // 4]}
    assert down.graph.nodes["x"].params == {"shape": [64, SIZE // 4, SIZE // 4]}
    assert "layer1.0, layer1.1" in plain.description
    assert result.key_map["layer1.0.conv1.weight"] == "layer1_0.conv1.weight"
    assert result.key_map["layer2.0.downsample.0.weight"] == "layer2_0.downsample_0.weight"
    assert result.key_map["fc.bias"] == "fc.bias"
    _assert_same_outputs(result, "resnet18")
    _assert_laid_out(g)
    flat = import_torchvision("resnet18", size=SIZE, blocks=False).project.graph
    assert len(expand(g)) == len(flat) and analyze(expand(g)).total_params == 11_689_512


def test_mobilenet_v2_arrives_as_inverted_residual_blocks() -> None:
    result = import_torchvision("mobilenet_v2", size=SIZE)
    g = result.project.graph
    assert list(_instances(g)) == [f"features_{i}" for i in range(1, 18)]
    assert all(name.startswith("InvertedResidual") for name in g.blocks)
    assert len(g.blocks) < 17  # repeated stages share their definition
    assert result.params == _tv_params("mobilenet_v2") == 3_504_872
    _assert_same_outputs(result, "mobilenet_v2")
    _assert_laid_out(g)


@pytest.mark.parametrize(("name", "instances", "definitions"), [
    ("resnet50", 16, 8), ("vgg11", 0, 0), ("mobilenet_v3_small", 11, 9),
    ("efficientnet_b0", 16, 16),  # stochastic depth grows block by block: no two alike
    ("densenet121", 58, 1),  # each layer's concatenated input stays outside its block
])
def test_every_architecture_imports_with_torchvisions_parameter_count(
        name: str, instances: int, definitions: int) -> None:
    # outputs against torchvision: tests/export/test_import.py (the default import has blocks)
    result = import_torchvision(name, size=SIZE)
    g = result.project.graph
    assert len(_instances(g)) == instances and len(g.blocks) == definitions
    assert result.params == analyze(g).total_params == _tv_params(name)
    for d in g.blocks.values():
        assert len(d.inputs) == 1


def test_a_flat_import_is_still_possible() -> None:
    result = import_torchvision("resnet18", size=SIZE, blocks=False)
    g = result.project.graph
    assert not g.blocks and not _instances(g) and len(g) == 70
    assert result.key_map["layer1.0.conv1.weight"] == "layer1_0_conv1.weight"
    assert result.params == 11_689_512


def test_a_saved_and_reloaded_import_is_identical() -> None:
    project = import_torchvision("resnet18", size=SIZE).project
    again = Project.loads(project.dumps())
    assert again.graph.structure() == project.graph.structure()
    assert again.dumps() == project.dumps()


class _Unit(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.relu(self.fc(x)) + x
        return out


class _Pair(nn.Module):  # two outputs: not a block
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x), self.b(x)


class _Once(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(x)
        return out


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.u1, self.u2, self.u3 = _Unit(8), _Unit(8), _Unit(8)
        self.p1, self.p2 = _Pair(), _Pair()
        self.head = _Once()
        self.u1.fc = nn.Linear(8, 8, bias=False)  # another structure: its own block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.p1(self.u3(self.u2(self.u1(x))))
        c, d = self.p2(a * b)
        out: torch.Tensor = self.head(c + d)
        return out


def test_any_model_class_repeated_with_one_output_becomes_a_block() -> None:
    model = _Net().eval()
    g, key_map = graph_from_module(model, (8,), blocks=True)
    assert _instances(g) == {"u1": "Unit", "u2": "Unit2", "u3": "Unit2"}
    assert [n.id for n in g.blocks["Unit2"].graph] == ["x", "fc", "relu", "add"]
    assert {"p1_a", "p2_b", "head_fc"} <= set(g.nodes)  # two outputs; used once
    assert key_map["u3.fc.weight"] == "u3.fc.weight" and key_map["p1.a.bias"] == "p1_a.bias"
    net = build_module(g, seed=None).eval()
    net.load_state_dict({key_map[k]: v for k, v in model.state_dict().items()})
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-6)
