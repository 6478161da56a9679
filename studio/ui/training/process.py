"""Runs ``studio train --events`` as a child process and relays its JSON-lines events.

The same signals as the thread worker, so the window and dashboard do not care which one runs.
A crash of the child (a native fault, the OOM killer, a kill from outside) ends the run with a
message; the editor and the project are untouched.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

from studio.core.errors import StudioError
from studio.core.project import Project

NICE = 5  # the run yields to the window when both want a core: smooth GUI, same total work
STDERR_KEPT = 20  # last lines of the child's stderr, quoted when it dies without an end event


class ProcessWorker(QObject):
    """Owns one run in a child process. Create it, connect it, call ``start``."""

    started_run = Signal(dict)
    progress = Signal(dict)
    epoch_end = Signal(dict)
    message = Signal(str)
    layer_stats = Signal(dict)  # a sample of training.layer_stats
    finished = Signal(object)  # RunOutcome: the RunResult, plus the predictions

    def __init__(self, project: Project, out_dir: Path, resume_from: Path | None = None,
                 base_dir: Path | None = None, parent: QObject | None = None,
                 processes: int = 1) -> None:
        super().__init__(parent)
        self.processes = processes
        self.project = project.copy()
        self.out_dir = out_dir
        self.resume_from = resume_from
        self.base_dir = base_dir
        self.paused = False
        self.step = 0  # the last step the child reported
        self.end: dict[str, Any] | None = None
        self.stderr: deque[str] = deque(maxlen=STDERR_KEPT)
        self._out = b""
        self._err = b""
        self._done = False
        self.proc = QProcess(self)
        self.proc.readyReadStandardOutput.connect(self._read_out)
        self.proc.readyReadStandardError.connect(self._read_err)
        self.proc.finished.connect(self._exited)
        self.proc.errorOccurred.connect(self._error)

    def command(self) -> list[str]:
        snapshot = self.out_dir / "project.studio.json"
        args = ["-m", "studio", "train", str(snapshot), "--events", "--out", str(self.out_dir),
                "--nice", str(NICE)]
        if self.resume_from is not None:
            args += ["--resume", str(self.resume_from)]
        if self.base_dir is not None:
            args += ["--base-dir", str(self.base_dir)]
        if self.processes > 1:
            args += ["--nproc-per-node", str(self.processes)]
        return args

    def start(self) -> None:
        self.t0 = time.perf_counter()
        try:  # the child trains what is on disk: the snapshot taken now
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.project.save(self.out_dir / "project.studio.json")
        except OSError as exc:
            self._fail(f"could not write the run folder {self.out_dir}: {exc.strerror}")
            return
        self.message.emit("starting the training process…")
        self.proc.start(sys.executable, self.command())

    # -- control: one line each on the child's stdin, never blocking -----------------------

    def _send(self, cmd: str) -> None:
        if self.proc.state() == QProcess.ProcessState.Running:
            self.proc.write(cmd.encode() + b"\n")

    def pause(self) -> None:
        self._send("pause")
        self.paused = True

    def resume(self) -> None:
        self._send("resume")
        self.paused = False

    def stop(self) -> None:
        self._send("stop")

    @property
    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    # -- events ----------------------------------------------------------------------------

    def _read_out(self) -> None:
        from studio.training.remote import parse  # loads torch: only once a run started

        self._out += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            ev = parse(line)
            if ev is None:
                if line.strip():
                    self.message.emit(line.decode("utf-8", "replace").rstrip())
                continue
            self._dispatch(ev)

    def _dispatch(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "run_start":
            self.started_run.emit(ev["info"])
        elif kind == "progress":
            self.step = ev["logs"].get("step", self.step)
            self.progress.emit(ev["logs"])
        elif kind == "epoch_end":
            self.epoch_end.emit(ev["logs"])
        elif kind == "message":
            if ev.get("step") is not None:
                self.step = ev["step"]
            self.message.emit(ev["text"])
        elif kind == "checkpoint":
            self.message.emit(f"wrote {ev['kind']} checkpoint {Path(ev['path']).name}")
        elif kind == "layer_stats":
            self.layer_stats.emit({k: ev.get(k) for k in ("step", "epoch", "layers")})
        elif kind == "end":
            self.end = ev

    def _read_err(self) -> None:
        self._err += bytes(self.proc.readAllStandardError().data())
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self.stderr.append(text)
                self.message.emit(text)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(f"could not start the training process ({self.proc.errorString()})")

    def _exited(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_out()
        self._read_err()
        if self.end is not None:
            self._finish_from(self.end)
            return
        how = ("was killed or crashed" if status == QProcess.ExitStatus.CrashExit
               else f"ended with exit code {code}")
        last = next((s for s in reversed(self.stderr) if s.strip()), "")
        message = (f"the training process {how} before finishing" + (f": {last}" if last else "")
                   + "; the project is unchanged and the run's last checkpoint can be resumed")
        self._write_summary(message)
        self._fail(message)

    def _write_summary(self, message: str) -> None:
        """What the child would have written: the runs list then shows the run as failed
        (and resumable when an epoch's checkpoint exists)."""
        import contextlib
        import json

        from studio.core.project import atomic_write

        with contextlib.suppress(OSError):
            atomic_write(self.out_dir / "summary.json", json.dumps(
                {"status": "failed", "message": message}, indent=2).encode())

    def _fail(self, message: str) -> None:
        from studio.core.errors import TrainingError

        self._finish_from({"status": "failed", "message": message, "epochs": 0,
                           "error": {"message": message, "where": None}},
                          error=TrainingError(message))

    def _finish_from(self, ev: dict[str, Any], error: StudioError | None = None) -> None:
        if self._done:
            return
        self._done = True
        from studio.core.errors import TrainingError

        from .result import RunOutcome

        if error is None and ev.get("error"):
            error = TrainingError(ev["error"]["message"], ev["error"].get("where"))
        result = RunOutcome(ev["status"], ev["message"], ev.get("epochs", 0), ev.get("logs", {}),
                            ev.get("history", []), self.out_dir, error)
        if ev.get("predictions"):
            try:
                from studio.training.predictions import load_predictions

                result.predictions, _ = load_predictions(Path(ev["predictions"]))
            except Exception as exc:
                self.message.emit(f"could not read the predictions: {exc}")
        result.seconds = time.perf_counter() - getattr(self, "t0", time.perf_counter())
        self.finished.emit(result)


class EvaluationJob(QObject):
    """``studio evaluate`` in a child process: the evaluation views for any checkpoint,
    without blocking the window or sharing its memory."""

    done = Signal(object, object)  # predictions, logs
    failed = Signal(str)

    def __init__(self, project_file: Path, weights: Path, out: Path,
                 base_dir: Path | None = None, parent: QObject | None = None,
                 split: str = "val") -> None:
        super().__init__(parent)
        self.out = out
        self.proc = QProcess(self)
        self.proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.proc.finished.connect(self._exited)
        self.proc.errorOccurred.connect(self._error)
        self.args = ["-m", "studio", "evaluate", str(project_file), "--weights", str(weights),
                     "--predictions", str(out), "--split", split]
        if base_dir is not None:
            self.args += ["--base-dir", str(base_dir)]

    def start(self) -> None:
        self.proc.start(sys.executable, self.args)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"could not start the evaluation ({self.proc.errorString()})")

    def _exited(self, code: int, status: QProcess.ExitStatus) -> None:
        text = bytes(self.proc.readAll().data()).decode("utf-8", "replace").strip()
        last = text.splitlines()[-1] if text else ""
        if status != QProcess.ExitStatus.NormalExit or code != 0:
            self.failed.emit(last.removeprefix("studio: error: ") or
                             f"the evaluation ended with exit code {code}")
            return
        from studio.training.predictions import load_predictions

        try:
            pred, logs = load_predictions(self.out)
        except Exception as exc:
            self.failed.emit(str(exc))
            return
        self.done.emit(pred, logs)
