"""Blocks in the exports: model.py writes one class per block definition and uses it as the
network does, with the app's weights, outputs and seeded start; ONNX nodes carry the block
path."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from studio.core.blockdef import BlockDef
from studio.core.blocks import apply_group, plan_group
from studio.core.build import build_module
from studio.core.graph import Graph, Node
from studio.core.project import Project, default_sample
from studio.export import export, load_model, sample_inputs
from studio.export.code import model_source

ROOT = Path(__file__).resolve().parents[2]


def _link(g: Graph, *edges: tuple) -> None:
    for src, dst, *port in edges:
        g.connect(src, dst, port[0] if port else 0)


def _definition(*nodes: Node, edges: tuple = ()) -> Graph:
    g = Graph()
    for n in nodes:
        g.add_node(n)
    _link(g, *edges)
    return g


def two_conv_pools(name: str = "ConvPool") -> Project:
    """The MNIST CNN with conv1/relu1/pool1 grouped into a block, and a second instance of it
    in place of conv2/relu2/pool2."""
    p = Project.load(default_sample())
    g = p.graph
    plan = plan_group(g, ["conv1", "relu1", "pool1"], name)
    apply_group(g, plan)
    first = plan.instance.id  # conv_pool_1, after the block's name
    at = g.index("conv2")
    for n in ("conv2", "relu2", "pool2"):
        g.remove_node(n)
    g.add_node(Node("conv_pool_2", "Block", {"block": name, "repeat": 1}), at)
    _link(g, (first, "conv_pool_2"), ("conv_pool_2", "conv3"))
    return p


def _res(name: str = "Res") -> BlockDef:
    """x → conv (its own init) → ReLU → + x: one input, so it can repeat."""
    conv = Node("conv", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1},
                init={"weight": {"type": "xavier_uniform"}})
    return BlockDef(name, _definition(
        Node("x", "Input", {"shape": [32, 13, 13]}), conv, Node("relu", "ReLU", {}),
        Node("add", "Add", {}),
        edges=(("x", "conv"), ("conv", "relu"), ("relu", "add", 0), ("x", "add", 1))),
        "conv, ReLU and the input added back")


def zoo(res: str = "Res") -> Project:
    """ConvPool, then Res repeated twice, a two-input block (with a frozen layer inside), a
    frozen block nesting ConvPool and Res, and a repeated Dense block whose repetitions take
    different widths. ``res``: the name of the Res block."""
    p = two_conv_pools()
    g = p.graph
    g.set_block(_res(res))
    bn = Node("bn", "BatchNorm2d", {})
    bn.trainable = False
    g.set_block(BlockDef("Pair", _definition(
        Node("x", "Input", {"shape": [32, 13, 13]}), Node("skip", "Input", {"shape": [32, 13, 13]}),
        Node("conv", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}), bn,
        Node("add", "Add", {}),
        edges=(("x", "conv"), ("conv", "bn"), ("bn", "add", 0), ("skip", "add", 1)))))
    g.set_block(BlockDef("Stage", _definition(
        Node("x", "Input", {"shape": [32, 13, 13]}),
        Node("down", "Block", {"block": "ConvPool", "repeat": 1}),
        Node("res", "Block", {"block": res, "repeat": 1}),
        edges=(("x", "down"), ("down", "res")))))
    g.set_block(BlockDef("Dense", _definition(
        Node("x", "Input", {"shape": [64]}), Node("fc", "Linear", {"out_features": 64}),
        Node("act", "ReLU", {}), edges=(("x", "fc"), ("fc", "act")))))
    for n in ("conv_pool_2", "conv3", "relu3", "flatten", "dense1", "relu4", "dense2"):
        g.remove_node(n)
    stage = Node("stage", "Block", {"block": "Stage", "repeat": 1})
    stage.trainable = False
    for n in (Node("res", "Block", {"block": res, "repeat": 2}),
              Node("pair", "Block", {"block": "Pair", "repeat": 1}), stage,
              Node("flatten", "Flatten", {}),
              Node("head", "Block", {"block": "Dense", "repeat": 2}),
              Node("out", "Linear", {"out_features": 10})):
        g.add_node(n)
    _link(g, ("conv_pool_1", "res"), ("res", "pair", 0), ("conv_pool_1", "pair", 1),
          ("pair", "stage"), ("stage", "flatten"), ("flatten", "head"), ("head", "out"))
    return p


def stages() -> Project:
    """A block used twice whose nested block and first layer both take its input's width:
    x → BatchNorm → ConvPool → Res."""
    p = two_conv_pools()
    g = p.graph
    g.set_block(_res())
    g.set_block(BlockDef("Stage", _definition(
        Node("x", "Input", {"shape": [1, 28, 28]}), Node("bn", "BatchNorm2d", {}),
        Node("down", "Block", {"block": "ConvPool", "repeat": 1}),
        Node("res", "Block", {"block": "Res", "repeat": 1}),
        edges=(("x", "bn"), ("bn", "down"), ("down", "res")))))
    for n in ("conv_pool_1", "conv_pool_2", "conv3", "relu3"):
        g.remove_node(n)
    for i, n in enumerate(("stage_1", "stage_2")):
        g.add_node(Node(n, "Block", {"block": "Stage", "repeat": 1}), 1 + i)
    _link(g, ("input", "stage_1"), ("stage_1", "stage_2"), ("stage_2", "flatten"))
    return p


def load_source(source: str, folder: Path, name: str) -> ModuleType:
    """model.py written and imported as a user would."""
    (folder / f"{name}.py").write_text(source)
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def check_like_the_app(project: Project, folder: Path, name: str) -> str:
    """The generated Net takes the app's state dict (strict), computes what the app's model
    computes, freezes what it freezes, and a seed gives both the same start."""
    source = model_source(project)
    compile(source, "model.py", "exec")
    assert max(map(len, source.splitlines())) <= 100 and "noqa" not in source
    module = load_source(source, folder, name)
    app = build_module(project.graph, seed=3).eval()
    net = module.Net().eval()
    net.load_state_dict(app.state_dict(), strict=True)
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), app(x))
    assert [(k, p.requires_grad) for k, p in net.named_parameters()] == \
        [(k, p.requires_grad) for k, p in app.named_parameters()]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        fresh = module.Net().state_dict()
    ours = app.state_dict()
    assert list(fresh) == list(ours)
    assert all(torch.equal(fresh[k], ours[k]) for k in ours)
    return source


def test_a_shared_block_is_one_class_used_twice_with_its_width_as_a_parameter(tmp_path) -> None:
    src = check_like_the_app(two_conv_pools(), tmp_path, "convpool_model")
    assert src.count("class ConvPool(nn.Module):") == 1
    assert "    def __init__(self, in_channels: int) -> None:" in src
    assert "nn.Conv2d(in_channels=in_channels, out_channels=32, kernel_size=3)" in src
    assert "self.conv_pool_1 = ConvPool(in_channels=1)" in src
    assert "self.conv_pool_2 = ConvPool(in_channels=32)" in src
    assert "conv1 = self.conv1(x)  # (N, 32, 26, 26) or (N, 32, 11, 11)" in src
    assert src.index("class ConvPool") < src.index("class Net")


def test_repeated_nested_frozen_and_two_input_blocks_match_the_app(tmp_path) -> None:
    src = check_like_the_app(zoo(), tmp_path, "zoo_model")
    for cls in ("ConvPool", "Res", "Pair", "Stage", "Dense", "Net"):
        assert src.count(f"class {cls}(nn.Module):") == 1
    # dependencies first: Stage uses ConvPool and Res
    assert src.index("class ConvPool") < src.index("class Res") < src.index("class Stage")
    assert "self.res = nn.Sequential(*[Res() for _ in range(2)])" in src
    assert "self.head = nn.Sequential(Dense(in_features=800), Dense(in_features=64))" in src
    assert "def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:" in src
    assert "pair = self.pair(res, conv_pool_1)  # (N, 32, 13, 13)" in src
    assert "self.stage.requires_grad_(False)  # frozen" in src
    assert "self.bn.requires_grad_(False)  # frozen" in src
    assert "nn.init.xavier_uniform_(self.conv.weight, gain=1.0)" in src
    assert "self.down = ConvPool(in_channels=32)" in src
    assert "DESCRIPTION = 'conv, ReLU and the input added back'" in src


def test_a_nested_block_takes_its_width_from_the_block_around_it(tmp_path) -> None:
    src = check_like_the_app(stages(), tmp_path, "stages_model")
    # BatchNorm's num_features and ConvPool's in_channels are both the Stage input's width
    assert "class Stage(nn.Module):" in src
    assert "    def __init__(self, in_channels: int) -> None:" in src
    assert "self.bn = nn.BatchNorm2d(num_features=in_channels)" in src
    assert "self.down = ConvPool(in_channels=in_channels)" in src
    assert "self.stage_1 = Stage(in_channels=1)" in src
    assert "self.stage_2 = Stage(in_channels=32)" in src


@pytest.mark.parametrize("name", ["Add", "None", "Net"])
def test_a_block_named_like_what_model_py_already_means_gets_its_own_class_name(
        name, tmp_path) -> None:
    # Add is also the helper module the residual block adds with
    project = zoo(res=name) if name == "Add" else two_conv_pools(name)
    src = check_like_the_app(project, tmp_path, f"named_{name.lower()}_model")
    assert f"class {name}Block(nn.Module):" in src


def test_a_block_description_reaches_model_py_only_as_a_literal(tmp_path) -> None:
    text = 'Iris"""; import os\n\u2028# \'\'\' {name!r} \\' * 4  # past a line's width
    project = two_conv_pools()
    project.graph.blocks["ConvPool"].description = text
    module = load_source(model_source(project), tmp_path, "described_model")
    assert text == module.ConvPool.DESCRIPTION
    assert not hasattr(module, "os")


