"""Export a project's trained network, verified at once against the app's own model.

Formats: ONNX (checked, then run in onnxruntime), a ``torch.export`` program (``.pt2``, saved,
reloaded and run), ``.safetensors`` weights with the project embedded, and a Python package
(``model.py``, ``train.py``, the weights and a README). Every export compares outputs on real
samples of the project's dataset (random inputs of the right shape when the data cannot be
loaded, and the report says so) and fails past tolerance. TorchScript is deprecated upstream
and not offered.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.project import Project, atomic_write

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}
DEFAULT_OPSET = 18


class ExportError(StudioError):
    """An export that failed or did not verify."""


@dataclass
class ExportReport:
    format: str
    path: Path
    max_abs_diff: float = 0.0
    tolerance: float = 0.0
    samples: int = 0
    real_data: bool = True
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        src = "samples of the project's data" if self.real_data else "random inputs"
        return (f"{self.format} → {self.path}: verified on {self.samples} {src}, largest "
                f"difference {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})")


def load_model(project: Project, weights: str | Path | None) -> tuple[Any, list[str]]:
    """The project's module in eval mode with trained weights (a .ckpt or .safetensors), or
    its seeded initial weights when none are given."""
    from studio.core.build import build_module

    notes: list[str] = []
    model = build_module(project.graph, seed=project.training.seed)
    if weights is None:
        notes.append("no weights given: exported with the project's initial (untrained) weights")
    else:
        from studio.training.transfer import read_state

        path = Path(weights)
        state = read_state(path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ExportError("the weights do not fit the project's network "
                              f"({str(exc).splitlines()[0][:200]})", str(path)) from None
    return model.eval(), notes


def sample_inputs(project: Project, base_dir: Path | None, n: int = 16) -> tuple[list[Any], bool]:
    """Real validation samples (normalised as in training) where the data loads; otherwise
    random inputs of the Input nodes' shapes."""
    import torch

    from studio.core.shapes import analyze

    a = analyze(project.graph)
    if len(a.inputs) == 1:
        try:
            from studio.data import load_data

            b = load_data(project.data, base_dir, project.training.seed)
            x = b.x_val if b.x_val is not None and len(b.x_val) else b.x_train
            if x is not None and len(x):
                return [x[:n].float() if x.is_floating_point() else x[:n]], True
        except (StudioError, OSError):
            pass
    g = torch.Generator().manual_seed(0)
    out = []
    for i in a.inputs:
        shape = a.nodes[i].shape or ()
        node = project.graph.nodes[i]
        if str(node.params.get("dtype", "float32")).startswith("int"):
            out.append(torch.randint(0, 2, (n, *shape), generator=g))
        else:
            out.append(torch.randn((n, *shape), generator=g))
    return out, False


def _wrapper(model: Any) -> Any:
    """Named positional inputs (``input``, ``input_1``…) for exporters that need them."""
    from torch import nn

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, *xs: Any) -> Any:
            return self.net(*xs)

    return Exported().eval()


def _compare(ref: Any, out: Any) -> float:
    import torch

    out = torch.as_tensor(out)
    if out.shape != ref.shape:
        raise ExportError(f"the exported model's output has shape {tuple(out.shape)}, the "
                          f"app's {tuple(ref.shape)}")
    return float((out.float() - ref.float()).abs().max()) if ref.numel() else 0.0


def export(project: Project, fmt: str, out: str | Path, weights: str | Path | None = None,
           base_dir: Path | None = None, opset: int = DEFAULT_OPSET, rtol: float = 1e-4,
           samples: int = 16) -> ExportReport:
    """Write ``out`` in ``fmt`` and verify it; raises ExportError naming what failed."""
    import torch

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
                          "--format")
    out = Path(out)
    model, notes = load_model(project, weights)
    xs, real = sample_inputs(project, base_dir, samples)
    with torch.no_grad():
        ref = model(*xs)
    tol = rtol * max(1.0, float(ref.abs().max()))
    report = ExportReport(fmt, out, tolerance=tol, samples=len(xs[0]), real_data=real,
                          messages=notes)
    if not real:
        report.messages.append("the project's data could not be loaded: verified on random "
                               "inputs of the right shape")
    import warnings

    try:
        with warnings.catch_warnings():  # exporter chatter; failures still raise
            warnings.simplefilter("ignore")
            diff = {"onnx": _onnx, "pt2": _pt2, "safetensors": _safetensors,
                    "python": _python}[fmt](project, model, xs, ref, out, opset, report)
    except ExportError:
        raise
    except OSError as exc:
        raise ExportError(f"could not write: {exc.strerror}", str(out)) from None
    except Exception as exc:  # exporters raise many types; the user needs one line
        import re

        cause = exc.__cause__ or exc  # the exporters wrap the real reason
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).strip()
        first = text.splitlines()[0][:300] if text else ""
        raise ExportError(f"{fmt} export failed: {type(cause).__name__}: {first}",
                          str(out)) from None
    report.max_abs_diff = diff
    if not diff <= tol:
        raise ExportError(f"the exported model differs from the app's by {diff:.3g} "
                          f"(tolerance {tol:.3g}); the file was kept for inspection", str(out))
    return report


