"""Post-training int8 quantization through ONNX Runtime, measured (``studio quantize``).

The trained network is exported to ONNX (and verified, as every export is), then quantized by
onnxruntime's tools: static QDQ quantization, with activation ranges calibrated on samples of
the project's training data, for convolutional networks; dynamic quantization (weights int8,
activations quantized on the fly) for Linear, recurrent and attention networks, where the
ranges vary from sample to sample. ``torch.ao.quantization`` is deprecated and not used.

``report.json`` beside the file compares fp32 and int8, both run in onnxruntime: the
project's metrics on validation and test, file sizes, and latency at batch 1 and 64 measured
interleaved. Where int8 is not faster on this machine, the report says so.
"""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.flat import layer_types
from studio.core.project import Project, atomic_write
from studio.training.feature_maps import CONVOLUTIONS

from . import ExportError
from .measure import latency_pair, metric_logs, ratio_note, sizes

DEFAULT_CALIBRATION = 512  # training samples whose activations set the int8 ranges
CALIBRATION_BATCH = 32


def mode_for(project: Project) -> str:
    """"static" for a network with convolutions, "dynamic" for the rest."""
    types = layer_types(project.graph).values()  # layers inside blocks too
    return "static" if any(t in CONVOLUTIONS for t in types) else "dynamic"


def check_request(out: Path, calibration: int) -> None:
    if Path(out).suffix.lower() != ".onnx":
        raise ExportError("the quantized network is an ONNX file: give FILE.onnx", str(out))
    if Path(out).is_dir():
        raise ExportError("is a folder; give a file name, e.g. model-int8.onnx", str(out))
    if calibration < 1:
        raise ExportError("calibration needs at least one sample", "--calibration")
    report = Path(out).parent / "report.json"
    if report.exists() and not _own_report(report, Path(out)):
        raise ExportError(f"{report} holds another report, which report.json beside the int8 "
                          "file would replace; write it into another folder", str(out))


def _own_report(report: Path, out: Path) -> bool:
    """Whether ``report`` is an earlier quantization's of the same file (replaced freely)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "int8" in data and data.get("file") == out.name


def quantize(project: Project, weights: Path, out: Path,
             calibration: int = DEFAULT_CALIBRATION, base_dir: Path | None = None
             ) -> dict[str, Any]:
    """Write the int8 network to ``out`` and ``report.json`` beside it; return the report."""
    import onnxruntime as ort

    from studio.training.loading import load_trained

    from . import export

    out = Path(out)
    check_request(out, calibration)
    base = base_dir or (project.path.parent if project.path else None)
    try:
        trainer = load_trained(project, weights, base, cpu=True)
    except StudioError as exc:
        raise ExportError(exc.message, exc.where) from None
    from studio.core.shapes import analyze

    if len(analyze(project.graph).inputs) != 1:
        raise ExportError("quantization reads networks with one Input", "graph")
    mode = mode_for(project)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export(project, "onnx", fp32, weights, base)
        int8 = Path(tmp) / "int8.onnx"
        _quantize(fp32, int8, mode, trainer, calibration, Path(tmp))
        before: dict[str, Any] = dict(sizes(fp32))
        after: dict[str, Any] = dict(sizes(int8))
        s32, s8 = _session(fp32), _session(int8)
        before.update(metric_logs(trainer, _runner(s32)))
        after.update(metric_logs(trainer, _runner(s8)))
        notes = _latency(trainer, s32, s8, before, after)
        data = int8.read_bytes()
    atomic_write(out, data)
    report: dict[str, Any] = {
        "mode": mode, "format": "QDQ" if mode == "static" else "dynamic (QOperator)",
        "calibration_samples": min(calibration, trainer.bundle.n_train) if mode == "static"
        else 0,
        "weights": str(weights), "file": out.name, "fp32": before, "int8": after,
        "speedup_batch1": round(before["latency_ms_batch1"] / after["latency_ms_batch1"], 3),
        "speedup_batch64": round(before["latency_ms_batch64"] / after["latency_ms_batch64"],
                                 3),
        "notes": notes, "onnxruntime": ort.__version__, "device": "cpu",
    }
    atomic_write(out.parent / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    return report


def _quantize(fp32: Path, int8: Path, mode: str, trainer: Any, calibration: int,
              tmp: Path) -> None:
    from onnxruntime import quantization as q

    try:
        prepared = tmp / "prepared.onnx"
        q.shape_inference.quant_pre_process(str(fp32), str(prepared))
        if mode == "dynamic":
            q.quantize_dynamic(str(prepared), str(int8), weight_type=q.QuantType.QInt8)
        else:
            q.quantize_static(str(prepared), str(int8), _Calibration(trainer, calibration),
                              quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8)
    except Exception as exc:  # the tools raise many types; the user needs one line
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ExportError(f"onnxruntime could not quantize this network ({mode}): "
                          f"{type(exc).__name__}: {text}", "graph") from None


class _Calibration:
    """Batches of training samples, as normalised for training, for the static ranges."""

    def __init__(self, trainer: Any, n: int) -> None:
        self.batches = iter(_training_samples(trainer, n, CALIBRATION_BATCH))

    def get_next(self) -> dict[str, Any] | None:
        x = next(self.batches, None)
        return None if x is None else {"input": x}

    def rewind(self) -> None:  # part of onnxruntime's reader interface
        pass


def _training_samples(trainer: Any, n: int, batch: int) -> list[Any]:
    got, total = [], 0
    for xb, _ in trainer.split_batches("train", batch).epoch():
        x = xb.cpu().numpy()[: n - total]
        got.append(x)
        total += len(x)
        if total >= n:
            break
    return got


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _runner(session: Any) -> Any:
    def run(x: Any) -> Any:
        return session.run(None, {"input": x})[0]
    return run


def _latency(trainer: Any, s32: Any, s8: Any, before: dict[str, Any],
             after: dict[str, Any]) -> list[str]:
    import numpy as np

    x = np.concatenate(_training_samples(trainer, 64, 64))
    notes = []
    for batch in (1, 64):
        xb = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
        t32, t8 = latency_pair(partial(_runner(s32), xb), partial(_runner(s8), xb))
        before[f"latency_ms_batch{batch}"] = round(t32 * 1e3, 4)
        after[f"latency_ms_batch{batch}"] = round(t8 * 1e3, 4)
        note = ratio_note("int8", t32, t8, batch)
        if note:
            notes.append(note)
    return notes
