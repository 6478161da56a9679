"""The classes of ``model.py``: ``Net``, and one ``nn.Module`` per block definition it uses.

A class is written from its graph and the analyses of its uses: ``Net`` has one; a block has
one per instance and repetition, those inside other blocks included. Definitions alike but for
their layers' settings (the same nodes, edges and nesting: an importer's ``BasicBlock`` and
``BasicBlock3`` of other widths) share one class, named after the first, and their uses are
all its uses. A constructor argument that differs between the uses (an inferred input width,
a block's own widths or stride) becomes a parameter of the class's ``__init__``; one that is
the same in every use stays a literal. Layers are made in
the builder's order, a block's inside it as it is met, so a seed draws the same numbers as
``build_module`` and the state dict has the same keys (``stem.conv1.weight``,
``layer1.0.conv1.weight`` for a repeated block).
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import textwrap
from dataclasses import dataclass, field
from typing import Any

from studio.core import catalog
from studio.core.blockdef import BLOCK
from studio.core.graph import Graph
from studio.core.shapes import Analysis, format_shape

from .layout import WIDTH, call, literal, text_constant
from .quote import py_str

RESERVED = {"self", "torch", "nn", "F", "x"}
#: a block's forward may name its input x (Net's never has)
BLOCK_RESERVED = RESERVED - {"x"}
#: what a block's inputs widths are for, when one parameter stands for all of them
_WIDTHS = {"in_channels", "num_features", "num_channels", "in_features"}
#: one constructor argument of a node: ``(kwarg,)`` of a layer, ``(repetition, parameter)``
#: of a block used inside another
Slot = tuple[Any, ...]
Shape = tuple[int, ...]


@dataclass
class Param:
    """A parameter of a block class's ``__init__``: its value in each use."""

    name: str
    values: list[Any]


@dataclass
class ClassSpec:
    """One class of model.py: its graph, the uses it is written for, its parameters."""

    name: str
    graph: Graph
    uses: list[Analysis]
    block: bool = True
    graphs: list[Graph] = field(default_factory=list)  # each use's definition (graph's alike)
    description: str = ""
    order: list[str] = field(default_factory=list)  # the nodes it runs, inputs first
    inputs: list[str] = field(default_factory=list)  # forward's arguments
    args: dict[str, list[dict[Slot, Any]]] = field(default_factory=dict)  # node → per use
    params: list[Param] = field(default_factory=list)
    exprs: dict[tuple[str, Slot], str] = field(default_factory=dict)  # varying → param name

    def arguments(self, use: Analysis) -> dict[str, Any]:
        """The values its parameters take in ``use`` (one of its uses)."""
        i = next(k for k, u in enumerate(self.uses) if u is use)
        return {p.name: p.values[i] for p in self.params}


def plan(graph: Graph, analysis: Analysis, class_name: str
         ) -> tuple[dict[str, ClassSpec], ClassSpec]:
    """Every class model.py defines: the blocks the network uses by definition name (the
    definitions of a group alike all name its one class), each after those it uses, and the
    network's own."""
    seen: list[tuple[str, Analysis]] = []  # every use of a definition, in the builder's order
    first: list[str] = []  # definitions in the order their classes are written

    def walk(g: Graph, a: Analysis) -> None:
        for nid in _built(g, a):
            node = g.nodes[nid]
            if node.type != BLOCK:
                continue
            name = node.params["block"]
            for inner in a.nodes[nid].inner:
                seen.append((name, inner))
                walk(g.blocks[name].graph, inner)
            if name not in first:
                first.append(name)

    walk(graph, analysis)
    group = groups(graph, first)
    leaders = list(dict.fromkeys(group[n] for n in first))
    names = _class_names(leaders, class_name)
    specs: dict[str, ClassSpec] = {}
    for lead in leaders:
        mine = [(n, u) for n, u in seen if group[n] == lead]
        spec = _spec(names[lead], graph.blocks[lead].graph, [u for _n, u in mine], specs,
                     graphs=[graph.blocks[n].graph for n, _u in mine])
        described = {graph.blocks[n].description for n in first if group[n] == lead}
        # a class made of several definitions keeps a description only where all agree
        spec.description = described.pop() if len(described) == 1 else ""
        specs.update({n: spec for n in first if group[n] == lead})
    return specs, _spec(class_name, graph, [analysis], specs, block=False)


