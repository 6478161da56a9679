"""The network doctor: mistakes that pass the shape checks but teach the network the wrong
thing (or crash the run once the data is loaded), each with its reason and a fix.

``RULES`` is the one table: a code, a severity, what the rule finds, why it matters (the
tooltip in the Problems list and the text of ``docs/doctor.md``) and what its fix does.
``diagnose(project, analysis)`` runs them after ``shapes.analyze``; it reads only the project,
the analysis and what each built-in dataset is known to hold, so it runs on every edit. Its
findings and their fixes are the plain data of ``findings.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from .blockdef import BLOCK
from .catalog import Shape
from .choices import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from .findings import Edit, Finding, Fix, InsertLayer, RemoveNode, SetParams, SetSetting, lift
from .flat import Flat, flatten
from .graph import Graph
from .project import Project
from .settings import DataSettings
from .shapes import Analysis, Severity, analyze, describe

# -- what is known without loading the data ---------------------------------------------


@dataclass(frozen=True)
class DataFacts:
    """What a dataset holds, as far as it is known before loading it."""

    task: str | None = None  # "classification", "regression", or None: decided by the data
    classes: int | None = None
    targets: int | None = None  # regression targets per sample
    sample: Shape | None = None
    image: bool = False


_MNIST = DataFacts("classification", 10, sample=(1, 28, 28), image=True)
#: the built-in datasets (``studio/data/sources.py`` loads them)
BUILT_IN: dict[str, DataFacts] = {
    "digits": DataFacts("classification", 10, sample=(64,)),
    "iris": DataFacts("classification", 3, sample=(4,)),
    "wine": DataFacts("classification", 3, sample=(13,)),
    "breast-cancer": DataFacts("classification", 2, sample=(30,)),
    "diabetes": DataFacts("regression", targets=1, sample=(10,)),
    "mnist-5k": _MNIST, "mnist": _MNIST, "fashion-mnist": _MNIST,
    "cifar10": DataFacts("classification", 10, sample=(3, 32, 32), image=True),
}


def data_facts(data: DataSettings) -> DataFacts:
    """Built-in datasets are known; files only by the options the user set."""
    if data.dataset in BUILT_IN:
        return BUILT_IN[data.dataset]
    opts = data.options
    if data.dataset == "image-folder":
        size = opts.get("size", 32)
        h, w = (size, size) if isinstance(size, int) else size
        channels = 1 if opts.get("color", "rgb") == "grayscale" else 3
        return DataFacts("classification", sample=(channels, h, w), image=True)
    task = opts.get("task", "auto")
    return DataFacts(task if task in ("classification", "regression") else None)


#: what each loss wants from the network: "scores" (raw, any real numbers),
#: "log_probabilities" or "values" (regression), and the squashing it applies itself
LOSS_TAKES: dict[str, tuple[str, str | None]] = {
    "CrossEntropyLoss": ("scores", "log-softmax"),
    "BCEWithLogitsLoss": ("scores", "a sigmoid"),
    "MultiMarginLoss": ("scores", None),
    "NLLLoss": ("log_probabilities", None),
    "MSELoss": ("values", None),
    "L1Loss": ("values", None),
    "SmoothL1Loss": ("values", None),
    "HuberLoss": ("values", None),
}


@dataclass(frozen=True)
class Case:
    """What every rule reads: the network opened into its layers (``flat.py``), so rules see
    the layers inside blocks, named by their paths (``layer1.conv1``)."""

    project: Project
    analysis: Analysis  # the opened network's
    facts: DataFacts
    flat: Flat

    @property
    def graph(self) -> Graph:
        return self.flat.graph

    def problems_for(self, node: str) -> bool:
        """Whether shape inference reports a problem on the node (inside a block: on the
        instance, where problems inside blocks are reported)."""
        return bool(self.analysis.problems_for(self.flat.top(node)))

    @property
    def loss(self) -> str:
        return str(self.project.training.loss["type"])

    def shape(self, node: str) -> Shape | None:
        info = self.analysis.nodes.get(node)
        return info.shape if info is not None else None

    def name(self, node: str) -> str:
        return describe(self.graph, node)


class Hit(NamedTuple):
    """What a rule's check reports; ``diagnose`` adds the rule's code, severity and reason."""

    node: str | None
    message: str
    fix: Fix | None
    explains: str | None = None


# -- the rules ----------------------------------------------------------------------------


def _remove(case: Case, node: str) -> Fix:
    return Fix(f"remove {case.name(node)} and join its neighbours", (RemoveNode(node),))


def _set_loss(case: Case, loss: str) -> SetSetting:
    """The loss switched to ``loss``, keeping its reduction."""
    old = case.project.training.loss
    value = {"type": loss, **({"reduction": old["reduction"]} if "reduction" in old else {})}
    return SetSetting("training", "loss", value)


_SQUASHED = {"probabilities": "probabilities", "sigmoid": "sigmoid outputs",
             "log_probabilities": "log-probabilities"}


def _squashed_output(case: Case, squash: str) -> Iterator[Hit]:
    """The network's output already squashed the way the loss is about to squash it."""
    out = case.analysis.output
    applies = LOSS_TAKES.get(case.loss, ("", None))[1]
    if out is None or applies is None:
        return
    spec = case.graph.nodes[out].spec
    if spec is None or spec.squashes != squash:
        return
    what = _SQUASHED[squash]
    if squash == "log_probabilities" and case.loss == "CrossEntropyLoss":
        fix = Fix("switch the loss to NLLLoss, which takes log-probabilities",
                  (_set_loss(case, "NLLLoss"),))
        advice = "use NLLLoss or remove it"
    else:
        fix, advice = _remove(case, out), "remove it"
    yield Hit(out, f"{case.name(out)} gives {what} but {case.loss} wants raw scores and "
                   f"applies {applies} itself; {advice}", fix)


