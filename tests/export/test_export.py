"""Exports verified against the app's model; generated code that lints, loads and trains."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.build import build_module
from studio.core.project import Project, sample_paths
from studio.export import ExportError, export, load_model, sample_inputs
from studio.training.checkpoint import load_weights
from tests.training.helpers import final_logs

SAMPLES = sorted(sample_paths())
FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}
ROOT = Path(__file__).resolve().parents[2]
#: what the export copies into a package, from where
COPIED = {"train.py": "studio/export/templates/train.py",
          "loaders.py": "studio/export/templates/loaders.py",
          "builders.py": "studio/training/builders.py", "split.py": "studio/data/split.py"}


def studio(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name.split(".")[0])
def test_every_sample_exports_to_every_format_and_verifies(path, tmp_path) -> None:
    project = Project.load(path)
    for fmt, ext in FORMATS.items():
        report = export(project, fmt, tmp_path / f"m{ext or '_py'}", base_dir=path.parent)
        assert report.max_abs_diff <= report.tolerance, report.summary()
        assert report.samples == 16
    # independent checks of what was written
    import onnxruntime as ort

    model, _ = load_model(project, None)
    xs, _real = sample_inputs(project, path.parent)
    with torch.no_grad():
        ref = model(*xs).numpy()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": xs[0].numpy()})[0]
    assert np.allclose(got, ref, atol=1e-4)
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    assert torch.allclose(program(*xs), torch.from_numpy(ref), atol=1e-5)
    state, meta = load_weights(tmp_path / "m.safetensors")
    reopened = Project.loads(meta["studio.project"])  # the weights file carries the project
    assert reopened.dumps() == project.dumps()
    net = build_module(reopened.graph, seed=None).eval()
    net.load_state_dict(state)
    assert torch.equal(net(*xs), torch.from_numpy(ref))
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "-q",
                           str(tmp_path / "m_py")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_generated_model_is_readable_and_named_after_the_nodes(tmp_path) -> None:
    path = next(p for p in SAMPLES if p.name.startswith("residual_cnn"))
    export(Project.load(path), "python", tmp_path / "pkg", base_dir=path.parent)
    src = (tmp_path / "pkg" / "model.py").read_text()
    assert "self.block1_add = Add()" in src and "class Add(nn.Module):" in src
    assert "block1_add = self.block1_add(block1_bn2, stem_relu)  # (N, 16, 28, 28)" in src
    assert "import studio" not in src and "from studio" not in src  # only torch


def test_trained_weights_are_exported_and_a_bad_file_is_a_message(tmp_path) -> None:
    mlp = next(p for p in SAMPLES if p.name.startswith("mnist_mlp"))
    r = studio("train", str(mlp), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    project = Project.load(mlp)
    rep = export(project, "onnx", tmp_path / "t.onnx", tmp_path / "run" / "best.ckpt",
                 mlp.parent)
    assert rep.real_data and not any("untrained" in m for m in rep.messages)
    import onnxruntime as ort

    xs, _ = sample_inputs(project, mlp.parent, 1000)
    out = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"input": xs[0].numpy()})[0]
    assert (out.argmax(-1) == np.zeros(1)).dtype == bool  # runs on a full batch
    assert final_logs(tmp_path / "run")["val_accuracy"] > 0.85
    other = next(p for p in SAMPLES if p.name.startswith("wine"))
    with pytest.raises(ExportError, match="do not fit"):
        export(Project.load(other), "onnx", tmp_path / "x.onnx",
               tmp_path / "run" / "best.ckpt")
    wider = Project.load(mlp)
    wider.graph.set_params("dense1", {"out_features": 64})
    with pytest.raises(ExportError) as err:  # the message names the layer that differs
        export(wider, "onnx", tmp_path / "y.onnx", tmp_path / "run" / "best.ckpt")
    assert "layer 'dense1': dense1.weight is [128, 784] in the file, [64, 784]" \
        in err.value.message


@pytest.mark.slow
def test_cli_exports_all_formats_and_generated_train_py_runs_an_epoch(tmp_path) -> None:
    mlp = next(p for p in SAMPLES if p.name.startswith("mnist_mlp"))
    for fmt, ext in FORMATS.items():
        out = tmp_path / f"m{ext or '_py'}"
        r = studio("export", str(mlp), "--format", fmt, "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"{fmt} → {out}: verified on 16 samples of the project's")
    r = studio("export", str(mlp), "--format", "onnx", "--out", str(tmp_path / "x.onnx"),
               "--weights", str(tmp_path / "none.ckpt"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr
    pkg = tmp_path / "m_py"
    train = subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=pkg,
                           capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    line = train.stdout.splitlines()[0]
    assert line.startswith("epoch 1/1 loss ")
    assert float(line.split("val_accuracy ")[1]) > 0.8
    assert (pkg / "trained.safetensors").exists()
    for name, source in COPIED.items():  # copied verbatim, beside the settings as data
        assert (pkg / name).read_bytes() == (ROOT / source).read_bytes()
    config = json.loads((pkg / "config.json").read_text())
    assert config["project"] == Project.load(mlp).name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_generated_train_py_runs_under_torchrun_with_two_processes(tmp_path) -> None:
    wine = next(p for p in SAMPLES if p.name.startswith("wine"))
    export(Project.load(wine), "python", tmp_path / "pkg", base_dir=wine.parent)
    r = subprocess.run(["torchrun", "--standalone", "--nproc-per-node", "2",
                        "train.py", "--epochs", "3", "--device", "cpu"],
                       cwd=tmp_path / "pkg", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    epochs = [ln for ln in r.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 3  # rank 0 alone prints
    assert float(epochs[-1].split("val_accuracy ")[1]) > 0.8
    # and it is the run `studio train` makes with two processes: same shards, same logs
    r = studio("train", str(wine), "--epochs", "3", "--device", "cpu", "--nproc-per-node", "2",
               "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-2000:]
    logs = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text()
            .splitlines()]
    logs = [x for x in logs if "val_loss" in x]
    assert [ln.split(" ", 2)[2] for ln in epochs] == [
        " ".join(f"{k} {x[k]:.4f}" for k in ("loss", "val_loss", "accuracy", "val_accuracy"))
        for x in logs]


def the_copied_code(folder: Path) -> Path:
    """train.py and the modules it imports, straight from Studio's tree, laid out as in a
    package (with a model.py: its modules are the package's own, not third-party)."""
    from studio.export.code import model_source

    folder.mkdir()
    for name, source in COPIED.items():
        shutil.copy(ROOT / source, folder / name)
    wine = Project.load(next(p for p in SAMPLES if p.name.startswith("wine")))
    (folder / "model.py").write_text(model_source(wine))
    return folder


def some_packages(tmp_path: Path) -> list[Path]:
    """Exports whose model.py holds the catalog's own modules (Add; Reshape and the LSTM) and
    one with names at length: node ids at the limit, many inputs to one layer, a long name."""
    from studio.core.graph import Graph, Node

    out = []
    for sample in ("residual_cnn", "lstm_digits"):
        path = next(p for p in SAMPLES if p.name.startswith(sample))
        out.append(tmp_path / sample)
        export(Project.load(path), "python", out[-1], base_dir=path.parent)
    g = Graph()
    long = "a_node_named_as_long_as_studio_allows_which_is_sixty_four_chars"
    g.add_node(Node("input", "Input", {"shape": [13]}))
    for i in range(4):
        g.add_node(Node(f"{long[:-1]}{i}", "Linear", {"out_features": 8}))
        g.connect("input", f"{long[:-1]}{i}")
    g.add_node(Node(long, "Concat", {"dim": 1}))
    for i in range(4):
        g.connect(f"{long[:-1]}{i}", long, i)
    g.add_node(Node("output", "Linear", {"out_features": 3}))
    g.connect(long, "output")
    project = Project.load(next(p for p in SAMPLES if p.name.startswith("wine")))
    project.graph = g
    project.name = "A project whose name 'says' everything about it, at length. " * 3
    out.append(tmp_path / "long_names")
    export(project, "python", out[-1])
    return out


def test_train_py_and_generated_packages_are_ruff_clean_under_the_repos_rules(tmp_path) -> None:
    for folder in [the_copied_code(tmp_path / "template"), *some_packages(tmp_path)]:
        # from inside the folder, as its user would: there its modules are first-party
        r = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                            str(ROOT / "pyproject.toml"), "--no-cache", "."], cwd=folder,
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{folder.name}: {r.stdout}"
    assert "self.lstm = LSTM(hidden_size=64, num_layers=1, bias=True, dropout=0.0," in \
        (tmp_path / "lstm_digits" / "model.py").read_text()  # wrapped, not left long
    src = (tmp_path / "long_names" / "model.py").read_text()
    assert max(map(len, src.splitlines())) <= 100 and "noqa" not in src


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed, and it is what type-checks train.py")
def test_train_py_and_generated_packages_type_check(tmp_path) -> None:
    cache = tmp_path / "mypy-cache"  # shared: torch is analysed once, not once a folder
    for folder in [the_copied_code(tmp_path / "template"), *some_packages(tmp_path)]:
        files = sorted(p.name for p in folder.glob("*.py"))
        r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "",
                            "--ignore-missing-imports", "--check-untyped-defs",
                            "--cache-dir", str(cache), *files], cwd=folder,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{folder.name}: {r.stdout}{r.stderr}"
