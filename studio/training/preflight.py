"""Checks before a run spends any time: does the data fit the network, the loss the task, the
network the memory? Each misfit is an error naming the node or setting to change.

``check`` only reads; it returns a ``Plan`` of the adjustments a run makes to its data (samples
reshaped to the Input, token ids as integers, targets shaped for BCEWithLogitsLoss), which
``apply`` carries out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from studio.core.choices import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from studio.core.errors import DatasetError, ShapeError, TrainingError
from studio.core.flat import flatten
from studio.core.memory import free_memory
from studio.core.project import Project
from studio.core.shapes import Analysis
from studio.data.bundle import DataBundle

#: per-parameter state each optimizer keeps (Adam: two moments), for the memory estimate
OPTIMIZER_SLOTS = {"Adam": 2, "AdamW": 2, "RMSprop": 2, "Adadelta": 2, "Adagrad": 1,
                   "SGD": 1}


@dataclass
class Plan:
    """What a run does to its data so that it fits the network."""

    reshape_to: tuple[int, ...] | None = None
    token_ids: bool = False
    #: "binary": class ids as one float target per sample; "one_hot": one per class
    bce_targets: str | None = None
    messages: list[str] = field(default_factory=list)


def check(project: Project, a: Analysis, b: DataBundle) -> Plan:
    """Raise the first misfit between the data, the network and the loss; else the plan."""
    plan = Plan()
    if len(a.inputs) != 1:
        raise ShapeError(f"the network has {len(a.inputs)} Input nodes; datasets feed "
                         "exactly one")
    inp = a.inputs[0]
    want = a.nodes[inp].shape
    if want != b.sample_shape:
        if want is not None and math.prod(want) == math.prod(b.sample_shape) \
                and b.files is None:
            plan.reshape_to = tuple(want)
        else:
            raise DatasetError(
                f"the dataset gives samples of shape {list(b.sample_shape)} but Input "
                f"'{inp}' expects {list(want or [])}; set the Input shape to "
                f"{list(b.sample_shape)}", f"node '{inp}'")
    if a.nodes[inp].dtype == "int64":
        if b.norm:
            raise DatasetError("token ids must not be normalised; set data.normalize to "
                               "false", "data.normalize")
        plan.token_ids = True
        _check_token_ids(project, b, inp)
    loss = project.training.loss["type"]
    dataset = project.data.dataset
    out = a.output_shape() or ()
    where = f"node '{a.output}'"
    if b.task != "classification":
        if loss in CLASSIFICATION_LOSSES:
            raise TrainingError(f"{loss} is for classification but {dataset} is a regression "
                                "dataset; use MSELoss", "training.loss")
        w = b.target_width
        if out != (w,):
            raise ShapeError(f"the dataset has {w} regression target(s) but the output "
                             f"'{a.output}' gives {list(out)}; make it [{w}]", where)
        return plan
    k = b.num_classes
    if loss in REGRESSION_LOSSES:
        raise TrainingError(f"{loss} is for regression but {dataset} is a classification "
                            "dataset; use CrossEntropyLoss", "training.loss")
    if loss == "BCEWithLogitsLoss":
        if out == (1,) and k == 2:
            plan.bce_targets = "binary"
        elif out == (k,):
            plan.bce_targets = "one_hot"
        else:
            raise ShapeError(f"BCEWithLogitsLoss needs an output of [1] for 2 classes or "
                             f"[{k}] (one per class); the network gives {list(out)}", where)
        return plan
    if len(out) != 1 or out[0] < k:
        raise ShapeError(f"the dataset has {k} classes but the output '{a.output}' gives "
                         f"{list(out)}; make its last layer give [{k}] (e.g. Linear "
                         f"out_features={k})", where)
    if out[0] > k:
        plan.messages.append(f"the output has {out[0]} values for {k} classes; the extra "
                             "ones are never the target")
    return plan


def apply(plan: Plan, b: DataBundle) -> None:
    """Adjust the bundle's tensors as the plan says (in place)."""
    if plan.reshape_to is not None:
        b.reshape_samples(plan.reshape_to)
    if plan.token_ids:
        b.x_train, b.x_val = b.x_train.long(), b.x_val.long()
        if b.x_test is not None:
            b.x_test = b.x_test.long()
    if plan.bce_targets == "binary":
        b.y_train, b.y_val = (t.float()[:, None] for t in (b.y_train, b.y_val))
        if b.y_test is not None:
            b.y_test = b.y_test.float()[:, None]
    elif plan.bce_targets == "one_hot":
        eye = torch.eye(b.num_classes)
        b.y_train, b.y_val = eye[b.y_train], eye[b.y_val]
        if b.y_test is not None:
            b.y_test = eye[b.y_test]


def check_memory(a: Analysis, optimizer: str, device: torch.device) -> None:
    """Refuse a network whose weights cannot fit before allocating them.

    An allocation of terabytes may be granted lazily by the OS and then kill the process (or
    the machine) as pages are touched; counting first is the only safe way.
    """
    from studio.core.summary import human

    n = a.total_params
    need = n * 4 * (2 + OPTIMIZER_SLOTS.get(optimizer, 2))
    free = free_memory(device)
    if free is not None and need > free:
        raise TrainingError(
            f"out of memory: the network's {human(n)} parameters need about "
            f"{human(need, 'B')} for weights, gradients and optimizer state, but {device} has "
            f"{human(free, 'B')} free; make the network smaller", "graph")


def _check_token_ids(project: Project, b: DataBundle, inp: str) -> None:
    """Ids outside a lookup table would crash a CUDA context; refuse them first (a table
    inside a block too: the network is walked layer by layer)."""
    g = flatten(project.graph).graph
    parts = [t for t in (b.x_train, b.x_val, b.x_test) if t is not None and t.numel()]
    lo = min(int(t.min()) for t in parts)
    hi = max(int(t.max()) for t in parts)
    frontier = [inp]
    while frontier:
        nid = frontier.pop()
        for nxt in g.successors(nid):
            node = g.nodes[nxt]
            spec = node.spec
            if spec is not None and spec.vocabulary:
                n = node.resolved_params()[spec.vocabulary]
                if lo < 0 or hi >= n:
                    raise DatasetError(
                        f"token ids run from {lo} to {hi} but {spec.vocabulary} is {n}; set "
                        f"it to at least {hi + 1}" if lo >= 0 else
                        f"token ids must not be negative (found {lo})", f"{node.type} '{nxt}'")
            elif spec is not None and spec.dtype == "any":
                frontier.append(nxt)  # reshaping layers pass the ids on unchanged
