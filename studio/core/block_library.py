"""The block library: built-in blocks, the user's saved blocks, and block files to share.

Built-ins are drawn in ``studio.core.block_builtins`` from catalog layers, afresh on every
call, so no two graphs ever share one. User blocks are ``NAME.studio-block.json`` files in
:func:`library_dir`; they are read as strictly as project files (size limit, field paths in
every error, newer versions refused) and nothing in them is ever executed. A file holds one
definition and every block it uses, so it can be opened anywhere; :func:`add_to_graph`
brings such a definition into a network, reusing identical definitions already there and
renaming the ones that differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .block_builtins import BUILTINS
from .blockdef import (
    BLOCK,
    BlockDef,
    Definition,
    block_params,
    check_name,
    free_name,
    instance_name,
)
from .errors import GraphError, ParamError, ProjectError
from .files import read_limited
from .graph import Graph
from .graph_file import blocks_dict, graph_dict, load_graph
from .project import atomic_write, pretty_json, read_json, unencodable

FORMAT = "studio.block"
VERSION = 1
SUFFIX = ".studio-block.json"
MAX_FILE_BYTES = 8 * 1024 * 1024
BUILT_IN = "built-in"
#: the environment variable that moves the user library (tests, portable installs)
ENV_DIR = "STUDIO_BLOCKS_DIR"



# -- built-in blocks ----------------------------------------------------------------------

BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTINS)


def builtin(name: str) -> Definition:
    """A fresh copy of a built-in block and the blocks it uses (never shared with a graph)."""
    try:
        make = BUILTINS[name]
    except KeyError:
        raise GraphError(f"no built-in block named {name!r}") from None
    return _linked(*make())


# -- the user library ---------------------------------------------------------------------

@dataclass(frozen=True)
class LibraryEntry:
    """One block the palette lists: a built-in or a user file."""

    name: str
    description: str
    #: ``"built-in"`` or the path of the user file
    source: str
    _make: Callable[[], Definition] = field(repr=False, compare=False)

    @property
    def builtin(self) -> bool:
        return self.source == BUILT_IN

    def definition(self) -> Definition:
        """A fresh definition and the blocks it uses, ready for :func:`add_to_graph`."""
        return self._make()


def library_dir() -> Path:
    """Where user blocks are saved: ``$STUDIO_BLOCKS_DIR``, else the user's data folder."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("studio")) / "blocks"


def library_path(name: str, folder: Path | None = None) -> Path:
    return (folder if folder is not None else library_dir()) / f"{check_name(name)}{SUFFIX}"


def library(folder: Path | None = None,
            problems: list[ProjectError] | None = None) -> list[LibraryEntry]:
    """Built-ins first, then user blocks sorted by name. A file that cannot be read is left
    out, never fatal: ``problems`` (when given) receives one ProjectError per such file. A
    user block saved under a built-in's name takes that built-in's place."""
    folder = folder if folder is not None else library_dir()
    user: list[LibraryEntry] = []
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            defn, deps = import_block_file(path)
        except ProjectError as exc:
            if problems is not None:
                problems.append(exc)
            continue
        if defn.name in seen:
            if problems is not None:
                problems.append(ProjectError(f"block {defn.name!r} is already in the library "
                                             f"from {seen[defn.name].name}", str(path)))
            continue
        seen[defn.name] = path
        user.append(LibraryEntry(defn.name, defn.description, str(path),
                                 partial(_linked, defn, deps)))
    user.sort(key=lambda e: (e.name.casefold(), e.name))
    built = []
    for name, make in BUILTINS.items():
        if name in seen:
            continue
        defn, _ = make()
        built.append(LibraryEntry(name, defn.description, BUILT_IN, partial(builtin, name)))
    return built + user


def save_to_library(graph: Graph, name: str, folder: Path | None = None, *,
                    replace_builtin: bool = False) -> Path:
    """Save the definition ``name`` of ``graph`` (with every block it uses) as a user block;
    a built-in's name is refused unless ``replace_builtin``, so a click never hides one."""
    check_name(name)
    if name in BUILTINS and not replace_builtin:
        raise GraphError(f"{name!r} is the name of a built-in block; rename the block to keep "
                         "both, or choose to replace the built-in")
    return export_block(graph, name, library_path(name, folder))


def remove_from_library(name: str, folder: Path | None = None) -> None:
    """Delete a user block's file (built-ins are part of Studio and cannot be removed)."""
    path = library_path(name, folder)
    if name in BUILTINS and not path.exists():
        raise GraphError(f"{name!r} is a built-in block; only saved blocks can be removed")
    try:
        path.unlink()
    except FileNotFoundError:
        raise GraphError(f"no saved block named {name!r}", str(path)) from None


