"""A graph and its block definitions as the data a file holds: written plainly, and read
back with every check a loaded file needs (ids, layer types and params against the catalog,
edges like the editor's, block references, nesting and size), each failure one ProjectError
naming the field path (``graph.nodes[2] 'fc1'.params.out_features``, ``blocks.NAME…``).
Project files and block library files share it.
"""

from __future__ import annotations

from typing import Any

from . import catalog
from .blockdef import BLOCK, BlockDef, block_params, check_blocks, check_name
from .errors import GraphError, ParamError, ProjectError
from .graph import Graph, Node, check_id
from .init import compact, validate_init

MAX_NODES = 10_000


def graph_dict(graph: Graph) -> dict[str, Any]:
    """A graph's nodes and edges as a project file writes them."""
    nodes = []
    for n in graph:
        d: dict[str, Any] = {"id": n.id, "type": n.type, "params": dict(n.params),
                             "pos": [round(n.pos[0], 2), round(n.pos[1], 2)]}
        if not n.trainable:
            d["trainable"] = False
        if n.init:
            d["init"] = compact(n.init)
        nodes.append(d)
    return {"nodes": nodes, "edges": [{"from": e.src, "to": e.dst, "port": e.port}
                                      for e in graph.edges]}


def blocks_dict(blocks: dict[str, BlockDef]) -> dict[str, Any]:
    """Block definitions as a project file writes them (block library files write the same)."""
    return {name: {**({"description": d.description} if d.description else {}),
                   "graph": graph_dict(d.graph)}
            for name, d in blocks.items()}


def load_graph(raw: Any, blocks_raw: Any = None) -> Graph:
    """A graph and its block definitions, checked (``graph.…`` and ``blocks.NAME…`` in
    errors): every definition's nodes first, then every edge (an edge into a block instance
    needs its definition's ports). Project files and block files hold these two fields."""
    graph = Graph()
    parts: list[tuple[Graph, list[Any], str]] = []
    if blocks_raw is not None:
        if not isinstance(blocks_raw, dict):
            raise ProjectError("must be an object of block definitions by name", "blocks")
        for name, bd in blocks_raw.items():
            where = f"blocks.{name}"
            try:
                check_name(name)
            except GraphError as exc:
                raise ProjectError(exc.message, where) from None
            if not isinstance(bd, dict) or set(bd) - {"description", "graph"}:
                raise ProjectError("must be an object with graph (and description)", where)
            description = bd.get("description", "")
            if not isinstance(description, str):
                raise ProjectError("must be text", f"{where}.description")
            inner = Graph()
            parts.append((inner, _load_nodes(bd.get("graph"), f"{where}.graph", inner),
                          f"{where}.graph"))
            graph.blocks[name] = BlockDef(name, inner, description)
            inner.blocks = graph.blocks
    parts.append((graph, _load_nodes(raw, "graph", graph), "graph"))
    total = sum(len(g) for g, _, _ in parts)
    if total > MAX_NODES:
        raise ProjectError(f"{total} nodes; a project may hold at most {MAX_NODES}", "graph")
    for g, _, where in parts:
        for n in g:
            if n.type == BLOCK and n.params["block"] not in graph.blocks:
                i = g.index(n.id)
                raise ProjectError(f"no block named {n.params['block']!r} in this file",
                                   f"{where}.nodes[{i}] '{n.id}'.params.block")
    try:  # before any edge: an edge into a block asks its definition for its ports
        check_blocks(graph)
    except GraphError as exc:
        raise ProjectError(exc.message, exc.where) from None
    for g, edges_raw, where in parts:
        _load_edges(edges_raw, where, g)
    return graph


