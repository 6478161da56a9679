"""The built-in blocks of the palette, drawn from catalog layers.

Each maker returns a fresh definition and the blocks it uses (never shared with a graph);
``studio.core.block_library.builtin`` links them so a copy can be analysed on its own. Each
keeps its input's shape, so every one can repeat. Example input shapes (their Input nodes
hold them): ConvBNReLU, ResNetBasic, SqueezeExcite [64, 32, 32]; ResNetBottleneck
[256, 32, 32]; Inception [256, 28, 28]; MBConv [16, 32, 32]; TransformerEncoder [64, 128]
(sequence, features); MLPBlock [256].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import catalog
from .blockdef import BLOCK, BlockDef, Definition, block_params
from .graph import Graph, Node
from .layout import COLUMN, ROW


class _Sketch:
    """A definition drawn on a grid: column and row become canvas positions, so every
    built-in reads top to bottom with parallel branches side by side."""

    def __init__(self) -> None:
        self.graph = Graph()

    def add(self, nid: str, kind: str, params: dict[str, Any], at: tuple[float, float],
            *inputs: str) -> str:
        if kind == BLOCK:
            params = block_params(params)
        else:  # stored as a loaded file stores them: a save and a load give them back exactly
            params = catalog.CATALOG[kind].schema.validate(params)
        self.graph.add_node(Node(nid, kind, params, (at[0] * COLUMN, at[1] * ROW)))
        for port, src in enumerate(inputs):
            self.graph.connect(src, nid, port)
        return nid

    def column(self, x: float, row: int, src: str,
               *layers: tuple[str, str, dict[str, Any]]) -> str:
        """A chain of layers one under the other, starting at ``row``; returns the last."""
        for k, (nid, kind, params) in enumerate(layers):
            src = self.add(nid, kind, params, (x, row + k), src)
        return src


def _conv(out: int, k: int, **kw: Any) -> dict[str, Any]:
    pad = {"padding": k // 2} if k > 1 else {}
    return {"out_channels": out, "kernel_size": k, **pad, **kw}


def _conv_bn_relu() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [64, 32, 32]}, (0, 0))
    s.column(0, 1, x, ("conv", "Conv2d", _conv(64, 3, bias=False)),
             ("bn", "BatchNorm2d", {}), ("relu", "ReLU", {}))
    return BlockDef("ConvBNReLU", s.graph, "3×3 convolution, batch norm and ReLU: the unit "
                    "most CNNs are stacked from"), {}


def _resnet_basic() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [64, 32, 32]}, (0, 0))
    y = s.column(0, 1, x, ("conv1", "Conv2d", _conv(64, 3, bias=False)),
                 ("bn1", "BatchNorm2d", {}), ("relu1", "ReLU", {}),
                 ("conv2", "Conv2d", _conv(64, 3, bias=False)), ("bn2", "BatchNorm2d", {}))
    s.add("add", "Add", {}, (0, 6), y, x)
    s.add("relu2", "ReLU", {}, (0, 7), "add")
    return BlockDef("ResNetBasic", s.graph, "ResNet basic block: two 3×3 conv-BN layers and "
                    "an identity skip added before the last ReLU"), {}


def _resnet_bottleneck() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [256, 32, 32]}, (0, 0))
    y = s.column(0, 1, x, ("conv1", "Conv2d", _conv(64, 1, bias=False)),
                 ("bn1", "BatchNorm2d", {}), ("relu1", "ReLU", {}),
                 ("conv2", "Conv2d", _conv(64, 3, bias=False)), ("bn2", "BatchNorm2d", {}),
                 ("relu2", "ReLU", {}),
                 ("conv3", "Conv2d", _conv(256, 1, bias=False)), ("bn3", "BatchNorm2d", {}))
    s.add("add", "Add", {}, (0, 9), y, x)
    s.add("relu3", "ReLU", {}, (0, 10), "add")
    return BlockDef("ResNetBottleneck", s.graph, "ResNet bottleneck: 1×1 reduce to 64, 3×3, "
                    "1×1 expand ×4 back to 256, identity skip"), {}


def _inception() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [256, 28, 28]}, (1.5, 0))
    b1 = s.column(0, 1, x, ("b1_conv", "Conv2d", _conv(64, 1)), ("b1_relu", "ReLU", {}))
    b2 = s.column(1, 1, x, ("b2_reduce", "Conv2d", _conv(96, 1)),
                  ("b2_reduce_relu", "ReLU", {}), ("b2_conv", "Conv2d", _conv(128, 3)),
                  ("b2_relu", "ReLU", {}))
    b3 = s.column(2, 1, x, ("b3_reduce", "Conv2d", _conv(16, 1)),
                  ("b3_reduce_relu", "ReLU", {}), ("b3_conv", "Conv2d", _conv(32, 5)),
                  ("b3_relu", "ReLU", {}))
    b4 = s.column(3, 1, x, ("b4_pool", "MaxPool2d", {"kernel_size": 3, "stride": 1,
                                                     "padding": 1}),
                  ("b4_proj", "Conv2d", _conv(32, 1)), ("b4_relu", "ReLU", {}))
    s.add("concat", "Concat", {"dim": 1}, (1.5, 5), b1, b2, b3, b4)
    return BlockDef("Inception", s.graph, "Inception module: parallel 1×1, 3×3, 5×5 and "
                    "pool-projection branches joined along the channels (64+128+32+32)"), {}


def _squeeze_excite() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [64, 32, 32]}, (0, 0))
    gate = s.column(1, 1, x, ("pool", "AdaptiveAvgPool2d", {"output_size": 1}),
                    ("reduce", "Conv2d", _conv(4, 1)), ("relu", "ReLU", {}),
                    ("expand", "Conv2d", _conv(64, 1)), ("gate", "Sigmoid", {}))
    s.add("scale", "Multiply", {}, (0, 6), x, gate)  # [64, 1, 1] broadcasts over H and W
    return BlockDef("SqueezeExcite", s.graph, "Squeeze-and-excitation: global pooling, a "
                    "small bottleneck and a sigmoid rescale each channel of the input"), {}


def _mbconv() -> Definition:
    se, _ = _squeeze_excite()
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [16, 32, 32]}, (0, 0))
    y = s.column(0, 1, x, ("expand", "Conv2d", _conv(64, 1, bias=False)),
                 ("bn1", "BatchNorm2d", {}), ("act1", "SiLU", {}),
                 ("depthwise", "Conv2d", _conv(64, 3, groups=64, bias=False)),
                 ("bn2", "BatchNorm2d", {}), ("act2", "SiLU", {}),
                 ("se", BLOCK, {"block": se.name, "repeat": 1}),
                 ("project", "Conv2d", _conv(16, 1, bias=False)), ("bn3", "BatchNorm2d", {}))
    s.add("add", "Add", {}, (0, 10), y, x)
    return BlockDef("MBConv", s.graph, "MBConv (EfficientNet): 1×1 expand ×4, depthwise 3×3, "
                    "squeeze-and-excitation, 1×1 project, identity skip"), {se.name: se}


def _transformer_encoder() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [64, 128]}, (0, 0))
    y = s.column(0, 1, x, ("ln1", "LayerNorm", {}),
                 ("attn", "MultiheadAttention", {"num_heads": 4}),
                 ("drop1", "Dropout", {"p": 0.1}))
    s.add("add1", "Add", {}, (0, 4), y, x)
    y = s.column(0, 5, "add1", ("ln2", "LayerNorm", {}),
                 ("fc1", "Linear", {"out_features": 512}), ("act", "GELU", {}),
                 ("fc2", "Linear", {"out_features": 128}), ("drop2", "Dropout", {"p": 0.1}))
    s.add("add2", "Add", {}, (0, 10), y, "add1")
    return BlockDef("TransformerEncoder", s.graph, "Pre-norm Transformer encoder block on "
                    "[sequence, features]: self-attention and an MLP, each with a residual"), {}


def _mlp_block() -> Definition:
    s = _Sketch()
    x = s.add("x", "Input", {"shape": [256]}, (0, 0))
    s.column(0, 1, x, ("fc", "Linear", {"out_features": 256}), ("act", "ReLU", {}),
             ("drop", "Dropout", {"p": 0.1}))
    return BlockDef("MLPBlock", s.graph, "Linear, ReLU and dropout on a feature vector: "
                    "one hidden layer of an MLP"), {}


BUILTINS: dict[str, Callable[[], Definition]] = {
    "ConvBNReLU": _conv_bn_relu,
    "ResNetBasic": _resnet_basic,
    "ResNetBottleneck": _resnet_bottleneck,
    "Inception": _inception,
    "SqueezeExcite": _squeeze_excite,
    "MBConv": _mbconv,
    "TransformerEncoder": _transformer_encoder,
    "MLPBlock": _mlp_block,
}