# -- block files --------------------------------------------------------------------------

def export_block(graph: Graph, name: str, path: str | os.PathLike[str]) -> Path:
    """Write the definition ``name`` of ``graph`` and the blocks it uses to a block file."""
    defn = graph.blocks.get(name)
    if defn is None:
        raise GraphError(f"no block named {name!r} in this project")
    return write_block(defn, graph.blocks, path)


def write_block(defn: BlockDef, deps: dict[str, BlockDef], path: str | os.PathLike[str]
                ) -> Path:
    """Write a block file atomically; what is written is read back first, so a file Studio
    writes is always one it can open."""
    check_name(defn.name)
    text = pretty_json(block_file_dict(defn, deps)) + "\n"
    try:
        _from_dict(json.loads(text))
    except ProjectError as exc:
        raise GraphError(f"block {defn.name!r} cannot be saved: {exc.message}", exc.where
                         ) from None
    target = Path(path)
    atomic_write(target, text.encode("utf-8"))
    return target


def block_file_dict(defn: BlockDef, deps: dict[str, BlockDef]) -> dict[str, Any]:
    """A block file's content: the definition and, inner first, every block it uses."""
    used = _closure(defn, deps)
    return {"format": FORMAT, "version": VERSION, "name": defn.name,
            "description": defn.description, "graph": graph_dict(defn.graph),
            "blocks": blocks_dict({n: deps[n] for n in used})}


def import_block_file(path: str | os.PathLike[str]) -> Definition:
    """Read a block file; raises ProjectError naming the file and the field path."""
    path = Path(path)
    data = read_limited(path, MAX_FILE_BYTES, ProjectError, what="block files")
    source = str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProjectError("not a text file (expected UTF-8 JSON)", source) from None
    result: Definition = read_json(text, source, _from_dict)
    return result


def _from_dict(raw: Any) -> Definition:
    if not isinstance(raw, dict):
        raise ProjectError("a block file must hold a JSON object", "(top level)")
    if raw.get("format") != FORMAT:
        hint = ("; this is a project: open it with File ▸ Open"
                if raw.get("format") == "studio.project" else "")
        raise ProjectError(f"not a Studio block file (format must be {FORMAT!r}){hint}",
                           "format")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError("must be a whole number ≥ 1", "version")
    if version > VERSION:
        raise ProjectError(f"written by a newer Studio (block file version {version}); this "
                           f"one reads up to version {VERSION}", "version")
    bad = unencodable(raw)
    if bad is not None:
        raise ProjectError("text that cannot be written as UTF-8 (a lone surrogate)", bad)
    unknown = set(raw) - {"format", "version", "name", "description", "graph", "blocks"}
    if unknown:
        raise ProjectError(f"unknown field {sorted(unknown)[0]!r}", "(top level)")
    try:
        name = check_name(raw.get("name"))
    except GraphError as exc:
        raise ProjectError(exc.message, "name") from None
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ProjectError("must be text", "description")
    if "graph" not in raw:
        raise ProjectError("missing: the block's layers", "graph")
    blocks_raw = raw.get("blocks")
    if isinstance(blocks_raw, dict) and name in blocks_raw:
        raise ProjectError(f"the file's own block {name!r} cannot also be one it uses",
                           f"blocks.{name}")
    graph = load_graph(raw["graph"], blocks_raw)  # errors name graph.… and blocks.NAME.…
    if not any(n.is_input for n in graph):
        raise ProjectError("a block needs at least one Input node (its input port)",
                           "graph.nodes")
    return BlockDef(name, graph, description), graph.blocks


# -- bringing a definition into a graph ---------------------------------------------------

@dataclass
class AddPlan:
    """What adding a library block does: the name it gets and the definitions to add."""

    name: str
    #: copies to add with ``Graph.set_block``, inner first, renamed where names were taken
    new: list[BlockDef] = field(default_factory=list)


