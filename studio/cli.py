"""The ``studio`` command: the GUI with no sub-command, headless tools with one.

Bad input ends with exit status 2 and one readable line on stderr, never a traceback
(set STUDIO_DEBUG=1 to see one anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from .core.errors import StudioError
from .core.project import Project, default_sample
from .core.shapes import analyze, format_shape
from .core.summary import summary_dict, summary_table

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[..., int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
        COMMANDS[name] = fn
        return fn
    return register


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="studio",
        description="Design, train and export neural networks. With no command, opens the "
                    "editor on FILE (default: the MNIST CNN sample).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("summary", help="print layers, output shapes, params and mult-adds")
    s.add_argument("project", type=Path)
    s.add_argument("--json", action="store_true", help="print one JSON object instead")
    v = sub.add_parser("validate", help="check a project file and its network")
    v.add_argument("project", type=Path)
    return p


@command("summary")
def _summary(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    if args.json:
        print(json.dumps(summary_dict(project.graph), indent=2))
    else:
        print(summary_table(project.graph, name=project.name))
    return 0


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    a = analyze(project.graph)
    for p in a.problems:
        print(f"{args.project}: {p.severity}: {p.message}", file=sys.stderr)
    if a.errors:
        return 2
    print(f"{args.project}: OK — {len(project.graph)} nodes, output "
          f"{format_shape(a.output_shape())}, {a.total_params:,} params, "
          f"{a.total_macs:,} mult-adds per sample")
    return 0


def _open(path: Path | None) -> int:
    """The editor when the GUI is installed; the headless summary otherwise."""
    target = path or default_sample()
    try:
        from .ui.app import run_app
    except ImportError:
        project = Project.load(target)
        print(summary_table(project.graph, name=project.name))
        print(f"\n{target}: valid. Train it with: studio train {target}")
        return 0
    return run_app(target)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
            return _open(Path(argv[0]))
        args = parser.parse_args(argv)
        if args.command is None:
            return _open(None)
        return COMMANDS[args.command](args)
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal fault: still one line unless asked for more
        if os.environ.get("STUDIO_DEBUG"):
            traceback.print_exc()
        print(f"studio: internal error: {type(exc).__name__}: {exc} "
              "(set STUDIO_DEBUG=1 for details)", file=sys.stderr)
        return 1
