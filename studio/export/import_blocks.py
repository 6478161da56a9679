"""Repeated module classes of an imported model → block definitions and their instances.

A model's own building blocks (ResNet's ``BasicBlock``, MobileNet's ``InvertedResidual``,
DenseNet's ``_DenseLayer``, …) are what a person reads it by, so an imported resnet18 arrives
as a stem, eight block instances and a head rather than 70 loose layers. A class becomes a
block when it occurs twice or more below the root, is neither one of torch's own modules nor a
container, and each occurrence's traced layers form a region with one output. Occurrences of
equal structure share one definition; others of the same class get their own
(``BasicBlock``, ``BasicBlock2``, …). Instance ids are module paths (``layer1.0`` →
``layer1_0``), layer ids inside a block are paths inside the module (``downsample_0``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.core.blockdef import BLOCK, BlockDef, free_name
from studio.core.graph import Graph, Node
from studio.core.layout import apply_layout
from studio.core.shapes import analyze


@dataclass
class Traced:
    """A model traced into a flat graph, with where each node came from."""

    graph: Graph
    key_map: dict[str, str]  # torchvision state-dict key → flat Studio key
    #: node id → the module paths it was traced inside, outermost first (a module call's
    #: own path last)
    scopes: dict[str, tuple[str, ...]]
    #: node id → a module call's path, or an op's name (``add``)
    names: dict[str, str]


def node_id(target: str, used: set[str]) -> str:
    """A valid node id from a module path or op name, unique among ``used`` (then added)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", target) or "op"
    if base[0].isdigit():
        base = "n_" + base
    base = base[:60]
    nid, k = base, 1
    while nid in used:
        k += 1
        nid = f"{base}_{k}"
    used.add(nid)
    return nid


@dataclass
class _Occurrence:
    """One module that becomes a block instance: its layers, inputs and output."""

    path: str
    cls: type
    nodes: list[str]  # flat ids, in graph order
    ports: list[str]  # flat ids of the outside nodes that feed it, port 0 first
    output: str
    local: dict[str, str] = field(default_factory=dict)  # flat id → id inside the block


def group_repeated(model: Any, traced: Traced, is_leaf: Callable[[Any], bool],
                   ) -> tuple[Graph, dict[str, str]]:
    """The traced graph with every repeated module class grouped into blocks, and the key
    map rewritten to the nested modules (``layer1.0.conv1.weight`` →
    ``layer1_0.conv1.weight``). ``is_leaf``: whether a module is one catalog layer."""
    flat = traced.graph
    members: dict[str, list[str]] = {}
    for nid in flat.nodes:
        for path in traced.scopes.get(nid, ()):
            members.setdefault(path, []).append(nid)
    taken: set[str] = set()
    found: list[_Occurrence] = []
    for path, cls in _candidates(model, is_leaf).items():  # parents before children
        if any(path.startswith(p + ".") for p in taken):
            continue  # inside a block already: part of its definition
        occ = _region(flat, path, cls, members.get(path, []))
        if occ is not None:
            found.append(occ)
            taken.add(path)
    counts = Counter(o.cls for o in found)
    found = [o for o in found if counts[o.cls] > 1]
    if not found:
        return flat, traced.key_map

    shapes = analyze(flat).nodes
    out = Graph()
    by_structure: dict[tuple[Any, ...], str] = {}
    uses: dict[str, list[str]] = {}
    defn_of: dict[str, str] = {}  # module path → definition name
    for occ in found:
        inner = _inner_graph(flat, occ, traced.names, shapes)
        structure = (occ.cls, _signature(inner))
        name = by_structure.get(structure)
        if name is None:
            name = by_structure[structure] = free_name(out.blocks, occ.cls.__name__)
            apply_layout(inner)
            out.set_block(BlockDef(name, inner))
        uses.setdefault(name, []).append(occ.path)
        defn_of[occ.path] = name
    for occ in found:
        d = out.blocks[defn_of[occ.path]]
        if not d.description:
            d.description = _describe(occ.cls, uses[d.name])

    owner = {nid: occ for occ in found for nid in occ.nodes}
    used = {nid for nid in flat.nodes if nid not in owner}
    inst = {occ.path: node_id(occ.path, used) for occ in found}
    for n in flat:
        occ = owner.get(n.id)
        if occ is None:
            out.add_node(n.copy())
        elif n.id == occ.nodes[0]:
            out.add_node(Node(inst[occ.path], BLOCK, {"block": defn_of[occ.path],
                                                      "repeat": 1}))
    done: set[tuple[str, str, int]] = set()
    for e in flat.edges:
        a, b = owner.get(e.src), owner.get(e.dst)
        if a is not None and a is b:
            continue  # inside one block
        src = inst[a.path] if a is not None else e.src
        edge = (src, inst[b.path], b.ports.index(e.src)) if b is not None else (
            src, e.dst, e.port)
        if edge not in done:
            done.add(edge)
            out.connect(*edge)

    key_map: dict[str, str] = {}
    for key, value in traced.key_map.items():
        nid, rest = value.split(".", 1)
        occ = owner.get(nid)
        key_map[key] = value if occ is None else f"{inst[occ.path]}.{occ.local[nid]}.{rest}"
    return out, key_map


