"""Reference docs generated from the catalog and allow-lists (``python -m studio.core.docs``).

``docs/layers.md`` is this module's output; a test keeps it current.
"""

from __future__ import annotations

from . import catalog
from .choices import AUGMENTATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULERS, WARMUP
from .params import ParamSpec, Schema


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
    if p.min is not None or p.max is not None:
        lo = "" if p.min is None else _num(p.min)
        hi = "" if p.max is None else _num(p.max)
        rng = f" [{lo}, {hi}]"
    return p.kind + rng + (", or empty" if p.nullable else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _params_table(schema: Schema, extra: tuple[ParamSpec, ...] = ()) -> list[str]:
    params = schema.params + extra
    if not params:
        return ["No parameters.", ""]
    out = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    out += [f"| `{p.name}` | {_kind(p)} | {_default(p)} | {p.doc} |" for p in params]
    return [*out, ""]


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
            lines += [f"### {spec.type}", "", f"{spec.doc} {builds}; {ports}.{inferred}", ""]
            lines += _params_table(spec.schema)
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
    print(layers_markdown(), end="")