def test_exports_of_blocks_verify_and_onnx_nodes_carry_the_block_path(tmp_path) -> None:
    import onnx

    project = zoo()
    report = export(project, "onnx", tmp_path / "m.onnx")
    assert report.max_abs_diff <= report.tolerance
    names = [n.name for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert len(set(names)) == len(names)
    for path in ("/conv_pool_1/conv1/Conv", "/res/0/conv/Conv", "/res/1/add/Add",
                 "/stage/down/conv1/Conv", "/stage/res/conv/Conv", "/head/1/fc/Gemm",
                 "/pair/conv+bn/Conv"):  # a BatchNorm folded into its Conv: both named
        assert path in names, names
    for fmt in ("pt2", "safetensors"):
        report = export(project, fmt, tmp_path / f"m.{fmt}")
        assert report.max_abs_diff <= report.tolerance


def test_the_python_package_of_blocks_loads_its_weights_and_is_ruff_clean(tmp_path) -> None:
    project = zoo()
    pkg = tmp_path / "pkg"
    report = export(project, "python", pkg)
    assert report.max_abs_diff <= report.tolerance
    assert "Each of its 5 blocks is a class of its own" in (pkg / "README.md").read_text()
    from safetensors.torch import load_file

    module = load_source((pkg / "model.py").read_text(), tmp_path, "package_model")
    net = module.Net().eval()
    net.load_state_dict(load_file(str(pkg / "weights.safetensors")), strict=True)
    model, _ = load_model(project, None)
    xs, _real = sample_inputs(project, None, 4)
    with torch.no_grad():
        assert torch.equal(net(*xs), model(*xs))
    # from inside the folder, as its user would, under the repository's rules
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                        str(ROOT / "pyproject.toml"), "--no-cache", "."], cwd=pkg,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_definitions_alike_but_for_their_settings_share_one_class(tmp_path) -> None:
    # the importer defines BasicBlock … BasicBlock7: widths and strides apart, two shapes
    from studio.export.torchvision_import import import_torchvision

    project = import_torchvision("resnet18", size=32).project
    assert len(project.graph.blocks) == 7
    source = model_source(project)
    assert max(map(len, source.splitlines())) <= 100 and "noqa" not in source
    blocks = [line for line in source.splitlines()
              if line.startswith("class ") and line.endswith("(nn.Module):")
              and line.split("(")[0][6:] not in ("Net", "Add")]
    assert blocks == ["class BasicBlock(nn.Module):", "class BasicBlock2(nn.Module):"]
    assert "    def __init__(self, channels: int) -> None:" in source
    assert "    def __init__(self, in_channels: int, out_channels: int) -> None:" in source
    assert "self.layer2_0 = BasicBlock2(in_channels=64, out_channels=128)" in source
    assert "self.layer4_1 = BasicBlock(channels=512)" in source
    module = load_source(source, tmp_path, "resnet18_model")
    app = build_module(project.graph, seed=3).eval()
    net = module.Net().eval()
    net.load_state_dict(app.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), app(x))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        fresh = module.Net().state_dict()
    ours = app.state_dict()
    assert list(fresh) == list(ours) and all(torch.equal(fresh[k], ours[k]) for k in ours)
