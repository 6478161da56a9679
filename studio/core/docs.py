"""Reference docs generated from the catalog, the allow-lists and the settings schema.

``docs/layers.md`` is this module's output, and so are the settings tables of
``docs/project-format.md`` (between ``<!-- settings:NAME -->`` markers); a test keeps both
current. ``python -m studio.core.docs --write`` rewrites them.
"""

from __future__ import annotations

from . import catalog
from .choices import AUGMENTATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULERS, WARMUP
from .init import SCHEMES
from .params import ParamSpec, Schema
from .settings import (
    DataSettings,
    Distill,
    EarlyStopping,
    LayerStats,
    TrainingSettings,
    setting_specs,
)


def _default(p: ParamSpec) -> str:
    if p.default is None:
        return "empty"
    if isinstance(p.default, bool):
        return "true" if p.default else "false"
    if isinstance(p.default, str):
        return f'"{p.default}"'
    return str(p.default).replace("'", '"')


def _kind(p: ParamSpec) -> str:
    if p.kind == "choice":
        return " / ".join(p.choices)
    if p.kind == "ints":
        return f"int or {p.length} ints" if p.length > 1 else "int"
    if p.kind == "padding":
        return f"int, {p.length} ints, same / valid" if p.length > 1 else "int, same / valid"
    if p.kind == "shape":
        return "list of ints"
    rng = ""
    if p.min is not None and p.max is not None:
        rng = (f" {'(' if p.min_exclusive else '['}{_num(p.min)}, {_num(p.max)}"
               f"{')' if p.max_exclusive else ']'}")
    elif p.min is not None:
        rng = f" {'>' if p.min_exclusive else '≥'} {_num(p.min)}"
    elif p.max is not None:
        rng = f" {'<' if p.max_exclusive else '≤'} {_num(p.max)}"
    return p.kind + rng + (", or empty" if p.nullable else "")


def _range(p: ParamSpec) -> str:
    """``int, 1 ≤ x ≤ 100000`` and the like."""
    if p.kind == "choice":
        return " / ".join(p.choices)
    if p.min is None and p.max is None:
        return p.kind + (" or empty" if p.nullable else "")
    def grouped(x: float) -> str:
        return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"

    lo = "" if p.min is None else f"{grouped(p.min)} {'<' if p.min_exclusive else '≤'} "
    hi = "" if p.max is None else f" {'<' if p.max_exclusive else '≤'} {grouped(p.max)}"
    kind = "number" if p.kind == "float" else p.kind
    unit = f" ({p.unit})" if p.unit else ""
    return f"{kind}{unit}, {lo}x{hi}" + (" or empty" if p.nullable else "")


#: the settings that hold objects, which the scalar schema does not describe
_OBJECT_FIELDS = {
    "options": ("object", "`{}`"), "augment": ("list", "`[]`"),
    "loss": ("`{\"type\": …, params}`", "CrossEntropyLoss"),
    "optimizer": ("`{\"type\": …, params}`", "Adam, lr 0.001"),
    "scheduler": ("`{\"type\": …, params}` or empty", "empty"),
    "early_stopping": ("object or empty (below)", "empty"),
    "init_weights": ("path or empty", "empty"),
    "layer_stats": ("object or empty (below)", "empty"),
    "distill": ("object or empty (below)", "empty"),
    "teacher": ("path", "required"),
}
_SEE = {"dataset": " See [datasets](layers.md#datasets).",
        "loss": " See [losses](layers.md#losses).",
        "optimizer": " See [optimizers](layers.md#optimizers).",
        "scheduler": " See [schedulers](layers.md#schedulers); each takes `warmup_epochs`.",
        "augment": " See [augmentations](layers.md#augmentations)."}


def settings_table(model: type) -> list[str]:
    """The reference table of one settings model, straight from its fields."""
    specs = {p.name: p for p in setting_specs(model)}
    out = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        p = specs.get(name)
        if p is not None and name not in _OBJECT_FIELDS:
            kind, default = _range(p), _default(p)
        else:
            kind, default = _OBJECT_FIELDS.get(name, ("text", f'"{info.default}"'))
        out.append(f"| `{name}` | {kind} | {default} | {info.description}"
                   f"{_SEE.get(name, '')} |")
    return out


SETTINGS_TABLES = {"data": DataSettings, "training": TrainingSettings,
                   "early_stopping": EarlyStopping, "layer_stats": LayerStats,
                   "distill": Distill}


def with_settings_tables(text: str) -> str:
    """``text`` with every ``<!-- settings:NAME -->`` block replaced by the current table."""
    for name, model in SETTINGS_TABLES.items():
        start, end = f"<!-- settings:{name} -->", f"<!-- /settings:{name} -->"
        if start not in text:
            continue
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + start + "\n" + "\n".join(settings_table(model)) + "\n" + end + after
    return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _params_table(schema: Schema, extra: tuple[ParamSpec, ...] = ()) -> list[str]:
    params = schema.params + extra
    if not params:
        return ["No parameters.", ""]
    out = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    out += [f"| `{p.name}` | {_kind(p)} | {_default(p)} | {p.doc} |" for p in params]
    return [*out, ""]


