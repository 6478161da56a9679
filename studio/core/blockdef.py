"""Block definitions and instances: what the graph, shapes and project files need to know.

A definition is an ordinary graph whose Input nodes are the block's input ports, in the order
they were added, and whose one output is the block's output. An instance is a node of type
``Block`` with params ``{"block": name, "repeat": n}``: every instance of a name shares the
definition (edit once, all follow), and ``repeat`` runs the block n times in sequence, each
time with its own weights. The Input nodes' shapes serve only when a definition is looked at
alone (in the library); inside a network each instance feeds them its own inputs.
Grouping, ungrouping and the library live in ``studio.core.blocks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import GraphError, ParamError

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph, Node

BLOCK = "Block"
MAX_REPEAT = 64
#: block names become class names in the generated model.py
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise GraphError(f"block name {name!r} must start with a letter and contain only "
                         "letters, digits and _ (at most 64)")
    return name


@dataclass
class BlockDef:
    """One block definition: its graph (Input nodes are its ports) and a line on what it is."""

    name: str
    graph: Graph
    description: str = ""

    @property
    def inputs(self) -> list[str]:
        """The Input nodes, in the order they were added: port 0, port 1, …"""
        return [n.id for n in self.graph if n.is_input]

    def copy(self, name: str | None = None) -> BlockDef:
        return BlockDef(name or self.name, self.graph.copy(with_blocks=False), self.description)


#: a definition and the definitions it uses (directly or through others), by name
Definition = tuple[BlockDef, dict[str, BlockDef]]


def block_params(params: Any, where: str = "params") -> dict[str, Any]:
    """A Block node's params checked: ``block`` (a name) and ``repeat`` (1 to 64)."""
    if not isinstance(params, dict):
        raise ParamError("must be an object", where)
    extra = set(params) - {"block", "repeat"}
    if extra:
        raise ParamError(f"unknown parameter {sorted(extra)[0]!r}", where)
    name = params.get("block")
    try:
        check_name(name)
    except GraphError as exc:
        raise ParamError(exc.message, f"{where}.block") from None
    repeat = params.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
        raise ParamError(f"must be a whole number from 1 to {MAX_REPEAT}", f"{where}.repeat")
    return {"block": name, "repeat": repeat}


def instance_name(node: Node) -> str | None:
    """The definition a Block node uses (None for other nodes or bad params)."""
    if node.type != BLOCK:
        return None
    name = node.params.get("block")
    return name if isinstance(name, str) else None


def uses(graph: Graph, name: str) -> list[str]:
    """Ids of the nodes of ``graph`` that are instances of ``name``."""
    return [n.id for n in graph if instance_name(n) == name]


def users(graph: Graph, name: str) -> int:
    """How many nodes use ``name``: in the network and inside other blocks."""
    return len(uses(graph, name)) + sum(len(uses(d.graph, name))
                                        for other, d in graph.blocks.items() if other != name)


def contains(blocks: dict[str, BlockDef], outer: str, inner: str) -> bool:
    """Whether definition ``outer`` uses ``inner``, directly or through other blocks."""
    stack, seen = [outer], set()
    while stack:
        d = blocks.get(stack.pop())
        if d is None:
            continue
        for n in d.graph:
            child = instance_name(n)
            if child == inner:
                return True
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return False


def used_blocks(graph: Graph, nodes: list[Node]) -> dict[str, BlockDef]:
    """Copies of the definitions ``nodes`` use, directly or through other blocks."""
    out: dict[str, BlockDef] = {}
    stack = [n for n in (instance_name(node) for node in nodes) if n is not None]
    while stack:
        name = stack.pop()
        defn = graph.blocks.get(name)
        if name in out or defn is None:
            continue
        out[name] = defn.copy()
        stack += [n for n in (instance_name(node) for node in defn.graph) if n is not None]
    return out


def free_name(blocks: dict[str, BlockDef], base: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_") or "Block"
    if not base[0].isalpha():
        base = "B" + base
    base = base[:60]
    if base not in blocks:
        return base
    i = 2
    while f"{base}{i}" in blocks:
        i += 1
    return f"{base}{i}"


#: how deep blocks may nest, and how many layers a network may hold once every block is
#: unfolded (each repetition counted): a small hostile file must not make analysis explode
MAX_DEPTH = 32
MAX_LAYERS = 100_000


def check_blocks(graph: Graph) -> None:
    """Raise GraphError (``where``: ``blocks.NAME``) for a block used but not defined, one that
    uses itself, nesting deeper than MAX_DEPTH or a network that unfolds to more than
    MAX_LAYERS layers. One pass over the definitions, each visited once."""
    blocks = graph.blocks
    size: dict[str, int] = {}
    open_: set[str] = set()

    def unfolded(name: str, depth: int, where: str) -> int:
        if name in size:
            return size[name]
        if name not in blocks:
            raise GraphError(f"no block named {name!r}", where)
        if name in open_:
            raise GraphError(f"block {name!r} contains itself", f"blocks.{name}")
        if depth > MAX_DEPTH:
            raise GraphError(f"blocks nest more than {MAX_DEPTH} deep", f"blocks.{name}")
        open_.add(name)
        total = _layers(blocks[name].graph, depth + 1, f"blocks.{name}", unfolded)
        open_.discard(name)
        size[name] = total
        return total

    total = _layers(graph, 1, "graph", unfolded)
    for name in blocks:  # unused definitions are checked too: they are in the file
        unfolded(name, 1, f"blocks.{name}")
    if total > MAX_LAYERS:
        raise GraphError(f"the network unfolds to {total:,} layers (blocks and repeats "
                         f"counted); at most {MAX_LAYERS:,} are allowed", "graph")


def _layers(graph: Graph, depth: int, where: str, unfolded: Any) -> int:
    n = 0
    for node in graph:
        name = instance_name(node)
        if name is None:
            n += 0 if node.is_input else 1
        else:
            repeat = node.params.get("repeat", 1)
            repeat = repeat if isinstance(repeat, int) and repeat > 0 else 1
            n += repeat * unfolded(name, depth, f"{where}.nodes '{node.id}'.params.block")
        if n > MAX_LAYERS:
            raise GraphError(f"unfolds to more than {MAX_LAYERS:,} layers (blocks and "
                             "repeats counted)", where)
    return n
