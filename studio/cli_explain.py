"""``studio explain``: which pixels or features one prediction rests on, as ``.npy`` or ``.png``.

Kept apart from ``cli.py`` (the parser there only calls :func:`add_parser`); torch and captum
load when the command runs, never when another command starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """The sub-command's arguments, on the ``studio`` parser's sub-parsers."""
    e = sub.add_parser("explain", help="attribute one prediction of trained weights to the "
                                       "sample's pixels or features (Captum)")
    e.add_argument("project", type=Path)
    e.add_argument("--weights", type=Path, required=True, metavar="FILE",
                   help="a run's .ckpt or .safetensors")
    e.add_argument("--method", required=True, metavar="METHOD",
                   help="saliency, integrated-gradients, gradcam or occlusion")
    e.add_argument("--index", type=int, required=True, metavar="I",
                   help="the sample: its position in the dataset as loaded, before any split")
    e.add_argument("--target", type=int, metavar="C",
                   help="the class (output) to explain (default: the predicted class)")
    e.add_argument("--layer", metavar="NODE",
                   help="gradcam: the node whose map to use, a layer inside a block by its "
                        "path (layer1.conv1); default: the last convolution")
    e.add_argument("--out", type=Path, required=True, metavar="FILE.npy|FILE.png",
                   help=".npy: the map ([H, W] for an image, [features] for a table); "
                        ".png: an image's map as a heatmap over the sample")
    e.add_argument("--base-dir", type=Path, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    """Explain sample ``--index`` and print one line saying what was explained."""
    from .core.project import Project
    from .training.explain import Explainer, output_kind, write_explanation

    kind = output_kind(args.out)  # a wrong suffix fails before the network loads
    project = Project.load(args.project)
    ex = Explainer(project, args.weights, args.base_dir or args.project.parent)
    e = ex.explain(args.index, args.method, args.target, args.layer)
    write_explanation(e, args.out, ex.picture(args.index) if kind == "png" else None)
    truth, said, what = ex.verdict(args.index, e)
    layer = f" on {e.layer}" if e.layer else ""
    print(f"explained sample {args.index} (true {truth}, predicted {said}) with "
          f"{e.method}{layer} for {what} → {args.out}")
    return 0
