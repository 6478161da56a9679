"""``studio quantize``: int8 through onnxruntime's tools, static QDQ with calibration for a
CNN and dynamic for an MLP, with the report's figures measured on the project's own data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from studio.cli import main
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training.trainer import Trainer
from tests.graphs import net


def _trained(tmp_path: Path, project: Project) -> tuple[Path, Path]:
    path = project.save(tmp_path / f"{project.name}.studio.json")
    result = Trainer(project, out_dir=tmp_path / "run").fit()
    assert result.status == "completed", result.message
    return path, tmp_path / "run" / "model.safetensors"


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_a_cnn_is_quantized_statically_and_keeps_its_accuracy(tmp_path, capsys) -> None:
    g = net(("input", "Input", {"shape": [1, 28, 28]}),
            ("conv1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
            ("relu1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": 2}),
            ("conv2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
            ("relu2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": 2}),
            ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 10}))
    project = Project("cnn", g, DataSettings(dataset="mnist-5k", batch_size=64,
                                             val_fraction=0.2, test_fraction=0.1),
                      TrainingSettings(epochs=2, device="cpu",
                                       optimizer={"type": "Adam", "lr": 0.003}))
    path, weights = _trained(tmp_path, project)
    out = tmp_path / "q" / "cnn-int8.onnx"
    assert main(["quantize", str(path), "--weights", str(weights), "--calibration", "128",
                 "--out", str(out)]) == 0
    assert "quantized to int8 (static)" in capsys.readouterr().out
    r = json.loads((out.parent / "report.json").read_text())
    assert r["mode"] == "static" and r["format"] == "QDQ" and r["calibration_samples"] == 128
    ops = _ops(out)
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights_int8 = [t for t in onnx.load(str(out)).graph.initializer
                    if t.data_type == onnx.TensorProto.INT8]
    assert weights_int8  # the convolutions' weights are stored as int8
    fp32, int8 = r["fp32"], r["int8"]
    assert int8["file_bytes"] < 0.6 * fp32["file_bytes"]
    assert fp32["val_accuracy"] > 0.8  # a trained network: the comparison means something
    assert abs(int8["val_accuracy"] - fp32["val_accuracy"]) <= 0.03
    assert "test_accuracy" in int8 and "test_accuracy" in fp32
    for key in ("latency_ms_batch1", "latency_ms_batch64"):
        assert fp32[key] > 0 and int8[key] > 0
    assert r["speedup_batch1"] == pytest.approx(fp32["latency_ms_batch1"] /
                                                int8["latency_ms_batch1"], rel=1e-2)
    slower = [b for b in (1, 64) if r[f"speedup_batch{b}"] < 1 / 0.97]
    assert len(r["notes"]) == len(slower)  # where int8 is not faster, the report says so
    # the file is an ordinary ONNX model: onnxruntime runs it on any batch size
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.zeros((3, 1, 28, 28), np.float32)
    assert s.run(None, {"input": x})[0].shape == (3, 10)


def test_an_mlp_is_quantized_dynamically(tmp_path, capsys) -> None:
    g = net(("x", "Input", {"shape": [13]}), ("h", "Linear", {"out_features": 32}),
            ("act", "ReLU", {}), ("out", "Linear", {"out_features": 3}))
    project = Project("mlp", g, DataSettings(dataset="wine", batch_size=16),
                      TrainingSettings(epochs=10, device="cpu",
                                       optimizer={"type": "Adam", "lr": 0.01}))
    path, weights = _trained(tmp_path, project)
    out = tmp_path / "mlp-int8.onnx"
    assert main(["quantize", str(path), "--weights", str(weights), "--out", str(out)]) == 0
    capsys.readouterr()
    r = json.loads((tmp_path / "report.json").read_text())
    assert r["mode"] == "dynamic" and r["calibration_samples"] == 0
    assert "MatMulInteger" in _ops(out) or "DynamicQuantizeLinear" in _ops(out)
    assert abs(r["int8"]["val_accuracy"] - r["fp32"]["val_accuracy"]) <= 0.06


def test_bad_requests_fail_in_one_line(tmp_path, capsys) -> None:
    assert main(["quantize", str(tmp_path / "p.studio.json"), "--weights", "w.safetensors",
                 "--out", str(tmp_path / "m.onnx.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "give FILE.onnx" in err
    assert main(["quantize", str(tmp_path / "p.studio.json"), "--weights", "w.safetensors",
                 "--calibration", "0", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "at least one sample" in capsys.readouterr().err


def test_a_network_of_token_ids_is_quantized(tmp_path, capsys) -> None:
    """Whole-number inputs reach the exporter and both sessions as whole numbers."""
    from studio.core.build import build_module
    from studio.training.checkpoint import save_weights

    g = net(("x", "Input", {"shape": [64], "dtype": "int64"}),
            ("emb", "Embedding", {"num_embeddings": 17, "embedding_dim": 4}),
            ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 10}))
    project = Project("tokens", g, DataSettings(dataset="digits", normalize=False),
                      TrainingSettings(device="cpu"))
    path = project.save(tmp_path / "tokens.studio.json")
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_module(g, seed=1).state_dict(), {})
    out = tmp_path / "q" / "tokens-int8.onnx"
    assert main(["quantize", str(path), "--weights", str(weights), "--out", str(out)]) == 0, \
        capsys.readouterr().err
    r = json.loads((out.parent / "report.json").read_text())
    assert r["mode"] == "dynamic" and r["int8"]["val_accuracy"] == pytest.approx(
        r["fp32"]["val_accuracy"], abs=0.05)
    # report.json is the quantization's: another report beside the file is not replaced
    capsys.readouterr()
    other = tmp_path / "mine" / "report.json"
    other.parent.mkdir()
    other.write_text('{"method": "structured"}')
    assert main(["quantize", str(path), "--weights", str(weights), "--out",
                 str(other.parent / "m.onnx")]) == 2
    assert "holds another report" in capsys.readouterr().err
    assert other.read_text() == '{"method": "structured"}'
