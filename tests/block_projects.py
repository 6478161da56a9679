"""Small projects built from block instances, shared by the tests of the engine with blocks."""

from __future__ import annotations

from studio.core.blockdef import BlockDef
from studio.core.graph import Graph, Node
from studio.core.project import DataSettings, Project, TrainingSettings
from tests.graphs import net


def use(g: Graph, nid: str, block: str, src: str, repeat: int = 1) -> None:
    """Add instance ``nid`` of ``block`` fed by ``src``."""
    g.add_node(Node(nid, "Block", {"block": block, "repeat": repeat}))
    g.connect(src, nid)


def conv_relu(channels: int = 4) -> BlockDef:
    return BlockDef("ConvRelu", net(
        ("x", "Input", {"shape": [channels, 8, 8]}),
        ("conv1", "Conv2d", {"out_channels": channels, "kernel_size": 3, "padding": 1}),
        ("relu1", "ReLU", {})))


def conv_blocks(repeat: int = 2, **training: object) -> Project:
    """digits as 1×8×8 images: stem → layer1 (ConvRelu ×repeat) → layer2 (Outer: a ConvRelu
    inside, then BatchNorm) → Flatten → Linear."""
    g = net(("x", "Input", {"shape": [1, 8, 8]}),
            ("stem", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}))
    g.set_block(conv_relu())
    outer = net(("x", "Input", {"shape": [4, 8, 8]}))
    use(outer, "inner", "ConvRelu", "x")
    outer.add_node(Node("bn", "BatchNorm2d", {}))
    outer.connect("inner", "bn")
    g.set_block(BlockDef("Outer", outer))
    use(g, "layer1", "ConvRelu", "stem", repeat)
    use(g, "layer2", "Outer", "layer1")
    for nid, kind, params, src in (("flat", "Flatten", {}, "layer2"),
                                   ("out", "Linear", {"out_features": 10}, "flat")):
        g.add_node(Node(nid, kind, params))
        g.connect(src, nid)
    t = {"epochs": 2, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("conv blocks", g, DataSettings(dataset="digits", batch_size=64),
                   TrainingSettings(**t))


def mlp_blocks(width: int = 16, **training: object) -> Project:
    """digits: x → blk (Mlp: fc1 → fc2 → act → fc3) → out. fc1 feeds fc2 directly and fc3
    feeds out directly: two stacked-linear findings, one inside the block, one leaving it."""
    g = net(("x", "Input", {"shape": [64]}))
    g.set_block(BlockDef("Mlp", net(("x", "Input", {"shape": [64]}),
                                    ("fc1", "Linear", {"out_features": 24}),
                                    ("fc2", "Linear", {"out_features": width}),
                                    ("act", "ReLU", {}),
                                    ("fc3", "Linear", {"out_features": 16}))))
    use(g, "blk", "Mlp", "x")
    g.add_node(Node("out", "Linear", {"out_features": 10}))
    g.connect("blk", "out")
    t = {"epochs": 2, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("mlp blocks", g, DataSettings(dataset="digits", batch_size=64),
                   TrainingSettings(**t))


def dense_blocks(repeat: int = 2, **training: object) -> Project:
    """digits: x → h → blk (Dense: Linear → BatchNorm1d → ReLU → Dropout, ×repeat) → out:
    weights, running statistics and dropout's random draws inside a repeated block."""
    g = net(("x", "Input", {"shape": [64]}), ("h", "Linear", {"out_features": 16}))
    g.set_block(BlockDef("Dense", net(("x", "Input", {"shape": [16]}),
                                      ("fc", "Linear", {"out_features": 16}),
                                      ("bn", "BatchNorm1d", {}), ("act", "ReLU", {}),
                                      ("drop", "Dropout", {"p": 0.2}))))
    use(g, "blk", "Dense", "h", repeat)
    g.add_node(Node("out", "Linear", {"out_features": 10}))
    g.connect("blk", "out")
    t = {"epochs": 2, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("dense blocks", g, DataSettings(dataset="digits", batch_size=64),
                   TrainingSettings(**t))
