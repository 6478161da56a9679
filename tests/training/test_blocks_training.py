"""Runs of networks built from blocks: checkpoints resume exactly, weights transfer layer by
layer (inside blocks too), layer statistics and the run-time doctor see every layer inside,
and pruning and quantization take such networks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from studio.cli import main
from studio.core.build import build_module
from studio.core.errors import TrainingError
from studio.core.graph import Node
from studio.core.health import LayerHealth
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.core.shapes import analyze
from studio.training import Trainer
from studio.training.checkpoint import save_weights
from studio.training.transfer import load_exact, load_into
from tests.block_projects import conv_blocks, dense_blocks, mlp_blocks, use
from tests.graphs import net

from .test_trainer import StopAt


def test_resume_of_a_block_network_matches_the_uninterrupted_run(tmp_path) -> None:
    project = dense_blocks(repeat=2, epochs=3,
                           scheduler={"type": "StepLR", "step_size": 1, "gamma": 0.7})
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    first = Trainer(project, out_dir=tmp_path / "cut", callbacks=[StopAt(epoch=0)]).fit()
    assert first.status == "stopped" and first.epochs == 1
    resumed = Trainer(project, out_dir=tmp_path / "cut").fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert resumed.status == "completed"

    def steady(logs: dict) -> dict:
        return {k: v for k, v in logs.items() if "time" not in k and "per_s" not in k}

    assert [steady(a) for a in full.history] == [steady(b) for b in resumed.history]
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert "blk.1.fc.weight" in w_full and "blk.1.bn.running_mean" in w_full
    assert w_full.keys() == w_res.keys()
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_a_layer_inside_a_block_transfers_on_its_own(tmp_path) -> None:
    source = build_module(mlp_blocks(width=16).graph, seed=3)
    path = tmp_path / "w.safetensors"
    save_weights(path, source.state_dict(), {})
    edited = mlp_blocks(width=24)  # blk.fc2 wider: it and blk.fc3, which reads it, change
    model = build_module(edited.graph, seed=0)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_into(model, path)
    assert report.loaded == ["blk.fc1", "out"] and report.tensors == 4
    assert list(report.mismatched) == ["blk.fc2", "blk.fc3"]
    assert report.mismatched["blk.fc2"] == ("'blk.fc2': blk.fc2.weight is [16, 24] in the "
                                            "file, [24, 24] in the network")
    state = model.state_dict()
    assert torch.equal(state["blk.fc1.weight"], source.state_dict()["blk.fc1.weight"])
    assert torch.equal(state["blk.fc2.weight"], initial["blk.fc2.weight"])
    # a repetition more: the new one's layers are new, the file's first ones still load
    g = conv_blocks(repeat=1).graph
    before = build_module(g, seed=1).state_dict()
    g.set_params("layer1", {"block": "ConvRelu", "repeat": 2})
    grown = build_module(g, seed=0)
    report = load_into(grown, _saved(tmp_path / "c.safetensors", before))
    assert "layer2.inner.conv1" in report.loaded and "layer2.bn" in report.loaded
    assert report.missing == ["layer1.0.conv1", "layer1.1.conv1"]
    assert report.unused == ["layer1.conv1"]
    with pytest.raises(TrainingError, match=re.escape("layer 'layer1.0.conv1' is not in the")):
        load_exact(grown, before, "w")


def _saved(path, state):
    save_weights(path, state, {})
    return path


def test_layer_statistics_and_the_run_doctor_see_layers_inside_blocks(tmp_path) -> None:
    project = mlp_blocks(epochs=1)
    inner = project.graph.blocks["Mlp"].graph  # every unit of blk.act dead
    inner.set_init("fc2", {"weight": "zeros", "bias": {"type": "constant", "val": -100.0}})
    project.training.layer_stats = {"every": 5, "bins": 8}
    assert Trainer(project, out_dir=tmp_path).fit().status == "completed"
    records = [json.loads(x) for x in (tmp_path / "layer_stats.jsonl").read_text().splitlines()]
    last = records[-1]["layers"]
    assert list(last) == ["blk.fc1", "blk.fc2", "blk.act", "blk.fc3", "out"]
    assert last["blk.act"]["dead_frac"] == 1.0 and last["blk.fc1"]["grad_norm"] == 0.0
    assert last["blk.fc3"]["grad_norm"] > 0
    health = LayerHealth.for_graph(project.graph)
    assert list(health.types) == ["x", "blk.fc1", "blk.fc2", "blk.act", "blk.fc3", "out"]
    for r in records:
        health.add(r)
    dead = next(f for f in health.findings() if f.code == "dead-relu")
    assert dead.node == "blk" and dead.message.startswith("blk.act: 100% of its units")
    mark = health.mark("blk")  # the instance's card: its worst layer's mark
    assert mark is not None and mark.level == "bad" and "the worst: blk.act" in mark.text
    # health made from the network's nodes alone reads the block's layers where it stands
    plain = LayerHealth({n.id: n.type for n in project.graph})
    for r in records:
        plain.add(r)
    assert [n for n, _ in plain.in_order()] == list(last)


def test_token_ids_beyond_a_table_inside_a_block_name_its_path(tmp_path) -> None:
    np.savez(tmp_path / "tokens.npz", x=np.random.RandomState(0).randint(0, 50, (40, 6)),
             y=np.arange(40) % 2)
    g = net(("ids", "Input", {"shape": [6], "dtype": "int64"}))
    from studio.core.blockdef import BlockDef

    g.set_block(BlockDef("Embed", net(("t", "Input", {"shape": [6], "dtype": "int64"}),
                                      ("emb", "Embedding", {"num_embeddings": 10,
                                                            "embedding_dim": 4}),
                                      ("flat", "Flatten", {}))))
    use(g, "blk", "Embed", "ids")
    g.add_node(Node("out", "Linear", {"out_features": 2}))
    g.connect("blk", "out")
    project = Project("tokens", g, DataSettings(dataset="npz", options={"path": "tokens.npz"},
                                                normalize=False), TrainingSettings(epochs=1))
    result = Trainer(project, base_dir=tmp_path).fit()
    assert result.status == "failed"
    assert result.message == ("Embedding 'blk.emb': token ids run from 0 to 49 but "
                              "num_embeddings is 10; set it to at least 50")


@pytest.fixture
def saved(tmp_path):
    project = conv_blocks(repeat=2, epochs=1)
    path = project.save(tmp_path / "blocks.studio.json")
    weights = _saved(tmp_path / "w.safetensors", build_module(project.graph, seed=1).state_dict())
    return path, weights


def test_unstructured_pruning_keeps_the_blocks(saved, tmp_path, capsys) -> None:
    path, weights = saved
    out = tmp_path / "sparse"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.5",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    r = json.loads((out / "report.json").read_text())
    assert r["sparsity"] == pytest.approx(0.5, abs=0.01) and "blocks_opened" not in r
    new = Project.load(out / "project.studio.json")
    assert new.graph.structure() == Project.load(path).graph.structure()
    w = load_file(out / "model.safetensors")
    assert 0 < int((w["layer1.1.conv1.weight"] == 0).sum()) < w["layer1.1.conv1.weight"].numel()


def test_structured_pruning_opens_the_blocks_and_says_so(saved, tmp_path, capsys) -> None:
    path, weights = saved
    out = tmp_path / "small"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.5",
                 "--structured", "--out", str(out)]) == 0
    capsys.readouterr()
    r = json.loads((out / "report.json").read_text())
    assert r["blocks_opened"] == ["layer1", "layer2"]
    assert r["notes"][0].startswith("the blocks (layer1, layer2) were opened into plain layers")
    assert "(layer1.0.conv1 is layer1_0_conv1)" in r["notes"][0]
    new = Project.load(out / "project.studio.json")
    assert not new.graph.blocks and "layer2_inner_conv1" in new.graph.nodes
    widths = [new.graph.nodes[n].params["out_channels"] for n in ("stem", "layer1_0_conv1")]
    assert all(w < 4 for w in widths) and r["onnx_check"].startswith("passed")
    assert r["after"]["params"] == analyze(new.graph).total_params < r["before"]["params"]


def test_a_block_network_with_convolutions_is_quantized_statically(saved, tmp_path,
                                                                   capsys) -> None:
    path, weights = saved
    out = tmp_path / "q" / "blocks-int8.onnx"
    assert main(["quantize", str(path), "--weights", str(weights), "--calibration", "64",
                 "--out", str(out)]) == 0
    assert "quantized to int8 (static)" in capsys.readouterr().out
    assert json.loads((out.parent / "report.json").read_text())["mode"] == "static"
