"""Training runs from the window: train and resume, pause, stop, where a run goes, its progress
in the status bar, the dashboard (the Train view), evaluation and runs panel, and evaluating any
checkpoint (the Evaluate view)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from studio.core.errors import StudioError

from ..training.worker import RunController

if TYPE_CHECKING:
    from studio.core.health import LayerHealth
    from studio.core.project import Project

    from ..main_window import MainWindow
    from ..training.explain_job import Source
    from ..training.result import RunOutcome
    from ..training.runs import RunInfo

RUN_WHERE = ((0, "In This Process (a Thread)"), (1, "In a Separate Process"),
             (2, "On 2 Processes (Data-Parallel)"), (4, "On 4 Processes (Data-Parallel)"))


class RunsController(QObject):
    """One run at a time, started by ``runner``; ``last_result`` and ``run_dir`` say how the
    latest one went and where it wrote."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.runner = RunController(self)
        self.runner.ended.connect(self._run_ended)
        self.last_result: RunOutcome | None = None
        self.run_dir: Path | None = None
        self.evaluation_job: QObject | None = None
        #: the run and weights file the Evaluate view shows; another split evaluates these
        self.evaluated: tuple[RunInfo, Path] | None = None
        #: the run whose epochs and end the views show (None once another project is shown)
        self.shown_run: Path | None = None
        self._explain_from: Path | None = None  # the run Explain turns to at its first epoch
        self._progress_shown = 0.0
        self.health: LayerHealth | None = None
        self._earlier_stats: Path | None = None
        self._told: set[tuple[str | None, str | None]] = set()
        self._health_timer = QTimer(self, singleShot=True, interval=250)
        self._health_timer.timeout.connect(self._show_health)
        # the question goes through this so tests can answer it
        self.ask_stop_run: Callable[[], bool] = self._ask_stop_run

    @property
    def running(self) -> bool:
        return self.runner.running

    def shutdown(self) -> None:
        """Stop a run and wait for it; drop unanswered questions to the Explain tab."""
        self.runner.shutdown()
        if self.window.training_views_built:
            self.window.evaluation.explain.job.shutdown()

    def may_close(self) -> bool:
        """True when the window may close: no run, or the user agreed to stop it (stopped and
        waited for here)."""
        if not self.runner.running:
            return True
        if not self.ask_stop_run():
            return False
        self.runner.shutdown()
        return True

    # -- where runs go --------------------------------------------------------------------

    @property
    def run_processes(self) -> int:
        """0: a thread of this process; 1: a child process; N > 1: N processes (DDP)."""
        a = self.window.run_where_group.checkedAction()
        return int(a.data()) if a is not None else 1

    def set_run_processes(self, n: int) -> None:
        group = self.window.run_where_group
        for a in group.actions():
            a.setChecked(a.data() == n)
        if group.checkedAction() is None:
            group.actions()[1].setChecked(True)

    def restore_run_where(self) -> None:
        """Check the choice kept in the settings (a child process when there is none)."""
        value = self.window.settings.value("run/processes", 1)
        try:
            n = int(value) if isinstance(value, (int, float, str)) else 1  # str: INI files
        except ValueError:
            n = 1
        self.set_run_processes(n)

    def remember_run_where(self, action: QAction) -> None:
        self.window.settings.setValue("run/processes", action.data())

    def show_training_setting(self) -> bool:
        """Whether starting a run shows the Train view (yes unless the user said otherwise)."""
        value = self.window.settings.value("run/show_training", True)
        return value not in (False, "false", "0", 0)  # INI files read back strings

    def remember_show_training(self, on: bool) -> None:
        self.window.settings.setValue("run/show_training", on)

    def connect_dashboard(self) -> None:
        """The Train view's own buttons and network map, where the dashboard has them yet."""
        d, w = self.window.dashboard, self.window
        d.pause_clicked.connect(self.toggle_pause)
        d.stop_clicked.connect(self.stop)
        d.node_selected.connect(w.editing.select_in_network)
        w.analysed.connect(self._network_changed)

    def _network_changed(self, analysis: Any) -> None:
        """Between runs the Train view's map shows the network as it is being edited; during
        a run, the snapshot that trains."""
        if not self.runner.running and self.window.training_views_built:
            self.window.dashboard.set_network(self.window.editor.network, analysis)

    def show_runs_folder(self) -> None:
        """The runs panel lists the current project's runs folder (once it is built)."""
        if self.window.training_views_built:
            self.window.runs_panel.set_folder(self.window.runs_dir())

    # -- controlling a run ----------------------------------------------------------------

    def train(self, resume_from: Path | None = None, snapshot: Path | None = None) -> bool:
        """Train a snapshot of the project on a worker thread (F5); with ``resume_from``,
        continue a stopped run from its own project snapshot."""
        w = self.window
        if self.runner.running:
            return False
        w.recovery.autosave()  # a run is when a machine is most likely to fall over
        project = w.project
        if snapshot is not None:
            loaded = w.files.load_or_none(snapshot)
            if loaded is None:
                return False
            project = loaded
        elif w.has_problems():
            w.views.show("design")  # where the problems are listed and fixed
            w.bottom_dock.show()
            w.bottom_tabs.setCurrentWidget(w.problems)
            return False

        out = resume_from.parent if resume_from is not None else None
        if out is None:
            from studio.training.run_folder import new_run_dir

            try:
                out = new_run_dir(w.project.path)
            except StudioError as exc:
                w.show_error("Could not start the run", str(exc))
                return False
        w.dashboard.reset()
        analysis = w.analysis if project is w.project else None
        if analysis is None:  # a resumed run trains its own snapshot
            from studio.core.shapes import analyze

            analysis = analyze(project.graph)
        w.dashboard.set_network(project.graph, analysis)
        w.dashboard.add_message(f"run folder: {out}")
        worker = self.runner.start(project, out, resume_from, w.project_dir(),
                                   processes=self.run_processes)
        worker.started_run.connect(self._run_started)
        worker.progress.connect(self._run_progress)
        worker.epoch_end.connect(self._run_epoch)
        worker.message.connect(w.dashboard.add_message)
        self._watch_health(project, worker)
        # a resumed run's earlier samples, read once its trainer has cut the file to its step
        self._earlier_stats = out / "layer_stats.jsonl" if resume_from is not None else None
        self.run_dir = out
        self.shown_run = out  # its epochs and end are shown (until another project is)
        self._explain_from = out  # its latest epoch, once it has written one
        if w.act_show_training.isChecked():
            w.views.show("train")
        w.progress.setValue(0)
        w.progress.show()
        self._progress_shown = 0.0
        self.update_actions()
        return True

    def resume(self, run: RunInfo) -> bool:
        """Continue a stopped run of the runs panel from its last checkpoint."""
        return self.train(resume_from=run.path / "last.ckpt",
                          snapshot=run.path / "project.studio.json")

    def toggle_pause(self) -> None:
        worker = self.runner.worker
        if not self.runner.running or worker is None:
            return
        if worker.paused:
            worker.resume()
        else:
            worker.pause()
        self.update_actions()

    def stop(self) -> None:
        if self.runner.running and self.runner.worker is not None:
            self.runner.worker.stop()
            self.window.show_status("stopping after this batch…")

    def update_actions(self) -> None:
        w = self.window
        running = self.runner.running
        w.act_train.setEnabled(not running)
        w.act_pause.setEnabled(running)
        w.act_stop.setEnabled(running)
        paused = running and self.runner.worker is not None and self.runner.worker.paused
        w.act_pause.setText("&Resume" if paused else "&Pause")
        if w.training_views_built:  # a new dashboard starts idle
            w.dashboard.set_run_state(running, bool(paused))

    # -- what a run reports ---------------------------------------------------------------

    def _run_started(self, info: dict[str, Any]) -> None:
        dashboard = self.window.dashboard
        dashboard.reset(info)
        dashboard.add_message(f"data: {info['data']}")
        where = info["device"]
        if info.get("processes", 1) > 1:
            where = f"{info['processes']} data-parallel processes ({where})"
        dashboard.add_message(f"model: {info['params']:,} parameters on {where}")
        if self.health is not None and self._earlier_stats is not None:
            from studio.training.callbacks import read_lines

            # up to where it resumes: the trainer cuts the file there, maybe after this read
            last = info.get("start_step", float("inf"))
            for record in read_lines(self._earlier_stats):
                if record.get("step", 0) <= last:
                    self.health.add(record)
            self._show_health()

    def _run_progress(self, logs: dict[str, Any]) -> None:
        w = self.window
        w.dashboard.add_progress(logs)
        now = time.monotonic()  # the status bar at 4 Hz: each repaint costs the run CPU
        if now - self._progress_shown < 0.25 and logs["batch"] < logs["batches"]:
            return
        self._progress_shown = now
        total = logs["epochs"] * logs["batches"]
        w.progress.setMaximum(total)
        w.progress.setValue(min(logs["step"], total))
        eta = logs.get("eta_s")
        eta_text = "?" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}"
        w.progress_label.setText(
            f"epoch {logs['epoch']}/{logs['epochs']} · step {logs['batch']}/{logs['batches']}"
            f" · {logs['samples_per_s']:,.0f} samples/s · ETA {eta_text}")

    def _watch_health(self, project: Project, worker: QObject) -> None:
        """Live layer health for a run with ``training.layer_stats``: marks on the canvas and
        the network map, the run-time doctor's findings in the Problems list and the log."""
        from studio.core.health import LayerHealth

        w = self.window
        self.health = (LayerHealth.for_graph(project.graph)  # blocks' layers by their paths
                       if project.training.layer_stats is not None else None)
        self._told = set()
        w.run_findings = []
        w.show_problems()  # the last run's findings go with its marks
        self._show_health()
        if self.health is not None:
            worker.layer_stats.connect(self._run_layer_stats)  # type: ignore[attr-defined]

    def _run_layer_stats(self, record: dict[str, Any]) -> None:
        if self.health is None:
            return
        self.health.add(record)
        if not self._health_timer.isActive():  # at most 4 repaints a second, whatever the rate
            self._health_timer.start()

    def _show_health(self) -> None:
        w, h = self.window, self.health
        w.scene.show_health(h)
        if w.training_views_built:
            w.dashboard.set_health(h)
        findings = h.findings() if h is not None else []
        for f in findings:
            if (f.code, f.node) not in self._told:
                self._told.add((f.code, f.node))
                w.dashboard.add_message(f"doctor: {f.message}")
        if {(f.code, f.node) for f in findings} != {(f.code, f.node) for f in w.run_findings}:
            w.run_findings = findings  # redrawn only on a change: selection and scroll stay
            w.show_problems()

    def forget_health(self) -> None:
        """Another project is shown: the last run's marks and findings belong to the old one
        (a run still going keeps training, its statistics are no longer shown)."""
        self.health = None
        self.window.run_findings = []
        self.shown_run = self._explain_from = self.evaluated = self.evaluation_job = None
        if self.window.training_views_built:
            self.window.evaluation.clear()

    def _run_epoch(self, logs: dict[str, Any]) -> None:
        from studio.training.console import format_logs

        self.window.dashboard.add_epoch(logs)
        self.window.dashboard.add_message(f"epoch {logs['epoch']}: {format_logs(logs)}")
        out = self._explain_from
        if out is not None:  # the first epoch: Explain turns to this run's weights
            self._explain_from = None
            self.window.evaluation.explain_with(self._source(out, out / "last.ckpt"))
        self.window.evaluation.explain.refresh()  # the sample shown, with this epoch's weights

    def _run_ended(self, result: RunOutcome) -> None:
        w = self.window
        if self._health_timer.isActive():  # the last samples, before the run's end is told
            self._health_timer.stop()
            self._show_health()
        self.last_result = result
        w.runs_panel.refresh()
        w.dashboard.redraw()
        w.progress.hide()
        w.progress_label.setText("")
        self.update_actions()
        w.dashboard.add_message(result.message)
        w.dashboard.finish(result.status, result.message)
        if result.status == "failed":
            w.dashboard.add_message(f"FAILED: {result.message}")
            w.show_status(f"training failed: {result.message}")
            return
        w.show_status(f"training {result.message}")
        if result.predictions and self.shown_run is not None:
            self._evaluating_run_end(result)

    def _evaluating_run_end(self, result: RunOutcome) -> None:
        """The run's validation predictions; its test part, if chosen, from the weights the
        run scored on it (named by the last line of ``metrics.jsonl``)."""
        import json

        from ..training.runs import read_run

        w = self.window
        weights = "model.safetensors"
        if self.run_dir is not None and any(k.startswith("test_") for k in result.logs):
            try:
                lines = (self.run_dir / "metrics.jsonl").read_text().splitlines()
                weights = str(json.loads(lines[-1]).get("weights", weights))
            except (OSError, ValueError, IndexError):
                pass
        self.evaluated = None if self.run_dir is None else (read_run(self.run_dir),
                                                            self.run_dir / weights)
        # the validation predictions are the last epoch's, which model.safetensors holds
        last = None if self.run_dir is None else self._source(
            self.run_dir, self.run_dir / "model.safetensors")
        w.evaluation.set_test_available(any(k.startswith("test_") for k in result.logs))
        w.evaluation.show_predictions(result.predictions or {}, result.logs, "val", last)

    # -- evaluating a checkpoint ----------------------------------------------------------

    def evaluate_weights(self, run: RunInfo, weights: Path) -> None:
        """The evaluation views for one checkpoint of a run, on the split the Evaluate view
        has chosen when the run's project has a test part."""
        from studio.data.sources import has_test_part

        data = run.settings.get("data", {})
        test = has_test_part(str(data.get("dataset", "")), float(data.get("test_fraction", 0)))
        self.evaluated = (run, weights)
        self.window.evaluation.set_test_available(test)
        self.evaluate_split(self.window.evaluation.split)

    def find_learning_rate(self) -> None:
        """Run ▸ Find Learning Rate: the range test on a snapshot, in a dialog."""
        from ..lr_find_dialog import LrFindDialog

        w = self.window
        if w.has_problems():  # the test trains: the same gate as F5
            w.show_status("fix the network's problems first (see the Problems list)")
            return
        self.lr_dialog = LrFindDialog(w.editor, w.project_dir(), w)
        self.lr_dialog.open()

    def _source(self, run_dir: Path, weights: Path) -> Source:
        """These weights of that run, for the Evaluate view's Explain tab."""
        from ..training.explain_job import Source

        return Source(run_dir / "project.studio.json", weights, self.window.project_dir())

    def evaluate_split(self, split: str) -> None:
        """The evaluated weights on one split ("val" or "test"), computed in a child process.
        """
        from ..training.process import EvaluationJob

        if self.evaluated is None:
            return
        run, weights = self.evaluated
        w = self.window
        out = run.path / f"evaluation-{weights.stem}{'-test' if split == 'test' else ''}.npz"
        job = EvaluationJob(run.path / "project.studio.json", weights, out, w.project_dir(),
                            parent=self, split=split)
        self.evaluation_job = job
        source = self._source(run.path, weights)  # as asked, whatever is open when it ends
        w.show_status(f"evaluating {run.name}/{weights.name} on {split}…")

        def done(pred: dict[str, Any], logs: dict[str, Any]) -> None:
            from studio.training.console import format_logs

            if self.evaluation_job is not job:  # a newer one was asked, or another project
                return
            w.evaluation.show_predictions(pred, logs, split, source)
            w.views.show("evaluate")
            w.dashboard.add_message(f"{run.name}/{weights.name}: {format_logs(logs)}")
            w.show_status(f"evaluated {run.name}/{weights.name}")

        def failed(text: str) -> None:
            if self.evaluation_job is not job:
                return
            w.dashboard.add_message(f"evaluation failed: {text}")
            w.show_status(f"evaluation failed: {text}")

        job.done.connect(done)
        job.failed.connect(failed)
        job.start()

    # -- the questions, as dialogs --------------------------------------------------------

    def _ask_stop_run(self) -> bool:
        B = QMessageBox.StandardButton
        return QMessageBox.question(
            self.window, "A run is going", "Stop the training run and close? The last "
            "checkpoint is kept.", B.Yes | B.No, B.No) == B.Yes

    def confirm_delete(self, names: list[str]) -> bool:
        B = QMessageBox.StandardButton
        return QMessageBox.question(self.window, "Delete runs", "Delete " + ", ".join(names) +
                                    " and their checkpoints?", B.Yes | B.No, B.No) == B.Yes