def _nll_without_log_softmax(case: Case) -> Iterator[Hit]:
    out = case.analysis.output
    if LOSS_TAKES.get(case.loss, ("", None))[0] != "log_probabilities" or out is None \
            or case.facts.task == "regression":  # the loss itself is wrong: see _loss_task
        return
    spec = case.graph.nodes[out].spec
    if spec is None or spec.squashes == "log_probabilities":
        return
    edits: list[Edit] = [_set_loss(case, "CrossEntropyLoss")]
    label = "switch the loss to CrossEntropyLoss"
    if spec.squashes is not None:
        edits.insert(0, RemoveNode(out))
        label = f"remove {case.name(out)} and switch the loss to CrossEntropyLoss"
    gives = _SQUASHED.get(spec.squashes or "", spec.squashes or "raw scores")
    yield Hit(out, f"{case.loss} takes log-probabilities but {case.name(out)} gives {gives}; "
                   "use CrossEntropyLoss on raw scores", Fix(label, tuple(edits)))


def _channels_last(case: Case) -> Iterator[Hit]:
    g = case.graph
    for nid in case.analysis.inputs:
        p = g.nodes[nid].resolved_params()
        shape = tuple(p["shape"])
        if len(shape) != 3 or p["dtype"] != "float32":
            continue
        h, w, c = shape
        convs = [s for s in g.successors(nid) if _reads_images(g, s)]
        sample = case.facts.sample
        known = sample is not None and len(sample) == 3 and \
            shape == (sample[1], sample[2], sample[0]) != sample
        if not known and not (c in (1, 3, 4) and min(h, w) > 4 and convs):
            continue
        failing = next((s for s in convs if case.problems_for(s)), None)
        why = f"; this is why {case.name(failing)} does not fit" if failing else ""
        first = [c, h, w]
        yield Hit(nid, f"{case.name(nid)}: shape {list(shape)} is channels-last (height, width, "
                       "channels, as Keras and image files store it) but PyTorch layers read "
                       f"[channels, height, width]: make it {first}{why}",
                  Fix(f"set the shape of {case.name(nid)} to {first}",
                      (SetParams(nid, {**g.nodes[nid].params, "shape": first}),)), failing)


def _reads_images(g: Graph, node: str) -> bool:
    """A channels-first layer (Conv2d, pooling…); a block whose analysis failed (so it was not
    opened): one whose inputs feed such a layer."""
    n = g.nodes[node]
    defn = g.blocks.get(str(n.params.get("block"))) if n.type == BLOCK else None
    if defn is not None:
        return any(_reads_images(defn.graph, s) for p in defn.inputs
                   for s in defn.graph.successors(p))
    return bool(n.spec and n.spec.channels_last)


def _width_fix(case: Case, width: int) -> Fix | None:
    """Set ``out_features`` on the layer that decides the output's width: the output node, or
    the last such layer before shape-keeping layers (a Softmax, a Dropout) at the end."""
    g, nid = case.graph, case.analysis.output
    while nid is not None:
        spec = g.nodes[nid].spec
        if spec is not None and "out_features" in spec.schema:
            return Fix(f"set out_features of {case.name(nid)} to {width}",
                       (SetParams(nid, {**g.nodes[nid].params, "out_features": width}),))
        ins = g.in_edges(nid)
        if len(ins) != 1 or case.shape(ins[0].src) != case.shape(nid):
            return None
        nid = ins[0].src
    return None