def distinct(specs: dict[str, ClassSpec]) -> list[ClassSpec]:
    """The block classes of ``plan`` once each, in their order."""
    return list({id(s): s for s in specs.values()}.values())


def groups(graph: Graph, names: list[str]) -> dict[str, str]:
    """Each of the definitions ``names``'s group: the first of them alike it, one that differs
    only in its layers' settings (same node ids in the same order, types, edges, frozen
    layers and initialisations, nested blocks of the same group and repeat)."""
    keys: dict[str, Any] = {}

    def key(name: str) -> Any:
        if name not in keys:
            g = graph.blocks[name].graph
            keys[name] = (tuple(_node_key(graph, node, key) for node in g),
                          tuple(sorted((e.src, e.dst, e.port) for e in g.edges)))
        return keys[name]

    leaders: dict[Any, str] = {}
    return {n: leaders.setdefault(key(n), n) for n in names}


def _node_key(graph: Graph, node: Any, key: Any) -> tuple[Any, ...]:
    """What of a node must be the same in definitions that share a class: the settings too of
    a node with its own initialisation (they decide which tensors it has)."""
    settings: Any = None
    if node.type == BLOCK:
        name = node.params.get("block")
        settings = (key(name) if name in graph.blocks else name,
                    repr(sorted((k, v) for k, v in node.params.items() if k != "block")))
    elif node.init:
        settings = repr(sorted(node.params.items()))
    return (node.id, node.type, node.trainable, repr(node.init), settings,
            tuple(sorted(node.params)))


def _built(g: Graph, a: Analysis) -> list[str]:
    """The nodes the builder makes modules for, in its order (and the Input nodes)."""
    assert a.output is not None
    needed = g.ancestors(a.output) | {a.output}
    return [n for n in a.order if n in needed]


def _class_names(blocks: list[str], class_name: str) -> dict[str, str]:
    """Each block's class name: its own, unless model.py already means something by it."""
    taken = {*keyword.kwlist, *keyword.softkwlist, *dir(builtins), *RESERVED, class_name,
             "PROJECT_NAME", "DESCRIPTION", "annotations"}
    for spec in catalog.CATALOG.values():
        if not spec.torch_class:
            taken.update({spec.type, *spec.helpers})
    out: dict[str, str] = {}
    for name in blocks:
        new = name
        if name in taken:
            new, i = f"{name}Block", 2
            while new in taken or new in blocks:
                new, i = f"{name}Block{i}", i + 1
        taken.add(new)
        out[name] = new
    return out


def _node_args(g: Graph, nid: str, a: Analysis, specs: dict[str, ClassSpec]
               ) -> dict[Slot, Any]:
    """The constructor arguments of node ``nid`` of ``g`` in the use ``a``."""
    node, info = g.nodes[nid], a.nodes[nid]
    if node.type == BLOCK:
        inner = specs[node.params["block"]]
        return {(r, k): v for r, use in enumerate(info.inner)
                for k, v in inner.arguments(use).items()}
    kwargs = catalog.CATALOG[node.type].kwargs(info.in_shapes, node.params)
    return {(k,): v for k, v in kwargs.items()}


