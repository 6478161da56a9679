"""Attributions: which pixels or features one prediction of a trained network rests on.

Captum computes them (Saliency, Integrated Gradients, Grad-CAM, Occlusion); this module picks
the baseline, the occlusion window and the Grad-CAM layer, refuses what cannot be explained,
and reduces the result to a map of the input's size ([H, W] for an image, [features] for a
table). Pure core (torch, numpy, captum; no Qt): the Evaluate view and ``studio explain``
share it. Captum is imported on first use: it pulls in matplotlib, seconds of start-up.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.errors import TrainingError
from studio.core.flat import find_module, flatten, layer_modules, layer_types
from studio.core.graph import Graph
from studio.core.project import Project, atomic_write
from studio.data.bundle import DataBundle

from .feature_maps import CONVOLUTIONS

METHODS: tuple[str, ...] = ("saliency", "integrated-gradients", "gradcam", "occlusion")
IG_STEPS = 50
#: input values per batch of Integrated Gradients' steps or Occlusion's perturbations; a
#: network's activations are many times its input, so this stays small
BATCH_VALUES = 1 << 20
NO_CONVOLUTION = ("Grad-CAM needs a convolution; this network has none: use saliency, "
                  "integrated-gradients or occlusion")


@dataclass
class Explanation:
    """One sample's attribution for one output, with what the network said about it."""

    method: str
    target: int  # the class (output index) explained; 0 for a single-output regression
    #: [H, W] for an image (|attr| summed over channels; Grad-CAM: the layer's map upsampled
    #: with ReLU); [features] for a table (signed); else |attr| in the input's shape
    map: np.ndarray
    raw: np.ndarray  # the attribution in the input's full shape, float32
    probs: np.ndarray  # class probabilities, or the raw output for regression
    layer: str | None  # the node Grad-CAM used
    image: bool  # the sample is [C, H, W]


def map_layers(graph: Graph) -> list[str]:
    """Layers on the way to the output whose output is a map [C, H, W], in graph order: the
    layers Grad-CAM can read (inside a block instance: by path, ``layer1.conv1``)."""
    f = flatten(graph)
    g, a = f.graph, f.analysis
    used = g.ancestors(a.output) | {a.output} if a.output else set(g.nodes)
    return [n for n in a.order if n in used and n in a.nodes
            and len(a.nodes[n].shape or ()) == 3]


def gradcam_layers(graph: Graph) -> list[str]:
    """The convolutions among :func:`map_layers`; Grad-CAM takes the last by default (the most
    semantic map that still has a place in the image)."""
    types = layer_types(graph)
    return [n for n in map_layers(graph) if types.get(n) in CONVOLUTIONS]


def explain_sample(model: torch.nn.Module, x: torch.Tensor, method: str, *,
                   target: int | None = None, layer: str | None = None,
                   graph: Graph | None = None, baseline: torch.Tensor | None = None,
                   task: str = "classification") -> Explanation:
    """Attribute the model's output ``target`` (None: the predicted class; 0 in regression)
    to ``x``, one preprocessed sample without batch dim. ``baseline`` is the "absent" input
    Integrated Gradients starts from and Occlusion fills in (default zeros). The model runs
    in eval mode; its mode, weights, gradients and requires_grad flags are left as found."""
    if method not in METHODS:
        raise TrainingError(f"unknown method {method!r}; use {', '.join(METHODS)}", "method")
    if not x.is_floating_point():
        raise TrainingError("this network reads token ids (whole numbers), which have no "
                            "gradient and no values in between to compare with; attributions "
                            "need an Input of real values", "method")
    if method == "gradcam" and layer is None:
        layer = _default_layer(model, graph)  # a network without one is refused first
    if method == "gradcam" and x.dim() != 3:
        raise TrainingError(f"Grad-CAM explains images [channels, height, width]; this sample "
                            f"is {list(x.shape)}: use saliency, integrated-gradients or "
                            "occlusion", "method")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    xb = x.detach().reshape(1, *x.shape).to(device, torch.float32).clone()
    bb = torch.zeros_like(xb)
    if baseline is not None:
        try:
            bb = torch.broadcast_to(baseline.detach().to(xb), xb.shape[1:])[None].clone()
        except RuntimeError:
            raise TrainingError(f"a baseline of {list(baseline.shape)} does not fit a sample "
                                f"of {list(x.shape)}", "baseline") from None
    saved = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    was_training = model.training
    model.eval()
    try:
        forward, probs = _forward(model, xb, task)
        target = _target(target, probs, task)
        with torch.enable_grad():
            raw, used = _attribute(forward, model, xb, bb, method, target, layer, graph)
    finally:
        model.train(was_training)
        for p, flag, grad in saved:
            p.requires_grad_(flag)
            p.grad = grad
    a = np.nan_to_num(raw.detach()[0].float().cpu().numpy())  # occlusion leaves gaps as 0/0
    if method == "gradcam":
        m = np.maximum(a[0], 0.0)  # every channel holds the same map
    elif a.ndim == 3:
        m = np.abs(a).sum(0)
    else:
        m = a if a.ndim == 1 else np.abs(a)
    return Explanation(method, target, m.astype(np.float32), a.astype(np.float32), probs,
                       used, x.dim() == 3)


