"""Live layer statistics (``training.layer_stats``): how healthy each layer is while it trains.

Every ``every`` optimizer steps, right after the step:

- per parametric node, from its parameters (no hooks, so ``torch.compile`` and DDP are left
  alone): the gradient norm, the weight norm and the update/weight ratio ‖Δw‖ / ‖w‖, the
  update being the step just taken (the weights are copied before that one step);
- per node, from a probe forward pass over a fixed batch of held-out samples on the uncompiled
  module, with forward hooks installed for that pass only: the activation mean, standard
  deviation, share of exact zeros, share of dead units (features, or channels of an image,
  that are zero for every sample: a ReLU that lets nothing through) and a histogram over the
  values' range.

The probe runs in eval mode without gradients, so dropout draws no random numbers and
BatchNorm keeps its running statistics: a run trains exactly as it would without statistics.
All figures of one sample point are read back from the device in one transfer. Only the main
process samples (gradients are already averaged over the processes when it does).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

Step = Callable[[torch.Tensor, torch.Tensor], None]

#: samples in the probe batch: enough for stable figures, a fraction of a training step's cost
PROBE_SAMPLES = 64


class LayerStatsFile(Callback):
    """``layer_stats.jsonl`` in the run folder; a resumed run drops the lines after its step."""

    def __init__(self, path: Path, keep_through_step: int = 0) -> None:
        self.path = path
        kept = []
        if keep_through_step and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= keep_through_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a crash ends what can be kept
        path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")

    def on_layer_stats(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class LayerStatsProbe:
    """Samples a trainer's layers; ``wrap`` turns the loop's step into one that samples."""

    def __init__(self, t: Trainer, every: int, bins: int) -> None:
        self.t, self.every, self.bins = t, every, bins
        nodes = set(t.project.graph.nodes)
        self.params: dict[str, list[nn.Parameter]] = {}
        for name, p in t.model.named_parameters():
            node = name.split(".", 1)[0]
            if p.requires_grad and node in nodes:
                self.params.setdefault(node, []).append(p)
        self.modules = {name: m for name, m in t.model.named_children() if name in nodes}
        self.probe_x = self._probe_batch()

    def _probe_batch(self) -> torch.Tensor | None:
        """The first held-out samples (validation, else the first training samples): the same
        inputs at every sample point, so that changes come from the network alone."""
        t, b = self.t, self.t.bundle
        if b.n_val:
            xb, _ = next(iter(t.split_batches("val", PROBE_SAMPLES).epoch()))
            return xb
        if b.files is not None or b.x_train is None or not len(b.x_train):
            t.message("layer statistics: no held-out samples to probe the activations with; "
                      "gradients and weights only")
            return None
        x = b.x_train[:PROBE_SAMPLES]
        if t.pixel_affine is not None:
            a, c = t.pixel_affine
            x = torch.addcmul(c, x.float(), a)
        return x

    def wrap(self, step: Step) -> Step:
        every = self.every
        t = self.t

        def sampled(xb: torch.Tensor, yb: torch.Tensor) -> None:
            if (t.step + 1) % every:
                step(xb, yb)
                return
            before = {n: [p.detach().clone() for p in ps] for n, ps in self.params.items()}
            step(xb, yb)
            self.sample(before)

        return sampled

    @torch.no_grad()
    def sample(self, before: dict[str, list[torch.Tensor]]) -> None:
        t = self.t
        names: list[tuple[str, str]] = []
        values: list[torch.Tensor] = []
        for node, ps in self.params.items():
            grads = [p.grad for p in ps if p.grad is not None]
            g2 = sum((g.float().pow(2).sum() for g in grads), torch.zeros((), device=t.device))
            w2 = sum((p.float().pow(2).sum() for p in ps), torch.zeros((), device=t.device))
            d2 = sum(((p.float() - b.float()).pow(2).sum() for p, b in zip(
                ps, before[node], strict=True)), torch.zeros((), device=t.device))
            names += [(node, "g2"), (node, "w2"), (node, "d2")]
            values += [g2, w2, d2]
        hists: dict[str, torch.Tensor] = {}
        if self.probe_x is not None:
            for node, (*figures, counts) in self._activations().items():
                names += [(node, k) for k in ("act_mean", "act_std", "zero_frac", "dead_frac",
                                              "lo", "hi", "nonfinite")]
                values += figures
                hists[node] = counts
        flat = torch.stack([v.float().reshape(()) for v in values]).tolist() if values else []
        counts_cpu = {n: c.tolist() for n, c in hists.items()}  # one more read, same moment
        layers: dict[str, dict[str, Any]] = {}
        for (node, key), v in zip(names, flat, strict=True):
            layers.setdefault(node, {})[key] = v
        for node, d in layers.items():
            if "g2" in d:
                w = math.sqrt(d.pop("w2"))
                d["grad_norm"] = math.sqrt(d.pop("g2"))
                d["weight_norm"] = w
                d["update_ratio"] = math.sqrt(d.pop("d2")) / w if w > 0 else 0.0
            if node in counts_cpu:
                lo, hi = d.pop("lo"), d.pop("hi")
                d["hist"] = {"lo": lo, "hi": hi, "counts": [int(c) for c in counts_cpu[node]]}
                if not d["nonfinite"]:
                    del d["nonfinite"]
                else:
                    d["nonfinite"] = int(d["nonfinite"])
        order = {n: i for i, n in enumerate(t.project.graph.nodes)}
        record = {"step": t.step, "epoch": t.epoch + 1,
                  "layers": {n: layers[n] for n in sorted(layers, key=order.__getitem__)}}
        t.callbacks.on_layer_stats(record)

    def _activations(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each node's output on the probe batch: (mean, std, share of zeros, share of dead
        units, low, high, non-finite count, histogram), still on the device."""
        model = self.t.model
        out: dict[str, tuple[torch.Tensor, ...]] = {}
        bins = self.bins

        def hook(node: str) -> Callable[..., None]:
            def record(_m: nn.Module, _inputs: Any, output: Any) -> None:
                if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                    return
                a = output.detach().float()
                # a dead unit (feature, or channel of an image) is zero for every sample
                units = a.movedim(2 if a.dim() == 3 else 1, 0).reshape(a.shape[2 if a.dim() == 3
                                                                           else 1], -1) \
                    if a.dim() >= 2 else a.reshape(1, -1)
                dead = (units == 0).all(dim=1).float().mean()
                v = a.flatten()
                finite = torch.isfinite(v)
                bad = (~finite).sum()
                v = v[finite]
                if not v.numel():
                    zero = torch.zeros((), device=v.device)
                    out[node] = (zero, zero, zero, dead, zero, zero, bad,
                                 torch.zeros(bins, device=v.device))
                    return
                lo, hi = v.min(), v.max()
                counts = _histogram(v, bins, lo, hi)
                out[node] = (v.mean(), v.std(unbiased=False), (v == 0).float().mean(), dead,
                             lo, hi, bad, counts)
            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in self.modules.items()]
        was_training = model.training
        try:
            model.eval()
            model(self.probe_x)
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        return out


def _histogram(v: torch.Tensor, bins: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Counts over [lo, hi] in ``bins`` equal bins, computed on the device without reading
    ``lo``/``hi`` back (``torch.histc`` wants Python numbers: a sync per layer)."""
    width = (hi - lo).clamp_min(1e-12) / bins
    idx = ((v - lo) / width).long().clamp_(0, bins - 1)
    return torch.bincount(idx, minlength=bins)


def probe_for(t: Trainer) -> LayerStatsProbe | None:
    """The run's probe when ``training.layer_stats`` is set (main process only), with its
    file in the run folder."""
    spec = t.settings.layer_stats
    if spec is None or not t.main:
        return None
    probe = LayerStatsProbe(t, spec.every, spec.bins)
    if t.out_dir is not None:
        try:
            stats_file = LayerStatsFile(t.out_dir / "layer_stats.jsonl", t.step)
        except OSError as exc:
            t.message(f"layer statistics are not written: {exc.strerror or exc}")
        else:
            stats_file.set_trainer(t)
            t.callbacks.callbacks.append(stats_file)
    return probe