def _output_width(case: Case, extra: bool) -> Iterator[Hit]:
    """The output against the classes (or regression targets) the dataset is known to have."""
    out, f, loss = case.analysis.output, case.facts, case.loss
    shape = case.shape(out) if out else None
    if out is None or shape is None:
        return
    dataset = case.project.data.dataset
    if f.task == "regression" and f.targets and loss in REGRESSION_LOSSES:
        if shape != (f.targets,) and not extra:
            yield Hit(out, f"{case.name(out)} gives {list(shape)} but {dataset} has "
                           f"{f.targets} regression target(s): make it [{f.targets}]",
                      _width_fix(case, f.targets) if len(shape) == 1 else None)
        return
    k = f.classes
    if f.task != "classification" or not k or loss not in CLASSIFICATION_LOSSES:
        return
    if loss == "BCEWithLogitsLoss":
        wrong = shape not in ((k,), (1,) if k == 2 else (k,))
    else:
        wrong = len(shape) != 1 or shape[0] < k
    wider = not wrong and loss != "BCEWithLogitsLoss" and shape[0] > k
    if (wrong and not extra) or (wider and extra):
        verdict = ("the extra scores are never a target; make it" if wider
                   else "a run refuses this; make it")
        yield Hit(out, f"{case.name(out)} gives {list(shape)} but {dataset} has {k} classes: "
                       f"{verdict} [{k}]", _width_fix(case, k) if len(shape) == 1 else None)


def _loss_task(case: Case, task: str) -> Iterator[Hit]:
    """A loss for the other kind of target than the dataset holds."""
    f, loss, out = case.facts, case.loss, case.analysis.output
    wrong = REGRESSION_LOSSES if task == "classification" else CLASSIFICATION_LOSSES
    if f.task != task or loss not in wrong:
        return
    better = "CrossEntropyLoss" if task == "classification" else "MSELoss"
    held = "class labels" if task == "classification" else "numbers to predict"
    who = f"{case.name(out)}: " if out else ""
    yield Hit(out, f"{who}training.loss {loss} does not suit {case.project.data.dataset}, "
                   f"whose targets are {held}: use {better}",
              Fix(f"switch the loss to {better}", (_set_loss(case, better),)))


def _stacked_affine(case: Case) -> Iterator[Hit]:
    g = case.graph
    for e in g.edges:
        a, b = g.nodes[e.src].spec, g.nodes[e.dst].spec
        if a and b and a.affine and b.affine and case.shape(e.dst) is not None:
            yield Hit(e.dst, f"{case.name(e.src)} feeds {case.name(e.dst)} directly: two "
                             "affine layers in a row compute one affine map; put an activation "
                             "such as ReLU between them",
                      Fix(f"insert ReLU between {e.src} and {e.dst}",
                          (InsertLayer("ReLU", e.src, e.dst, e.port),)))


def _sequence_into_affine(case: Case) -> Iterator[Hit]:
    """A recurrent layer's every step fed to Linear, and the network ends per step."""
    g, a = case.graph, case.analysis
    final = a.output_shape()
    if final is None or len(final) < 2:
        return
    for e in g.edges:
        src, dst = g.nodes[e.src], g.nodes[e.dst]
        if not (src.spec and dst.spec and src.spec.category == "Recurrent" and dst.spec.affine):
            continue
        if src.resolved_params().get("output") != "sequence":
            continue
        yield Hit(e.src, f"{case.name(e.src)} outputs every step and {case.name(e.dst)} "
                         f"applies to each step, so the network gives {list(final)}, one "
                         "prediction per step; for one per sequence set output to 'last'",
                  Fix(f"set output of {case.name(e.src)} to 'last'",
                      (SetParams(e.src, {**src.params, "output": "last"}),)))


def _images_raw(case: Case) -> Iterator[Hit]:
    data = case.project.data
    if case.facts.image and not data.normalize:
        node = case.analysis.inputs[0] if case.analysis.inputs else None
        who = f"{case.name(node)}: " if node else ""
        yield Hit(node, f"{who}{data.dataset} holds images and data.normalize is off: pixels "
                        "reach the network as 0…1, uncentred; turn normalize on",
                  Fix("turn data.normalize on", (SetSetting("data", "normalize", True),)))


@dataclass(frozen=True)
class Rule:
    """One entry of the doctor's table (``docs/doctor.md`` is generated from it)."""

    code: str
    severity: Severity
    finds: str  # one line: what it looks for
    reason: str  # why it matters, for someone learning
    remedy: str  # what its fix does
    check: Callable[[Case], Iterable[Hit]]


