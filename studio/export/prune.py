"""Pruning a trained network, with what it bought and cost measured (``studio prune``).

Unstructured: the smallest weights become zeros, over every weight matrix or kernel
(convolutions, Linear, recurrent, attention and embedding weights; not biases or
normalisation scales), globally or per layer, with ``torch.nn.utils.prune``, then made
permanent. The network keeps its
shape; the zeros show as sparsity and shrink the file only once it is compressed.

Structured: whole channels and units go, chosen by Torch-Pruning's dependency graph, which
keeps coupled layers (a residual Add, a Concat, the BatchNorm after a convolution, the Linear
after a Flatten) consistent. The result is a new project whose nodes carry the new widths
(``out_channels``, ``out_features``) and its weights: never a pickled module. It must pass
shape inference, give the pruned module's outputs when rebuilt from the project, and export
to ONNX; otherwise nothing is written (the output folder must be new or empty, and is left
so on any failure). Block instances are opened into plain layers first (``_opened``): each
layer gets a width of its own, which instances sharing a definition cannot have, and the
report says so.

Either can be fine-tuned for a few epochs; unstructured zeros stay zeros (their gradients are
masked, which keeps them at zero under SGD, Adam and weight decay alike).
"""

from __future__ import annotations

import copy
import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from studio.core.blockdef import BLOCK
from studio.core.errors import StudioError
from studio.core.project import Project, atomic_write
from studio.training.callbacks import Callback
from studio.training.feature_maps import CONVOLUTIONS

from . import ExportError
from .measure import latency_pair, metric_logs, network_figures, ratio_note, sizes

#: what the folder holds; summary.json makes it read as a run in the window's runs list
FILES = ("project.studio.json", "model.safetensors", "report.json", "summary.json")
FINETUNE = "finetune"  # the fine-tuning run's folder inside the output folder
#: module attributes that are node params too (the catalog mirrors torch's arguments)
WIDTHS = ("out_channels", "out_features", "groups", "hidden_size", "embed_dim")
PRUNABLE = (*CONVOLUTIONS, "Linear")
TOLERANCE = 1e-4  # the rebuilt project against the pruned module, relative to the output
OPENED = ("the blocks ({}) were opened into plain layers: pruning gives each layer its own "
          "width, which the instances of one shared block definition (and the repetitions of "
          "one instance) cannot have; a layer inside is named by its path with _ for . "
          "({} is {})")


def check_request(amount: float, out_dir: Path) -> None:
    """Refuse before any work what would fail at the end: the amount, the folder."""
    if not 0.0 < amount < 1.0:
        raise ExportError(f"amount {amount:g} is not a share: give a number between 0 and 1 "
                          "(0.5 removes half)", "--amount")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError("is a file; the result is a folder", str(out_dir))
    if out_dir.is_dir():
        held = sorted(p.name for p in out_dir.iterdir())
        if held:  # an earlier result too: a failure must be able to leave it as it was
            raise ExportError(f"the folder holds files ({', '.join(held[:3])}); choose a new "
                              "or empty folder", str(out_dir))


