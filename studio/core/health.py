"""Layer health during a run, from its live statistics (``training.layer_stats``).

``LayerHealth`` keeps each node's history of the figures in ``layer_stats.jsonl`` (or its
``layer_stats`` events), gives each node a mark for the canvas (a level, a colour value, a
summary and the recent history of its key figures, drawn as sparklines) and runs the doctor's
run-time rules over the latest sample: ``RUN_RULES`` is their table, documented in
``docs/doctor.md`` beside the static rules. Plain data in, plain data out: the window, the
Train view and tests share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .blockdef import BLOCK
from .findings import Finding
from .flat import layer_types
from .graph import Graph

Level = Literal["ok", "warn", "bad"]

#: how many samples of each figure a node keeps (a sparkline's worth, and the doctor's)
HISTORY = 200
#: how many activation histograms a node keeps (the layer panel's ridges)
RIDGES = 24
#: nodes whose output is a rectifier: a zero is a unit that let nothing through
RECTIFIERS = frozenset({"ReLU", "ReLU6"})
#: squashing activations and the share of their range counted as saturated at each end
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}
SATURATED_EDGE = 0.02  # within 2% of the range from a bound
DEAD_SHARE = 0.5
SATURATED_SHARE = 0.5
VANISHING, EXPLODING = 1e-3, 1e3  # first ÷ last layer's gradient norm
SPARK_WIDTH = 48  # samples a tooltip's sparkline shows


@dataclass
class Mark:
    """What the canvas shows on a node: ``level`` picks the ring, ``value`` (0…1) the colour
    along the scale (0 blue: gradients vanished or units dead; 0.5 green; 1 red: gradients
    exploding), ``text`` the tooltip, ``series`` the figures drawn beside it as sparklines:
    (name, recent finite values, on a log scale)."""

    level: Level
    value: float
    text: str
    series: tuple[tuple[str, tuple[float, ...], bool], ...] = ()


@dataclass
class LayerHealth:
    """Each node's history of live statistics, and the marks and findings drawn from it."""

    #: node id → layer type, in graph order; inside blocks, layer path → type (``for_graph``)
    types: Mapping[str, str]
    step: int = 0
    history: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: node → its recent activation histograms: (step, low, high, counts)
    hists: dict[str, list[tuple[int, float, float, list[int]]]] = field(default_factory=dict)

    @classmethod
    def for_graph(cls, graph: Graph) -> LayerHealth:
        """Health for a run of ``graph``: every layer's type, those inside blocks too."""
        return cls(layer_types(graph))

    def add(self, record: Mapping[str, Any]) -> None:
        """One sample (a line of ``layer_stats.jsonl`` or a ``layer_stats`` event); a step
        already held is skipped (a resumed run's file read while its events arrive)."""
        step = int(record.get("step", self.step))
        if self.steps and step <= self.steps[-1]:
            return
        self.step = step
        self.steps.append(self.step)
        del self.steps[:-HISTORY]
        layers = record.get("layers") or {}
        for node, figures in layers.items():
            if not isinstance(figures, Mapping):
                continue
            figures = {k: _number(v) for k, v in figures.items()}
            self.latest[node] = figures
            hist = figures.get("hist")
            if isinstance(hist, Mapping) and isinstance(hist.get("counts"), list):
                ridges = self.hists.setdefault(node, [])
                ridges.append((self.step, float(hist["lo"]), float(hist["hi"]),
                               list(hist["counts"])))
                del ridges[:-RIDGES]
            h = self.history.setdefault(node, {})
            for key, v in figures.items():
                if isinstance(v, int | float):
                    values = h.setdefault(key, [])
                    values.append(float(v))
                    del values[:-HISTORY]

    # -- marks ----------------------------------------------------------------------------

    def mark(self, node: str) -> Mark | None:
        d = self.latest.get(node)
        if d is None:
            return self._block_mark(node)
        kind = self.types.get(node, "")
        lines: list[str] = []
        series: list[tuple[str, tuple[float, ...], bool]] = []
        level: Level = "ok"
        value = 0.5
        if d.get("nonfinite"):
            level = "bad"
            lines.append(f"{int(d['nonfinite'])} non-finite values (NaN or ∞) in its output")
        if "grad_norm" in d:
            g = d["grad_norm"]
            value = _log_position(g)
            lines.append(f"gradient norm {_num(g)}")
            series.append(("gradient norm", self.recent(node, "grad_norm"), True))
            lines.append(f"update ÷ weight {_num(d['update_ratio'])} · weight norm "
                         f"{_num(d['weight_norm'])}")
            if not math.isfinite(g) or g > 1e3:
                level = "bad"
            elif g < 1e-7:
                level = _worse(level, "warn")
        if "zero_frac" in d:
            z = d["zero_frac"]
            if kind in RECTIFIERS:
                dead = d.get("dead_frac", 0.0)
                # on the gradients' scale: all alive sits where a healthy gradient does
                # (green), all dead where a vanished one does (blue)
                value = 0.5 * (1.0 - dead) if "grad_norm" not in d else value
                lines.append(f"{dead:.0%} of units dead")
                series.append(("units dead", self.recent(node, "dead_frac"), False))
                lines.append(f"{z:.0%} of outputs zero")
                if dead > DEAD_SHARE:
                    level = _worse(level, "warn" if dead < 0.9 else "bad")
            sat = saturated_share(kind, d)
            if sat is not None:
                lines.append(f"{sat:.0%} saturated")
                if sat > SATURATED_SHARE:
                    level = _worse(level, "warn")
            lines.append(f"activations mean {_num(d['act_mean'])} · std {_num(d['act_std'])}")
        return Mark(level, value, "\n".join(lines), tuple(series))

    def _block_mark(self, node: str) -> Mark | None:
        """A block instance's mark: its worst layer's, with a line per layer inside."""
        marks = [(k, m) for k in self.latest if k.startswith(node + ".")
                 if (m := self.mark(k)) is not None]
        if not marks:
            return None
        levels = ("ok", "warn", "bad")
        path, worst = max(marks, key=lambda km: levels.index(km[1].level))
        lines = [f"{len(marks)} layers inside" + ("" if worst.level == "ok" else
                                                   f"; the worst: {path}")]
        lines += [f"{k[len(node) + 1:]}: {m.text.splitlines()[0] if m.text else m.level}"
                  for k, m in marks[:8]]
        if len(marks) > 8:
            lines.append(f"… and {len(marks) - 8} more")
        return Mark(worst.level, worst.value, "\n".join(lines), worst.series)

    def recent(self, node: str, key: str, width: int = SPARK_WIDTH) -> tuple[float, ...]:
        """The figure's recent finite values: a NaN or ∞ sample has no place on a sparkline
        (the mark and the doctor say it)."""
        values = self.history.get(node, {}).get(key, [])[-width:]
        return tuple(v for v in values if math.isfinite(v))

    # -- the run-time doctor --------------------------------------------------------------

    def findings(self) -> list[Finding]:
        """The run-time rules' findings on the latest sample, in the table's order."""
        out = []
        for rule in RUN_RULES:  # a layer inside a block marks its instance (named in the text)
            for node, message in rule.check(self):
                out.append(Finding(rule.code, rule.severity, node.split(".", 1)[0],
                                   f"{message} (step {self.step})", rule.reason))
        return out

    def in_order(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The sampled layers in graph order; a block instance given by its id alone (not by
        its layers' paths) stands for the layers sampled inside it."""
        for node, kind in self.types.items():
            if node in self.latest:
                yield node, self.latest[node]
            elif kind == BLOCK:
                yield from ((k, d) for k, d in self.latest.items() if k.startswith(node + ".")
                            and k not in self.types)


def saturated_share(kind: str, d: Mapping[str, Any]) -> float | None:
    """The share of a Sigmoid's or Tanh's outputs within ``SATURATED_EDGE`` of a bound, read
    from its histogram (bins wholly inside the edges)."""
    if kind not in SATURATING or "hist" not in d:
        return None
    lo_b, hi_b = SATURATING[kind]
    edge = SATURATED_EDGE * (hi_b - lo_b)
    h = d["hist"]
    counts, lo, hi = h["counts"], h["lo"], h["hi"]
    total = sum(counts)
    if not total:
        return None
    width = (hi - lo) / len(counts) if hi > lo else 0.0
    near = 0
    for i, c in enumerate(counts):
        centre = lo + (i + 0.5) * width
        if centre <= lo_b + edge or centre >= hi_b - edge:
            near += c
    return float(near / total)


def _ends(h: LayerHealth) -> tuple[tuple[str, float], tuple[str, float]] | None:
    """The first and last parametric layers' gradient norms, in graph order."""
    grads = [(n, d["grad_norm"]) for n, d in h.in_order() if "grad_norm" in d]
    return (grads[0], grads[-1]) if len(grads) >= 2 else None


def _vanishing(h: LayerHealth) -> Iterable[tuple[str, str]]:
    ends = _ends(h)
    if ends is None:
        return
    (first, g0), (last, g1) = ends
    if g1 > 0 and 0 < g0 / g1 < VANISHING:  # 0 exactly: dead units, named by their rule
        yield first, (f"gradients vanish: {first}'s gradient norm {_num(g0)} is "
                      f"{g1 / max(g0, 1e-30):.0e}× smaller than {last}'s ({_num(g1)})")


def _exploding(h: LayerHealth) -> Iterable[tuple[str, str]]:
    ends = _ends(h)
    if ends is None:
        return
    (first, g0), (last, g1) = ends
    if g1 > 0 and math.isfinite(g1) and not g0 / g1 <= EXPLODING:  # ∞ and NaN explode too
        yield first, (f"gradients explode: {first}'s gradient norm {_num(g0)} is "
                      f"{g0 / g1:.0e}× larger than {last}'s ({_num(g1)})")


def _dead(h: LayerHealth) -> Iterable[tuple[str, str]]:
    for n, d in h.in_order():
        if h.types.get(n) in RECTIFIERS and d.get("dead_frac", 0.0) > DEAD_SHARE:
            yield n, (f"{n}: {d['dead_frac']:.0%} of its units are dead (zero for every sample "
                      "of the probe batch)")


def _saturated(h: LayerHealth) -> Iterable[tuple[str, str]]:
    for n, d in h.in_order():
        share = saturated_share(h.types.get(n, ""), d)
        if share is not None and share > SATURATED_SHARE:
            yield n, f"{n}: {share:.0%} of its outputs sit at the ends of its range (saturated)"


def _nonfinite(h: LayerHealth) -> Iterable[tuple[str, str]]:
    first = next((n for n, d in h.in_order() if d.get("nonfinite")), None)
    if first is not None:
        yield first, (f"{first} is the first node whose output holds NaN or ∞ "
                      f"({int(h.latest[first]['nonfinite'])} values)")


@dataclass(frozen=True)
class RunRule:
    """One run-time rule (``docs/doctor.md`` lists them after the static ones)."""

    code: str
    severity: Literal["error", "warning"]
    finds: str
    reason: str
    remedy: str
    check: Callable[[LayerHealth], Iterable[tuple[str, str]]]


RUN_RULES: tuple[RunRule, ...] = (
    RunRule("nonfinite-activations", "error",
            "A layer's output holds NaN or ∞ on the probe batch; the first such layer in the "
            "graph is named.",
            "Once one value is NaN every layer after it is too, and the loss with it; the "
            "first layer that produced one is where to look: an overflow (too high a learning "
            "rate, an exp or log of a large value), a division by zero, or weights that have "
            "already become non-finite.",
            "Lower the learning rate, clip gradients (training.grad_clip), or normalise the "
            "input of that layer.",
            _nonfinite),
    RunRule("vanishing-gradients", "warning",
            f"The first parametric layer's gradient norm is below {VANISHING:g}× the last's.",
            "Each layer multiplies the gradient flowing back by its own derivative; through "
            "many squashing activations or badly scaled weights the product shrinks until "
            "the early layers stop learning while the late ones still do.",
            "Use ReLU-family activations, BatchNorm, residual connections or a Kaiming "
            "initialisation for the early layers.",
            _vanishing),
    RunRule("exploding-gradients", "warning",
            f"The first parametric layer's gradient norm is above {EXPLODING:g}× the last's.",
            "The same product grows instead: early layers take huge steps, the loss jumps "
            "and soon becomes NaN.",
            "Lower the learning rate, clip gradients (training.grad_clip) or add "
            "normalisation.",
            _exploding),
    RunRule("dead-relu", "warning",
            f"More than {DEAD_SHARE:.0%} of a ReLU's units are dead: zero for every sample of "
            "the probe batch.",
            "A ReLU unit whose input is negative for every sample outputs zero and passes no "
            "gradient back, so it never recovers: the layer works with fewer units than it "
            "has. A large learning rate or a large negative bias usually kills them.",
            "Lower the learning rate, use LeakyReLU or ELU, or check the initialisation.",
            _dead),
    RunRule("saturated-activation", "warning",
            f"More than {SATURATED_SHARE:.0%} of a Sigmoid's or Tanh's outputs lie within "
            f"{SATURATED_EDGE:.0%} of the range's ends (read from its histogram).",
            "At its ends a squashing function is flat: its derivative is almost zero and "
            "gradients through it vanish, so the layers before it stop learning.",
            "Normalise the input of the activation (BatchNorm), scale the initial weights "
            "down, or use ReLU.",
            _saturated),
)


def _number(v: Any) -> Any:
    """Figures as numbers: ``layer_stats.jsonl`` writes NaN and ∞ as text (strict JSON)."""
    if isinstance(v, str) and v.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(v)
    return v


def _log_position(g: float) -> float:
    """A gradient norm's place on the colour scale: 1e-6 → 0, 1e2 → 1 (log scale)."""
    if not math.isfinite(g) or g <= 0:
        return 1.0 if g != 0 else 0.0
    return min(1.0, max(0.0, (math.log10(g) + 6) / 8))


def _worse(a: Level, b: Level) -> Level:
    order = ("ok", "warn", "bad")
    return a if order.index(a) >= order.index(b) else b


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.2e}"
