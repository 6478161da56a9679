"""The engine with block instances: layers inside blocks are named by their paths everywhere
(the summary's nested rows, the doctor, feature maps, Grad-CAM, the sweep), and those paths
are the built network's module paths."""

from __future__ import annotations

import json

import torch

from studio.cli import main
from studio.core.blockdef import BlockDef
from studio.core.blocks import apply_group, plan_group
from studio.core.build import build_module
from studio.core.doctor import diagnose
from studio.core.findings import Fix, InsertLayer
from studio.core.flat import flatten, layer_modules, layer_of, plain_graph
from studio.core.graph import Node
from studio.core.project import Project, default_sample, sample_paths
from studio.core.shapes import analyze
from studio.core.summary import summary_dict, summary_table
from studio.core.sweep_spec import apply_params
from studio.training import feature_maps as fm
from studio.training.explain import explain_sample, gradcam_layers, map_layers
from tests.block_projects import conv_blocks, mlp_blocks, use
from tests.graphs import net

PLAIN_KEYS = ["id", "type", "inputs", "output_shape", "params", "trainable", "macs"]


def test_every_path_is_the_built_modules_path_and_owns_its_tensors() -> None:
    g = conv_blocks(repeat=2).graph
    flat = flatten(g)
    model = build_module(g)
    assert flat.layers() == list(layer_modules(model)) == [
        "stem", "layer1.0.conv1", "layer1.0.relu1", "layer1.1.conv1", "layer1.1.relu1",
        "layer2.inner.conv1", "layer2.inner.relu1", "layer2.bn", "flat", "out"]
    assert flat.top("layer2.inner.conv1") == "layer2" and flat.top("stem") == "stem"
    assert flat.analysis.output == "out"
    # a layer inside a block is wired to what feeds its instance
    assert flat.graph.predecessors("layer1.0.conv1") == ["stem"]
    assert flat.graph.predecessors("layer2.inner.conv1") == ["layer1.1.relu1"]
    assert {layer_of(model, k) for k in model.state_dict()} == {
        "stem", "layer1.0.conv1", "layer1.1.conv1", "layer2.inner.conv1", "layer2.bn", "out"}
    assert layer_of(model, "layer2.gone.weight") == "layer2.gone"  # where it leaves the model
    # a plain graph of the same layers builds the same network, tensor for tensor
    plain, ids = plain_graph(g)
    assert not plain.blocks and ids["layer1.1.conv1"] == "layer1_1_conv1"
    assert analyze(plain).total_params == analyze(g).total_params
    keys = {ids[layer_of(model, k)] + k[len(layer_of(model, k)):] for k in model.state_dict()}
    assert keys == set(build_module(plain).state_dict())


def test_layers_of_a_layer_stay_with_it() -> None:
    g = net(("x", "Input", {"shape": [5, 8]}),
            ("attn", "MultiheadAttention", {"num_heads": 2}))
    model = build_module(g)
    assert {layer_of(model, k) for k in model.state_dict()} == {"attn"}
    assert "attn.out_proj.weight" in model.state_dict()


def test_summary_nests_each_blocks_layers_under_its_row_with_totals() -> None:
    text = summary_table(conv_blocks(repeat=2).graph)
    lines = text.splitlines()

    def row(label: str) -> str:
        return next(x for x in lines if x.startswith(label))

    assert "(N, 4, 8, 8)" in row("layer1 (Block ConvRelu ×2)")
    assert " 296 " in row("layer1 (Block ConvRelu ×2)")  # both repetitions' weights
    first, second = row("  0.conv1 (Conv2d)"), row("  1.conv1 (Conv2d)")
    assert " 148 " in first and first.endswith("stem") and second.endswith("0.relu1")
    assert row("layer2 (Block Outer)") and row("  inner (Block ConvRelu)")
    assert row("    inner.conv1 (Conv2d)").endswith("layer1")
    assert row("  bn (BatchNorm2d)").endswith("inner")
    assert "Block ConvRelu: runs 3 times (layer1, layer2.inner), 444 params, 27,648 " \
           "mult-adds" in lines
    assert "Total params: 3,062" in lines


def test_summary_json_gives_each_block_its_children_and_plain_projects_keep_their_form(
        ) -> None:
    s = summary_dict(conv_blocks(repeat=2).graph)
    layer1 = next(n for n in s["nodes"] if n["id"] == "layer1")
    assert (layer1["type"], layer1["block"], layer1["repeat"]) == ("Block", "ConvRelu", 2)
    kids = layer1["children"]
    assert [k["id"] for k in kids] == ["layer1.0.conv1", "layer1.0.relu1", "layer1.1.conv1",
                                       "layer1.1.relu1"]
    assert kids[2]["inputs"] == ["layer1.0.relu1"] and kids[0]["output_shape"] == [4, 8, 8]
    assert sum(k["params"] for k in kids) == layer1["params"]
    layer2 = next(n for n in s["nodes"] if n["id"] == "layer2")
    assert layer2["children"][0]["children"][0]["id"] == "layer2.inner.conv1"
    assert s["blocks"]["ConvRelu"] == {"runs": 3, "instances": ["layer1", "layer2.inner"],
                                       "params": 444, "macs": 27648}
    for path in sample_paths():
        graph = Project.load(path).graph
        if graph.blocks:
            continue
        plain = summary_dict(graph)
        assert "blocks" not in plain
        assert all(list(n) == PLAIN_KEYS for n in plain["nodes"])