def plan_add(blocks: dict[str, BlockDef], defn: BlockDef, deps: dict[str, BlockDef]
             ) -> AddPlan:
    """Match a definition and the blocks it uses against ``blocks``: a same-named definition
    of the same structure is reused, one that differs gets a free name, and every reference
    to a renamed block follows. Pure, so the editor can apply it as one undo step."""
    order = _closure(defn, deps, known=blocks)
    taken = dict(blocks)
    rename: dict[str, str] = {n: n for n in _refs(defn, deps) if n not in deps}
    new: list[BlockDef] = []
    for name in [*order, defn.name]:
        c = (defn if name == defn.name else deps[name]).copy()
        for node in c.graph:
            ref = instance_name(node)
            if ref is not None and ref in rename:
                node.params = {**node.params, "block": rename[ref]}
        same = _identical(taken, c)
        if same is not None:
            rename[name] = same
            continue
        if c.name in taken:
            c.name = free_name(taken, c.name)
        rename[name] = c.name
        taken[c.name] = c
        new.append(c)
    return AddPlan(rename[defn.name], new)


def add_to_graph(graph: Graph, defn: BlockDef, deps: dict[str, BlockDef]) -> str:
    """Put a definition and its dependencies into ``graph.blocks``; returns the name that
    instances must use (the definition's own, or a free one when that was taken)."""
    plan = plan_add(graph.blocks, defn, deps)
    for d in plan.new:
        graph.set_block(d)
    return plan.name


# -- helpers ------------------------------------------------------------------------------

def _refs(defn: BlockDef, deps: dict[str, BlockDef]) -> set[str]:
    """Every block name used by ``defn``, directly or through the deps."""
    out: set[str] = set()
    stack = [defn]
    while stack:
        for n in stack.pop().graph:
            ref = instance_name(n)
            if ref is not None and ref not in out:
                out.add(ref)
                if ref in deps:
                    stack.append(deps[ref])
    return out


def _closure(defn: BlockDef, deps: dict[str, BlockDef],
             known: dict[str, BlockDef] | None = None) -> list[str]:
    """The names of ``deps`` that ``defn`` uses, each after the blocks it uses itself.
    A name missing from ``deps`` is an error unless ``known`` holds it."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(d: BlockDef) -> None:
        for n in d.graph:
            ref = instance_name(n)
            if ref is None or state.get(ref) == 2:
                continue
            if ref == defn.name or state.get(ref) == 1:
                raise GraphError(f"block {ref!r} contains itself")
            if ref not in deps:
                if known is not None and ref in known:
                    continue
                raise GraphError(f"block {d.name!r} uses {ref!r}, which is not defined")
            state[ref] = 1
            visit(deps[ref])
            state[ref] = 2
            order.append(ref)

    visit(defn)
    return order


def _linked(defn: BlockDef, deps: dict[str, BlockDef]) -> Definition:
    """Fresh copies of a definition and the blocks it uses, sharing one ``blocks`` dict
    (as a network's definitions do), so the copy can be analysed and built on its own."""
    blocks: dict[str, BlockDef] = {}
    for name in _closure(defn, deps):
        c = deps[name].copy()
        c.graph.blocks = blocks
        blocks[name] = c
    main = defn.copy()
    main.graph.blocks = blocks
    return main, blocks


def _identical(blocks: dict[str, BlockDef], d: BlockDef) -> str | None:
    """The name of a definition like ``d`` under its name or a numbered one (``SE2``, as
    an earlier clash named it), so adding a block twice never makes a second copy."""
    numbered = re.compile(re.escape(d.name) + r"[0-9]+")
    names = [d.name, *sorted((n for n in blocks if numbered.fullmatch(n)),
                             key=lambda n: int(n[len(d.name):]))]
    return next((n for n in names if n in blocks and _same(blocks[n], d)), None)


def _same(a: BlockDef, b: BlockDef) -> bool:
    """The same network: ports in the same order, the same layers with the same settings
    (defaults filled in) and the same wiring. Positions and descriptions do not count."""
    return a.inputs == b.inputs and _shape_of(a.graph) == _shape_of(b.graph)


def _shape_of(g: Graph) -> tuple[dict[str, Any], set[tuple[str, str, int]]]:
    nodes: dict[str, Any] = {}
    for n in g:
        params = n.params
        spec = n.spec
        with contextlib.suppress(ParamError):  # compared as stored when they do not check
            params = (block_params(params) if n.type == BLOCK
                      else spec.schema.resolve(spec.schema.validate(params)) if spec
                      else params)
        nodes[n.id] = (n.type, params, n.trainable, n.init)
    return nodes, {(e.src, e.dst, e.port) for e in g.edges}


__all__ = [
    "BUILTIN_NAMES",
    "AddPlan",
    "LibraryEntry",
    "add_to_graph",
    "block_file_dict",
    "builtin",
    "export_block",
    "import_block_file",
    "library",
    "library_dir",
    "library_path",
    "plan_add",
    "remove_from_library",
    "save_to_library",
    "write_block",
]