RULES: tuple[Rule, ...] = (
    Rule("output-width", "error",
         "The last layer gives a different number of scores than the dataset has classes "
         "(or regression targets).",
         "A classifier gives one score per class (BCEWithLogitsLoss: one per class, or a "
         "single one for two classes): the loss compares the score of the right class with "
         "the others. With fewer scores than classes some labels point past the end, so a run "
         "refuses to start; a regression network gives one value per target. The built-in "
         "datasets know their classes; for CSV and .npz files the check waits for the data.",
         "Sets `out_features` of the Linear that decides the width (the last layer, or the "
         "last before a Softmax or Dropout) to the number of classes.",
         lambda c: _output_width(c, extra=False)),
    Rule("extra-outputs", "warning",
         "The last layer gives more scores than the dataset has classes.",
         "Scores beyond the last class are never the right answer, so training only pushes "
         "them down; they cost parameters, and the accuracy counts a prediction of one of "
         "them as wrong. Usually the layer was copied from a network for another dataset.",
         "Sets `out_features` of the last Linear to the number of classes.",
         lambda c: _output_width(c, extra=True)),
    Rule("regression-loss-on-classes", "error",
         "A regression loss (MSELoss, L1Loss, SmoothL1Loss, HuberLoss) on a dataset of class "
         "labels.",
         "Class labels are names, not quantities: with MSELoss, predicting class 9 for a 1 "
         "costs more than predicting 2, as if digits were measurements. Classification "
         "losses score each class separately. The run refuses this pairing.",
         "Switches the loss to CrossEntropyLoss.",
         lambda c: _loss_task(c, "classification")),
    Rule("classification-loss-on-regression", "error",
         "A classification loss on a dataset whose targets are numbers to predict.",
         "CrossEntropyLoss and the other classification losses need whole-number class "
         "labels; a regression target such as a price or a dose is a quantity, scored by how "
         "far off the prediction is. The run refuses this pairing.",
         "Switches the loss to MSELoss.",
         lambda c: _loss_task(c, "regression")),
    Rule("double-softmax", "warning",
         "Softmax as the last layer before CrossEntropyLoss or BCEWithLogitsLoss.",
         "These losses take raw scores (logits) and apply log-softmax or a sigmoid "
         "themselves, as PyTorch's tutorials leave the last Linear bare. A Softmax before "
         "them squashes twice: every score lands in 0…1, the loss can never get close to "
         "zero and the gradients shrink, so training is slow and stalls early. Keras puts "
         "`activation='softmax'` in the model because its losses expect probabilities.",
         "Removes the Softmax; predictions still come out as the highest score.",
         lambda c: _squashed_output(c, "probabilities")),
    Rule("double-sigmoid", "warning",
         "Sigmoid as the last layer before BCEWithLogitsLoss or CrossEntropyLoss.",
         "BCEWithLogitsLoss applies the sigmoid itself, in a form that stays accurate for "
         "large scores. A Sigmoid before it squashes twice: outputs are stuck between 0.5 "
         "and 0.73, and the gradients nearly vanish. CrossEntropyLoss likewise wants raw "
         "scores, not values squashed into 0…1.",
         "Removes the Sigmoid.",
         lambda c: _squashed_output(c, "sigmoid")),
    Rule("log-softmax-before-cross-entropy", "warning",
         "LogSoftmax as the last layer before a loss that applies log-softmax or a sigmoid.",
         "CrossEntropyLoss is LogSoftmax followed by NLLLoss. Before CrossEntropyLoss a "
         "LogSoftmax does the work twice (harmless, since log-softmax of log-probabilities "
         "gives them back, but it hides what the network outputs); NLLLoss is the loss that "
         "takes log-probabilities.",
         "Switches the loss to NLLLoss (before BCEWithLogitsLoss: removes the LogSoftmax).",
         lambda c: _squashed_output(c, "log_probabilities")),
    Rule("nll-without-log-softmax", "warning",
         "NLLLoss on an output that is not log-probabilities.",
         "NLLLoss only picks minus the output of the right class. On raw scores the network "
         "can lower it without limit by growing that score, so the loss goes negative and "
         "keeps falling while nothing is learned; on probabilities it is minus the "
         "probability, a weak signal that fades for confident mistakes.",
         "Switches the loss to CrossEntropyLoss (removing a Softmax or Sigmoid at the end).",
         _nll_without_log_softmax),
    Rule("channels-last-input", "warning",
         "An image Input shaped [height, width, channels], e.g. [28, 28, 1] or [32, 32, 3].",
         "Keras and image files keep the channels last; PyTorch's Conv2d and pooling layers "
         "read [channels, height, width]. A channels-last shape makes a convolution slide over "
         "width and channels as if they were the image: the kernel does not fit (28 by 1) or, "
         "worse, it fits and learns from scrambled pixels.",
         "Reorders the Input's shape to channels first.",
         _channels_last),
    Rule("stacked-linear", "warning",
         "Two affine layers (Linear) wired directly one after the other.",
         "A Linear layer computes Wx + b. Two in a row compute W₂(W₁x + b₁) + b₂, which is "
         "again one Wx + b: the extra layer adds parameters but no power. Depth only helps "
         "with a non-linear activation (ReLU, GELU, Tanh) between the layers.",
         "Inserts a ReLU between the two layers.",
         _stacked_affine),
    Rule("sequence-into-linear", "warning",
         "An LSTM, GRU or RNN with output 'sequence' feeding Linear, and the network ends "
         "with one prediction per step.",
         "With output 'sequence' a recurrent layer gives its state at every step "
         "([steps, features]) and a Linear after it applies to each step on its own. To "
         "classify a whole sequence (Keras' `return_sequences=False`) the layer should give "
         "only its last state. Keep 'sequence' when you do want one prediction per step.",
         "Sets the recurrent layer's output to 'last'.",
         _sequence_into_affine),
    Rule("images-not-normalized", "warning",
         "Image data with `data.normalize` off.",
         "Without normalisation pixels reach the network as 0…1: all positive, centred far "
         "from zero and different per channel. Standardising each channel with the training "
         "part's mean and spread lets the first layers start in their useful range and "
         "usually trains faster and steadier.",
         "Turns `data.normalize` on.",
         _images_raw),
)


