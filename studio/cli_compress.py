"""``studio prune`` and ``studio quantize``: a smaller network, with what it bought (size,
multiply-adds, latency) and what it cost (accuracy) measured in ``report.json``.

Kept apart from ``cli.py`` (the parser there only calls :func:`add_parsers`); torch,
Torch-Pruning and onnxruntime load when a command runs, never when another command starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parsers(sub: Any) -> None:
    """Both sub-commands' arguments, on the ``studio`` parser's sub-parsers."""
    p = sub.add_parser("prune", help="remove weights (unstructured) or whole channels "
                                     "(--structured) from trained weights, and measure")
    p.add_argument("project", type=Path)
    p.add_argument("--weights", type=Path, required=True, metavar="FILE",
                   help="a run's .ckpt or .safetensors")
    p.add_argument("--amount", type=float, required=True, metavar="SHARE",
                   help="the share to remove, e.g. 0.5")
    p.add_argument("--structured", action="store_true",
                   help="remove whole channels and units (Torch-Pruning): the layers shrink")
    p.add_argument("--per-layer", action="store_true",
                   help="the same share in every layer (default: the smallest weights of the "
                        "whole network)")
    p.add_argument("--finetune-epochs", type=int, default=0, metavar="N",
                   help="train the pruned network N more epochs")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="a new or empty folder: project.studio.json, model.safetensors, "
                        "report.json")
    p.add_argument("--base-dir", type=Path, metavar="DIR")

    q = sub.add_parser("quantize", help="int8 through ONNX Runtime (static with calibration for "
                                        "convolutional networks, dynamic otherwise), measured")
    q.add_argument("project", type=Path)
    q.add_argument("--weights", type=Path, required=True, metavar="FILE",
                   help="a run's .ckpt or .safetensors")
    q.add_argument("--calibration", type=int, default=512, metavar="N",
                   help="training samples that set the activations' int8 ranges (static)")
    q.add_argument("--out", type=Path, required=True, metavar="FILE.onnx",
                   help="the int8 network; report.json is written beside it")
    q.add_argument("--base-dir", type=Path, metavar="DIR")


def run_quantize(args: argparse.Namespace) -> int:
    from .core.project import Project
    from .export.quantize import check_request, quantize

    check_request(args.out, args.calibration)  # before the network loads
    project = Project.load(args.project)
    r = quantize(project, args.weights, args.out, args.calibration,
                 base_dir=args.base_dir or args.project.parent)
    print(f"quantized to int8 ({r['mode']}) → {args.out}; report → "
          f"{args.out.parent / 'report.json'}")
    print(summary({"before": r["fp32"], "after": r["int8"], "notes": r["notes"]}))
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from .core.project import Project
    from .export.prune import check_request, prune

    check_request(args.amount, args.out)  # before the network loads
    project = Project.load(args.project)
    r = prune(project, args.weights, args.out, args.amount, structured=args.structured,
              per_layer=args.per_layer, finetune_epochs=args.finetune_epochs,
              base_dir=args.base_dir or args.project.parent)
    print(f"pruned {r['method']} {r['amount']:g} ({r['scope']}) → {args.out}")
    print(summary(r))
    return 0


def summary(r: dict[str, Any]) -> str:
    """Before and after, one figure a line, as the report holds them."""
    b, a = r["before"], r["after"]
    keys = [k for k in ("params", "nonzero_params", "macs", "file_bytes", "gzip_bytes",
                        "latency_ms_batch1", "latency_ms_batch64") if k in b and k in a]
    keys += sorted(k for k in a if k.startswith(("val_", "test_")) and k in b)
    width = max(len(k) for k in keys)
    lines = [f"  {k:<{width}}  {_fmt(b[k])} → {_fmt(a[k])}" for k in keys]
    lines += [f"  note: {n}" for n in r.get("notes", [])]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.4g}"
