"""The block library: built-ins that build and repeat, user block files that round-trip
exactly and fail readably, and definitions brought into a graph without clashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.core import block_library as lib
from studio.core.blockdef import BLOCK, BlockDef
from studio.core.build import build_module
from studio.core.errors import GraphError, ProjectError
from studio.core.graph import Graph, Node
from studio.core.project import Project
from studio.core.shapes import analyze


@pytest.fixture(autouse=True)
def _blocks_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "blocks"
    monkeypatch.setenv(lib.ENV_DIR, str(folder))
    return folder


def own(d: BlockDef) -> tuple:
    """A definition alone: ``BlockDef.structure()`` also holds every block its graph shares."""
    return d.name, d.description, d.graph.copy(with_blocks=False).structure()


def network(name: str, repeat: int = 1) -> tuple[Graph, str]:
    """Input → one instance of the built-in ``name``; returns the graph and the block name."""
    g = Graph()
    defn, deps = lib.builtin(name)
    shape = defn.graph.nodes[defn.inputs[0]].params["shape"]
    g.add_node(Node("x", "Input", {"shape": shape}))
    used = lib.add_to_graph(g, defn, deps)
    g.add_node(Node("blk", BLOCK, {"block": used, "repeat": repeat}, (0.0, 110.0)))
    g.connect("x", "blk")
    return g, used


# -- built-ins ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", lib.BUILTIN_NAMES)
def test_builtin_analyses_alone_and_keeps_its_shape(name: str) -> None:
    defn, _ = lib.builtin(name)
    a = analyze(defn.graph)
    assert a.problems == []
    assert a.output_shape() == tuple(defn.graph.nodes[defn.inputs[0]].params["shape"])
    assert defn.description and "\n" not in defn.description
    # laid out top to bottom: every edge runs downwards, no two nodes on one spot
    nodes = defn.graph.nodes
    assert all(nodes[e.dst].pos[1] > nodes[e.src].pos[1] for e in defn.graph.edges)
    assert len({n.pos for n in defn.graph}) == len(nodes)


@pytest.mark.parametrize("repeat", [1, 3])
@pytest.mark.parametrize("name", lib.BUILTIN_NAMES)
def test_builtin_builds_with_the_inferred_params_and_shape(name: str, repeat: int) -> None:
    g, _ = network(name, repeat)
    a = analyze(g)
    assert a.problems == []
    model = build_module(g, analysis=a).eval()
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    shape = g.nodes["x"].params["shape"]
    with torch.no_grad():
        y = model(torch.randn(2, *shape))
    assert tuple(y.shape) == (2, *a.output_shape())
    if repeat == 3:
        single = analyze(network(name)[0]).total_params
        assert a.total_params == 3 * single


def test_mbconv_uses_the_squeeze_excite_block_nested() -> None:
    g, _ = network("MBConv")
    assert set(g.blocks) == {"MBConv", "SqueezeExcite"}
    model = build_module(g)
    assert "blk.se.reduce.weight" in model.state_dict()


def test_builtins_are_fresh_on_every_call() -> None:
    a, _ = lib.builtin("ResNetBasic")
    b, _ = lib.builtin("ResNetBasic")
    a.graph.set_params("conv1", {"out_channels": 8})
    assert b.graph.nodes["conv1"].params["out_channels"] == 64
    assert lib.builtin("ResNetBasic")[0].graph.nodes["conv1"].params["out_channels"] == 64
    with pytest.raises(GraphError, match="no built-in"):
        lib.builtin("Nope")


# -- the user library ---------------------------------------------------------------------

def user_graph() -> Graph:
    """A network holding ``Stage``: two MBConv blocks in a row (MBConv nests SqueezeExcite)."""
    g = Graph()
    name = lib.add_to_graph(g, *lib.builtin("MBConv"))
    stage = Graph()
    stage.add_node(Node("x", "Input", {"shape": [16, 32, 32]}))
    stage.add_node(Node("mb", BLOCK, {"block": name, "repeat": 2}, (0.0, 110.0)))
    stage.add_node(Node("out", "ReLU", {}, (0.0, 220.0)))
    stage.connect("x", "mb")
    stage.connect("mb", "out")
    g.set_block(BlockDef("Stage", stage, "two MBConv and a ReLU"))
    return g


def test_saved_block_loads_back_exactly_with_its_nested_blocks(_blocks_dir: Path) -> None:
    g = user_graph()
    path = lib.save_to_library(g, "Stage")
    assert path == _blocks_dir / "Stage.studio-block.json"
    defn, deps = lib.import_block_file(path)
    assert own(defn) == own(g.blocks["Stage"])
    assert set(deps) == {"MBConv", "SqueezeExcite"}
    for name, d in deps.items():
        assert own(d) == own(g.blocks[name])
    raw = json.loads(path.read_text())
    assert raw["format"] == "studio.block" and raw["version"] == 1
    assert list(raw["blocks"]) == ["SqueezeExcite", "MBConv"]  # inner first
    # writing what was read gives the same bytes
    again = lib.write_block(defn, deps, path.with_name("again.studio-block.json"))
    assert again.read_bytes() == path.read_bytes()
    # and it analyses on its own with the example shape
    assert analyze(defn.graph).problems == []


def test_library_lists_builtins_then_user_blocks_by_name(_blocks_dir: Path) -> None:
    g = user_graph()
    clone = g.blocks["Stage"].copy("alpha")
    g.set_block(clone)
    lib.save_to_library(g, "Stage")
    lib.save_to_library(g, "alpha")
    problems: list[ProjectError] = []
    entries = lib.library(problems=problems)
    assert problems == []
    names = [e.name for e in entries]
    assert names == [*lib.BUILTIN_NAMES, "alpha", "Stage"]
    stage = entries[-1]
    assert not stage.builtin and stage.source == str(_blocks_dir / "Stage.studio-block.json")
    assert stage.description == "two MBConv and a ReLU"
    first, deps = stage.definition()
    second, _ = stage.definition()
    assert first.graph is not second.graph
    assert first.graph.blocks is deps and set(deps) == {"MBConv", "SqueezeExcite"}
    assert entries[0].builtin and entries[0].definition()[0].name == "ConvBNReLU"


def test_a_builtin_name_is_refused_unless_replacing_is_asked_for(_blocks_dir: Path) -> None:
    g, name = network("ResNetBasic")
    with pytest.raises(GraphError, match="built-in"):
        lib.save_to_library(g, name)
    assert not _blocks_dir.exists()
    lib.save_to_library(g, name, replace_builtin=True)
    entries = lib.library()
    mine = [e for e in entries if e.name == "ResNetBasic"]
    assert len(mine) == 1 and not mine[0].builtin  # the user's block took its place
    lib.remove_from_library("ResNetBasic")
    assert next(e for e in lib.library() if e.name == "ResNetBasic").builtin
    with pytest.raises(GraphError, match="built-in"):
        lib.remove_from_library("ResNetBasic")


def test_library_skips_unreadable_files_and_reports_them(_blocks_dir: Path) -> None:
    lib.save_to_library(user_graph(), "Stage")
    (_blocks_dir / "Broken.studio-block.json").write_text("{ not json")
    (_blocks_dir / "Stage (copy).studio-block.json").write_bytes(
        (_blocks_dir / "Stage.studio-block.json").read_bytes())
    problems: list[ProjectError] = []
    entries = lib.library(problems=problems)
    assert [e.name for e in entries if not e.builtin] == ["Stage"]
    assert len(problems) == 2
    assert "not valid JSON" in str(problems[0])
    assert "already in the library" in str(problems[1])
    assert lib.library(_blocks_dir / "missing") == lib.library(_blocks_dir / "missing")


def good_file() -> dict:
    return lib.block_file_dict(*lib.builtin("MBConv"))


def mutate(fn):
    """A valid file, changed by ``fn``."""
    def make() -> dict:
        d = good_file()
        fn(d)
        return d
    return make


@pytest.mark.parametrize(("make", "message", "where"), [
    (mutate(lambda d: d.update(version=2)), "newer Studio", "version"),
    (mutate(lambda d: d.update(format="studio.project")), "this is a project", "format"),
    (mutate(lambda d: d.update(extra=1)), "unknown field 'extra'", "(top level)"),
    (mutate(lambda d: d.update(name="9lives")), "must start with a letter", "name"),
    (mutate(lambda d: d["graph"]["nodes"][1]["params"].update(out_channels=-1)),
     "must be ≥ 1", "graph.nodes[1] 'expand'.params.out_channels"),
    (mutate(lambda d: d["blocks"]["SqueezeExcite"]["graph"]["nodes"][2].update(type="Evil")),
     "unknown layer type", "blocks.SqueezeExcite.graph.nodes[2] 'reduce'.type"),
    (mutate(lambda d: d["blocks"].clear()), "no block named 'SqueezeExcite'",
     "graph.nodes[7] 'se'.params.block"),
    (mutate(lambda d: d["graph"]["nodes"].pop(0)), "no node 'x'", "graph.edges[0].from"),
    (mutate(lambda d: d.update(graph={"nodes": [], "edges": []})), "at least one Input",
     "graph.nodes"),
    (mutate(lambda d: d.update(description=["no"])), "must be text", "description"),
])
def test_a_malformed_file_names_the_field(tmp_path: Path, make, message: str,
                                          where: str) -> None:
    path = tmp_path / "b.studio-block.json"
    path.write_text(json.dumps(make()))
    with pytest.raises(ProjectError, match=message) as info:
        lib.import_block_file(path)
    assert info.value.where == f"{path}: {where}"


def test_an_oversized_or_odd_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.studio-block.json"
    big.write_bytes(b" " * (lib.MAX_FILE_BYTES + 1))
    with pytest.raises(ProjectError, match="larger than 8 MiB"):
        lib.import_block_file(big)
    with pytest.raises(ProjectError, match="folder"):
        lib.import_block_file(tmp_path)
    bad = tmp_path / "bad.studio-block.json"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ProjectError, match="UTF-8"):
        lib.import_block_file(bad)


def test_a_block_that_cannot_be_read_back_is_not_written(tmp_path: Path) -> None:
    g = Graph()
    g.set_block(BlockDef("Empty", Graph()))
    with pytest.raises(GraphError, match="cannot be saved"):
        lib.export_block(g, "Empty", tmp_path / "e.studio-block.json")
    assert not (tmp_path / "e.studio-block.json").exists()
    with pytest.raises(GraphError, match="no block named"):
        lib.export_block(g, "Other", tmp_path / "o.studio-block.json")


# -- bringing definitions into a graph ----------------------------------------------------

def test_an_identical_definition_is_reused() -> None:
    g = Graph()
    assert lib.add_to_graph(g, *lib.builtin("SqueezeExcite")) == "SqueezeExcite"
    g.blocks["SqueezeExcite"].graph.move_node("relu", (500.0, 500.0))  # layout does not count
    before = g.blocks["SqueezeExcite"]
    assert lib.add_to_graph(g, *lib.builtin("MBConv")) == "MBConv"
    assert lib.add_to_graph(g, *lib.builtin("MBConv")) == "MBConv"
    assert set(g.blocks) == {"SqueezeExcite", "MBConv"}
    assert g.blocks["SqueezeExcite"] is before


def test_a_different_definition_gets_a_free_name_and_references_follow() -> None:
    g = Graph()
    lib.add_to_graph(g, *lib.builtin("SqueezeExcite"))
    g.blocks["SqueezeExcite"].graph.set_params("reduce", {"out_channels": 8, "kernel_size": 1})
    mine = own(g.blocks["SqueezeExcite"])
    name = lib.add_to_graph(g, *lib.builtin("MBConv"))
    assert name == "MBConv"
    assert g.blocks["MBConv"].graph.nodes["se"].params["block"] == "SqueezeExcite2"
    assert own(g.blocks["SqueezeExcite"]) == mine  # the user's block is untouched
    assert g.blocks["SqueezeExcite2"].graph.nodes["reduce"].params["out_channels"] == 4
    # a different MBConv already there: the library's becomes MBConv2, sharing SqueezeExcite2
    g.blocks["MBConv"].graph.set_params("expand", {"out_channels": 32, "kernel_size": 1,
                                                   "bias": False})
    assert lib.add_to_graph(g, *lib.builtin("MBConv")) == "MBConv2"
    assert set(g.blocks) == {"SqueezeExcite", "SqueezeExcite2", "MBConv", "MBConv2"}
    assert g.blocks["MBConv2"].graph.nodes["se"].params["block"] == "SqueezeExcite2"
    g.add_node(Node("x", "Input", {"shape": [16, 32, 32]}))
    g.add_node(Node("b", BLOCK, {"block": "MBConv2", "repeat": 2}))
    g.connect("x", "b")
    assert analyze(g).problems == []


def test_plan_add_changes_nothing_and_a_missing_dependency_is_named() -> None:
    g = Graph()
    defn, deps = lib.builtin("MBConv")
    plan = lib.plan_add(g.blocks, defn, deps)
    assert g.blocks == {} and [d.name for d in plan.new] == ["SqueezeExcite", "MBConv"]
    with pytest.raises(GraphError, match="uses 'SqueezeExcite', which is not defined"):
        lib.add_to_graph(g, defn, {})


def test_a_shared_file_opens_in_another_project(tmp_path: Path) -> None:
    path = lib.export_block(user_graph(), "Stage", tmp_path / "stage.studio-block.json")
    other = Graph()
    other.add_node(Node("x", "Input", {"shape": [16, 32, 32]}))
    name = lib.add_to_graph(other, *lib.import_block_file(path))
    other.add_node(Node("s", BLOCK, {"block": name, "repeat": 1}))
    other.connect("x", "s")
    a = analyze(other)
    assert a.problems == [] and a.output_shape() == (16, 32, 32)
    saved = Project(graph=other).to_dict()  # the project file carries every definition
    assert Project.from_dict(saved).graph.structure() == other.structure()


def test_library_folder_follows_the_environment(_blocks_dir: Path) -> None:
    assert lib.library_dir() == _blocks_dir


def test_importing_the_library_loads_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, studio.core.block_library; "
                          "print('torch' in sys.modules, 'PySide6' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
