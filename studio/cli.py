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
from typing import TYPE_CHECKING, Any

from . import cli_compress, cli_explain, cli_lr_find, cli_sweep
from .core.errors import StudioError
from .core.project import Project, default_sample
from .core.shapes import analyze, format_shape
from .core.summary import summary_dict, summary_table

if TYPE_CHECKING:  # pragma: no cover - training is imported only by the commands that train
    from .training.callbacks import Callback

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "explain": cli_explain.run, "lr-find": cli_lr_find.run, "sweep": cli_sweep.run,
    "prune": cli_compress.run_prune, "quantize": cli_compress.run_quantize}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[..., int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
        COMMANDS[name] = fn
        return fn
    return register


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, as every other error of the command."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:,} and {hi:,}, got "
                                             f"{value:,}" if len(text) < 30 else
                                             f"must be between {lo:,} and {hi:,}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    v.add_argument("--weights", type=Path, metavar="FILE",
                   help="also check which layers of this weights file fit the network")
    v.add_argument("--json", action="store_true",
                   help="print one JSON object instead: ok, sizes and every problem with its "
                        "severity, code, node, message, reason and fix")
    t = sub.add_parser("train", help="train a project without the GUI")
    t.add_argument("project", type=Path)
    t.add_argument("--epochs", type=_count(1, 100_000), help="override the project's epochs")
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    t.add_argument("--out", type=Path, help="run folder (default: runs/NAME-TIME beside the "
                   "project; with --resume, the checkpoint's folder)")
    t.add_argument("--resume", type=Path, metavar="CKPT", help="continue from a checkpoint")
    t.add_argument("--init-weights", type=Path, metavar="FILE",
                   help="start from another run's weights (.safetensors or .ckpt), matched by "
                        "node id; changed or new layers keep their initial weights")
    t.add_argument("--batch-size", type=_count(1, 1 << 20))
    t.add_argument("--lr", type=float, help="override the optimizer's learning rate")
    t.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    t.add_argument("--events", action="store_true",
                   help="machine-readable: JSON-lines events on stdout, pause/resume/stop "
                        "commands on stdin (its end stops the run), validation predictions "
                        "saved in the run folder")
    t.add_argument("--base-dir", type=Path, metavar="DIR",
                   help="folder that relative data paths in the project start from "
                        "(default: the project file's folder)")
    t.add_argument("--nproc-per-node", type=_count(1, 1024), default=1, metavar="N",
                   help="train on N data-parallel processes (torchrun + DDP: gloo on the CPU, "
                        "NCCL on GPUs); the batch size stays the global one")
    t.add_argument("--nnodes", type=_count(1, 4096), default=1, metavar="M",
                   help="machines taking part; start the same command on each")
    t.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="where the machines of a multi-node run meet (one of them)")
    t.add_argument("--rdzv-id", default="studio", metavar="ID",
                   help="a name for the run, the same on every machine")
    t.add_argument("--nice", type=_count(0, 19), default=0, metavar="N",
                   help="lower this process's scheduling priority by N (the window uses it "
                        "so that its painting is never queued behind the run)")
    x = sub.add_parser("export", help="write a verified ONNX, torch.export, safetensors or "
                                      "Python-code export")
    x.add_argument("project", type=Path)
    x.add_argument("--weights", type=Path, metavar="FILE",
                   help="trained weights: a run's .ckpt or .safetensors (default: untrained)")
    x.add_argument("--format", required=True, choices=["onnx", "pt2", "safetensors", "python"])
    x.add_argument("--out", type=Path, required=True, help="file (a folder for python)")
    x.add_argument("--opset", type=int, default=18,
                   help="ONNX opset, 15 to the newest onnx knows (default 18); the file holds "
                        "exactly this opset or is not written")
    x.add_argument("--force", action="store_true",
                   help="python: write into a folder that holds other files (they may be "
                        "overwritten)")
    x.add_argument("--base-dir", type=Path, metavar="DIR")
    im = sub.add_parser("import", help="a torchvision architecture as an editable project")
    im.add_argument("source", metavar="torchvision:NAME", help="e.g. torchvision:resnet18")
    im.add_argument("--out", type=Path, required=True, help="the project file to write")
    im.add_argument("--weights", action="store_true",
                    help="also save torchvision's pretrained weights beside the project "
                         "(needs them cached or a connection)")
    im.add_argument("--input-size", type=_count(16, 4096), default=224,
                    help="image height and width")
    im.add_argument("--flat", action="store_true",
                    help="every layer on its own, without grouping repeated modules "
                         "(BasicBlock, InvertedResidual, …) into blocks")
    e = sub.add_parser("evaluate", help="metrics and predictions of trained weights")
    e.add_argument("project", type=Path)
    e.add_argument("--weights", type=Path, required=True, metavar="FILE",
                   help="a run's .ckpt or .safetensors")
    e.add_argument("--split", choices=["val", "test"], default="val")
    e.add_argument("--predictions", type=Path, metavar="OUT.npz",
                   help="also save the predictions for the evaluation views")
    e.add_argument("--base-dir", type=Path, metavar="DIR")
    cli_explain.add_parser(sub)
    cli_compress.add_parsers(sub)
    cli_lr_find.add_parser(sub)
    cli_sweep.add_parser(sub)
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
    """Shape problems and the network doctor's findings (docs/doctor.md); exit status 2 when
    any is an error, 0 with warnings only."""
    from .core.doctor import diagnose
    from .core.findings import problem_list

    project = Project.load(args.project)
    a = analyze(project.graph)
    found = problem_list(project.graph, a, diagnose(project, a))
    found += _data_findings(project, args.project.parent)
    errors = [f for f in found if f.severity == "error"]
    if args.json:
        out = a.output_shape()
        report = None if errors else _weights_report(args, project)
        print(json.dumps({
            "project": str(args.project), "ok": not errors, "nodes": len(project.graph),
            "output_shape": list(out) if out is not None else None,
            "total_params": a.total_params, "total_macs": a.total_macs,
            "problems": [f.to_dict() for f in found],
            **({"initial_weights": report.summary(), "notes": report.lines()}
               if report is not None else {}),
        }, indent=2, ensure_ascii=False))
        return 2 if errors else 0
    for f in found:
        code = f" [{f.code}]" if f.code else ""
        print(f"{args.project}: {f.severity}: {f.message}{code}", file=sys.stderr)
    if errors:
        return 2
    warned = len(found)
    print(f"{args.project}: OK — {len(project.graph)} nodes, output "
          f"{format_shape(a.output_shape())}, {a.total_params:,} params, "
          f"{a.total_macs:,} mult-adds per sample"
          + (f"; {warned} warning{'s' if warned != 1 else ''}" if warned else ""))
    report = _weights_report(args, project)
    if report is not None:
        for line in report.lines():
            print(f"note: {line}", file=sys.stderr)
        print(f"initial weights: {report.summary()}")
    return 0


