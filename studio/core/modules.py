"""Small torch modules for catalog entries that torch offers only as functions.

Imported only when a module is built (torch stays off the start-up path). Each is a plain
``nn.Module`` so built models export to ONNX and ``torch.export`` like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .init import apply_init

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph
    from .shapes import Analysis


class Reshape(nn.Module):
    """Reshape each sample; the batch dimension is kept."""

    def __init__(self, shape: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Permute(nn.Module):
    """Reorder dims, batch included (dims[0] is 0)."""

    def __init__(self, dims: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class StochasticDepth(nn.Module):
    """Drops whole residual branches at random while training (EfficientNet); identity in
    evaluation. ``row``: per sample; ``batch``: the whole batch at once."""

    def __init__(self, p: float = 0.2, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class RNN(nn.RNN):
    """Batch-first plain (Elman) RNN returning either the whole sequence or the final hidden
    state."""

    def __init__(self, output: str = "last", **kwargs: object) -> None:
        super().__init__(batch_first=True, **kwargs)
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        seq, h = super().forward(x)
        return seq if self.output == "sequence" else _last(h, self.bidirectional)


class LSTM(nn.LSTM):
    """Batch-first LSTM returning either the whole sequence or the final hidden state."""

    def __init__(self, output: str = "last", **kwargs: object) -> None:
        super().__init__(batch_first=True, **kwargs)
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        seq, (h, _c) = super().forward(x)
        return seq if self.output == "sequence" else _last(h, self.bidirectional)


class GRU(nn.GRU):
    """Batch-first GRU returning either the whole sequence or the final hidden state."""

    def __init__(self, output: str = "last", **kwargs: object) -> None:
        super().__init__(batch_first=True, **kwargs)
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        seq, h = super().forward(x)
        return seq if self.output == "sequence" else _last(h, self.bidirectional)


def _last(h: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    # h: (layers * dirs, N, H); the last layer's final state of each direction, side by side.
    if bidirectional:
        return torch.cat((h[-2], h[-1]), dim=1)
    return h[-1]


def _causal_mask(steps: int, device: torch.device) -> torch.Tensor:
    # True where attention is not allowed: every later step (above the diagonal)
    return torch.ones(steps, steps, dtype=torch.bool, device=device).triu(1)


class MultiheadAttention(nn.MultiheadAttention):
    """Batch-first self-attention: query, key and value are the same input. ``causal``: each
    step attends only to itself and earlier steps."""

    def __init__(self, causal: bool = False, **kwargs: object) -> None:
        super().__init__(batch_first=True, **kwargs)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.causal:
            mask = _causal_mask(x.shape[1], x.device)
            return super().forward(x, x, x, need_weights=False, attn_mask=mask,
                                   is_causal=True)[0]
        return super().forward(x, x, x, need_weights=False)[0]


class TransformerEncoderLayer(nn.TransformerEncoderLayer):
    """Batch-first encoder layer. ``causal``: each step attends only to itself and earlier
    steps."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 norm_first: bool = False, bias: bool = True, causal: bool = False) -> None:
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                         batch_first=True, norm_first=norm_first, bias=bias)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.causal:
            mask = _causal_mask(x.shape[1], x.device)
            return super().forward(x, src_mask=mask, is_causal=True)
        return super().forward(x)


