"""Graph → ``nn.Module``: one submodule per node, named by node id, run in topological order.

torch is imported inside the functions so that importing the core stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from . import catalog
from .errors import ShapeError
from .graph import Graph
from .shapes import Analysis, analyze

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def make_layer(
    layer_type: str, in_shapes: list[tuple[int, ...]], params: dict[str, Any]
) -> nn.Module:
    """One node's module from its catalog entry and inferred input shapes."""
    from torch import nn

    from . import modules

    spec = catalog.CATALOG[layer_type]
    kwargs = spec.kwargs(in_shapes, params)
    cls = getattr(nn, spec.torch_class) if spec.torch_class else getattr(modules, layer_type)
    return cast(nn.Module, cls(**kwargs))


def build_module(graph: Graph, seed: int | None = 0, analysis: Analysis | None = None, *,
                 for_loading: bool = False) -> nn.Module:
    """Build the network; raises ShapeError naming the first problem if the graph is invalid.

    With a seed, weights are initialised from it without disturbing the global RNG, so the same
    project and seed always give the same starting weights. ``for_loading``: the weights are
    about to be replaced, so none are drawn: the tensors are made on the meta device, then
    given memory, and torch's global generator is not touched at all (a run training in
    another thread of the process draws its dropout masks from it).
    """
    import torch

    analysis = analysis or analyze(graph)
    if analysis.errors:
        first = analysis.errors[0]
        raise ShapeError(first.message, first.node)
    if analysis.output is None:
        raise ShapeError("the network has no output layer")
    from .modules import GraphModule

    if for_loading:
        with torch.device("meta"):
            module = GraphModule(graph, analysis, make_layer)
        module.to_empty(device="cpu")
        for m in module.modules():  # buffers computed, not loaded (e.g. fixed sinusoids)
            reset = getattr(m, "reset_buffers", None)
            if reset is not None:
                reset()
        return module
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return GraphModule(graph, analysis, make_layer)