def _forward(model: torch.nn.Module, xb: torch.Tensor, task: str
             ) -> tuple[Callable[[torch.Tensor], torch.Tensor], np.ndarray]:
    """The model as captum calls it, [N, outputs], and its output for the sample. One logit
    of a binary classifier becomes two, (-z, z), so that target 0 explains class 0."""
    with torch.no_grad():
        out = model(xb).float().reshape(-1)
    single = task == "classification" and out.numel() == 1

    def forward(t: torch.Tensor) -> torch.Tensor:
        o = model(t).reshape(len(t), -1)
        return torch.cat([-o, o], 1) if single else o

    if task != "classification":
        probs = out
    elif single:
        p1 = torch.sigmoid(out)
        probs = torch.cat([1 - p1, p1])
    else:
        probs = torch.softmax(out, 0)
    return forward, probs.cpu().numpy().astype(np.float32)


def _target(target: int | None, probs: np.ndarray, task: str) -> int:
    n = len(probs)
    if target is None:
        return int(np.argmax(probs)) if task == "classification" else 0
    if not 0 <= target < n:
        what = "classes" if task == "classification" else "outputs"
        raise TrainingError(f"target {target} is out of range: the network has {n} {what} "
                            f"(0–{n - 1})", "target")
    return int(target)


def _attribute(forward: Callable[[torch.Tensor], torch.Tensor], model: torch.nn.Module,
               xb: torch.Tensor, bb: torch.Tensor, method: str, target: int,
               layer: str | None, graph: Graph | None) -> tuple[torch.Tensor, str | None]:
    """Captum's attribution for the batch of one ``xb``, in its shape, and the layer used."""
    from captum import attr

    per_batch = max(1, min(64, BATCH_VALUES // max(1, xb.numel())))
    if method == "saliency":  # a fresh leaf of ours: captum would warn that it set this
        return attr.Saliency(forward).attribute(xb.requires_grad_(), target=target,
                                                abs=True), None
    if method == "integrated-gradients":
        return attr.IntegratedGradients(forward).attribute(
            xb, baselines=bb, target=target, n_steps=IG_STEPS,
            internal_batch_size=min(IG_STEPS, per_batch)), None
    if method == "occlusion":
        window, stride = occlusion_window(tuple(xb.shape[1:]))
        return attr.Occlusion(forward).attribute(
            xb, sliding_window_shapes=window, strides=stride, baselines=bb, target=target,
            perturbations_per_eval=per_batch), None
    node = layer if layer is not None else _default_layer(model, graph)
    module = _layer_module(model, node, graph)
    cam = attr.LayerGradCam(forward, module).attribute(xb, target=target)
    if cam.dim() != 4:
        raise TrainingError(f"Grad-CAM needs a node whose output is a map [channels, height, "
                            f"width]; '{node}' gives {list(cam.shape[1:])}", f"node '{node}'")
    up = attr.LayerAttribution.interpolate(cam, tuple(xb.shape[-2:]), "bilinear")
    return up.expand_as(xb), node


def occlusion_window(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(window, stride): about a seventh of an image's side over every channel, half that
    apart (4×4 every 2 on 28×28), so a window hides a stroke; one value at a time else."""
    if len(shape) == 3:
        c, h, w = shape
        side = max(1, round(min(h, w) / 7))
        step = max(1, side // 2)
        return (c, side, side), (c, step, step)
    return (1,) * len(shape), (1,) * len(shape)


def _default_layer(model: torch.nn.Module, graph: Graph | None) -> str:
    layers = layer_modules(model)
    if graph is not None:
        found = [n for n in gradcam_layers(graph) if n in layers]
    else:  # a bare module: its convolutions in the order they were added
        found = [n for n, m in layers.items()
                 if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    if not found:
        raise TrainingError(NO_CONVOLUTION, "method")
    return found[-1]


def _layer_module(model: torch.nn.Module, node: str, graph: Graph | None) -> torch.nn.Module:
    module = find_module(model, node) if node else None
    if module is None:
        known = graph is not None and node in flatten(graph).graph
        raise TrainingError(f"node '{node}' has no layer in the built network (an input, or "
                            "not on the way to the output)" if known else
                            f"there is no node '{node}' in this network", "layer")
    if graph is not None:
        from studio.core.shapes import analyze

        # a layer (inside a block: its path), or a block instance as a whole
        info = flatten(graph).analysis.nodes.get(node) or analyze(graph).nodes.get(node)
        shape = info.shape if info is not None else None
        if shape is not None and len(shape) != 3:
            raise TrainingError(f"Grad-CAM needs a node whose output is a map [channels, "
                                f"height, width]; '{node}' gives {list(shape)}",
                                f"node '{node}'")
    return module


class Explainer:
    """A project's trained network and its data, loaded once, to explain sample after sample.

    Samples are numbered as the dataset is loaded, before the split, and are exactly the
    tensors training saw (same fill, scaling and reshaping: the trainer's own set-up makes
    them). It runs on the CPU: an explanation is one sample, and a GPU may be training.
    """

    def __init__(self, project: Project, weights: Path, base_dir: Path | None = None) -> None:
        from .loading import load_trained

        trainer = load_trained(project, weights, base_dir, cpu=True, compact=False)
        self.model: torch.nn.Module = trainer.model.eval()
        self.graph = project.graph
        self.bundle: DataBundle = trainer.bundle
        b = self.bundle
        self.classes: list[str] = list(b.classes)
        #: [C, H, W] when the samples are pictures (also when the Input reads them flat)
        self.picture_shape: tuple[int, ...] | None = (
            None if not b.image else tuple(b.picture_shape or b.sample_shape))
        if self.picture_shape is not None and len(self.picture_shape) != 3:
            self.picture_shape = None
        self.image: bool = self.picture_shape is not None
        self.norm: dict[str, Any] = dict(b.norm)
        n_features = math.prod(b.sample_shape)
        self.columns: list[str] = [] if self.image else (
            list(b.columns) if len(b.columns) == n_features
            else [f"feature {i}" for i in range(n_features)])
        parts = [(b.train_idx, b.x_train, b.y_train), (b.val_idx, b.x_val, b.y_val),
                 (b.test_idx, b.x_test, b.y_test)]
        self._parts = [(x, y) for idx, x, y in parts]
        n = sum(len(idx) for idx, _, _ in parts if idx is not None)
        self._part = np.full(n, -1, np.int8)
        self._row = np.zeros(n, np.int64)
        for k, (idx, _, _) in enumerate(parts):
            if idx is not None:
                self._part[idx] = k
                self._row[idx] = np.arange(len(idx))
        self.baseline = self._baseline()

    def reload(self, weights: Path) -> None:
        """The same run's newer weights (its next epoch): only the weights are read again."""
        from .loading import reload

        reload(self.model, weights)
        self.model.eval()

    def _baseline(self) -> torch.Tensor:
        """What "absent" means: a black image (as normalised), or a table's training mean."""
        b = self.bundle
        shape = b.sample_shape
        pic = self.picture_shape
        c = pic[0] if pic is not None else 0
        if pic is not None and len(b.norm.get("mean", [0.0] * c)) == c:
            mean = torch.tensor(b.norm.get("mean", [0.0] * c), dtype=torch.float32)
            std = torch.tensor(b.norm.get("std", [1.0] * c), dtype=torch.float32)
            black = ((0.0 - mean) / std).reshape(-1, 1, 1).expand(*pic)
            out: torch.Tensor = black.reshape(shape).clone()
            return out
        if b.files is None and len(b.x_train) and b.x_train.is_floating_point():
            return b.x_train.float().mean(0)
        return torch.zeros(shape)

    def __len__(self) -> int:
        return len(self._part)

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if not 0 <= index < n:
            raise TrainingError(f"sample {index} is out of range: the dataset has {n:,} "
                                f"samples (0–{n - 1:,})", "index")
        return int(self._part[index]), int(self._row[index])

    def sample(self, index: int) -> torch.Tensor:
        """Sample ``index`` as the network sees it (normalised), without batch dim."""
        part, row = self._locate(index)
        b = self.bundle
        if b.files is not None:  # read and normalised as LoaderBatches does
            c = b.sample_shape[0]
            mean = torch.tensor(b.norm["mean"]).reshape(c, 1, 1) * 255.0
            std = torch.tensor(b.norm["std"]).reshape(c, 1, 1) * 255.0
            read: torch.Tensor = torch.from_numpy(b.files.read(index)).float()
            read.sub_(mean).div_(std)
            return read
        x = self._parts[part][0]
        assert x is not None, "a part with indices has samples"
        out: torch.Tensor = x[row].clone()
        return out

    def picture(self, index: int) -> np.ndarray | None:
        """Sample ``index`` as [H, W, C] uint8 for display, or None for a table."""
        from .predictions import to_uint8_images

        if self.picture_shape is None:
            return None
        x = self.sample(index).reshape(1, *self.picture_shape).numpy()
        return np.asarray(to_uint8_images(x, self.norm)[0])

    def label(self, index: int) -> np.ndarray:
        """Sample ``index``'s target: [class id], or every regression output in its units."""
        part, row = self._locate(index)
        y = self._parts[part][1]
        assert y is not None, "a part with indices has targets"
        t = y[row].reshape(-1).float()
        if self.bundle.task == "classification":
            return np.array([int(t.argmax()) if t.numel() > 1 else int(t[0].round())])
        m, s = self.bundle.target_norm or (0.0, 1.0)
        return np.asarray((t * s + m).numpy(), np.float64)

    def verdict(self, index: int, e: Explanation) -> tuple[str, str, str]:
        """(truth, prediction, what was explained) in words, in the data's own units: the
        same for ``studio explain`` and the Explain tab."""
        truth = self.label(index)
        if self.bundle.task == "classification":
            best = int(np.argmax(e.probs))
            return (self._name(int(truth[0])),
                    f"{self._name(best)} at {float(e.probs[best]):.0%}",
                    f"class {self._name(e.target)}")
        m, s = self.bundle.target_norm or (0.0, 1.0)
        k = e.target
        said = float(np.ravel(e.probs)[k]) * s + m
        real = truth[k] if k < len(truth) else float("nan")
        return f"{real:.4g}", f"{said:.4g}", f"output {k}"

    def targets(self) -> list[str]:
        """What can be explained, by name: each class, or each output of a regression with
        several (a single output needs no choice)."""
        if self.bundle.task == "classification":
            return list(self.classes)
        n = self.bundle.target_width
        return [f"output {k}" for k in range(n)] if n > 1 else []

    def _name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)

    def explain(self, index: int, method: str, target: int | None = None,
                layer: str | None = None) -> Explanation:
        """Sample ``index`` explained; a picture read flat by its Input is explained as the
        picture it is ([H, W] map, occlusion's patches in the picture)."""
        x = self.sample(index)
        pic = self.picture_shape
        if pic is not None and x.dim() != 3:  # occlusion's patches, IG's path: in the picture
            return explain_sample(_Reading(self.model, tuple(x.shape)), x.reshape(pic), method,
                                  target=target, layer=layer, graph=None,
                                  baseline=self.baseline.reshape(pic), task=self.bundle.task)
        return explain_sample(self.model, x, method, target=target, layer=layer,
                              graph=self.graph, baseline=self.baseline, task=self.bundle.task)


class _Reading(torch.nn.Module):
    """A network whose Input reads pictures reshaped (flat, or as rows), taking pictures
    [N, C, H, W] and reshaping them as its Input does."""

    def __init__(self, net: torch.nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net, self.shape = net, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x.reshape(len(x), *self.shape))
        return out


# -- files ---------------------------------------------------------------------------------

def output_kind(out: Path) -> str:
    """"npy" or "png" from the file's suffix; anything else is refused before any work."""
    kind = Path(out).suffix.lower().lstrip(".")
    if kind not in ("npy", "png"):
        raise TrainingError(f"cannot write {('.' + kind) if kind else 'a file without a suffix'}"
                            ": write FILE.npy (the map's values) or FILE.png (a picture)",
                            str(out))
    return kind


def write_explanation(e: Explanation, out: Path, image: np.ndarray | None = None) -> None:
    """``.npy``: the map (float32). ``.png``: the map as a heatmap, over the sample's picture
    ([H, W, C] uint8) when given. A table's map is a list of numbers, not a picture: a PNG of
    it is refused (the window draws it as bars)."""
    out = Path(out)
    if output_kind(out) == "npy":
        buf = io.BytesIO()
        np.save(buf, np.asarray(e.map, np.float32), allow_pickle=False)
        atomic_write(out, buf.getvalue())
        return
    if e.map.ndim != 2:
        raise TrainingError("a PNG needs an image's map; a table's attributions are one value "
                            "per feature: write FILE.npy", str(out))
    atomic_write(out, png_bytes(heatmap(e.map, image)))


#: inferno's colours at eight even steps (matplotlib's, which is CC0), interpolated to 256
_INFERNO_KEYS = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
                          (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)],
                         np.float64)