def _sinusoid(steps: int, features: int) -> torch.Tensor:
    # "Attention is all you need": sin(pos / 10000^(2i/d)) in feature 2i, cos in 2i + 1
    pos = torch.arange(steps, dtype=torch.float64).unsqueeze(1)
    angle = pos / 10000.0 ** (torch.arange(0, features, 2, dtype=torch.float64) / features)
    table = torch.zeros(steps, features, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, :features // 2])
    return table.float()


class PositionalEmbedding(nn.Module):
    """Adds a vector per position to [N, sequence, features]: learned, or the fixed sinusoids
    of "Attention is all you need" (a buffer left out of the weights: it is a formula)."""

    weight: torch.Tensor

    def __init__(self, max_len: int, embed_dim: int, kind: str = "learned") -> None:
        super().__init__()
        self.kind = kind
        if kind == "learned":
            # small (std 0.02, as BERT and GPT-2 start): a nudge to the input, not noise over it
            self.weight = nn.Parameter(nn.init.normal_(torch.empty(max_len, embed_dim),
                                                       std=0.02))
        else:
            self.register_buffer("weight", _sinusoid(max_len, embed_dim), persistent=False)

    def reset_buffers(self) -> None:
        """The sinusoids again (a module built on the meta device has none to keep)."""
        if self.kind != "learned":
            n, d = self.weight.shape
            self.weight = _sinusoid(n, d).to(self.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.weight.shape[0]:  # a table of one row would broadcast silently
            raise ValueError(f"the sequence has {x.shape[1]} steps, more than max_len "
                             f"{self.weight.shape[0]}")
        return x + self.weight[:x.shape[1]]

    def extra_repr(self) -> str:
        return f"max_len={self.weight.shape[0]}, embed_dim={self.weight.shape[1]}, kind={self.kind}"


#: set on an error raised inside a layer: the id of its node, which the trainer names
NODE_ATTR = "studio_node"


class Repeat(nn.Sequential):
    """A block run several times in a row: an ``nn.Sequential`` (its weights are named
    ``0.conv1.weight``, as the exported model.py's) whose errors name the repetition."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r, part in enumerate(self):
            try:
                x = part(x)
            except (RuntimeError, IndexError, ValueError) as exc:
                inner = getattr(exc, NODE_ATTR, None)
                setattr(exc, NODE_ATTR, f"{r}.{inner}" if inner else str(r))
                raise
        return x


class GraphModule(nn.Module):
    """Runs a graph's DAG; each value is dropped as soon as its last reader has run.

    Submodules are named by node id, so parameter names read ``conv1.weight``.
    """

    def __init__(self, graph: Graph, analysis: Analysis,
                 make_layer: Callable[[str, list[tuple[int, ...]], dict[str, Any]], nn.Module],
                 ) -> None:
        super().__init__()
        self.input_ids: list[str] = list(analysis.inputs)
        self.output_id: str = analysis.output  # type: ignore[assignment]
        needed = graph.ancestors(self.output_id) | {self.output_id}
        order = [n for n in analysis.order if n in needed]
        slot = {nid: i for i, nid in enumerate(order)}
        last_use: dict[str, int] = {}
        for step, nid in enumerate(order):
            for src in graph.predecessors(nid):
                last_use[src] = step
        plan: list[tuple[str, int, tuple[int, ...], tuple[int, ...]]] = []
        self._blocks: set[str] = set()
        for step, nid in enumerate(order):
            node = graph.nodes[nid]
            if node.is_input:
                continue
            inner = analysis.nodes[nid].inner
            layer: nn.Module
            if inner:  # a block instance: its definition's graph, once per repetition
                defn = graph.blocks[node.params["block"]]
                parts = [GraphModule(defn.graph, a, make_layer) for a in inner]
                layer = parts[0] if len(parts) == 1 else Repeat(*parts)
                self._blocks.add(nid)
            else:
                layer = make_layer(node.type, analysis.nodes[nid].in_shapes, node.params)
            if hasattr(self, nid):  # a name torch added after RESERVED_IDS was written
                from .errors import ShapeError

                raise ShapeError(f"node id {nid!r} is the name of something every PyTorch "
                                 "module has; rename the node", nid)
            if node.init:  # at once, so each layer draws what the exported model.py draws
                apply_init(layer, node.init)
            if not node.trainable:
                layer.requires_grad_(False)
            self.add_module(nid, layer)
            preds = graph.predecessors(nid)
            free = tuple(slot[s] for s in dict.fromkeys(preds) if last_use.get(s) == step)
            plan.append((nid, slot[nid], tuple(slot[s] for s in preds), free))
        self._plan = plan
        self._n_slots = len(order)
        self._input_slots = [slot.get(i) for i in self.input_ids]
        self._out_slot = slot[self.output_id]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        values: list[Any] = [None] * self._n_slots
        for s, x in zip(self._input_slots, inputs, strict=False):
            if s is not None:
                values[s] = x
        # add_module stored a module under every planned id (never None)
        mods = cast("dict[str, nn.Module]", self._modules)
        for nid, out, args, free in self._plan:
            try:
                values[out] = mods[nid](*[values[a] for a in args])
            except (RuntimeError, IndexError, ValueError) as exc:
                if not hasattr(exc, NODE_ATTR):
                    setattr(exc, NODE_ATTR, nid)
                elif nid in self._blocks:  # the path to the layer: block.layer
                    setattr(exc, NODE_ATTR, f"{nid}.{getattr(exc, NODE_ATTR)}")
                raise
            for f in free:
                values[f] = None
        return cast(torch.Tensor, values[self._out_slot])
