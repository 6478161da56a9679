"""Sweeps in the window: "Sweep this…" on an inspector field adds it to the search space, Run ▸
Sweep runs ``studio sweep`` in a child process (its trials are ordinary runs, so the runs list
shows them), the Sweep view follows ``sweep.json`` as trials end; Stop, Resume and Apply best.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QProcess, QTimer

from studio.core.errors import StudioError

if TYPE_CHECKING:  # pragma: no cover
    from ..main_window import MainWindow
    from ..training.sweep_view import SweepView

POLL_MS = 1000


class SweepController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.proc: QProcess | None = None
        self.folder: Path | None = None
        self.output = ""
        self._seen = -1  # trials ended when the runs list was last refreshed
        self.timer = QTimer(self, interval=POLL_MS)
        self.timer.timeout.connect(self.poll)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def connect_view(self, view: SweepView) -> None:
        view.stop_requested.connect(self.stop)
        view.resume_requested.connect(self.start)
        view.apply_requested.connect(self.apply_best)
        view.run_chosen.connect(self._evaluate_trial)
        self.window.views.changed.connect(lambda name: self.poll() if name == "sweep" else None)

    # -- the search space -----------------------------------------------------------------

    def add_field(self, path: str, spec: Any, value: Any) -> None:
        """Right-click ▸ Sweep this…: propose a range, let the user edit it, add it (one undo
        step)."""
        from studio.core.sweep_spec import default_sweep

        from ..sweep_dialog import SweepFieldDialog

        w = self.window
        sweep = copy.deepcopy(w.project.sweep) or default_sweep()
        dialog = SweepFieldDialog(path, spec, value, sweep["parameters"].get(path), w)
        if not dialog.exec():
            return
        sweep["parameters"][path] = dialog.result_spec()
        if w.editor.set_sweep(sweep, f"Sweep {path}"):
            n = len(sweep["parameters"])
            w.show_status(f"{path} is in the sweep ({n} parameter{'s' * (n != 1)}); "
                          "Run ▸ Sweep starts it")

    # -- running --------------------------------------------------------------------------

    def sweep_folder(self) -> Path:
        from studio.training.sweep import default_dir

        return default_dir(self.window.project.path)

    def start(self) -> bool:
        """Run ▸ Sweep (or Resume): ``studio sweep`` on a snapshot, into the project's sweep
        folder; running it again there resumes the study."""
        w = self.window
        if self.running:
            return False
        sweep = w.project.sweep
        if not sweep or not sweep.get("parameters"):
            w.show_error("Nothing to sweep", "Add parameters to the search space first: "
                         "right-click a field in the inspector (a layer's width, the learning "
                         "rate, the optimizer) ▸ Sweep this…")
            return False
        if w.has_problems():
            w.views.show("design")
            w.show_status("fix the network's problems before a sweep (see the Problems list)")
            return False
        folder = self.sweep_folder()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            snapshot = w.project.copy()
            snapshot.save(folder / "project.studio.json")
        except (OSError, StudioError) as exc:
            w.show_error("Could not start the sweep", str(exc))
            return False
        self.folder = folder
        self.output = ""
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        args = ["-m", "studio", "sweep", str(folder / "project.studio.json"), "--out",
                str(folder)]
        base = w.project_dir()
        if base is not None:
            args += ["--base-dir", str(base)]
        self.proc = proc
        proc.start(sys.executable, args)
        self.view().set_running(True)
        w.views.show("sweep")
        w.show_status(f"sweep started: {folder}")
        self.timer.start()
        self.poll()
        return True

    def stop(self) -> None:
        """Ends the sweep within a batch; its study stays resumable."""
        if self.running and self.proc is not None:
            self.window.show_status("stopping the sweep…")
            self.proc.terminate()

    def shutdown(self) -> None:
        if self.running and self.proc is not None:
            self.proc.terminate()
            if not self.proc.waitForFinished(10_000):
                self.proc.kill()

    def _read(self) -> None:
        if self.proc is None:
            return
        text = bytes(self.proc.readAllStandardOutput().data()).decode("utf-8", "replace")
        self.output += text
        for line in text.splitlines():
            if line.strip():
                self.window.show_status(line.strip())

    def _finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self.timer.stop()
        self.poll()
        last = self.output.strip().splitlines()[-1] if self.output.strip() else ""
        if code != 0:
            self.window.show_error("The sweep failed", last.removeprefix("studio: error: ")
                                   or f"exit code {code}")
        else:
            self.window.show_status(last or "sweep ended")
        self.proc = None
        self.poll()

    def poll(self) -> None:
        """Redraw the Sweep view from ``sweep.json``; new trials refresh the runs list."""
        from studio.training.sweep import read_sweep

        folder = self.folder or self.sweep_folder()
        try:
            data = read_sweep(folder)
        except StudioError:
            return  # mid-write somewhere without atomic rename: the next poll reads it
        view = self.view()
        sweep = self.window.project.sweep or {}
        objective = data.get("objective") or sweep.get("objective") or {}
        total = data.get("total") or sweep.get("trials")
        view.show_sweep(data, objective.get("metric", ""), objective.get("direction",
                                                                         "maximize"), total)
        ended = sum(t.get("state") != "running" for t in data.get("trials", []))
        view.resume_button.setText("Resume" if data else "Run")
        view.set_running(self.running, resumable=bool(sweep.get("parameters"))
                         and (not total or ended < total))
        if ended != self._seen:
            self._seen = ended
            self.window.runs_panel.refresh()

    def view(self) -> SweepView:
        return self.window.training_views().sweep

    # -- results --------------------------------------------------------------------------

    def apply_best(self) -> None:
        """The best trial's values into the project, as one undo step."""
        from studio.training.sweep import read_sweep

        try:
            best = read_sweep(self.folder or self.sweep_folder()).get("best")
        except StudioError as exc:
            self.window.show_error("Cannot read the sweep", str(exc))
            return
        if not best:
            self.window.show_status("no trial has completed yet")
            return
        if self.window.editor.set_values(best["params"], f"Apply best trial #{best['number']}"):
            self.window.show_status(f"applied trial {best['number']}'s values (Ctrl+Z undoes)")

    def _evaluate_trial(self, run: str) -> None:
        """A trial double-clicked in the table: its best weights in the Evaluate view."""
        from ..training.runs import read_run

        folder = (self.folder or self.sweep_folder()) / run
        weights = folder / "best.ckpt"
        if not weights.exists():
            self.window.show_status(f"{run} has no checkpoint yet")
            return
        self.window.runs.evaluate_weights(read_run(folder), weights)
