"""Weights from another run into an edited network, node by node (transfer learning).

Parameters are named ``<layer path>.<tensor>`` (``conv1.weight``; inside a block instance
``layer1.conv1.weight``, in a repeated one ``layer1.0.conv1.weight``), so a layer keeps its
trained weights as long as its path and its tensors' shapes are unchanged; everything else
starts from the project's seeded initial weights. A layer is loaded whole or not at all: half a
layer from another run is never what anybody wants. The report names every layer that did not
load, by its path, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import TrainingError
from studio.core.flat import layer_of

from .checkpoint import load_checkpoint, load_weights


@dataclass
class TransferReport:
    """Which nodes took the file's weights and which kept their initial ones."""

    source: str
    loaded: list[str] = field(default_factory=list)
    #: layer path → "conv1.weight: file [16, 1, 3, 3], network [32, 1, 3, 3]"
    mismatched: dict[str, str] = field(default_factory=dict)
    #: nodes of the network with parameters the file does not have
    missing: list[str] = field(default_factory=list)
    #: nodes in the file that the network does not have
    unused: list[str] = field(default_factory=list)
    tensors: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.loaded)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} layer(s) loaded from {Path(self.source).name} "
                 f"({self.tensors} tensors)"]
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} changed, kept initial weights")
        if self.missing:
            parts.append(f"{len(self.missing)} new")
        if self.unused:
            parts.append(f"{len(self.unused)} in the file not in the network")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """One line per node that did not simply load: what users need to check."""
        out = [f"changed, initial weights kept: {d}" for d in self.mismatched.values()]
        out += [f"new layer, initial weights: '{n}'" for n in self.missing]
        out += [f"not in this network, ignored: '{n}'" for n in self.unused]
        return out


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The model tensors of a ``.safetensors`` weights file or a ``.ckpt`` checkpoint."""
    path = Path(path)
    if not path.exists():
        raise TrainingError("weights file not found", str(path))
    if path.suffix == ".safetensors":
        return load_weights(path)[0]
    state = load_checkpoint(path).get("model")
    if not isinstance(state, dict):
        raise TrainingError("the checkpoint holds no model weights", str(path))
    return state


def transfer(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "weights"
             ) -> TransferReport:
    """Copy every node whose tensors all match by name and shape; report the rest."""
    report = TransferReport(str(source))
    mine = model.state_dict()
    by_node, theirs = _by_node(model, mine), _by_node(model, state)
    take: dict[str, torch.Tensor] = {}
    for node, keys in by_node.items():
        if node not in theirs:
            report.missing.append(node)
            continue
        problem = _misfit(node, keys, theirs[node], state, mine)
        if problem:
            report.mismatched[node] = problem
            continue
        for k in keys:
            take[k] = state[k]
        report.loaded.append(node)
    report.unused = [n for n in theirs if n not in by_node]
    report.tensors = len(take)
    if take:
        with torch.no_grad():
            for k, v in take.items():
                mine[k].copy_(v.to(device=mine[k].device, dtype=mine[k].dtype))
    return report


def _by_node(model: torch.nn.Module, tensors: dict[str, Any]) -> dict[str, list[str]]:
    """Tensor names grouped by the layer they belong to, named by its path in ``model``
    (``conv1.weight`` → ``conv1``, ``layer1.0.conv1.weight`` → ``layer1.0.conv1``,
    ``attn.out_proj.weight`` → ``attn``)."""
    out: dict[str, list[str]] = {}
    for k in tensors:
        out.setdefault(layer_of(model, k), []).append(k)
    return out


def _misfit(node: str, keys: list[str], their_keys: list[str], state: dict[str, Any],
            mine: dict[str, Any]) -> str | None:
    """Why a node's tensors in the file cannot replace the network's, or None."""
    extra = sorted(set(their_keys) - set(keys))
    if extra:
        return f"'{node}': the file has {extra[0]}, the network does not"
    for k in keys:
        if k not in state:
            return f"'{node}': the file has no {k}"
        if tuple(state[k].shape) != tuple(mine[k].shape):
            return (f"'{node}': {k} is {list(state[k].shape)} in the file, "
                    f"{list(mine[k].shape)} in the network")
    return None


def load_exact(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load weights that must fit every layer (resume, evaluate, export); a misfit names the
    first layer that differs rather than torch's list of every tensor."""
    mine = model.state_dict()
    by_node, theirs = _by_node(model, mine), _by_node(model, state)
    for node, keys in by_node.items():
        if node not in theirs:
            raise TrainingError(f"the weights do not fit this network: layer '{node}' is not "
                                "in the file", where)
        problem = _misfit(node, keys, theirs[node], state, mine)
        if problem:
            raise TrainingError(f"the weights do not fit this network: layer {problem}", where)
    extra = [n for n in theirs if n not in by_node]
    if extra:
        raise TrainingError(f"the weights do not fit this network: the file has layer "
                            f"'{extra[0]}', which the network does not", where)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # e.g. a dtype torch cannot copy
        first = (str(exc).strip().splitlines() or ["?"])[-1].strip()[:200]
        raise TrainingError(f"the weights do not fit this network ({first})", where) from None


def load_into(model: torch.nn.Module, path: str | Path) -> TransferReport:
    """Read a weights file and transfer it; fails when not a single layer fits."""
    report = transfer(model, read_state(path), str(path))
    if not report.ok:
        detail = (report.lines() or ["the file has no layer weights"])[0]
        raise TrainingError(f"none of the weights fit this network ({detail})", str(path))
    return report


def resolve(path: str, base_dir: Path | None) -> Path:
    """A project's relative path is relative to the project file, as the data paths are."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def check(project: Any, path: str | Path, base_dir: Path | None = None) -> TransferReport:
    """What loading ``path`` into the project's network would do, without training."""
    from studio.core.build import build_module

    model = build_module(project.graph, seed=project.training.seed)
    return load_into(model, resolve(str(path), base_dir))

