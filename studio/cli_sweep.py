"""``studio sweep``: the project's hyperparameter sweep, headless, one line per trial (kept
apart from ``cli.py``: torch and Optuna load when the command runs)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """The sub-command's arguments, on the ``studio`` parser's sub-parsers."""
    p = sub.add_parser("sweep", help="run (or resume) the project's hyperparameter sweep on "
                                     "Optuna")
    p.add_argument("project", type=Path)
    p.add_argument("--trials", type=int, metavar="N", help="the trial budget (default: the "
                   "sweep's \"trials\")")
    p.add_argument("--parallel", type=int, metavar="K",
                   help="trials at once, each in its own process (default: \"parallel\")")
    p.add_argument("--storage", metavar="URL",
                   help="any storage Optuna takes (postgresql://…, mysql://…, sqlite:///…): "
                        "machines sharing it share the study (default: a journal file in "
                        "the sweep folder)")
    p.add_argument("--study", metavar="NAME", help="the study's name in the storage")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the sweep folder (default: runs/sweep-<project>; running again "
                        "resumes)")
    p.add_argument("--base-dir", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--worker", type=int, metavar="I", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; a SIGINT or SIGTERM ends it after the current batch, resumable."""
    from .core.errors import TrainingError
    from .core.project import Project
    from .training.sweep import default_dir, run_sweep

    project = Project.load(args.project)
    if (args.trials is not None and args.trials < 1) or \
            (args.parallel is not None and args.parallel < 1):
        raise TrainingError("must be 1 or more", "--trials/--parallel")
    threads = os.environ.get("STUDIO_THREADS")
    if args.worker is not None and threads:
        import torch

        torch.set_num_threads(int(threads))
    out = args.out or default_dir(args.project)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = _Clock()
    def tell(event: dict[str, Any]) -> None:
        print(_line(event), flush=True)

    data = run_sweep(project, out, trials=args.trials, parallel=args.parallel,
                     storage=args.storage, study=args.study, stop=stop, worker=args.worker,
                     base_dir=args.base_dir, on_trial=None if args.worker is not None else tell)
    if args.worker is None:
        best = data.get("best")
        metric = data["objective"]["metric"]
        said = (f"best {metric} {best['value']:.4g} (trial {best['number']}: "
                f"{_params(best['params'])})" if best else "no trial completed")
        how = "stopped" if stop.is_set() else "done"
        print(f"sweep {how} after {started()}: {said} → {out / 'sweep.json'}")
    return 0


def _line(event: dict[str, Any]) -> str:
    t, sweep = event["trial"], event["sweep"]
    metric = sweep["objective"]["metric"]
    value = f"{metric} {t['value']:.4g}" if t.get("value") is not None else \
        t.get("error", "")[:80]
    best = sweep.get("best")
    best_text = f" (best {best['value']:.4g} #{best['number']})" if best else ""
    secs = f" · {t['duration_s']:.0f} s" if t.get("duration_s") else ""
    return (f"trial {t['number'] + 1}/{sweep['total']} {t['state']} {value}{best_text} "
            f"{_params(t['params'])}{secs}")


def _params(params: dict[str, Any]) -> str:
    def short(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return " ".join(f"{k.rsplit('.', 1)[-1]}={short(v)}" for k, v in params.items())


class _Clock:
    def __init__(self) -> None:
        import time

        self.t0 = time.monotonic()

    def __call__(self) -> str:
        import time

        s = time.monotonic() - self.t0
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
