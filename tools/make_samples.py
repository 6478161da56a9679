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


def make(name: str, title: str, description: str, layers, data: dict, training: dict,
         extra_edges=()) -> None:
    g = Graph()
    chain(g, *layers)
    for src, dst, port in extra_edges:
        g.connect(src, dst, port)
    apply_layout(g)
    p = Project(name=title, description=description, graph=g, data=DataSettings(**data),
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
        description="Two ResNet basic blocks (conv, BatchNorm, skip connection) on MNIST.",
        data=DataSettings(dataset="mnist-5k", batch_size=64, test_fraction=0.15),
        training=TrainingSettings(optimizer={"type": "Adam", "lr": 0.002}, epochs=5),
    ).save(OUT / "residual_cnn.studio.json")


#: held out for the tutorials' closing ``model.evaluate(x_test, y_test)`` (datasets without a
#: test set of their own; mnist-5k is 5,000 of MNIST's images)
TEST = 0.15


def main() -> None:
    OUT.mkdir(exist_ok=True)
    make("mnist_mlp", "MNIST MLP",
         "Keras quickstart: Dense 128, Dropout 0.2, Dense 10; Adam, 5 epochs.", [
             ("input", "Input", {"shape": [1, 28, 28]}),
             ("flatten", "Flatten", {}),
             ("dense1", "Linear", {"out_features": 128}),
             ("relu1", "ReLU", {}),
             ("dropout", "Dropout", {"p": 0.2}),
             ("dense2", "Linear", {"out_features": 10}),
         ], {"dataset": "mnist-5k", "batch_size": 32, "test_fraction": TEST},
         {"optimizer": {"type": "Adam", "lr": 0.001}, "epochs": 5})
    make("mnist_cnn", "MNIST CNN",
         "Keras convnet (Deep Learning with Python): 3 convolutions, Dense 64, RMSprop.", [
             ("input", "Input", {"shape": [1, 28, 28]}),
             ("conv1", "Conv2d", {"out_channels": 32, "kernel_size": 3}),
             ("relu1", "ReLU", {}),
             ("pool1", "MaxPool2d", {"kernel_size": 2}),
             ("conv2", "Conv2d", {"out_channels": 64, "kernel_size": 3}),
             ("relu2", "ReLU", {}),
             ("pool2", "MaxPool2d", {"kernel_size": 2}),
             ("conv3", "Conv2d", {"out_channels": 64, "kernel_size": 3}),
             ("relu3", "ReLU", {}),
             ("flatten", "Flatten", {}),
             ("dense1", "Linear", {"out_features": 64}),
             ("relu4", "ReLU", {}),
             ("dense2", "Linear", {"out_features": 10}),
         ], {"dataset": "mnist-5k", "batch_size": 64, "test_fraction": TEST},
         {"optimizer": {"type": "RMSprop", "lr": 0.001}, "epochs": 5})
    make("mnist_convnet", "MNIST ConvNet with Dense 128",
         "PyTorch's MNIST example: Dense 128, log-softmax + NLLLoss, Adadelta, StepLR.", [
             ("input", "Input", {"shape": [1, 28, 28]}),
             ("conv1", "Conv2d", {"out_channels": 32, "kernel_size": 3}),
             ("relu1", "ReLU", {}),
             ("conv2", "Conv2d", {"out_channels": 64, "kernel_size": 3}),
             ("relu2", "ReLU", {}),
             ("pool", "MaxPool2d", {"kernel_size": 2}),
             ("dropout1", "Dropout", {"p": 0.25}),
             ("flatten", "Flatten", {}),
             ("fc1", "Linear", {"out_features": 128}),
             ("relu3", "ReLU", {}),
             ("dropout2", "Dropout", {"p": 0.5}),
             ("fc2", "Linear", {"out_features": 10}),
             ("log_softmax", "LogSoftmax", {}),
         ], {"dataset": "mnist-5k", "batch_size": 64, "test_fraction": TEST},
         {"loss": {"type": "NLLLoss"}, "optimizer": {"type": "Adadelta", "lr": 1.0},
          "scheduler": {"type": "StepLR", "step_size": 1, "gamma": 0.7}, "epochs": 14})
    make("pytorch_cnn", "PyTorch CNN (MNIST)",
         "Two padded 5×5 convolutions, max-pooling, one Linear; SGD with momentum.", [
             ("input", "Input", {"shape": [1, 28, 28]}),
             ("conv1", "Conv2d", {"out_channels": 16, "kernel_size": 5, "padding": 2}),
             ("relu1", "ReLU", {}),
             ("pool1", "MaxPool2d", {"kernel_size": 2}),
             ("conv2", "Conv2d", {"out_channels": 32, "kernel_size": 5, "padding": 2}),
             ("relu2", "ReLU", {}),
             ("pool2", "MaxPool2d", {"kernel_size": 2}),
             ("flatten", "Flatten", {}),
             ("fc", "Linear", {"out_features": 10}),
         ], {"dataset": "mnist-5k", "batch_size": 100, "test_fraction": TEST},
         {"optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}, "epochs": 5})
    make("cifar_cnn", "CIFAR-10 CNN",
         "Three padded conv blocks, Dense 128; SGD with Nesterov, cosine, crop and flip.", [
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
    make("regression_mlp", "Regression MLP (diabetes)",
         "The textbook 10 → 5 → 1 network: plain SGD on the full batch, MSE loss.", [
             ("input", "Input", {"shape": [10]}),
             ("hidden", "Linear", {"out_features": 5}),
             ("relu", "ReLU", {}),
             ("output", "Linear", {"out_features": 1}),
         ], {"dataset": "diabetes", "batch_size": FULL_BATCH, "test_fraction": TEST},
         {"loss": {"type": "MSELoss"}, "optimizer": {"type": "SGD", "lr": 0.1},
          "epochs": 300})
    make("rnn_mnist", "RNN classifier (MNIST rows)",
         "Keras' SimpleRNN reading MNIST as 28 rows of 28 pixels; Dense 10.", [
             ("input", "Input", {"shape": [1, 28, 28]}),
             ("rows", "Reshape", {"shape": [28, 28]}),
             ("rnn", "RNN", {"hidden_size": 128, "output": "last"}),
             ("dense", "Linear", {"out_features": 10}),
         ], {"dataset": "mnist-5k", "batch_size": 64, "scaling": "minmax", "test_fraction": TEST},
         {"optimizer": {"type": "Adam", "lr": 0.001}, "epochs": 20})
    make("lstm_digits", "LSTM classifier (digits)",
         "An LSTM reads each 8×8 digit row by row; its last output feeds Dense 10.", [
             ("input", "Input", {"shape": [64]}),
             ("rows", "Reshape", {"shape": [8, 8]}),
             ("lstm", "LSTM", {"hidden_size": 64, "output": "last"}),
             ("dense", "Linear", {"out_features": 10}),
         ], {"dataset": "digits", "batch_size": 32, "test_fraction": TEST},
         {"optimizer": {"type": "Adam", "lr": 0.005}, "epochs": 20})
    make("wine_classifier", "Tabular classifier (wine)",
         "13 measurements → 3 cultivars: BatchNorm, Dropout, AdamW, early stopping.", [
             ("input", "Input", {"shape": [13]}),
             ("dense1", "Linear", {"out_features": 32}),
             ("bn1", "BatchNorm1d", {}),
             ("relu1", "ReLU", {}),
             ("dropout", "Dropout", {"p": 0.1}),
             ("dense2", "Linear", {"out_features": 16}),
             ("relu2", "ReLU", {}),
             ("output", "Linear", {"out_features": 3}),
         ], {"dataset": "wine", "batch_size": 16, "test_fraction": TEST},
         {"optimizer": {"type": "AdamW", "lr": 0.01}, "epochs": 30,
          "early_stopping": {"monitor": "val_loss", "patience": 10}})


#: more than diabetes' 442 samples: every epoch is one step on all of the training part
FULL_BATCH = 512


if __name__ == "__main__":
    main()
