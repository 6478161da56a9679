"""``studio lr-find``: the learning-rate range test, headless; prints the suggestion and writes
``lr_find.json`` (kept apart from ``cli.py``: torch loads when the command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """The sub-command's arguments, on the ``studio`` parser's sub-parsers."""
    p = sub.add_parser("lr-find", help="suggest a learning rate: a short run with the rate "
                                       "growing from 1e-7 to 10 (the range test)")
    p.add_argument("project", type=Path)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where lr_find.json goes (default: the project's runs folder)")
    p.add_argument("--method", choices=("valley", "steepest"), default="valley",
                   help="valley (default): 2/3 down the longest fall of the loss; steepest: "
                        "where it falls fastest")
    p.add_argument("--steps", type=int, default=100, metavar="N",
                   help="steps from 1e-7 to 10 (default 100)")
    p.add_argument("--base-dir", type=Path, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    """Run the test on the project's training data and print the suggestion."""
    from .core.project import Project
    from .training.lr_find import lr_find
    from .training.run_folder import runs_dir
    from .training.trainer import Trainer

    project = Project.load(args.project)
    trainer = Trainer(project, base_dir=args.base_dir or args.project.parent,
                      default_callbacks=False)
    trainer.setup()
    result = lr_find(trainer, steps=args.steps, method=args.method)
    out = args.out or runs_dir(args.project)
    path = result.write(out)
    print(f"suggested learning rate {result.suggestion:.2e} ({result.method}; valley "
          f"{result.valley:.2e}, steepest {result.steepest:.2e}; {len(result.lrs)} steps, "
          f"{'diverged at' if result.stopped == 'diverged' else 'up to'} "
          f"{result.lrs[-1]:.2g}) → {path}")
    return 0
