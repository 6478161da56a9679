"""Blocks in the core: grouping, ungrouping, repeats, nesting, files and the built module."""

from __future__ import annotations

import json

import pytest
import torch

from studio.core.blockdef import BLOCK, BlockDef
from studio.core.blocks import apply_group, apply_ungroup, expand, plan_group, plan_ungroup
from studio.core.build import build_module
from studio.core.errors import GraphError, ProjectError
from studio.core.graph import Graph, Node
from studio.core.project import Project, default_sample, sample_paths
from studio.core.shapes import analyze


def mnist() -> Project:
    return Project.load(default_sample())


def residual() -> Graph:
    """x → conv → relu → add(x, relu) → flatten → fc: the Add reads the input twice."""
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [4, 8, 8]}))
    g.add_node(Node("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}))
    g.add_node(Node("relu", "ReLU"))
    g.add_node(Node("add", "Add"))
    g.add_node(Node("flat", "Flatten"))
    g.add_node(Node("fc", "Linear", {"out_features": 3}))
    for a, b in (("x", "conv"), ("conv", "relu"), ("x", "add"), ("flat", "fc")):
        g.connect(a, b)
    g.connect("relu", "add", 1)
    g.connect("add", "flat")
    return g


def same_outputs(flat: Graph, grouped: Graph, key_of: dict[str, str]) -> None:
    """The grouped network computes what the flat one does with the same weights."""
    a, b = build_module(flat, seed=1).eval(), build_module(grouped, seed=2).eval()
    state = a.state_dict()
    b.load_state_dict({key_of.get(k, k): v for k, v in state.items()}, strict=True)
    shape = analyze(flat).nodes[analyze(flat).inputs[0]].shape
    x = torch.randn(3, *shape)
    torch.testing.assert_close(a(x), b(x))


def test_grouping_keeps_the_network_and_nests_its_weights() -> None:
    p = mnist()
    flat = p.graph.copy()
    plan = plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem")
    apply_group(p.graph, plan)
    inst = plan.instance.id
    node = p.graph.nodes[inst]
    assert node.type == BLOCK and node.params == {"block": "Stem", "repeat": 1}
    assert p.graph.predecessors(inst) == ["input"] and p.graph.successors(inst) == ["conv2"]
    a, a0 = analyze(p.graph), analyze(flat)
    assert a.ok and a.total_params == a0.total_params and a.total_macs == a0.total_macs
    assert a.output_shape() == a0.output_shape()
    assert a.activation_values == a0.activation_values
    keys = list(build_module(p.graph).state_dict())
    assert f"{inst}.conv1.weight" in keys and "conv2.weight" in keys
    same_outputs(flat, p.graph, {"conv1.weight": f"{inst}.conv1.weight",
                                 "conv1.bias": f"{inst}.conv1.bias"})


def test_ungrouping_gives_the_layers_back_under_their_ids() -> None:
    p = mnist()
    before = analyze(p.graph)
    plan = plan_group(p.graph, ["conv2", "relu2", "pool2"])
    assert plan.definition.name == "ConvBlock"  # named from what it holds
    apply_group(p.graph, plan)
    apply_ungroup(p.graph, plan_ungroup(p.graph, plan.instance.id))
    after = analyze(p.graph)
    assert set(p.graph.nodes) == set(before.nodes)
    assert sorted((e.src, e.dst, e.port) for e in p.graph.edges) == sorted(
        (e.src, e.dst, e.port) for e in Project.load(default_sample()).graph.edges)
    assert after.total_params == before.total_params


def test_a_block_reads_an_outside_value_through_one_port_twice() -> None:
    g = residual()
    flat = g.copy()
    plan = plan_group(g, ["conv", "relu", "add"], "Res")
    apply_group(g, plan)
    assert g.blocks["Res"].inputs == ["x"]  # one port, read by the Conv2d and the Add
    inst = plan.instance.id
    assert [e.src for e in g.in_edges(inst)] == ["x"]
    same_outputs(flat, g, {k: f"{inst}.{k}" for k in ("conv.weight", "conv.bias")})


@pytest.mark.parametrize("ids, reason", [
    (["input", "conv1"], "'input' is an Input; a block holds layers only"),
    (["conv1", "conv2"], "one output, but 'conv1', 'conv2' all feed"),
    ([], "select the layers"),
])
def test_grouping_is_refused_with_the_reason(ids: list[str], reason: str) -> None:
    p = mnist()
    with pytest.raises(GraphError, match=reason):
        plan_group(p.graph, ids)


def test_a_block_has_one_output() -> None:
    g = residual()
    g.add_node(Node("side", "Flatten"))
    g.connect("relu", "side")
    with pytest.raises(GraphError, match="one output"):
        plan_group(g, ["conv", "relu", "add"])


def test_a_path_that_leaves_the_selection_and_comes_back_is_refused() -> None:
    with pytest.raises(GraphError, match="from 'relu' back to 'add' runs outside"):
        plan_group(residual(), ["conv", "add", "flat", "fc"])


def test_repeat_runs_the_block_in_sequence_until_it_no_longer_fits() -> None:
    p = mnist()
    plan = plan_group(p.graph, ["conv1", "relu1", "pool1"], "Down")
    apply_group(p.graph, plan)
    inst = plan.instance.id
    # feed the block into a Flatten so later layers do not mind the shape
    g = Graph()
    g.blocks = p.graph.blocks
    g.add_node(Node("x", "Input", {"shape": [1, 28, 28]}))
    g.add_node(Node(inst, BLOCK, {"block": "Down", "repeat": 3}))
    g.add_node(Node("flat", "Flatten"))
    g.connect("x", inst)
    g.connect(inst, "flat")
    a = analyze(g)
    assert a.ok, a.problems
    assert a.nodes[inst].shape == (32, 1, 1)  # 28 → 13 → 5 → 1
    assert len(a.nodes[inst].inner) == 3
    model = build_module(g)
    assert f"{inst}.2.conv1.weight" in model.state_dict()
    assert sum(t.numel() for t in model.parameters()) == a.total_params
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 32)
    g.set_params(inst, {"block": "Down", "repeat": 4})
    problem = analyze(g).problems_for(inst)[0]
    assert "repetition 4 gets (N, 32, 1, 1)" in problem.message and problem.field == "repeat"


def test_only_a_one_input_block_repeats() -> None:
    g = Graph()
    inner = Graph()
    inner.add_node(Node("a", "Input", {"shape": [4]}))
    inner.add_node(Node("b", "Input", {"shape": [4]}))
    inner.add_node(Node("sum", "Add"))
    inner.connect("a", "sum")
    inner.connect("b", "sum", 1)
    g.set_block(BlockDef("Pair", inner))
    g.add_node(Node("x", "Input", {"shape": [4]}))
    g.add_node(Node("p", BLOCK, {"block": "Pair", "repeat": 2}))
    g.connect("x", "p")
    g.connect("x", "p", 1)
    with pytest.raises(GraphError, match="2 inputs; port 2"):
        g.connect("x", "p", 2)
    assert "only a block with one input can repeat" in analyze(g).problems_for("p")[0].message


def test_blocks_nest_and_never_contain_themselves() -> None:
    p = mnist()
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1"], "Inner"))
    inner_inst = next(n.id for n in p.graph if n.type == BLOCK)
    apply_group(p.graph, plan_group(p.graph, [inner_inst, "pool1"], "Outer"))
    outer_inst = next(n.id for n in p.graph if n.type == BLOCK)
    keys = build_module(p.graph).state_dict()
    assert f"{outer_inst}.{inner_inst}.conv1.weight" in keys
    assert analyze(p.graph).total_params == analyze(mnist().graph).total_params
    assert analyze(expand(p.graph)).total_params == analyze(mnist().graph).total_params
    with pytest.raises(GraphError, match="contain itself"):
        d = p.graph.blocks["Inner"]
        d.graph.add_node(Node("again", BLOCK, {"block": "Outer"}))
        p.graph.set_block(d)


def test_a_project_with_blocks_round_trips_and_says_version_2() -> None:
    p = mnist()
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem"))
    text = p.dumps()
    raw = json.loads(text)
    assert raw["version"] == 2 and list(raw["blocks"]) == ["Stem"]
    again = Project.loads(text)
    assert again.dumps() == text
    assert again.graph.structure() == p.graph.structure()
    assert mnist().to_dict()["version"] == 1  # without blocks, older Studios still read it


def test_copies_do_not_share_definitions() -> None:
    p = mnist()
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem"))
    snap = p.graph.copy()
    p.graph.blocks["Stem"].graph.set_params("conv1", {"out_channels": 8, "kernel_size": 3})
    assert snap.blocks["Stem"].graph.nodes["conv1"].params["out_channels"] == 32
    assert snap.blocks["Stem"].graph.blocks is snap.blocks


@pytest.mark.parametrize("edit, where, message", [
    (lambda d: d.update(version=3), "version", "newer Studio"),
    (lambda d: d["graph"]["nodes"][1]["params"].update(block="Nope"),
     "graph.nodes[1] 'stem_1'.params.block", "no block named 'Nope'"),
    (lambda d: d["graph"]["nodes"][1]["params"].update(repeat=0),
     "graph.nodes[1] 'stem_1'.params.repeat", "1 to 64"),
    (lambda d: d["blocks"]["Stem"]["graph"]["nodes"][1].update(type="Warp"),
     "blocks.Stem.graph.nodes[1] 'conv1'.type", "unknown layer type"),
    (lambda d: d["blocks"].update({"1bad": d["blocks"]["Stem"]}), "blocks.1bad",
     "must start with a letter"),
])
def test_bad_block_files_are_refused_naming_the_field(edit, where, message) -> None:
    p = mnist()
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem"))
    raw = p.to_dict()
    edit(raw)
    with pytest.raises(ProjectError, match=message) as info:
        Project.from_dict(raw)
    assert info.value.where == where


def chain(levels: int, repeat: int) -> dict:
    """A hostile file: each block repeats the one below it ``repeat`` times."""
    relu = {"nodes": [{"id": "i", "type": "Input", "params": {"shape": [8]}},
                      {"id": "r", "type": "ReLU"}], "edges": [{"from": "i", "to": "r"}]}
    blocks = {"B0": {"graph": relu}}
    for k in range(1, levels):
        blocks[f"B{k}"] = {"graph": {
            "nodes": [{"id": "i", "type": "Input", "params": {"shape": [8]}},
                      {"id": "b", "type": "Block", "params": {"block": f"B{k - 1}",
                                                              "repeat": repeat}}],
            "edges": [{"from": "i", "to": "b"}]}}
    top = {"nodes": [{"id": "x", "type": "Input", "params": {"shape": [8]}},
                     {"id": "b", "type": "Block",
                      "params": {"block": f"B{levels - 1}", "repeat": repeat}}],
           "edges": [{"from": "x", "to": "b"}]}
    return {"format": "studio.project", "version": 2, "name": "h", "blocks": blocks,
            "graph": top}


def test_hostile_nesting_is_refused_before_anything_unfolds() -> None:
    with pytest.raises(ProjectError, match="nest more than 32 deep") as deep:
        Project.from_dict(chain(40, 1))
    assert deep.value.where.startswith("blocks.B")
    with pytest.raises(ProjectError, match="more than 100,000 layers"):
        Project.from_dict(chain(3, 64))  # 64³ ReLUs from a file of 8 nodes


def test_uses_fed_alike_share_one_analysis() -> None:
    p = Project.from_dict(chain(2, 64))  # 4,096 ReLUs: allowed, and analysed once per shape
    info = analyze(p.graph).nodes["b"]
    assert info.shape == (8,) and len(info.inner) == 64
    assert len({id(a) for a in info.inner}) == 1
    assert len({id(a.nodes["b"].inner[0]) for a in info.inner}) == 1


def test_a_file_that_would_not_open_again_is_not_saved(tmp_path) -> None:
    p = mnist()
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem"))
    inner = p.graph.blocks["Stem"].graph
    inner.add_node(Node("again", BLOCK, {"block": "Stem"}))  # a block inside itself
    with pytest.raises(ProjectError, match="contains itself"):
        p.save(tmp_path / "p.studio.json")
    assert not (tmp_path / "p.studio.json").exists()


def test_ungroup_finds_free_ids_even_at_the_length_limit() -> None:
    p = mnist()
    plan = plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem")
    plan.instance.id = "a" * 62
    plan.edges = [(s.replace(plan.edges[0][1], plan.instance.id) if s == plan.edges[0][1]
                   else s, d.replace(plan.edges[0][1], plan.instance.id), k)
                  for s, d, k in plan.edges]
    apply_group(p.graph, plan)
    p.graph.set_params(plan.instance.id, {"block": "Stem", "repeat": 2})
    new = plan_ungroup(p.graph, plan.instance.id).nodes
    assert len({n.id for n in new}) == 6 and all(len(n.id) <= 64 for n in new)


def test_ids_a_torch_module_already_has_are_refused_with_the_reason() -> None:
    from studio.core.graph import RESERVED_IDS, check_id

    assert {"training", "forward", "state_dict", "to", "train", "eval", "children"} <= \
        RESERVED_IDS
    with pytest.raises(GraphError, match="every PyTorch module has"):
        check_id("training")
    raw = mnist().to_dict()
    raw["graph"]["nodes"][1]["id"] = "forward"
    with pytest.raises(ProjectError, match="every PyTorch module has") as info:
        Project.from_dict(raw)
    assert info.value.where == "graph.nodes[1].id"


def test_a_frozen_use_stays_frozen_when_its_blocks_are_opened() -> None:
    from studio.core.flat import plain_graph

    p = Project.load(next(s for s in sample_paths() if s.name.startswith("resnet_blocks")))
    p.graph.set_trainable("stage1", False)
    plain, ids = plain_graph(p.graph)
    assert not plain.nodes[ids["stage1.0.conv1"]].trainable
    assert plain.nodes[ids["stage2.0.conv1"]].trainable
    assert analyze(plain).trainable_params == analyze(p.graph).trainable_params


def test_transfer_names_the_layers_of_repetitions_the_network_no_longer_has() -> None:
    from studio.training.transfer import transfer

    p = Project.load(next(s for s in sample_paths() if s.name.startswith("resnet_blocks")))
    before = build_module(p.graph).state_dict()
    p.graph.set_params("stage2", {"block": "BasicBlock", "repeat": 1})
    report = transfer(build_module(p.graph), before)
    assert "stage2.0.conv1" in report.unused and "stage2.1.bn2" in report.unused
    assert len(report.unused) == 8 and "stage2.conv1" in report.missing
    assert "stage1.1.conv1" in report.loaded