def test_the_doctor_names_a_rule_broken_inside_a_block_by_its_path() -> None:
    found = [f for f in diagnose(mlp_blocks()) if f.code == "stacked-linear"]
    inside, leaving = found
    # the instance carries the mark (the canvas shows it); the message names the layers
    assert inside.node == "blk" and "Linear 'blk.fc1' feeds Linear 'blk.fc2'" in inside.message
    assert inside.fix is None  # the fix would edit the definition every instance shares
    assert leaving.node == "out" and "Linear 'blk.fc3' feeds Linear 'out'" in leaving.message
    assert leaving.fix == Fix("insert ReLU between blk.fc3 and out",
                              (InsertLayer("ReLU", "blk", "out", 0),))


def test_the_doctor_reads_an_output_layer_inside_a_block() -> None:
    p = mlp_blocks()
    p.graph.remove_node("out")  # the block's last Linear is the output now: 16 scores
    d = p.graph.blocks["Mlp"].graph
    d.add_node(Node("soft", "Softmax", {}))
    d.connect("fc3", "soft")
    by_code = {f.code: f for f in diagnose(p)}
    assert by_code["double-softmax"].node == "blk"
    assert "Softmax 'blk.soft' gives probabilities" in by_code["double-softmax"].message
    wide = by_code["extra-outputs"]
    assert wide.node == "blk" and "Softmax 'blk.soft' gives [16]" in wide.message
    assert wide.fix is None


def test_a_channels_last_input_explains_the_block_it_breaks() -> None:
    g = net(("x", "Input", {"shape": [8, 8, 1]}))
    g.set_block(BlockDef("Conv", net(("x", "Input", {"shape": [1, 8, 8]}),
                                     ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}))))
    use(g, "layer1", "Conv", "x")
    g.add_node(Node("flat", "Flatten", {}))
    g.connect("layer1", "flat")
    p = Project("hwc", g, conv_blocks().data, conv_blocks().training)
    a = analyze(g)
    assert a.problems_for("layer1")  # the block's convolution cannot read [8, 8, 1]
    hit = next(f for f in diagnose(p, a) if f.code == "channels-last-input")
    assert hit.node == "x" and hit.explains == "layer1" and hit.fix is not None
    assert "Block 'layer1' does not fit" in hit.message


def test_feature_maps_and_grad_cam_reach_layers_inside_blocks() -> None:
    g = conv_blocks(repeat=2).graph
    model = build_module(g, seed=0)
    x = torch.randn(1, 8, 8)
    assert fm.first_convolution(g) == "stem"
    assert gradcam_layers(g) == ["stem", "layer1.0.conv1", "layer1.1.conv1",
                                 "layer2.inner.conv1"]
    assert "layer2.bn" in map_layers(g)
    assert fm.node_output(model, x, "layer1.1.relu1").shape == (4, 8, 8)
    assert fm.node_output(model, x, "layer2").shape == (4, 8, 8)  # an instance as a whole
    assert fm.filters(model, "layer1.0.conv1").shape == (4, 4, 3, 3)
    e = explain_sample(model, x, "gradcam", graph=g)
    assert e.layer == "layer2.inner.conv1" and e.map.shape == (8, 8)
    e = explain_sample(model, x, "gradcam", graph=g, layer="layer1.0.conv1")
    assert e.layer == "layer1.0.conv1"


def test_a_sweep_can_vary_how_often_a_block_repeats() -> None:
    p = conv_blocks(repeat=1)
    trial = apply_params(p, {"graph.nodes.layer1.params.repeat": 3})
    assert trial.graph.nodes["layer1"].params["repeat"] == 3
    assert analyze(trial.graph).total_params == analyze(p.graph).total_params + 2 * 148


def test_cli_summary_and_validate_show_a_saved_block_project(tmp_path, capsys) -> None:
    p = Project.load(default_sample())
    apply_group(p.graph, plan_group(p.graph, ["conv1", "relu1", "pool1"], "Stem"))
    path = p.save(tmp_path / "grouped.studio.json")
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert next(x for x in out if x.startswith("stem_1 (Block Stem)"))
    assert "(N, 32, 26, 26)" in next(x for x in out if x.startswith("  conv1 (Conv2d)"))
    assert "Total params: 93,322" in out  # as the plain network
    assert main(["summary", "--json", str(path)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in next(n for n in s["nodes"] if n["type"] == "Block")["children"]
            ] == ["stem_1.conv1", "stem_1.relu1", "stem_1.pool1"]
    assert main(["validate", str(path)]) == 0


def test_a_finding_in_a_repeated_block_is_listed_once_with_its_count() -> None:
    p = mlp_blocks()
    g = p.graph
    g.remove_node("out")
    g.blocks["Mlp"].graph.nodes["x"].params["shape"] = [16]
    use(g, "blk2", "Mlp", "blk", 3)
    g.add_node(Node("out", "Linear", {"out_features": 10}))
    g.connect("blk2", "out")
    inside = [f for f in diagnose(p) if f.node == "blk2" and ".fc1' feeds" in f.message
              and "fc2" in f.message]
    assert len(inside) == 1
    assert inside[0].message.startswith("Linear 'blk2.0.fc1' feeds Linear 'blk2.0.fc2'")
    assert inside[0].message.endswith("(and in 2 more repetitions)")
