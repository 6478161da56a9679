"""The network layer by layer: every block instance opened, each layer named by its path.

A path is where the layer's module sits in the built network (``model.get_submodule(path)``
finds it): ``conv1`` for a node of the network, ``layer1.conv1`` inside block instance
``layer1``, ``layer1.0.conv1`` in the first repetition of a repeated one, ``a.b.conv`` for a
block inside a block. Code that looks at single layers reads this view (the doctor, layer
statistics and health, feature maps, Grad-CAM, pruning, transfer), so a network of blocks
gets the same answers as the same layers laid out flat. An instance whose definition does
not analyse stays one opaque ``Block`` node (its problem is reported on it).

The functions taking a model import torch only when called.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .blockdef import BLOCK
from .graph import Edge, Graph
from .shapes import Analysis, NodeInfo, analyze

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@dataclass
class Flat:
    """The opened network: ``graph``'s node ids are paths (a definition's Input nodes are
    gone: each layer they fed is wired to what feeds the instance), ``analysis`` holds every
    layer's info, ``owner`` names the network's node each path belongs to."""

    graph: Graph
    analysis: Analysis
    owner: dict[str, str]
    #: every path, the network's nodes in their own order (as lists of them show them), each
    #: block instance's layers where the instance is, in the order they run
    listed: list[str]

    def top(self, path: str) -> str:
        """The network's node a layer belongs to: ``layer1`` for ``layer1.0.conv1``."""
        return self.owner.get(path, path.split(".", 1)[0])

    def layers(self) -> list[str]:
        """Every layer's path in the order the network runs them (no Input nodes)."""
        return [n for n in self.analysis.order if not self.graph.nodes[n].is_input]


def inside(path: str) -> bool:
    """Whether a path names a layer inside a block (not a node of the network)."""
    return "." in path


def flatten(graph: Graph, analysis: Analysis | None = None) -> Flat:
    """The network opened into its layers (a plain network comes back as it is, copied)."""
    a = analysis or analyze(graph)
    flat = Graph()
    flat.blocks = graph.blocks  # read only: an opaque instance's definition stays findable
    infos: dict[str, NodeInfo] = {}
    owner: dict[str, str] = {}
    order: list[str] = []
    where = _open(graph, a, "", {}, None, (flat, infos, owner, order))
    output = where.get(a.output) if a.output else None
    rank = {n: i for i, n in enumerate(graph.nodes)}
    listed = sorted(order, key=lambda p: rank.get(owner[p], len(rank)))  # stable: run order
    return Flat(flat, Analysis(order, infos, list(a.problems), list(a.inputs), output), owner,
                listed)


_Into = tuple[Graph, dict[str, NodeInfo], dict[str, str], list[str]]


def _open(graph: Graph, a: Analysis, prefix: str, feed: dict[str, str | None],
          top: str | None, into: _Into, frozen: bool = False) -> dict[str, str | None]:
    """Add ``graph``'s layers under ``prefix``; ``feed`` maps a definition's Input nodes to
    the paths feeding them; ``frozen``: inside a frozen block instance, so every layer is.
    Returns each node's path (a block: its output layer's path)."""
    flat, infos, owner, order = into
    where: dict[str, str | None] = {}
    for nid in a.order:
        node = graph.nodes[nid]
        if nid in feed:
            where[nid] = feed[nid]
            continue
        path, info = prefix + nid, a.nodes[nid]
        if node.type == BLOCK and info.inner:
            defn = graph.blocks[str(node.params["block"])]
            ports = defn.inputs
            srcs = {e.port: where.get(e.src) for e in graph.in_edges(nid)}
            fed = {p: srcs.get(k) for k, p in enumerate(ports)}
            last: str | None = None
            for r, inner in enumerate(info.inner):
                pre = f"{path}." if len(info.inner) == 1 else f"{path}.{r}."
                opened = _open(defn.graph, inner, pre, fed, top or nid, into,
                               frozen or not node.trainable)
                last = opened.get(inner.output) if inner.output else None
                fed = {ports[0]: last}
            where[nid] = last
            continue
        copy = node.copy()
        copy.id = path
        copy.trainable = node.trainable and not frozen
        # paths hold dots, which node ids may not: the view is written directly (it is never
        # edited, saved or built)
        flat.nodes[path] = copy
        flat._in[path], flat._out[path] = {}, []
        infos[path], owner[path] = info, top or nid
        order.append(path)
        for e in graph.in_edges(nid):
            src = where.get(e.src)
            if src is not None:
                flat._link(Edge(src, path, e.port))
        where[nid] = path
    return where


