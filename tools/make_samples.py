"""Regenerates samples/*.studio.json from the definitions below (python tools/make_samples.py).

Kept so that a change to the file format or the layout is one command away from fresh samples.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from studio.core.graph import Graph, Node
from studio.core.layout import apply_layout
from studio.core.project import DataSettings, Project, TrainingSettings

OUT = Path(__file__).resolve().parents[1] / "samples"


def chain(graph: Graph, *layers: tuple[str, str, dict]) -> None:
    prev = None
    for nid, kind, params in layers:
        graph.add_node(Node(nid, kind, params))
        if prev is not None:
            graph.connect(prev, nid)
        prev = nid


def make(name: str, title: str, layers, data: dict, training: dict, extra_edges=()) -> None:
    g = Graph()
    chain(g, *layers)
    for src, dst, port in extra_edges:
        g.connect(src, dst, port)
    apply_layout(g)
    p = Project(name=title, graph=g, data=DataSettings(**data),
                training=TrainingSettings(**training))
    p.save(OUT / f"{name}.studio.json")


def residual() -> None:
    g = Graph()
    for nid, kind, params in [
        ("input", "Input", {"shape": [1, 28, 28]}),
        ("stem", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
        ("stem_bn", "BatchNorm2d", {}),
        ("stem_relu", "ReLU", {}),
        ("block1_conv1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
        ("block1_bn1", "BatchNorm2d", {}),
        ("block1_relu1", "ReLU", {}),
        ("block1_conv2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
        ("block1_bn2", "BatchNorm2d", {}),
        ("block1_add", "Add", {}),
        ("block1_relu2", "ReLU", {}),
        ("pool", "MaxPool2d", {"kernel_size": 2}),
        ("block2_conv1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
        ("block2_bn1", "BatchNorm2d", {}),
        ("block2_relu1", "ReLU", {}),
        ("block2_conv2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
        ("block2_bn2", "BatchNorm2d", {}),
        ("block2_add", "Add", {}),
        ("block2_relu2", "ReLU", {}),
        ("gap", "AdaptiveAvgPool2d", {"output_size": 1}),
        ("flatten", "Flatten", {}),
        ("fc", "Linear", {"out_features": 10}),
    ]:
        g.add_node(Node(nid, kind, params))
    trunk = ["input", "stem", "stem_bn", "stem_relu", "block1_conv1", "block1_bn1",
             "block1_relu1", "block1_conv2", "block1_bn2"]
    for a, b in itertools.pairwise(trunk):
        g.connect(a, b)
    g.connect("block1_bn2", "block1_add", 0)
    g.connect("stem_relu", "block1_add", 1)
    rest = ["block1_add", "block1_relu2", "pool", "block2_conv1", "block2_bn1", "block2_relu1",
            "block2_conv2", "block2_bn2"]
    for a, b in itertools.pairwise(rest):
        g.connect(a, b)
    g.connect("block2_bn2", "block2_add", 0)
    g.connect("pool", "block2_add", 1)
    for a, b in [("block2_add", "block2_relu2"), ("block2_relu2", "gap"), ("gap", "flatten"),
                 ("flatten", "fc")]:
        g.connect(a, b)
    apply_layout(g)
    Project(
        name="Residual CNN (MNIST)", graph=g,
        data=DataSettings(dataset="mnist-5k", batch_size=64),
        training=TrainingSettings(optimizer={"type": "Adam", "lr": 0.002}, epochs=5),
    ).save(OUT / "residual_cnn.studio.json")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    make("mnist_mlp", "MNIST MLP", [
        ("input", "Input", {"shape": [1, 28, 28]}),
        ("flatten", "Flatten", {}),
        ("dense1", "Linear", {"out_features": 128}),
        ("relu1", "ReLU", {}),
        ("dropout", "Dropout", {"p": 0.2}),
        ("dense2", "Linear", {"out_features": 10}),
    ], {"dataset": "mnist-5k", "batch_size": 32},
        {"optimizer": {"type": "Adam", "lr": 0.001}, "epochs": 5})
    make("mnist_cnn", "MNIST CNN", [
        ("input", "Input", {"shape": [1, 28, 28]}),
        ("conv1", "Conv2d", {"out_channels": 32, "kernel_size": 3}),
        ("relu1", "ReLU", {}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("conv2", "Conv2d", {"out_channels": 64, "kernel_size": 3}),
        ("relu2", "ReLU", {}),
        ("pool2", "MaxPool2d", {"kernel_size": 2}),
        ("flatten", "Flatten", {}),
        ("dense1", "Linear", {"out_features": 64}),
        ("relu3", "ReLU", {}),
        ("dense2", "Linear", {"out_features": 10}),
    ], {"dataset": "mnist-5k", "batch_size": 32},
        {"optimizer": {"type": "Adam", "lr": 0.001}, "epochs": 5})
    make("cifar_cnn", "CIFAR-10 CNN", [
        ("input", "Input", {"shape": [3, 32, 32]}),
        ("conv1", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
        ("bn1", "BatchNorm2d", {}),
        ("relu1", "ReLU", {}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("conv2", "Conv2d", {"out_channels": 64, "kernel_size": 3, "padding": 1}),
        ("bn2", "BatchNorm2d", {}),
        ("relu2", "ReLU", {}),
        ("pool2", "MaxPool2d", {"kernel_size": 2}),
        ("conv3", "Conv2d", {"out_channels": 64, "kernel_size": 3, "padding": 1}),
        ("relu3", "ReLU", {}),
        ("pool3", "MaxPool2d", {"kernel_size": 2}),
        ("flatten", "Flatten", {}),
        ("dense1", "Linear", {"out_features": 128}),
        ("relu4", "ReLU", {}),
        ("dropout", "Dropout", {"p": 0.3}),
        ("dense2", "Linear", {"out_features": 10}),
    ], {"dataset": "cifar10", "batch_size": 128,
        "augment": [{"type": "random_crop", "padding": 4}, {"type": "hflip"}]},
        {"optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                       "weight_decay": 5e-4},
         "scheduler": {"type": "CosineAnnealingLR"}, "epochs": 30})
    residual()
    make("regression_mlp", "Regression MLP (diabetes)", [
        ("input", "Input", {"shape": [10]}),
        ("hidden", "Linear", {"out_features": 5}),
        ("relu", "ReLU", {}),
        ("output", "Linear", {"out_features": 1}),
    ], {"dataset": "diabetes", "batch_size": 16},
        {"loss": {"type": "MSELoss"}, "optimizer": {"type": "SGD", "lr": 0.01},
         "epochs": 50})
    make("lstm_digits", "LSTM sequence classifier (digits as 8 rows)", [
        ("input", "Input", {"shape": [64]}),
        ("rows", "Reshape", {"shape": [8, 8]}),
        ("lstm", "LSTM", {"hidden_size": 64, "output": "last"}),
        ("dense", "Linear", {"out_features": 10}),
    ], {"dataset": "digits", "batch_size": 32},
        {"optimizer": {"type": "Adam", "lr": 0.005}, "epochs": 20})
    make("wine_classifier", "Tabular classifier (wine)", [
        ("input", "Input", {"shape": [13]}),
        ("dense1", "Linear", {"out_features": 32}),
        ("bn1", "BatchNorm1d", {}),
        ("relu1", "ReLU", {}),
        ("dropout", "Dropout", {"p": 0.1}),
        ("dense2", "Linear", {"out_features": 16}),
        ("relu2", "ReLU", {}),
        ("output", "Linear", {"out_features": 3}),
    ], {"dataset": "wine", "batch_size": 16},
        {"optimizer": {"type": "AdamW", "lr": 0.01}, "epochs": 30,
         "early_stopping": {"monitor": "val_loss", "patience": 10}})


if __name__ == "__main__":
    main()