INFERNO = np.stack([np.interp(np.linspace(0, 7, 256), np.arange(8), _INFERNO_KEYS[:, c])
                    for c in range(3)], 1).round().astype(np.uint8)


def heatmap(m: np.ndarray, image: np.ndarray | None = None, min_side: int = 224
            ) -> np.ndarray:
    """[H, W] map → [H·k, W·k, 3] uint8: inferno of |map| (its top 0.5% at full heat),
    blended over the image
    where the map is hot; scaled up by a whole factor k so that small images can be seen."""
    v = np.abs(np.nan_to_num(np.asarray(m, np.float64)))
    top = float(np.percentile(v, 99.5)) if v.size else 0.0  # one hot pixel must not dim all
    top = top if top > 0 else (float(v.max()) if v.size else 0.0)
    v = np.clip(v / top, 0, 1) if top > 0 else np.zeros_like(v)
    rgb = INFERNO[(v * 255).round().astype(np.int64)].astype(np.float64)
    if image is not None:
        pic = np.asarray(image, np.float64)
        if pic.ndim == 2:
            pic = pic[..., None]
        if pic.shape[:2] != v.shape:
            raise TrainingError(f"the picture is {list(pic.shape[:2])} but the map "
                                f"{list(v.shape)}", "image")
        pic = np.repeat(pic, 3, axis=2) if pic.shape[2] == 1 else pic[..., :3]
        alpha = (0.25 + 0.6 * v)[..., None]  # cold places show the sample beneath
        rgb = pic * (1 - alpha) + rgb * alpha
    h, w = v.shape
    k = max(1, min(math.ceil(min_side / max(1, min(h, w))), 2048 // max(1, h, w)))
    out = np.clip(rgb, 0, 255).round().astype(np.uint8)
    return np.repeat(np.repeat(out, k, axis=0), k, axis=1)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of [H, W, 3] uint8, in plain zlib (no imaging library needed)."""
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))