def layer_types(graph: Graph, analysis: Analysis | None = None) -> dict[str, str]:
    """Every layer's path → its type (``Flat.listed``'s order), Input nodes included."""
    f = flatten(graph, analysis)
    return {n: f.graph.nodes[n].type for n in f.listed}


def plain_graph(graph: Graph, analysis: Analysis | None = None) -> tuple[Graph, dict[str, str]]:
    """The network as an ordinary graph of its layers, laid out again, and each layer's path
    → its node id there (``layer1.0.conv1`` → ``layer1_0_conv1``): what a change that gives
    each layer its own params (structured pruning) edits."""
    from .layout import apply_layout

    f = flatten(graph, analysis)
    ids = {p: p for p in f.graph.nodes if not inside(p)}
    taken = set(ids)
    for p in f.graph.nodes:
        if inside(p):
            base = re.sub(r"[^A-Za-z0-9_]", "_", p)[:64]
            new, k = base, 2
            while new in taken:
                new = f"{base[:60]}_{k}"
                k += 1
            taken.add(new)
            ids[p] = new
    g = Graph()
    for p, n in f.graph.nodes.items():
        c = n.copy()
        c.id = ids[p]
        g.add_node(c)
    for name, d in graph.blocks.items():  # an opaque instance still needs its definition
        if any(n.type == BLOCK and n.params.get("block") == name for n in g):
            g.set_block(d.copy())
    for e in f.graph.edges:
        g.connect(ids[e.src], ids[e.dst], e.port)
    if len(g) != len(graph):
        apply_layout(g)
    return g, ids


# -- the built network --------------------------------------------------------------------


def is_container(module: Any) -> bool:
    """A module that holds layers rather than being one: a built graph (the network, a block
    instance) or the ``Sequential`` of a repeated instance's repetitions."""
    from torch import nn

    from .modules import GraphModule

    if isinstance(module, GraphModule):
        return True
    return isinstance(module, nn.Sequential) and len(module) > 0 and \
        all(isinstance(m, GraphModule) for m in module)


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every layer's module by path, in the order the network runs them."""
    out: dict[str, nn.Module] = {}

    def walk(m: nn.Module, prefix: str) -> None:
        for name, child in m.named_children():
            if is_container(child):
                walk(child, f"{prefix}{name}.")
            else:
                out[prefix + name] = child

    if is_container(model):
        walk(model, "")
    else:  # a bare module: its children, as a network's nodes
        out.update(model.named_children())
    return out


def layer_of(model: nn.Module, key: str) -> str:
    """The layer a tensor (or submodule) name belongs to: the longest prefix of ``key`` that
    names a layer of ``model``, or where it leaves the model (``layer1.conv9.weight`` →
    ``layer1.conv9`` when ``layer1`` has no ``conv9``; ``stage2.0.conv1`` from a file of
    two repetitions for a network of one). A layer's own submodules stay its own:
    ``attn.out_proj.weight`` → ``attn``."""
    parts = key.split(".")
    m: Any = model
    path: list[str] = []
    for part in parts[:-1]:
        if m is None:  # the name left the model: all of it but the tensor's is the layer
            return ".".join(parts[:-1])
        if not is_container(m):
            break
        path.append(part)
        m = m._modules.get(part)
    return ".".join(path) or parts[0]


def find_module(model: nn.Module, path: str) -> nn.Module | None:
    """The module at ``path`` (a layer, or a block instance's), or None."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None