def _spec(name: str, g: Graph, uses: list[Analysis], specs: dict[str, ClassSpec],
          block: bool = True, graphs: list[Graph] | None = None) -> ClassSpec:
    """``graphs``: each use's definition, all alike ``g`` (``g`` itself when not given)."""
    a = uses[0]
    order = _built(g, a)
    s = ClassSpec(name, g, uses, block, graphs or [g] * len(uses), order=order,
                  inputs=list(a.inputs))
    varying: dict[tuple[str, ...], list[tuple[str, Slot]]] = {}
    vectors: dict[tuple[str, ...], list[Any]] = {}
    for nid in order:
        if g.nodes[nid].is_input:
            continue
        s.args[nid] = [_node_args(gu, nid, u, specs) for gu, u in zip(s.graphs, uses,
                                                                       strict=True)]
        for slot in s.args[nid][0]:
            values = [args[slot] for args in s.args[nid]]
            key = tuple(literal(v) for v in values)
            if len(set(key)) > 1:
                varying.setdefault(key, []).append((nid, slot))
                vectors[key] = values
    wanted = {key: _param_name(slots, vectors[key], s) for key, slots in varying.items()}
    # what __init__ refers to besides its parameters: a parameter named so gets a "_"
    meant = {*keyword.kwlist, *dir(builtins), *RESERVED, *(c.name for c in specs.values()),
             *(t.type for t in catalog.CATALOG.values() if not t.torch_class)}
    taken: set[str] = set()
    for key, slots in varying.items():
        pname = wanted[key]
        if list(wanted.values()).count(pname) > 1:  # two quantities: say whose each is
            own = [sl for sl in slots if pname not in _WIDTHS and sl[1][-1] == pname]
            pname = _qualified(*(own or slots)[0])
        if pname in meant:
            pname += "_"
        base, k = pname, 2
        while pname in taken:
            pname, k = f"{base}_{k}", k + 1
        taken.add(pname)
        s.params.append(Param(pname, vectors[key]))
        s.exprs.update({where: pname for where in slots})
    return s


def _qualified(nid: str, slot: Slot) -> str:
    """``conv1_in_channels``; ``stage_1_in_channels`` for a repeated block's second. Ids run
    to 64 characters: past 40 the argument's own name is kept (numbered where it repeats),
    or the signature would not fit its line."""
    if len(slot) == 1:
        name = f"{nid}_{slot[0]}"
    else:
        name = f"{nid}_{slot[1]}" if slot[0] == 0 else f"{nid}_{slot[0]}_{slot[1]}"
    return name if len(name) <= 40 else str(slot[-1])


def _param_name(slots: list[tuple[str, Slot]], values: list[Any], s: ClassSpec) -> str:
    """What a person would call the parameter: ``in_channels`` (``in_features``) for input
    widths that are the block input's in every use (``skip_channels`` for its input skip's,
    where it has several); else the argument's own name when all its uses share it (or all
    but input widths, as ``out_channels`` the next layer's ``in_channels``); else the first
    one's, qualified by its node."""
    names: set[str] = {slot[-1] for _nid, slot in slots}
    # a layer's output width is a block's setting only where definitions share a class
    outs = names - _WIDTHS
    if names <= _WIDTHS or (names & _WIDTHS and outs <= {"out_channels", "out_features"}):
        ports = []
        for port in s.inputs:
            shapes = [u.nodes[port].shape for u in s.uses]
            if not all(shapes) or [sh[0] for sh in shapes if sh] != values:
                continue
            if len(shapes[0] or ()) == 1:
                ports.append((port, "features"))
            elif "in_features" not in names:  # a Linear reads the last dim, not the first
                ports.append((port, "channels"))
        if len(ports) == 1 and len(s.inputs) > 1:
            return "_".join(ports[0])
        if ports:  # channels: a width the block keeps (in and out alike)
            return ports[0][1] if outs else f"in_{ports[0][1]}"
    if len(names) == 1:
        return next(iter(names))
    if len(outs) == 1:  # out_channels, and the widths that follow from it
        return next(iter(outs))
    return _qualified(*slots[0])


