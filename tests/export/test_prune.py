"""``studio prune``: structured pruning really shrinks the layers of a network with a residual
Add and a Concat, and the result is a project (not a pickled module) that rebuilds, runs and
exports; unstructured pruning leaves zeros that fine-tuning keeps; bad requests fail in one
line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import main
from studio.core.build import build_module
from studio.core.graph import Graph, Node
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.core.shapes import analyze
from studio.training.checkpoint import save_weights
from studio.training.loading import load_trained


def _branchy() -> Graph:
    """conv → (conv, conv) → Add → (·, 1×1 conv) → Concat → pool → Linear."""
    g = Graph()
    for nid, t, p in (("input", "Input", {"shape": [1, 28, 28]}),
                      ("stem", "Conv2d", {"out_channels": 12, "kernel_size": 3,
                                          "padding": 1}),
                      ("bn", "BatchNorm2d", {}), ("relu", "ReLU", {}),
                      ("a", "Conv2d", {"out_channels": 12, "kernel_size": 3, "padding": 1}),
                      ("add", "Add", {}), ("pool", "MaxPool2d", {"kernel_size": 2}),
                      ("side", "Conv2d", {"out_channels": 8, "kernel_size": 1}),
                      ("cat", "Concat", {"dim": 1}),
                      ("gap", "AdaptiveAvgPool2d", {"output_size": 1}),
                      ("flat", "Flatten", {}), ("hidden", "Linear", {"out_features": 24}),
                      ("act", "ReLU", {}), ("fc", "Linear", {"out_features": 10})):
        g.add_node(Node(nid, t, p))
    for src, dst, port in (("input", "stem", 0), ("stem", "bn", 0), ("bn", "relu", 0),
                           ("relu", "a", 0), ("a", "add", 0), ("relu", "add", 1),
                           ("add", "pool", 0), ("pool", "side", 0), ("pool", "cat", 0),
                           ("side", "cat", 1), ("cat", "gap", 0), ("gap", "flat", 0),
                           ("flat", "hidden", 0), ("hidden", "act", 0), ("act", "fc", 0)):
        g.connect(src, dst, port)
    return g


@pytest.fixture
def branchy(tmp_path: Path) -> tuple[Path, Path]:
    project = Project("branchy", _branchy(),
                      DataSettings(dataset="mnist-5k", batch_size=64, val_fraction=0.2),
                      TrainingSettings(epochs=1, device="cpu",
                                       optimizer={"type": "Adam", "lr": 0.003}))
    path = project.save(tmp_path / "branchy.studio.json")
    weights = tmp_path / "w.safetensors"
    torch.manual_seed(0)
    save_weights(weights, build_module(project.graph, seed=1).state_dict(), {})
    return path, weights


def test_structured_pruning_shrinks_add_and_concat_into_a_new_project(branchy, tmp_path,
                                                                       capsys) -> None:
    path, weights = branchy
    out = tmp_path / "small"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.5",
                 "--structured", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pruned structured 0.5 (global)" in printed and "macs" in printed
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "project.studio.json",
                                                      "report.json", "summary.json"]
    new = Project.load(out / "project.studio.json")
    old = Project.load(path)
    width = {n: new.graph.nodes[n].params.get("out_channels") for n in ("stem", "a", "side")}
    # the Add couples stem and a: they shrink together; the output keeps its 10 classes
    assert width["stem"] == width["a"] and width["stem"] < 12 and width["side"] < 8
    assert new.graph.nodes["hidden"].params["out_features"] < 24
    assert new.graph.nodes["fc"].params["out_features"] == 10
    a_old, a_new = analyze(old.graph), analyze(new.graph)
    assert not a_new.errors and a_new.total_macs < a_old.total_macs * 0.5
    # the Linear after the Concat reads the two shrunk branches
    assert a_new.nodes["flat"].shape == (width["stem"] + width["side"],)
    r = json.loads((out / "report.json").read_text())
    assert r["method"] == "structured" and r["after"]["params"] == a_new.total_params
    assert r["before"]["params"] == a_old.total_params
    assert r["widths"]["side"]["out_channels"] == [8, width["side"]]
    assert r["onnx_check"].startswith("passed")
    assert r["after"]["file_bytes"] < r["before"]["file_bytes"]
    for key in ("latency_ms_batch1", "latency_ms_batch64", "val_accuracy"):
        assert r["before"][key] > 0 and r["after"][key] > 0
    # the new project with its weights is an ordinary project: it loads and evaluates, and
    # its accuracy is the report's
    t = load_trained(new, out / "model.safetensors", tmp_path, cpu=True)
    with torch.no_grad():
        assert t.evaluate("val")["val_accuracy"] == pytest.approx(r["after"]["val_accuracy"])
    # kept units hold their trained weights: each column of the output layer is one of the
    # original's (the removed units' columns are gone, nothing is re-initialised)
    kept = t.model.fc.weight.detach()
    full = load_trained(old, weights, tmp_path, cpu=True).model.fc.weight.detach()
    assert all(any(torch.equal(kept[:, j], full[:, i]) for i in range(full.shape[1]))
               for j in range(kept.shape[1]))


def test_unstructured_zeros_survive_fine_tuning(branchy, tmp_path, capsys) -> None:
    path, weights = branchy
    out = tmp_path / "sparse"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.6",
                 "--finetune-epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    r = json.loads((out / "report.json").read_text())
    assert r["method"] == "unstructured" and r["finetune_epochs"] == 1
    assert r["sparsity"] == pytest.approx(0.6, abs=0.01)  # after training an epoch
    assert r["after"]["params"] == r["before"]["params"]  # the same layers…
    assert r["after"]["nonzero_params"] < 0.5 * r["before"]["nonzero_params"]  # …mostly zero
    assert r["after"]["gzip_bytes"] < r["before"]["gzip_bytes"]
    assert (out / "finetune" / "metrics.jsonl").exists()  # the fine-tuning run, to look at
    # the fine-tuned weights moved (it trained) but the zeros did not
    from safetensors.torch import load_file

    before, after = load_file(weights), load_file(out / "model.safetensors")
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    zeros = sum(int((after[k] == 0).sum()) for k in after if k.endswith(".weight")
                and after[k].dim() > 1)
    total = sum(after[k].numel() for k in after if k.endswith(".weight") and after[k].dim() > 1)
    assert zeros / total == pytest.approx(0.6, abs=0.01)
    assert np.isfinite(r["after"]["val_loss"])


def test_bad_requests_fail_in_one_line(branchy, tmp_path, capsys) -> None:
    path, weights = branchy
    args = ["prune", str(path), "--weights", str(weights)]
    assert main([*args, "--amount", "1.5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "between 0 and 1" in err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main([*args, "--amount", "0.3", "--out", str(busy)]) == 2
    assert "choose a new or empty folder" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "mine" and not (busy / "report.json").exists()


def test_the_layer_behind_a_softmax_output_keeps_its_classes(tmp_path, capsys) -> None:
    from tests.graphs import net

    g = net(("input", "Input", {"shape": [1, 28, 28]}),
            ("conv", "Conv2d", {"out_channels": 8, "kernel_size": 3}),
            ("relu", "ReLU", {}), ("flat", "Flatten", {}),
            ("hidden", "Linear", {"out_features": 32}), ("drop", "Dropout", {"p": 0.1}),
            ("fc", "Linear", {"out_features": 10}), ("probs", "LogSoftmax", {"dim": 1}))
    project = Project("softmaxed", g, DataSettings(dataset="mnist-5k", val_fraction=0.2),
                      TrainingSettings(device="cpu", loss={"type": "NLLLoss"}))
    path = project.save(tmp_path / "softmaxed.studio.json")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_module(g, seed=1).state_dict(), {})
    out = tmp_path / "small"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.5",
                 "--structured", "--out", str(out)]) == 0, capsys.readouterr().err
    new = Project.load(out / "project.studio.json")
    assert new.graph.nodes["fc"].params["out_features"] == 10  # behind LogSoftmax: kept
    assert new.graph.nodes["hidden"].params["out_features"] < 32
    # asking for more than any layer can give: refused, and nothing is left behind
    capsys.readouterr()
    failed = tmp_path / "failed"
    assert main(["prune", str(path), "--weights", str(weights), "--amount", "0.99",
                 "--structured", "--per-layer", "--out", str(failed)]) == 2
    assert "nothing was removed" in capsys.readouterr().err and not failed.exists()