def _candidates(model: Any, is_leaf: Callable[[Any], bool]) -> dict[str, type]:
    """Module path → class of every module that may become a block: a class of the model's
    own (not torch's, not a container that only groups layers, not a catalog layer) that
    occurs at least twice below the root; in ``named_modules`` order, parents first."""
    from torch import nn

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    found = {path: type(m) for path, m in model.named_modules()
             if path and not isinstance(m, containers) and not is_leaf(m)
             and not type(m).__module__.startswith("torch.nn")}
    counts = Counter(found.values())
    return {path: cls for path, cls in found.items() if counts[cls] > 1}


def _region(flat: Graph, path: str, cls: type, nodes: list[str]) -> _Occurrence | None:
    """The layers traced inside module ``path`` as a block, or None when they do not make
    one (no layers, no input, several outputs, or a path that leaves and comes back)."""
    inside = set(nodes)
    # a concatenation of the block's inputs stays outside: DenseNet's layers take a growing
    # list of tensors, and this way all of them share one definition with one input
    peeled = True
    while peeled:
        peeled = False
        for nid in nodes:
            if flat.nodes[nid].type == "Concat" and not set(flat.predecessors(nid)) & inside:
                inside.discard(nid)
                peeled = True
        nodes = [n for n in nodes if n in inside]
    if not nodes:
        return None
    ports: list[str] = []
    for nid in nodes:
        for src in flat.predecessors(nid):
            if src not in inside and src not in ports:
                ports.append(src)
    ends = [n for n in nodes if not any(d in inside for d in flat.successors(n))]
    leaving = {n for n in nodes if any(d not in inside for d in flat.successors(n))}
    if not ports or len(ends) != 1 or leaving - set(ends):
        return None
    output = ends[0]
    if any(flat.reaches(output, p) for p in ports):
        return None
    return _Occurrence(path, cls, nodes, ports, output)


def _inner_graph(flat: Graph, occ: _Occurrence, names: dict[str, str],
                 shapes: dict[str, Any]) -> Graph:
    """The definition ``occ`` would have: one Input per port (shaped as this occurrence is
    fed), then its layers named by their path inside the module (kept in ``occ.local``)."""
    used: set[str] = set()
    for nid in occ.nodes:
        name = names.get(nid, nid)
        local = name[len(occ.path) + 1:] if name.startswith(occ.path + ".") else name
        occ.local[nid] = node_id(local, used)
    port_ids = {src: node_id("x" if k == 0 else f"x{k + 1}", used)
                for k, src in enumerate(occ.ports)}
    inner = Graph()
    for src, pid in port_ids.items():
        shape = shapes[src].shape
        inner.add_node(Node(pid, "Input", {"shape": list(shape)} if shape else {}))
    for nid in occ.nodes:
        n = flat.nodes[nid].copy()
        n.id = occ.local[nid]
        inner.add_node(n)
    for nid in occ.nodes:
        for e in flat.in_edges(nid):
            src = port_ids[e.src] if e.src in port_ids else occ.local[e.src]
            inner.connect(src, occ.local[nid], e.port)
    return inner


def _signature(inner: Graph) -> tuple[Any, ...]:
    """What two occurrences must share to share a definition: layers, their settings and
    edges; the Input shapes (widths an instance's input decides) are left out."""
    nodes = tuple(repr((n.id, n.type, n.params, n.trainable, n.init)) if not n.is_input
                  else n.id for n in inner)
    return nodes, tuple(sorted((e.src, e.dst, e.port) for e in inner.edges))


def _describe(cls: type, paths: list[str]) -> str:
    where = ", ".join(paths) if len(paths) <= 3 else f"{paths[0]} and {len(paths) - 1} more"
    return f"{cls.__qualname__} from {cls.__module__}, at {where}"