def diagnose(project: Project, analysis: Analysis | None = None) -> list[Finding]:
    """Every rule's findings, in the table's order; rules skip what the analysis left
    unknown, so a broken graph gets no findings about the parts that did not infer."""
    a = analysis if analysis is not None else analyze(project.graph)
    flat = flatten(project.graph, a)
    case = Case(project, flat.analysis, data_facts(project.data), flat)
    out: list[Finding] = []
    alike: dict[tuple[str, str | None, str], int] = {}  # the same hit in each repetition
    more: dict[int, int] = {}
    for rule in RULES:  # a layer inside a block marks its instance and names its path
        for hit in rule.check(case):
            top = hit.node and flat.top(hit.node)
            key = (rule.code, top, _REPETITION.sub(".", hit.message))
            if top != hit.node and key in alike:
                more[alike[key]] = more.get(alike[key], 0) + 1
                continue
            alike[key] = len(out)
            out.append(Finding(rule.code, rule.severity, top, hit.message, rule.reason,
                               lift(hit.fix, flat.top), hit.explains and flat.top(hit.explains)))
    for i, n in more.items():  # one entry for a repeated block, saying how often
        out[i] = replace(out[i], message=f"{out[i].message} (and in {n} more "
                                          f"repetition{'s' if n > 1 else ''})")
    return out


#: a repetition's number in a layer's path (``stage1.0.conv1``)
_REPETITION = re.compile(r"\.\d+\.")


# -- docs/doctor.md -----------------------------------------------------------------------

_START, _END = "<!-- doctor:rules -->", "<!-- /doctor:rules -->"


def rules_markdown() -> str:
    """The rules section of ``docs/doctor.md``, from the tables: the static rules, then the
    run-time rules over live layer statistics (``studio/core/health.py``)."""
    from .health import RUN_RULES

    lines: list[str] = []
    for r in RULES:
        lines += [f"### `{r.code}` ({r.severity})", "", f"**Finds:** {r.finds}", "",
                  r.reason, "", f"**Fix:** {r.remedy}", ""]
    lines += ["## Run-time rules", "",
              "With `training.layer_stats` set, these run on every sample of the live "
              "statistics while the run trains; they name the node and the step, and the "
              "canvas marks the node.", ""]
    for rr in RUN_RULES:
        lines += [f"### `{rr.code}` ({rr.severity})", "", f"**Finds:** {rr.finds}", "",
                  rr.reason, "", f"**Remedy:** {rr.remedy}", ""]
    return "\n".join(lines).rstrip() + "\n"


def with_rules(text: str) -> str:
    """``text`` with its ``<!-- doctor:rules -->`` block replaced by the current table."""
    before, rest = text.split(_START, 1)
    _, after = rest.split(_END, 1)
    return f"{before}{_START}\n{rules_markdown()}{_END}{after}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "doctor.md"
    if "--write" in sys.argv:
        doc.write_text(with_rules(doc.read_text()))
    else:
        print(rules_markdown(), end="")