def _data_findings(project: Project, base: Path) -> list[Any]:
    """A CSV or .npz file that ``studio train`` would refuse (missing cells, probability
    labels, …), as an error found before a run. Other datasets are downloads or image
    folders, too slow to read for a check."""
    if project.data.dataset not in ("csv", "npz"):
        return []
    from .core.errors import DatasetError
    from .core.findings import Finding
    from .data.sources import load_arrays

    try:
        load_arrays(project.data.dataset, project.data.options, base)
    except DatasetError as exc:
        return [Finding(None, "error", None, str(exc))]
    return []


def _weights_report(args: argparse.Namespace, project: Project) -> Any:
    """Which layers of ``--weights`` (or the project's initial weights) fit the network."""
    weights = args.weights or project.training.init_weights
    if not weights:
        return None
    from .training.transfer import check

    return check(project, weights, None if args.weights else args.project.parent)


@command("train")
def _train(args: argparse.Namespace) -> int:
    import signal

    project = Project.load(args.project)
    _override(project, args)
    launching = (args.nproc_per_node != 1 or args.nnodes != 1) and \
        "TORCHELASTIC_RUN_ID" not in os.environ
    if launching:
        return _launch(args)
    from .training.distributed import world_from_env

    rank = world_from_env()[0]
    if args.nice > 0 and hasattr(os, "nice"):
        os.nice(args.nice)
    from .training.console import ConsoleProgress, format_logs
    from .training.trainer import Trainer

    out = args.out
    if out is None:
        out = args.resume.parent if args.resume is not None else _default_out(args.project)
    events = None
    if rank > 0:  # a data-parallel helper: rank 0 reports and writes for the run
        trainer = Trainer(project, out_dir=out, base_dir=args.base_dir)
        _stop_on_sigterm(trainer)
        result = trainer.fit(resume_from=args.resume)
        if result.status == "failed" and not trainer.failure_shared:
            # a fault here alone: say it, since rank 0 only learns that this process went away
            print(f"studio: error: process {rank}: {result.message}", file=sys.stderr)
        return 0
    if args.events:
        from .training.remote import EventStream

        # events own the real stdout; anything else printed (libraries, native code) goes to
        # stderr so it cannot corrupt the stream
        sys.stdout.flush()
        events = EventStream(os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1))
        os.dup2(2, 1)
        callbacks: list[Callback] = [events]
    else:
        callbacks = [ConsoleProgress()]
    if args.tensorboard:
        try:
            from .training.console import TensorBoardLogger
            callbacks.append(TensorBoardLogger(str(out / "tensorboard")))
        except ImportError:
            raise StudioError("--tensorboard needs the tensorboard package: "
                              "pip install tensorboard") from None
    trainer = Trainer(project, out_dir=out, callbacks=callbacks, base_dir=args.base_dir)
    if events is not None:
        from .training.remote import listen

        listen(trainer, events)

    def on_sigint(_sig: int, _frame: object) -> None:
        print("\nstopping after this batch (Ctrl-C again to abort)…", file=sys.stderr)
        trainer.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    _stop_on_sigterm(trainer)
    try:
        result = trainer.fit(resume_from=args.resume)
    finally:
        signal.signal(signal.SIGINT, previous)
    if events is not None:
        _report_end(trainer, result, events, out)
        return 0
    if result.status == "failed":
        raise result.error or StudioError(result.message)
    print(f"{result.message}: {format_logs(result.logs)} — {out}")
    return 130 if result.status == "stopped" else 0


