"""What a layer sees: one node's output for one sample, and the first convolution's filters,
as small images for the Evaluate view.

Pure core (torch and numpy, no Qt). Each channel is scaled on its own, because channels differ
in range by orders of magnitude and one shared scale would show most of them as flat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core import catalog
from studio.core.errors import TrainingError
from studio.core.flat import find_module, flatten
from studio.core.graph import Graph

TILE_LIMIT = 256  # channels drawn at most; wider layers show their first ones

CONVOLUTIONS = ("Conv1d", "Conv2d", "ConvTranspose2d")


def node_output(model: Any, x: Any, node: str) -> np.ndarray:
    """The node's output for one sample ``x`` (no batch dim), without the batch dim: the
    network runs in eval mode without gradients, with a hook for this pass only. ``node``
    may be a path: a layer inside a block instance (``layer1.conv1``)."""
    import torch

    module = find_module(model, node) if node else None
    if module is None:
        raise TrainingError(f"node {node!r} has no layer in the built network (an input, or "
                            "not on the way to the output)", node)
    seen: list[torch.Tensor] = []

    def record(_m: Any, _inputs: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        if isinstance(out, torch.Tensor):
            seen.append(out.detach()[0].float().cpu())

    handle = module.register_forward_hook(record)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x.unsqueeze(0))
    finally:
        handle.remove()
        model.train(was_training)
    if not seen:
        raise TrainingError(f"node {node!r} gave no tensor output", node)
    return seen[-1].numpy()


def first_convolution(graph: Graph) -> str | None:
    """The convolution nearest the input, in graph order: the one whose filters are pictures
    of the input itself (inside a block: its path)."""
    flat = flatten(graph)
    for nid in flat.analysis.order:
        if flat.graph.nodes[nid].type in CONVOLUTIONS:
            return nid
    return None


def filters(model: Any, node: str) -> np.ndarray:
    """A convolution's weights as float32: [out, in/groups, k…] (transposed: [in, out, k…])."""
    module = find_module(model, node) if node else None
    weight = getattr(module, "weight", None)
    if weight is None or weight.dim() < 3:
        raise TrainingError(f"node {node!r} is not a convolution with filters", node)
    return np.asarray(weight.detach().float().cpu().numpy())


def channel_tiles(a: np.ndarray, channels_first: bool = True, limit: int = TILE_LIMIT
                  ) -> list[np.ndarray]:
    """An activation as 2-D float tiles in [0, 1], each scaled on its own.

    [C, H, W]: one tile per channel. [C, L] (a 1-D convolution) or [L, F] (a sequence):
    one strip per channel, or the whole map when it is a sequence. [F]: one strip.
    A constant tile reads 0 (a dead channel is black, not noise stretched to full range).
    """
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        tiles = list(a[:limit])
    elif a.ndim == 2:
        tiles = [row[None, :] for row in a[:limit]] if channels_first else [a]
    elif a.ndim == 1:
        tiles = [a[None, :]]
    else:
        tiles = [a.reshape(1, -1)]
    return [_unit(t) for t in tiles]


def filter_tiles(w: np.ndarray, limit: int = TILE_LIMIT) -> list[np.ndarray]:
    """A 2-D convolution's filters as pictures: RGB [kh, kw, 3] where a filter reads three
    channels (an RGB input), else its channels averaged to one grey [kh, kw]. Each filter is
    scaled on its own around zero so 0.5 is a zero weight."""
    w = np.asarray(w, np.float32)
    if w.ndim == 3:  # a 1-D convolution: [out, in, k] → one strip per filter
        w = w[:, :, None, :]
    out = []
    for f in w[:limit]:
        img = np.moveaxis(f, 0, -1) if f.shape[0] == 3 else f.mean(axis=0)
        m = float(np.abs(img).max())
        out.append(0.5 + 0.5 * img / m if m > 0 else np.full_like(img, 0.5))
    return out


def channels_first(graph: Graph, node: str) -> bool:
    """Whether a node's 2-D output is [channels, length] (after a 1-D convolution, pooling or
    normalisation) rather than a sequence [length, features]. ``node`` may be a path (a
    layer inside a block)."""
    if node not in graph.nodes:
        graph = flatten(graph).graph
    seen = set()
    while node not in seen:
        seen.add(node)
        n = graph.nodes[node]
        if n.type.endswith("1d"):
            return True
        spec = catalog.get(n.type)
        preds = graph.predecessors(node)
        if spec is None or spec.category not in ("Activation", "Regularization") or \
                len(preds) != 1:
            return False
        node = preds[0]
    return False


def _unit(t: np.ndarray) -> np.ndarray:
    t = np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(t.min()), float(t.max())
    if hi <= lo:
        return np.zeros_like(t)
    return (t - lo) / (hi - lo)