def _annotation(values: list[Any]) -> str:
    """The type of a parameter's values, for the simple ones (others go unannotated)."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) != 1 or not kinds <= {bool, int, float, str}:
        return ""
    kind = kinds.pop().__name__
    return f": {kind} | None" if None in values else f": {kind}"


def _defaults(cls: Any) -> dict[str, Any]:
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty}


def _ctor_call(layer_type: str, kwargs: dict[str, Any], exprs: dict[str, str]
               ) -> tuple[str, list[str]]:
    """The class and the arguments a layer is made with: those a parameter gives, and the
    values torch would not take by default."""
    import torch.nn as tnn

    from studio.core import modules

    spec = catalog.CATALOG[layer_type]
    cls = getattr(tnn, spec.torch_class) if spec.torch_class else getattr(modules, layer_type)
    defaults = _defaults(cls)
    shown = {k: exprs.get(k, literal(v)) for k, v in kwargs.items()
             if k in exprs or k not in defaults or literal(defaults[k]) != literal(v)}
    name = f"nn.{spec.torch_class}" if spec.torch_class else layer_type
    return name, [f"{k}={v}" for k, v in shown.items()]


def _init_lines(target: str, layer_type: str, in_shapes: list[Shape],
                params: dict[str, Any], init: dict[str, dict[str, Any]]) -> list[str]:
    """``nn.init.xavier_uniform_(self.fc1.weight)`` for each tensor the node initialises, in
    the order Studio's builder initialises them (so a seed draws the same numbers)."""
    import torch

    from studio.core.build import make_layer
    from studio.core.init import calls

    with torch.device("meta"):  # only the parameters' names: nothing allocated
        layer = make_layer(layer_type, in_shapes, params)
    return [line for pname, function, args in calls(layer, init)
            for line in call(8, f"nn.init.{function}", [f"{target}.{pname}", *(
                f"{k}={literal(v)}" for k, v in args.items())])]


def _block_lines(head: str, tail: str, parts: list[tuple[str, list[str]]]) -> list[str]:
    """``head…tail`` making a block: its class called, or for a repeated block an
    ``nn.Sequential`` of them (a comprehension when every repetition takes the same
    arguments)."""
    if len(parts) == 1:
        return call(8, f"{head}{parts[0][0]}", parts[0][1], tail)
    pad = " " * 8
    made = [f"{cls}({', '.join(args)})" for cls, args in parts]
    same = len(set(made)) == 1
    inner = f"*[{made[0]} for _ in range({len(parts)})]" if same else ", ".join(made)
    one = f"{pad}{head}nn.Sequential({inner}){tail}"
    if len(one) <= WIDTH:
        return [one]
    if same:
        return [f"{pad}{head}nn.Sequential(*[", *call(12, *parts[0]),
                f"{pad}    for _ in range({len(parts)})", f"{pad}]){tail}"]
    return [f"{pad}{head}nn.Sequential(",
            *(line for cls, args in parts for line in call(12, cls, args, ",")),
            f"{pad}){tail}"]


def _shapes(shapes: list[Shape | None], room: int) -> str:
    """The shape comment of a value: each shape it has in the class's uses, or, when they
    are too many for the line, its dims with those that differ as ``?``."""
    each = list(dict.fromkeys(format_shape(sh) for sh in shapes))
    text = " or ".join(each)
    if len(text) <= room:
        return text
    ranks = {len(sh) for sh in shapes if sh is not None}
    if len(ranks) != 1 or None in shapes:
        return "differs by use"
    dims = [str(d[0]) if len(set(d)) == 1 else "?" for d in zip(*shapes, strict=True)]
    return "(N, " + ", ".join(dims) + ") by use"


def _summary(s: ClassSpec) -> list[str]:
    """The docstring: parameters and multiply-adds (their range over the uses of a block)."""
    params = [u.total_params for u in s.uses]
    macs = [u.total_macs for u in s.uses]

    def span(xs: list[int]) -> str:
        return f"{min(xs):,}" if min(xs) == max(xs) else f"{min(xs):,} to {max(xs):,}"

    text = f"{span(params)} parameters, {span(macs)} multiply-adds per sample."
    if s.block:
        n = len(s.uses)
        text = text[:-1] + ("; used once." if n == 1 else "; used twice." if n == 2
                            else f"; used {n} times.")
    line = f'    """{text}"""'
    if len(line) <= WIDTH:
        return [line]
    return [*textwrap.wrap(f'"""{text}', WIDTH - 4, initial_indent="    ",
                           subsequent_indent="    "), '    """']