def _stop_on_sigterm(trainer: Any) -> None:
    """SIGTERM (a launcher, a job scheduler, the window) stops after the current batch and
    writes ``last.ckpt``, as Ctrl-C does."""
    import signal

    def on_term(_sig: int, _frame: object) -> None:
        trainer.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, on_term)


def _default_out(project: Path) -> Path:
    from .training.run_folder import new_run_dir

    return new_run_dir(project)


def _launch(args: argparse.Namespace) -> int:
    """Re-run this command under torchrun with one output folder for all processes."""
    from .training.distributed import launch

    argv = list(args.argv)
    if args.out is None and args.resume is None:
        argv += ["--out", str(_default_out(args.project))]
    return launch(argv, args.nproc_per_node, args.nnodes, args.rdzv_endpoint, args.rdzv_id)


def _report_end(trainer: Any, result: Any, events: Any, out: Path) -> None:
    """The final event; the predictions for the evaluation views go to a file beside it."""
    from .training.predictions import collect_predictions, save_predictions

    predictions = None
    if result.status != "failed" and getattr(trainer, "bundle", None) is not None:
        try:
            pred = collect_predictions(trainer)
            if pred:
                predictions = out / "predictions.npz"
                save_predictions(predictions, pred, result.logs)
        except Exception as exc:  # evaluation extras must never fail a finished run
            events.emit("message", text=f"could not collect predictions: {exc}")
    err = result.error
    events.emit("end", status=result.status, message=result.message, epochs=result.epochs,
                logs=result.logs, history=result.history, out_dir=str(out),
                error=None if err is None else {"message": err.message, "where": err.where},
                predictions=None if predictions is None else str(predictions))