def prune(project: Project, weights: Path, out_dir: Path, amount: float, *,
          structured: bool = False, per_layer: bool = False, finetune_epochs: int = 0,
          base_dir: Path | None = None) -> dict[str, Any]:
    """Prune, check, optionally fine-tune, measure; write the project, weights and report
    into ``out_dir`` and return the report."""
    from studio.training.loading import load_trained

    check_request(amount, out_dir)
    if finetune_epochs < 0:
        raise ExportError("fine-tuning epochs cannot be negative", "--finetune-epochs")
    out_dir = Path(out_dir)
    base = base_dir or (project.path.parent if project.path else None)
    try:
        before_t = load_trained(project, weights, base, cpu=True)
    except StudioError as exc:
        raise ExportError(exc.message, exc.where) from None
    existed = out_dir.exists()
    try:
        return _prune_into(project, weights, out_dir, amount, structured, per_layer,
                           finetune_epochs, base, before_t)
    except BaseException:  # nothing half-written is left: the folder is as it was (empty)
        import shutil

        if existed:
            for path in out_dir.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        else:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _prune_into(project: Project, weights: Path, out_dir: Path, amount: float,
                structured: bool, per_layer: bool, finetune_epochs: int, base: Path | None,
                before_t: Any) -> dict[str, Any]:
    from studio.training.loading import load_trained

    model = before_t.model.eval()
    example = _example(before_t)
    pruned = copy.deepcopy(model)
    source, opened = project, None
    if structured:
        source, pruned, opened = _opened(project, pruned)
        _structured(source, pruned, example, amount, per_layer)
        new = _project_for(source, pruned, example)
    else:
        _unstructured(pruned, amount, per_layer)
        new = project.copy()
    new.path = None
    _absolute_paths(new, base)
    out_dir.mkdir(parents=True, exist_ok=True)
    new.training.init_weights = None
    target = out_dir / "model.safetensors"
    _save(target, new, pruned, before_t)
    if finetune_epochs:
        _finetune(new, target, out_dir / FINETUNE, finetune_epochs, base, structured, before_t)
    new.save(out_dir / "project.studio.json")
    after_t = load_trained(new, target, base, cpu=True)
    report = _report(source, new, before_t, after_t, weights, target, amount, structured,
                     per_layer, finetune_epochs)
    if opened is not None:
        report["blocks_opened"] = opened[0]
        report["notes"].insert(0, opened[1])
    report["onnx_check"] = _onnx_check(new, target, base)
    atomic_write(out_dir / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    what = f"{report['method']} pruning of {amount:.0%}"
    atomic_write(out_dir / "summary.json", json.dumps(
        {"status": "pruned", "message": what, "epochs": finetune_epochs,
         "logs": {k: v for k, v in report["after"].items() if k.startswith(("val_", "test_"))}},
        indent=2).encode())
    return report


def _example(trainer: Any) -> Any:
    """Two real samples as the network reads them (the dependency graph traces one forward
    pass; token ids stay whole numbers)."""
    xb, _ = next(iter(trainer.split_batches("val" if trainer.bundle.n_val else "train",
                                            2).epoch()))
    return xb.cpu()


def _prunable(model: Any) -> list[tuple[str, Any]]:
    """The layers structured pruning may shrink (their output width is a node param)."""
    import torch

    kinds = tuple(getattr(torch.nn, k) for k in PRUNABLE)
    return [(n, m) for n, m in model.named_children() if isinstance(m, kinds)]


def _weights(model: Any) -> list[tuple[Any, str]]:
    """Every weight matrix or kernel (two or more dimensions): convolutions, Linear layers,
    recurrent and attention weights, embeddings; not biases or normalisation scales."""
    return [(m, name) for m in model.modules()
            for name, p in m.named_parameters(recurse=False) if p.dim() >= 2]


def _unstructured(model: Any, amount: float, per_layer: bool) -> None:
    from torch.nn.utils import prune as tprune

    targets = _weights(model)
    if not targets:
        raise ExportError("this network has no weights to prune", "graph")
    if per_layer:
        for m, name in targets:
            tprune.l1_unstructured(m, name, amount=amount)  # type: ignore[no-untyped-call]
    else:
        tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=amount)
    for m, name in targets:
        tprune.remove(m, name)  # type: ignore[no-untyped-call]  # permanent