def _alias(alias: str) -> str:
    """``Dense`` (Keras): the name a learner may know, and where it comes from."""
    source, name = catalog.split_alias(alias)
    return f"`{name}` ({source})" if source else f"`{name}`"


def _help_markdown(spec: catalog.LayerSpec) -> list[str]:
    """The inspector's help for a layer: what it computes, its shapes, when to use it."""
    shape = spec.shape_rule if spec.shape_rule == catalog.SAME_SHAPE else f"`{spec.shape_rule}`"
    return [spec.about, "", f"- Formula: `{spec.formula}`", f"- Shape: {shape}",
            f"- [PyTorch documentation]({spec.doc_url})", ""]


def _init_markdown() -> list[str]:
    lines = [
        "# Weight initialisation", "",
        "A node's `init` picks how its tensors start: `{\"weight\": \"xavier_uniform\", "
        "\"bias\": \"zeros\"}`, or with numbers `{\"weight\": {\"type\": \"normal\", "
        "\"std\": 0.02}}`. `weight` means every weight matrix of the layer (all of a recurrent "
        "layer's, both of attention's) and `bias` every bias. Xavier, kaiming and orthogonal "
        "need a tensor of two or more dims. The initial weights are drawn from the project's "
        "seed, in Studio and in the exported `model.py` alike.", "",
    ]
    for scheme in SCHEMES.values():
        dims = " Needs 2-D or more." if scheme.min_dims > 1 else ""
        lines += [f"### {scheme.name}", "", f"{scheme.doc}{dims}", "",
                  *_params_table(scheme.schema)]
    return lines


def _blocks_markdown() -> list[str]:
    """The built-in blocks of the palette: what each holds, on its example input."""
    from .block_library import BUILTIN_NAMES, builtin
    from .shapes import analyze, format_shape

    lines = ["# Built-in blocks", "",
             "The palette's **Blocks**, from `studio/core/block_library.py`. Each is a",
             "definition made of the layers above; one added to a project becomes the",
             "project's own, to open and change (it keeps its input's shape, so it can repeat).",
             "Figures on the example input each holds; widths inside follow what a use is fed.",
             ""]
    for name in BUILTIN_NAMES:
        defn, _deps = builtin(name)
        a = analyze(defn.graph)
        x = a.nodes[a.inputs[0]].shape
        layers = [defn.graph.nodes[n] for n in a.order if not defn.graph.nodes[n].is_input]
        kinds = ", ".join(f"{n.params['block']} (block)" if n.type == "Block" else n.type
                          for n in layers)
        lines += [f"## {name}", "", f"{defn.description}.", "",
                  f"{format_shape(x)} → {format_shape(a.output_shape())}; "
                  f"{a.total_params:,} parameters, {a.total_macs:,} multiply-adds per sample. "
                  f"Layers: {kinds}.", ""]
    return lines


def layers_markdown() -> str:
    lines = [
        "# Layer catalog",
        "",
        "Generated from `studio/core/catalog.py` by `python -m studio.core.docs`; do not edit.",
        "",
        "Shapes are per sample (no batch dimension). `dim` parameters count the batch as 0, as",
        "torch does. Input sizes (`in_features`, `in_channels`, `num_features`, `input_size`,",
        "`embed_dim`, `d_model`, `normalized_shape`, `num_channels`) are inferred from the",
        "incoming shape and never typed.",
        "",
    ]
    for category, specs in catalog.by_category().items():
        lines += [f"## {category}", ""]
        for spec in specs:
            inferred = f" Inferred: {', '.join(f'`{a}`' for a in spec.inferred)}." \
                if spec.inferred else ""
            ports = {0: "no inputs", 1: "one input", None: "two or more inputs"}[spec.inputs]
            builds = ("The model's argument" if spec.inputs == 0
                      else f"Builds `{spec.module_path()}`")
            lines += [f"### {spec.type}", "", f"{spec.doc} {builds}; {ports}.{inferred}", "",
                      *_help_markdown(spec)]
            if spec.aliases:
                lines += [f"Also found as: {', '.join(map(_alias, spec.aliases))}.", ""]
            tensors = spec.init_tensors(spec.schema.defaults())
            if tensors:
                named = ", ".join(f"`{t}` ({d}-D)" for t, d in tensors.items())
                lines += [f"[Initialisable](#weight-initialisation): {named}.", ""]
            lines += _params_table(spec.schema)
    lines += _init_markdown()
    lines += _blocks_markdown()
    lines += ["# Training choices", ""]
    for title, table, extra in (("Losses", LOSSES, ()), ("Optimizers", OPTIMIZERS, ()),
                                ("Schedulers", SCHEDULERS, (WARMUP,)),
                                ("Augmentations", AUGMENTATIONS, ())):
        lines += [f"## {title}", ""]
        for name, schema in table.items():
            lines += [f"### {name}", "", *_params_table(schema, extra)]
    lines += ["## Datasets", ""]
    for d in DATASETS.values():
        lines += [f"### {d.name}", "", d.doc, "", *_params_table(d.schema)]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if "--write" in sys.argv:
        docs = Path(__file__).resolve().parents[2] / "docs"
        (docs / "layers.md").write_text(layers_markdown())
        fmt = docs / "project-format.md"
        fmt.write_text(with_settings_tables(fmt.read_text()))
    else:
        print(layers_markdown(), end="")
