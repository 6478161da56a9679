"""`studio validate` with the network doctor, run as users run it: warnings are lines naming
the node with exit status 0, a doctor error exits 2, ``--json`` lists both with their fixes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio.core.project import Project
from tests.graphs import net


def studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", "validate", *args],
                          capture_output=True, text=True, timeout=120)


def keras_mlp(tmp_path: Path, out_features: int) -> Path:
    """The Keras tutorial's ending copied as is: Dense, Dense(…, softmax)."""
    p = Project(name="keras", graph=net(
        ("input", "Input", {"shape": [1, 28, 28]}), ("flat", "Flatten", {}),
        ("fc1", "Linear", {"out_features": 64}),
        ("fc2", "Linear", {"out_features": out_features}), ("probs", "Softmax", {})))
    return p.save(tmp_path / f"keras{out_features}.studio.json")


def test_warnings_are_lines_naming_the_node_and_exit_0(tmp_path) -> None:
    path = keras_mlp(tmp_path, 10)
    r = studio(str(path))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"{path}: warning: Softmax 'probs' gives probabilities but CrossEntropyLoss wants raw "
        "scores and applies log-softmax itself; remove it [double-softmax]",
        f"{path}: warning: Linear 'fc1' feeds Linear 'fc2' directly: two affine layers in a "
        "row compute one affine map; put an activation such as ReLU between them "
        "[stacked-linear]"]
    assert r.stdout.startswith(f"{path}: OK — 5 nodes, output (N, 10)")
    assert r.stdout.rstrip().endswith("; 2 warnings")
    r = studio("--json", str(path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["output_shape"] == [10] and out["nodes"] == 5
    softmax, stacked = out["problems"]
    assert softmax["severity"] == "warning" and softmax["code"] == "double-softmax"
    assert softmax["node"] == "probs" and "raw scores" in softmax["message"]
    assert "squashes twice" in softmax["reason"]
    assert softmax["fix"] == {"label": "remove Softmax 'probs' and join its neighbours",
                              "edits": [{"op": "remove_node", "node": "probs"}]}
    assert stacked["fix"]["edits"] == [{"op": "insert_layer", "layer": "ReLU", "src": "fc1",
                                        "dst": "fc2", "port": 0}]


def test_a_doctor_error_exits_2_in_text_and_json(tmp_path) -> None:
    path = keras_mlp(tmp_path, 5)
    r = studio(str(path))
    assert r.returncode == 2 and r.stdout == ""
    assert (f"{path}: error: Softmax 'probs' gives [5] but mnist-5k has 10 classes: a run "
            "refuses this; make it [10] [output-width]") in r.stderr.splitlines()
    r = studio("--json", str(path))
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["ok"] is False
    [width] = [p for p in out["problems"] if p["severity"] == "error"]
    assert width["code"] == "output-width" and width["node"] == "probs"
    assert width["fix"]["edits"] == [{"op": "set_params", "node": "fc2",
                                      "params": {"out_features": 10}}]
