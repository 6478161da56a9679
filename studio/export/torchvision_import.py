"""torchvision architecture → an editable Studio project, through ``torch.fx``.

Every traced operation becomes a catalog node (its parameters read back from the module), the
node ids are the module paths (``layer1.0.conv1`` → ``layer1_0_conv1``), and the graph is laid
out automatically. Repeated module classes (BasicBlock, InvertedResidual, …) arrive as block
instances (``studio.export.import_blocks``) unless a flat import is asked for. Operations the
catalog cannot express are listed by name and the import fails: nothing is dropped silently.
Weights map by node id, so torchvision's pretrained weights load into the built module.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import catalog
from studio.core.errors import StudioError
from studio.core.graph import Graph, Node
from studio.core.layout import apply_layout
from studio.core.project import DataSettings, Project, TrainingSettings, file_stem
from studio.core.shapes import analyze
from studio.export.import_blocks import Traced, group_repeated, node_id

ARCHITECTURES = ("resnet18", "resnet50", "vgg11", "mobilenet_v2", "mobilenet_v3_small",
                 "efficientnet_b0", "densenet121", "vit_b_16")


class ImportError_(StudioError):
    """An architecture the catalog cannot express (names the operations)."""


@dataclass
class ImportResult:
    project: Project
    path: Path | None
    key_map: dict[str, str]  # torchvision state-dict key → Studio state-dict key
    params: int
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        where = f" → {self.path}" if self.path else ""
        return (f"{self.project.name}{where}: {len(self.project.graph)} nodes, "
                f"{self.params:,} parameters")


def _module_params(layer: str, mod: Any) -> dict[str, Any]:
    """Catalog parameters read from a torch module (the inverse of the builder)."""
    spec = catalog.CATALOG[layer]
    out: dict[str, Any] = {}
    for p in spec.schema.params:
        if p.name == "bias" and hasattr(mod, "bias"):
            out["bias"] = mod.bias is not None
        elif p.name == "affine" and layer.startswith("BatchNorm"):
            out["affine"] = mod.affine
        elif hasattr(mod, p.name):
            v = getattr(mod, p.name)
            if isinstance(v, tuple):
                v = list(v)
            if v is None and not p.nullable:
                continue
            out[p.name] = v
    if layer in ("Dropout", "Dropout2d"):
        out["p"] = float(mod.p)
    if layer == "StochasticDepth":
        out.update(p=float(mod.p), mode=mod.mode)
    if layer == "AdaptiveAvgPool2d":
        o = mod.output_size
        out["output_size"] = list(o) if isinstance(o, tuple) else o
    return spec.schema.resolve(out)


def _leaf_type(mod: Any) -> str | None:
    name = type(mod).__name__
    if name == "StochasticDepth" and type(mod).__module__.startswith("torchvision"):
        return name
    spec = catalog.CATALOG.get(name)
    if spec is not None and spec.torch_class == name and type(mod).__module__.startswith(
            "torch.nn"):
        return name
    return None


def graph_from_module(model: Any, input_shape: tuple[int, ...], blocks: bool = False,
                      ) -> tuple[Graph, dict[str, str]]:
    """Trace ``model`` and rebuild it from catalog nodes; raises naming unsupported ops.

    ``blocks``: repeated module classes become block definitions and instances (the key map
    then names the nested modules: ``layer1_0.conv1.weight``).
    """
    traced = trace(model, input_shape)
    if blocks:
        return group_repeated(model, traced, lambda m: _leaf_type(m) is not None)
    return traced.graph, traced.key_map


def trace(model: Any, input_shape: tuple[int, ...]) -> Traced:
    """The flat graph of ``model``, with the modules each node was traced inside."""
    import torch
    import torch.fx as fx
    import torch.nn.functional as F

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return _leaf_type(m) is not None or super().is_leaf_module(m, qualname)

    try:
        traced = fx.GraphModule(model, Tracer().trace(model))
    except Exception as exc:
        raise ImportError_(f"torch.fx cannot trace this model ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]})") from None
    g = Graph()
    used: set[str] = set()
    ids: dict[Any, str] = {}
    key_map: dict[str, str] = {}
    unsupported: dict[str, int] = {}
    modules = dict(traced.named_modules())
    scopes: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}

    def add(fx_node: Any, layer: str, params: dict[str, Any], args: list[Any],
            name: str | None = None) -> None:
        nid = node_id(name or fx_node.name, used)
        # where the node sits: the module paths it was traced inside, and its own name (a
        # module's path; an op's name without fx's counter: add_3 → add)
        stack = fx_node.meta.get("nn_module_stack", {})
        scopes[nid] = tuple(path for path, _ in stack.values())
        names[nid] = name or re.sub(r"_\d+$", "", fx_node.name)
        defaults = {q.name: q.default for q in catalog.CATALOG[layer].schema.params}
        g.add_node(Node(nid, layer, {k: v for k, v in params.items() if k not in defaults
                                     or defaults[k] != v}))
        for port, a in enumerate(args):
            g.connect(ids[a], nid, port)
        ids[fx_node] = nid

    def unsupported_op(text: str) -> None:
        unsupported[text] = unsupported.get(text, 0) + 1

    for n in traced.graph.nodes:
        if n.op == "placeholder":
            add(n, "Input", {"shape": list(input_shape)}, [], "input")
        elif n.op == "output":
            continue
        elif n.op == "call_module":
            mod = modules[n.target]
            layer = _leaf_type(mod)
            if layer is None:
                unsupported_op(type(mod).__name__)
                continue
            src = [a for a in n.args if isinstance(a, fx.Node)]
            if any(a not in ids for a in src):
                continue
            add(n, layer, _module_params(layer, mod), src, n.target)
            for k in mod.state_dict():
                key_map[f"{n.target}.{k}"] = f"{ids[n]}.{k}"
        elif n.op in ("call_function", "call_method"):
            fn = n.target
            tensors = [a for a in n.args if isinstance(a, fx.Node)]
            if any(a not in ids for a in tensors):
                continue
            if fn in (operator.add, torch.add, "add") and len(tensors) == 2:
                add(n, "Add", {}, tensors)
            elif fn in (operator.mul, torch.mul, "mul") and len(tensors) == 2:
                add(n, "Multiply", {}, tensors)
            elif fn in (torch.flatten, "flatten"):
                start = n.args[1] if len(n.args) > 1 else n.kwargs.get("start_dim", 0)
                if start != 1:
                    unsupported_op(f"flatten(start_dim={start})")
                    continue
                add(n, "Flatten", {}, tensors[:1])
            elif fn is torch.cat:
                seq = list(n.args[0])
                dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
                if any(a not in ids for a in seq):
                    continue
                if len(seq) == 1:  # cat of one tensor is that tensor (DenseNet's first layer)
                    ids[n] = ids[seq[0]]
                else:
                    add(n, "Concat", {"dim": dim}, seq)
            elif fn in (F.relu, torch.relu, "relu"):
                add(n, "ReLU", {}, tensors[:1])
            elif fn is F.adaptive_avg_pool2d:
                size = n.args[1] if len(n.args) > 1 else n.kwargs["output_size"]
                add(n, "AdaptiveAvgPool2d",
                    {"output_size": list(size) if isinstance(size, tuple) else size},
                    tensors[:1])
            else:
                unsupported_op(getattr(fn, "__name__", str(fn)))
        elif n.op == "get_attr":
            unsupported_op(f"parameter {n.target}")
    if unsupported:
        listed = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in sorted(unsupported.items()))
        raise ImportError_(f"the catalog cannot express: {listed}")
    return Traced(g, key_map, scopes, names)


def import_torchvision(name: str, out: str | Path | None = None, pretrained: bool = False,
                       size: int = 224, num_classes: int | None = None,
                       blocks: bool = True) -> ImportResult:
    """Build torchvision's ``name`` as a project (saved to ``out``); with ``pretrained``, its
    weights go beside the project as ``.safetensors`` in Studio's node names. ``blocks``:
    repeated module classes arrive as blocks (False: every layer loose, as before)."""
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError:
        known = ", ".join(ARCHITECTURES)
        raise ImportError_(f"torchvision has no model {name!r} (for example: {known})",
                           "source") from None
    model.eval()
    messages: list[str] = []
    state = None
    if pretrained:
        state = _pretrained_state(name)
        model.load_state_dict(state)
    g, key_map = graph_from_module(model, (3, size, size), blocks)
    apply_layout(g)
    a = analyze(g)
    if a.errors:
        p = a.errors[0]
        raise ImportError_(f"the imported graph does not check: {p.message}",
                           f"node '{p.node}'" if p.node else None)
    project = Project(f"{name} (torchvision)", g,
                      DataSettings(dataset="image-folder", options={"path": "images",
                                                                    "size": [size, size]},
                                   batch_size=32),
                      TrainingSettings(epochs=10, optimizer={"type": "SGD", "lr": 0.01,
                                                             "momentum": 0.9}))
    path = Path(out) if out is not None else None
    if path is not None:
        if state is not None:
            from studio.training.checkpoint import save_weights

            weights = path.with_name(file_stem(path) + ".safetensors")
            save_weights(weights, {key_map[k]: v for k, v in state.items() if k in key_map},
                         {"studio.project": project.dumps(), "studio.source":
                          f"torchvision:{name}"})
            messages.append(f"pretrained weights saved to {weights}")
        project.save(path)
    return ImportResult(project, path, key_map, a.total_params, messages)


def _pretrained_state(name: str) -> dict[str, Any]:
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        state: dict[str, Any] = weights.get_state_dict(progress=False)  # name → tensor
        return state
    except Exception as exc:  # offline: URLError, OSError, …
        raise ImportError_(f"the pretrained weights of {name} are not cached and could not "
                           f"be downloaded ({type(exc).__name__}); connect to the internet "
                           "once, or import without --weights", "--weights") from None