@command("export")
def _export(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    from .export import export

    base = args.base_dir or args.project.parent
    report = export(project, args.format, args.out, args.weights, base, opset=args.opset,
                    force=args.force)
    return _report(report)


@command("import")
def _import(args: argparse.Namespace) -> int:
    from .export.torchvision_import import import_torchvision

    kind, _, name = args.source.partition(":")
    if kind != "torchvision" or not name:
        raise StudioError("import from torchvision:NAME, e.g. torchvision:resnet18", "source")
    result = import_torchvision(name, args.out, pretrained=args.weights,
                                size=args.input_size, blocks=not args.flat)
    return _report(result)


def _report(outcome: Any) -> int:
    """Notes on stderr (the export dialog shows them), the one-line summary on stdout."""
    for m in outcome.messages:
        print(f"note: {m}", file=sys.stderr)
    print(outcome.summary())
    return 0


@command("evaluate")
def _evaluate(args: argparse.Namespace) -> int:
    project = Project.load(args.project)
    from .training.console import format_logs
    from .training.predictions import evaluate_weights, save_predictions

    base = args.base_dir or args.project.parent
    pred, logs = evaluate_weights(project, args.weights, base, args.split)
    if args.predictions is not None:
        save_predictions(args.predictions, pred, logs)
    print(f"{args.weights} on {args.split}: {format_logs(logs)}")
    return 0


def _override(project: Project, args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from .core.settings import error_message

    t, d = project.training, project.data
    for flag, model, name, value in (
            ("--epochs", t, "epochs", args.epochs), ("--device", t, "device", args.device),
            ("--batch-size", d, "batch_size", args.batch_size),
            ("--init-weights", t, "init_weights",
             None if args.init_weights is None else str(args.init_weights.resolve())),
            ("--lr", t, "optimizer", None if args.lr is None else {**t.optimizer, "lr": args.lr})):
        if value is None:
            continue
        try:
            setattr(model, name, value)  # pydantic re-validates on assignment
        except ValidationError as exc:
            msg = error_message(exc.errors()[0]).removeprefix("lr: ")
            raise StudioError(msg, flag) from None


def _open(path: Path | None) -> int:
    """The editor where there is a screen; the headless summary otherwise."""
    target = path or default_sample()
    if _has_display():
        try:
            from .ui.app import run_app  # Qt stays off the path of every other command
        except ImportError:
            pass
        else:
            from .ui.platform_check import uses_xcb, xcb_problem

            problem = xcb_problem() if uses_xcb() else None
            if problem:  # Qt would abort with a paragraph about plugins and no way out
                raise StudioError(problem)
            return run_app(target)
    project = Project.load(target)
    print(summary_table(project.graph, name=project.name))
    print(f"\n{target}: valid (no display for the editor). Train it with: "
          f"studio train {target}")
    return 0


def _exit_worker(code: int) -> None:
    """A torchrun worker leaves without interpreter shutdown: gloo's threads can abort a
    process that tears down its objects in the wrong order, turning a good run into a crash."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    code = _main(argv)
    if "TORCHELASTIC_RUN_ID" in os.environ:
        _exit_worker(code)
    return code


def _main(argv: list[str]) -> int:
    parser = _parser()
    try:
        if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
            return _open(Path(argv[0]))
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            return _open(None)
        return COMMANDS[args.command](args)
    except StudioError as exc:
        print(f"studio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a folder that cannot be written, a full disk, a file-size limit
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"studio: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal fault: still one line unless asked for more
        if os.environ.get("STUDIO_DEBUG"):
            traceback.print_exc()
        print(f"studio: internal error: {type(exc).__name__}: {exc} "
              "(set STUDIO_DEBUG=1 for details)", file=sys.stderr)
        return 1