def forward_inputs(s: ClassSpec) -> list[str]:
    """What forward takes: a block every input port; Net the inputs its output needs (the
    first one when it needs none)."""
    if s.block:
        return s.inputs
    return [n for n in s.inputs if n in s.order] or list(s.inputs[:1])


def variables(s: ClassSpec) -> dict[str, str]:
    """The name of each value in forward: its node's id, unless Python or model.py already
    means something by it."""
    reserved = BLOCK_RESERVED if s.block else RESERVED
    var: dict[str, str] = {}
    for nid in dict.fromkeys([*forward_inputs(s), *s.order]):
        name = nid + "_" if keyword.iskeyword(nid) or nid in reserved else nid
        while name in var.values():
            name += "_"
        var[nid] = name
    return var


def render(s: ClassSpec, specs: dict[str, ClassSpec]) -> list[str]:
    """The source lines of one class; ``specs``: the blocks' by definition name."""
    g, a = s.graph, s.uses[0]
    inputs = forward_inputs(s)
    var = variables(s)

    def attr(nid: str) -> str:
        if nid.isidentifier() and not keyword.iskeyword(nid):
            return f"self.{nid}"
        return f"getattr(self, {py_str(nid)})"

    init: list[str] = []
    fwd: list[str] = []
    for nid in s.order:
        node = g.nodes[nid]
        if node.is_input:
            continue
        head, tail = ((f"self.add_module({py_str(nid)}, ", ")") if keyword.iskeyword(nid)
                      else (f"self.{nid} = ", ""))
        given = {slot: expr for (n, slot), expr in s.exprs.items() if n == nid}
        args = s.args[nid][0]
        if node.type == BLOCK:
            inner = specs[node.params["block"]]
            parts = [(inner.name, [f"{p.name}={given.get((r, p.name), literal(args[r, p.name]))}"
                                   for p in inner.params])
                     for r in range(len(a.nodes[nid].inner))]
            init += _block_lines(head, tail, parts)
        else:
            cls, kwargs = _ctor_call(node.type, {k[0]: v for k, v in args.items()},
                                     {k[0]: v for k, v in given.items()})
            init += call(8, f"{head}{cls}", kwargs, tail)
        if node.init:
            init += _init_lines(attr(nid), node.type, a.nodes[nid].in_shapes, node.params,
                                node.init)
        if not node.trainable:
            init += call(8, f"{attr(nid)}.requires_grad_", ["False"], comment="frozen")
        shapes = [u.nodes[nid].shape for u in s.uses]
        fwd += call(8, f"{var[nid]} = {attr(nid)}", [var[p] for p in g.predecessors(nid)],
                    comment=_shapes(shapes, WIDTH - 10))
    lines = [f"class {s.name}(nn.Module):", *_summary(s)]
    if s.description:
        lines += text_constant("DESCRIPTION", s.description, 4)
    lines += ["", *call(4, "def __init__", ["self", *(
        f"{p.name}{_annotation(p.values)}" for p in s.params)], " -> None:"),
              "        super().__init__()", *init]
    lines += ["", *call(4, "def forward", ["self", *(f"{var[i]}: torch.Tensor" for i in inputs)],
                        " -> torch.Tensor:")]
    assert a.output is not None
    return [*lines, *fwd, f"        return {var[a.output]}"]


def used_blocks(graph: Graph) -> list[str]:
    """The block definitions the network uses, directly or inside other blocks."""
    out: list[str] = []
    stack = [graph]
    while stack:
        for node in stack.pop():
            name = node.params.get("block") if node.type == BLOCK else None
            if isinstance(name, str) and name in graph.blocks and name not in out:
                out.append(name)
                stack.append(graph.blocks[name].graph)
    return out


def layer_types(specs: list[ClassSpec]) -> set[str]:
    """The catalog's layer types the classes make (for the helper modules model.py needs)."""
    return {s.graph.nodes[n].type for s in specs for n in s.order
            if not s.graph.nodes[n].is_input and s.graph.nodes[n].type != BLOCK}