def _structured(project: Project, model: Any, example: Any, amount: float,
                per_layer: bool) -> None:
    """Torch-Pruning's L2-magnitude channel pruning. The output layer keeps its width (it is
    the number of classes); layers it cannot follow (recurrent, attention, embeddings) keep
    theirs, while the layers around them may still shrink."""
    import torch
    import torch_pruning as tp

    from studio.core.shapes import analyze

    a = analyze(project.graph)
    children = dict(model.named_children())
    prunable = {n for n, _ in _prunable(model)}
    keep = _output_layers(project, a.output, prunable)
    ignored = [m for n, m in children.items()
               if n in keep or (n not in prunable and any(p.dim() > 1 for p in m.parameters()))]
    if not prunable - keep:
        raise ExportError("this network has no convolution or Linear layer before its output "
                          "to remove channels from", "graph")
    try:
        pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.
                                      MagnitudeImportance(p=2), pruning_ratio=amount,
                                      global_pruning=not per_layer, ignored_layers=ignored)
        before = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            pruner.step()
    except Exception as exc:  # the library raises many types; the user needs one line
        raise ExportError(f"structured pruning failed in Torch-Pruning: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                          "graph") from None
    if sum(p.numel() for p in model.parameters()) == before:
        raise ExportError(f"nothing was removed: at {amount:.0%}{' per layer' if per_layer else ''}"
                          " a layer would lose all its channels, which Torch-Pruning refuses; "
                          "ask for less", "--amount")


def _opened(project: Project, model: Any) -> tuple[Project, Any, tuple[list[str], str] | None]:
    """A network with block instances as the same network of plain layers, with the trained
    weights, and the instances opened with a note saying so (a network without blocks: as it
    is, and None). Pruning
    gives every layer a width of its own, which the instances of one shared definition, and
    the repetitions of one instance, cannot have: the result has no blocks."""
    from studio.core.build import build_module
    from studio.core.flat import layer_of, plain_graph
    from studio.training.transfer import load_exact

    opened = [n.id for n in project.graph if n.type == BLOCK]
    if not opened:
        return project, model, None
    graph, ids = plain_graph(project.graph)
    flat = project.copy()
    flat.graph = graph
    state = {}
    for key, value in model.state_dict().items():
        layer = layer_of(model, key)
        state[ids[layer] + key[len(layer):]] = value
    plain = build_module(graph, for_loading=True)
    load_exact(plain, state, "the opened network")
    path = next(p for p in ids if "." in p)
    return flat, plain.eval(), (opened, OPENED.format(", ".join(opened), path, ids[path]))


def _output_layers(project: Project, output: str | None, prunable: set[str]) -> set[str]:
    """The layers whose width is the network's output width: the output node and, behind
    parameter-free nodes (Softmax, Dropout, Flatten…), the layers that feed it."""
    if output is None:
        return set()
    keep, todo = set(), [output]
    while todo:
        nid = todo.pop()
        if nid in keep:
            continue
        keep.add(nid)
        if nid not in prunable:
            todo += project.graph.predecessors(nid)
    return keep


def _project_for(project: Project, model: Any, example: Any) -> Project:
    """The project whose nodes carry the pruned module's widths, checked: shape inference
    passes, and the network it builds holds the pruned weights and gives the same outputs."""
    import torch

    from studio.core.build import build_module
    from studio.core.shapes import analyze
    from studio.training.transfer import load_exact

    new = project.copy()
    for nid, module in model.named_children():
        node = new.graph.nodes.get(nid)
        if node is None:
            continue
        params = dict(node.params)
        for key in WIDTHS:
            value = getattr(module, key, None)
            if isinstance(value, int) and key in node.resolved_params() and \
                    node.resolved_params()[key] != value:
                params[key] = value
        if params != node.params:
            new.graph.set_params(nid, params)
    a = analyze(new.graph)
    if a.errors:
        p = a.errors[0]
        raise ExportError(f"the pruned network does not fit together: {p.message}",
                          f"node '{p.node}'" if p.node else "graph")
    rebuilt = build_module(new.graph, seed=None, analysis=a).eval()
    try:
        load_exact(rebuilt, model.state_dict(), "the pruned network")
    except StudioError as exc:
        raise ExportError(f"the pruned weights do not fit the project's layers: "
                          f"{exc.message}", "graph") from None
    with torch.no_grad():
        want, got = model(example), rebuilt(example)
    diff = float((want - got).abs().max())
    if not diff <= TOLERANCE * max(1.0, float(want.abs().max())):
        raise ExportError(f"the project rebuilt from the pruned widths computes something "
                          f"else (largest difference {diff:.3g})", "graph")
    return new


def _absolute_paths(project: Project, base: Path | None) -> None:
    """Data and teacher paths relative to the original project would not resolve from the
    new folder."""
    if base is None:
        return
    opts = project.data.options
    for key in ("path", "root"):
        value = opts.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            opts[key] = str((base / value).resolve())
    d = project.training.distill
    if d is not None and not Path(d.teacher).expanduser().is_absolute():
        project.training.distill = d.model_copy(update={"teacher": str((base / d.teacher)
                                                                       .resolve())})


def _save(target: Path, project: Project, model: Any, trainer: Any) -> None:
    """The weights with what a run's weights carry (the trainer's data), naming ``project``."""
    from studio.training.checkpoint import save_weights

    save_weights(target, model.state_dict(),
                 {**trainer.weights_metadata(), "studio.project": project.dumps()})


class _KeepZeros(Callback):
    """Masks the gradients of pruned weights for the whole fine-tuning run."""

    def on_run_start(self, info: dict[str, Any]) -> None:
        model: Any = self.trainer.model
        for m, name in _weights(model):
            w = getattr(m, name)
            mask = (w.detach() != 0).to(w.dtype)
            w.register_hook(lambda g, mask=mask: g * mask)


def _finetune(project: Project, weights: Path, run_dir: Path, epochs: int,
              base: Path | None, structured: bool, trainer: Any) -> None:
    """Train the pruned network a few more epochs (its own settings) in a run folder of its
    own; its last weights replace the pruned ones."""
    from studio.training.loading import load_trained
    from studio.training.trainer import Trainer

    tune = project.copy()
    tune.training.epochs = epochs
    tune.training.init_weights = str(weights.resolve())
    tune.training.early_stopping = None
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    callbacks = [] if structured else [_KeepZeros()]
    result = Trainer(tune, out_dir=run_dir, base_dir=base, callbacks=callbacks).fit()
    if result.status != "completed":
        raise ExportError(f"fine-tuning {result.status}: {result.message}", str(run_dir))
    tuned = load_trained(project, run_dir / "model.safetensors", base, cpu=True)
    _save(weights, project, tuned.model, trainer)


def _report(project: Project, new: Project, before_t: Any, after_t: Any, weights: Path,
            target: Path, amount: float, structured: bool, per_layer: bool,
            finetune_epochs: int) -> dict[str, Any]:
    import torch

    before_m, after_m = before_t.model.eval(), after_t.model.eval()
    before: dict[str, Any] = {**network_figures(project, before_m),
                              **_weights_sizes(before_t, project)}
    after: dict[str, Any] = {**network_figures(new, after_m), **sizes(target)}
    before.update(metric_logs(before_t))
    after.update(metric_logs(after_t))
    x = _example(before_t)
    notes = []
    for batch in (1, 64):
        xb = x[:1].expand(batch, *x.shape[1:]).contiguous()
        with torch.no_grad():
            tb, ta = latency_pair(partial(before_m, xb), partial(after_m, xb))
        before[f"latency_ms_batch{batch}"] = round(tb * 1e3, 4)
        after[f"latency_ms_batch{batch}"] = round(ta * 1e3, 4)
        note = ratio_note("the pruned network", tb, ta, batch)
        if note:
            notes.append(note + (" (zeros are still multiplied: unstructured pruning "
                                 "shrinks nothing a dense kernel skips)" if not structured
                                 else ""))
    widths: dict[str, dict[str, list[int]]] = {}
    for nid, node in new.graph.nodes.items():
        old = project.graph.nodes[nid].resolved_params()
        for key in WIDTHS:
            if key in old and node.resolved_params().get(key) != old[key]:
                widths.setdefault(nid, {})[key] = [old[key], node.resolved_params()[key]]
    mats = [getattr(m, name) for m, name in _weights(after_m)]
    total = sum(w.numel() for w in mats)
    zeros = sum(int((w == 0).sum()) for w in mats)
    return {
        "method": "structured" if structured else "unstructured",
        "scope": "per layer" if per_layer else "global", "amount": amount,
        "finetune_epochs": finetune_epochs, "weights": str(weights),
        "before": before, "after": after,
        "sparsity": round(zeros / total, 4) if total else 0.0,
        "widths": widths, "notes": notes,
        "device": "cpu", "torch": torch.__version__,
    }


def _weights_sizes(trainer: Any, project: Project) -> dict[str, int]:
    """The original weights' sizes as the same format (a checkpoint carries more than them)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        _save(path, project, trainer.model, trainer)
        return sizes(path)


def _onnx_check(project: Project, weights: Path, base: Path | None) -> str:
    """The result exports to ONNX and runs the same in onnxruntime (not kept)."""
    from . import export

    with tempfile.TemporaryDirectory() as tmp:
        r = export(project, "onnx", Path(tmp) / "model.onnx", weights, base)
    return f"passed: largest difference {r.max_abs_diff:.3g} on {r.samples} samples"
