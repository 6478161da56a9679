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
All figures of one sample point are read back from the device in one transfer; mean, spread,
zeros and histogram are taken over at most ``STAT_VALUES`` of a layer's values (a fixed random
subset), NaN/∞ and dead units over all of them. Layers inside block instances are sampled
each on its own, named by their paths (``layer1.0.conv1``). Only the main process samples
(gradients are already averaged over the processes when it does). Its cost is in
docs/performance.md.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from studio.core.errors import first_line
from studio.core.flat import flatten, layer_modules, layer_of

from .callbacks import Callback, keep_lines
from .feature_maps import channels_first
from .remote import _clean

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

Step = Callable[[torch.Tensor, torch.Tensor], None]

#: samples in the probe batch: enough for stable figures, a fraction of a training step's cost
PROBE_SAMPLES = 64
#: output values of a layer its mean, spread, zeros and histogram are taken over (a fixed
#: random subset of larger outputs; NaN/∞ and dead units are counted over all of them)
STAT_VALUES = 1 << 16
#: layers that are the identity in eval mode, where the probe runs
EVAL_IDENTITY = frozenset({"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                           "StochasticDepth"})


class LayerStatsFile(Callback):
    """``layer_stats.jsonl`` in the run folder; a resumed run drops the lines after its step."""

    def __init__(self, path: Path, keep_through_step: int = 0) -> None:
        self.path = path
        keep_lines(path, (lambda r: r.get("step", 0) <= keep_through_step)
                   if keep_through_step else None)

    def on_layer_stats(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:  # NaN/∞ as text: strict JSON
            f.write(json.dumps(_clean(record), allow_nan=False) + "\n")


class LayerStatsProbe:
    """Samples a trainer's layers; ``wrap`` turns the loop's step into one that samples."""

    def __init__(self, t: Trainer, every: int, bins: int) -> None:
        self.t, self.every, self.bins = t, every, bins
        # every layer, those inside block instances by their paths (``layer1.0.conv1``)
        flat = flatten(t.project.graph, getattr(t, "analysis", None))
        self.modules = {n: m for n, m in layer_modules(t.model).items() if n in flat.graph}
        self.params: dict[str, list[nn.Parameter]] = {}
        for name, p in t.model.named_parameters():
            node = layer_of(t.model, name)
            if p.requires_grad and node in self.modules:
                self.params.setdefault(node, []).append(p)
        # the parameters in one list, each with its node's position: norms are summed per node
        # with one index_add_ at every sample point
        self.param_list = [p for ps in self.params.values() for p in ps]
        self.owner = torch.tensor([i for i, ps in enumerate(self.params.values()) for _ in ps],
                                  dtype=torch.long, device=t.device)
        self._picks: dict[str, tuple[int, torch.Tensor]] = {}
        #: per node, the axis of a 3-D output that holds its units: 1 after a 1-D convolution,
        #: pooling or normalisation ([channels, length]); 2 for sequences ([length, features])
        g = flat.graph
        self.order = {n: i for i, n in enumerate(flat.listed)}
        self.unit_axis = {n: 1 if channels_first(g, n) else 2 for n in self.modules}
        self.seconds = 0.0  # spent sampling (the benchmark reports it against training time)
        #: nodes that pass their input through unchanged in eval mode (dropout): their figures
        #: are their input's, copied instead of computed again
        self.copies = {n: g.predecessors(n)[0] for n in self.modules
                       if g.nodes[n].type in EVAL_IDENTITY and len(g.predecessors(n)) == 1
                       and g.predecessors(n)[0] in self.modules}
        self.probe_x = self._probe_batch()

    def _probe_batch(self) -> torch.Tensor | None:
        """The first held-out samples (validation, else the first training samples): the same
        inputs at every sample point, so that changes come from the network alone."""
        t, b = self.t, self.t.bundle
        if b.n_val:
            # a DataLoader (images read from disk) seeds itself from the global generator:
            # forked, so that the run draws what it would without statistics
            with torch.random.fork_rng(devices=[]):
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
        t = self.t

        def sampled(xb: torch.Tensor, yb: torch.Tensor) -> None:
            if (t.step + 1) % self.every:
                step(xb, yb)
                return
            t0 = time.perf_counter()
            before = [p.detach().clone() for p in self.param_list]
            t1 = time.perf_counter()
            step(xb, yb)
            t2 = time.perf_counter()
            try:
                self.sample(before)
            except (RuntimeError, ValueError, OSError) as exc:  # never the run's failure
                self.every = 1 << 62
                t.message(f"layer statistics stopped: {first_line(exc)}")
            self.seconds += (t1 - t0) + (time.perf_counter() - t2)  # its own cost, not the step's

        return sampled

    def _subsample(self, node: str, v: torch.Tensor) -> torch.Tensor:
        """At most ``STAT_VALUES`` of a layer's output values for its mean, spread, zeros and
        histogram: the same positions at every sample point, drawn once from a generator of
        the probe's own (the run's random streams are never touched)."""
        if v.numel() <= STAT_VALUES:
            return v
        cached = self._picks.get(node)
        if cached is None or cached[0] != v.numel():
            gen = torch.Generator().manual_seed(len(self._picks))
            # with replacement: O(picks), where a permutation of a large output took 30 ms
            idx = torch.randint(v.numel(), (STAT_VALUES,), generator=gen).sort().values
            cached = self._picks[node] = (v.numel(), idx.to(v.device))
        return v[cached[1]]

    @torch.no_grad()
    def sample(self, before: list[torch.Tensor]) -> None:
        """``before``: ``param_list``'s values before the step just taken."""
        t = self.t
        nodes = list(self.params)
        figures: dict[str, torch.Tensor] = {}
        if nodes:  # per tensor one norm each of gradient, weights and update, summed per node
            ps = self.param_list
            zero = torch.zeros((), device=t.device)
            norms = torch.stack([
                torch.stack([torch.linalg.vector_norm(p.grad) if p.grad is not None else zero
                             for p in ps]),
                torch.stack([torch.linalg.vector_norm(p) for p in ps]),
                torch.stack([torch.linalg.vector_norm(p - b)
                             for p, b in zip(ps, before, strict=True)]),
            ]).float().pow(2)
            per_node = torch.zeros(3, len(nodes), device=t.device).index_add_(1, self.owner,
                                                                              norms)
            figures["params"] = per_node.sqrt().flatten()
        acts = self._activations() if self.probe_x is not None else {}
        if acts:
            figures["acts"] = torch.stack([torch.stack(v[:7]) for v in acts.values()]).flatten()
            figures["hists"] = torch.stack([v[7] for v in acts.values()]).flatten()
        flat = torch.cat([v.float() for v in figures.values()]).tolist() if figures else []
        read, at = {}, 0  # one read of everything from the device
        for k, v in figures.items():
            read[k], at = flat[at:at + v.numel()], at + v.numel()
        layers: dict[str, dict[str, Any]] = {}
        if "params" in read:
            g, w, d = (read["params"][i * len(nodes):(i + 1) * len(nodes)] for i in range(3))
            for i, node in enumerate(nodes):
                layers[node] = {"grad_norm": g[i], "weight_norm": w[i],
                                "update_ratio": d[i] / w[i] if w[i] > 0 else 0.0}
        flagged = []
        for i, node in enumerate(acts):
            mean, std, zeros, dead, lo, hi, total = read["acts"][i * 7:(i + 1) * 7]
            counts = read["hists"][i * self.bins:(i + 1) * self.bins]
            layers.setdefault(node, {}).update(
                act_mean=mean, act_std=std, zero_frac=zeros, dead_frac=dead,
                hist={"lo": lo, "hi": hi, "counts": [int(c) for c in counts]})
            if not math.isfinite(total):
                flagged.append(node)
        for node, n in self._count_nonfinite(flagged).items():
            layers[node]["nonfinite"] = n
        record = {"step": t.step, "epoch": t.epoch + 1,
                  "layers": {n: layers[n] for n in sorted(layers, key=self.order.__getitem__)}}
        t.callbacks.on_layer_stats(record)

    def _count_nonfinite(self, nodes: list[str]) -> dict[str, int]:
        """The exact count of NaN and ∞ in these nodes' outputs: another probe pass, taken
        only when an output's sum was not finite (counting on every pass costs more than the
        rest of the statistics together)."""
        counts: dict[str, int] = {}
        if not nodes:
            return counts

        def hook(node: str) -> Callable[..., None]:
            def record(_m: nn.Module, _inputs: Any, output: Any) -> None:
                if isinstance(output, torch.Tensor) and output.is_floating_point():
                    counts[node] = int(output.numel() - torch.isfinite(output).sum())
            return record

        self._probe({n: hook(n) for n in nodes})
        return {n: c for n, c in counts.items() if c}

    def _probe(self, hooks: dict[str, Callable[..., None]]) -> None:
        """One forward pass over the probe batch in eval mode, with ``hooks`` for that pass."""
        model = self.t.model
        handles = [self.modules[n].register_forward_hook(h) for n, h in hooks.items()
                   if n in self.modules]
        was_training = model.training
        try:
            model.eval()
            with self.t.precision.forward_context():  # as the run computes (fp16 overflows)
                model(self.probe_x)
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)

    def _activations(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each node's output on the probe batch: (mean, std, share of zeros, share of dead
        units, low, high, sum, histogram), still on the device. The sum is only read for its
        finiteness: a NaN or ∞ anywhere makes it non-finite."""
        out: dict[str, tuple[torch.Tensor, ...]] = {}
        bins = self.bins

        def hook(node: str) -> Callable[..., None]:
            def record(_m: nn.Module, _inputs: Any, output: Any) -> None:
                if not isinstance(output, torch.Tensor) or not output.is_floating_point() \
                        or not output.numel():
                    return
                a = output.detach().float()
                # a dead unit (a feature, or an image's channel) is zero for every sample
                if a.dim() >= 2:
                    unit = self.unit_axis.get(node, 2) if a.dim() == 3 else 1
                    rest = tuple(d for d in range(a.dim()) if d != unit)
                    dead = (a.abs().amax(dim=rest) == 0).float().mean()
                else:
                    dead = (a == 0).all().float()
                v = self._subsample(node, a.flatten())
                v = torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
                lo, hi = torch.aminmax(v)
                std, mean = torch.std_mean(v, correction=0)
                out[node] = (mean, std, (v == 0).float().mean(), dead, lo, hi, a.sum(),
                             _histogram(v, bins, lo, hi))
            return record

        self._probe({n: hook(n) for n in self.modules if n not in self.copies})
        for node, source in self.copies.items():
            if source in out:
                out[node] = out[source]
        return out


def _histogram(v: torch.Tensor, bins: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Counts over [lo, hi] in ``bins`` equal bins. On a GPU without reading ``lo``/``hi``
    back (``torch.histc`` wants Python numbers: a sync per layer); on the CPU, where reading
    them costs nothing, in one ``histc`` instead of six small ops."""
    if v.device.type == "cpu":
        a, b = float(lo), float(hi)
        if a < b:
            return torch.histc(v, bins, a, b)
    width = (hi - lo).clamp_min(1e-12) / bins
    idx = ((v - lo) / width).long().clamp_(0, bins - 1)
    return torch.bincount(idx, minlength=bins).float()


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