def _dynamic(xs: list[Any]) -> tuple[dict[int, Any], ...]:
    import torch

    return tuple({0: torch.export.Dim.DYNAMIC} for _ in xs)


def _onnx(project: Project, model: Any, xs: list[Any], ref: Any, out: Path, opset: int,
          report: ExportReport) -> float:
    import onnx
    import onnxruntime as ort
    import torch

    names = ["input"] + [f"input_{i}" for i in range(1, len(xs))]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # the exporter prints progress lines
        program = torch.onnx.export(_wrapper(model), tuple(xs), dynamo=True,
                                    input_names=names, output_names=["output"],
                                    dynamic_shapes=(_dynamic(xs),), opset_version=opset,
                                    verbose=False)
    proto = program.model_proto
    proto.metadata_props.add(key="studio.project", value=project.dumps())
    data = proto.SerializeToString()
    atomic_write(out, data)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feeds = {n: x.numpy() for n, x in zip(names, xs, strict=True)}
    diff = _compare(ref, session.run(None, feeds)[0])
    one = {n: v[:1] for n, v in feeds.items()}  # the batch dimension really is dynamic
    diff = max(diff, _compare(ref[:1], session.run(None, one)[0]))
    report.messages.append(f"opset {opset}; ONNX checker passed; onnxruntime "
                           f"{ort.__version__} on CPU")
    return diff


def _pt2(project: Project, model: Any, xs: list[Any], ref: Any, out: Path, opset: int,
         report: ExportReport) -> float:
    import torch

    program = torch.export.export(_wrapper(model), tuple(xs),
                                  dynamic_shapes=(_dynamic(xs),))
    buf = io.BytesIO()
    torch.export.save(program, buf, extra_files={"studio.project": project.dumps()})
    atomic_write(out, buf.getvalue())
    loaded = torch.export.load(str(out)).module()
    with torch.no_grad():
        diff = _compare(ref, loaded(*xs))
        diff = max(diff, _compare(ref[:1], loaded(*[x[:1] for x in xs])))
    report.messages.append(f"torch.export program (torch {torch.__version__}); reload with "
                           "torch.export.load(path).module()")
    return diff


def weights_metadata(project: Project) -> dict[str, Any]:
    return {"studio.project": project.dumps()}


def _safetensors(project: Project, model: Any, xs: list[Any], ref: Any, out: Path, opset: int,
                 report: ExportReport) -> float:
    import torch

    from studio.core.build import build_module
    from studio.training.checkpoint import load_weights, save_weights

    save_weights(out, model.state_dict(), weights_metadata(project))
    state, meta = load_weights(out)  # reopen as the app would: project from the metadata
    again = Project.loads(meta["studio.project"])
    fresh = build_module(again.graph, seed=None).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        return _compare(ref, fresh(*xs))


def _python(project: Project, model: Any, xs: list[Any], ref: Any, out: Path, opset: int,
            report: ExportReport) -> float:
    import torch

    from studio.training.checkpoint import save_weights

    from .code import model_source, readme_source, train_source

    if out.exists() and not out.is_dir():
        raise ExportError("the Python export is a folder; this path is a file", str(out))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "model.py", model_source(project).encode())
    atomic_write(out / "train.py", train_source(project).encode())
    atomic_write(out / "README.md", readme_source(project).encode())
    atomic_write(out / "project.studio.json", project.dumps().encode())
    save_weights(out / "weights.safetensors", model.state_dict(), weights_metadata(project))
    # load the generated class exactly as a user would and compare
    name = f"studio_export_{abs(hash(str(out)))}"
    spec = importlib.util.spec_from_file_location(name, out / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        net = module.Net().eval()
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(out / "weights.safetensors")))
        with torch.no_grad():
            return _compare(ref, net(*xs))
    finally:
        sys.modules.pop(name, None)


def export_summary(reports: list[ExportReport]) -> str:
    return json.dumps([{"format": r.format, "path": str(r.path), "max_abs_diff": r.max_abs_diff,
                        "tolerance": r.tolerance, "samples": r.samples,
                        "real_data": r.real_data} for r in reports], indent=2)