def _load_nodes(raw: Any, where: str, graph: Graph) -> list[Any]:
    """Add a graph's nodes; returns its raw edges, to be connected once all blocks exist."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ProjectError("must be an object with nodes and edges", where)
    extra = set(raw) - {"nodes", "edges"}
    if extra:
        raise ProjectError(f"unknown field {sorted(extra)[0]!r}", where)
    nodes_raw = raw.get("nodes", [])
    edges_raw = raw.get("edges", [])
    if not isinstance(nodes_raw, list):
        raise ProjectError("must be a list", f"{where}.nodes")
    if not isinstance(edges_raw, list):
        raise ProjectError("must be a list", f"{where}.edges")
    if len(nodes_raw) > MAX_NODES:
        raise ProjectError(f"{len(nodes_raw)} nodes; a project may hold at most {MAX_NODES}",
                           f"{where}.nodes")
    for i, nd in enumerate(nodes_raw):
        graph.add_node(_load_node(nd, f"{where}.nodes[{i}]", graph))
    return edges_raw


def _load_edges(edges_raw: list[Any], prefix: str, graph: Graph) -> None:
    for j, ed in enumerate(edges_raw):
        where = f"{prefix}.edges[{j}]"
        if not isinstance(ed, dict):
            raise ProjectError("must be an object with from, to and port", where)
        extra = set(ed) - {"from", "to", "port"}
        if extra:
            raise ProjectError(f"unknown field {sorted(extra)[0]!r}", where)
        ends: list[str] = []
        for key in ("from", "to"):
            v = ed.get(key)
            if not isinstance(v, str) or v not in graph:
                raise ProjectError(f"no node {v!r}", f"{where}.{key}")
            ends.append(v)
        src, dst = ends
        port = ed.get("port", 0)
        if not isinstance(port, int) or isinstance(port, bool):
            raise ProjectError("must be a whole number", f"{where}.port")
        try:
            graph.connect(src, dst, port)
        except GraphError as exc:
            raise ProjectError(exc.message, where) from None


_NODE_KEYS = {"id", "type", "params", "pos", "trainable", "init"}


def _load_node(nd: Any, where: str, graph: Graph) -> Node:
    if not isinstance(nd, dict):
        raise ProjectError("must be an object with id and type", where)
    extra = set(nd) - _NODE_KEYS
    if extra:
        raise ProjectError(f"unknown field {sorted(extra)[0]!r}", where)
    nid = nd.get("id")
    try:
        check_id(nid)  # type: ignore[arg-type]
    except GraphError as exc:
        raise ProjectError(exc.message, f"{where}.id") from None
    if nid in graph:
        raise ProjectError(f"duplicate node id {nid!r}", f"{where}.id")
    where = f"{where} '{nid}'"
    kind = nd.get("type")
    if kind == BLOCK:
        return _load_block_node(nd, nid, where)  # type: ignore[arg-type]
    spec = catalog.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ProjectError(f"unknown layer type {kind!r}", f"{where}.type")
    try:
        params = spec.schema.validate(nd.get("params", {}), f"{where}.params")
    except ParamError as exc:
        raise ProjectError(exc.message, exc.where) from None
    xy, trainable = _place(nd, where)
    try:  # only tensors the layer has, as its params build it
        init = validate_init(nd.get("init", {}), spec.init_tensors(spec.schema.resolve(params)),
                             f"{where}.init")
    except ParamError as exc:
        raise ProjectError(exc.message, exc.where) from None
    return Node(nid, kind, params, xy, trainable, init)  # type: ignore[arg-type]


def _place(nd: dict[str, Any], where: str) -> tuple[tuple[float, float], bool]:
    """A node's ``pos`` and ``trainable``, checked."""
    pos = nd.get("pos", [0.0, 0.0])
    if (not isinstance(pos, list | tuple) or len(pos) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool)
                       and abs(v) < 1e9 for v in pos)):
        raise ProjectError("must be [x, y] numbers", f"{where}.pos")
    trainable = nd.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ProjectError("must be true or false", f"{where}.trainable")
    return (float(pos[0]), float(pos[1])), trainable


def _load_block_node(nd: dict[str, Any], nid: str, where: str) -> Node:
    try:
        params = block_params(nd.get("params", {}), f"{where}.params")
    except ParamError as exc:
        raise ProjectError(exc.message, exc.where) from None
    if "init" in nd and nd["init"] != {}:
        raise ProjectError("a block sets no initialisation (its layers do)", f"{where}.init")
    xy, trainable = _place(nd, where)
    return Node(nid, BLOCK, params, xy, trainable)
