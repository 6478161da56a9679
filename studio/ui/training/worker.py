"""Runs the trainer on a QThread and relays its events to the GUI as queued signals.

The trainer reports at most 20 times a second whatever the step rate, so the GUI thread never
sees more than that; it never waits on the worker (pause, resume and stop only set flags the
loop polls between batches).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from studio.core.project import Project

from .process import ProcessWorker

if TYPE_CHECKING:
    from studio.training.callbacks import Callback

    from .result import RunOutcome


def _relay(worker: TrainingWorker) -> Callback:
    """A trainer callback emitting the worker's signals (built lazily: torch loads with the
    first run)."""
    from studio.training.callbacks import Callback

    class Relay(Callback):
        def on_run_start(self, info: dict[str, Any]) -> None:
            worker.started_run.emit(info)

        def on_progress(self, logs: dict[str, Any]) -> None:
            worker.progress.emit(logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            worker.epoch_end.emit(logs)

        def on_message(self, text: str) -> None:
            worker.message.emit(text)

        def on_checkpoint(self, kind: str, path: Path) -> None:
            worker.message.emit(f"wrote {kind} checkpoint {path.name}")

        def on_layer_stats(self, record: dict[str, Any]) -> None:
            worker.layer_stats.emit(record)

    return Relay()


class TrainingWorker(QObject):
    """Owns one run. Create it, move it to a thread, call ``start``."""

    started_run = Signal(dict)
    progress = Signal(dict)
    epoch_end = Signal(dict)
    message = Signal(str)
    layer_stats = Signal(dict)  # a sample of training.layer_stats
    finished = Signal(object)  # RunOutcome: the RunResult, plus the predictions

    def __init__(self, project: Project, out_dir: Path, resume_from: Path | None = None,
                 base_dir: Path | None = None) -> None:
        super().__init__()
        self.project = project.copy()  # the run trains a snapshot; edits go on undisturbed
        self.out_dir = out_dir
        self.resume_from = resume_from
        self.base_dir = base_dir
        self.trainer: Any = None
        self.paused = False

    @Slot()
    def run(self) -> None:
        from studio.training.trainer import Trainer

        from .result import RunOutcome

        t0 = time.perf_counter()
        self.trainer = Trainer(self.project, out_dir=self.out_dir, base_dir=self.base_dir,
                               callbacks=[_relay(self)])
        result = RunOutcome.of(self.trainer.fit(resume_from=self.resume_from))
        if result.status != "failed" and getattr(self.trainer, "bundle", None) is not None:
            try:
                from studio.training.predictions import collect_predictions

                result.predictions = collect_predictions(self.trainer)
            except Exception as exc:  # evaluation extras must never fail a finished run
                self.message.emit(f"could not collect predictions: {exc}")
        result.seconds = time.perf_counter() - t0
        self.finished.emit(result)

    @property
    def step(self) -> int:
        return self.trainer.step if self.trainer is not None else 0

    # called from the GUI thread: flags only, never blocking
    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()
            self.paused = True

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()
            self.paused = False

    def stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()


_collector: Any = None


def collect_garbage_in_gui_thread() -> None:
    """Python's collector may run on whichever thread allocates; if it runs on the training
    thread it can finalise Qt objects (closed windows, plot items in cycles) there, and Qt then
    crashes. So automatic collection is switched off and a GUI-thread timer collects instead
    (pyqtgraph's documented remedy). Seen here as segfaults and hangs in the GUI tests."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=1.0)


class RunController(QObject):
    """Starts runs (on a worker thread, or in a child process) and shuts them down cleanly."""

    started = Signal(object)  # the worker
    ended = Signal(object)  # RunOutcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_thread: QThread | None = None  # not self.thread: QObject.thread()
        self.worker: TrainingWorker | ProcessWorker | None = None

    @property
    def running(self) -> bool:
        if isinstance(self.worker, ProcessWorker):
            return self.worker.running and not self.worker._done
        return self.run_thread is not None and self.run_thread.isRunning()

    def start(self, project: Project, out_dir: Path, resume_from: Path | None = None,
              base_dir: Path | None = None, processes: int = 0
              ) -> TrainingWorker | ProcessWorker:
        """``processes`` ≥ 1: train in ``studio train --events`` (fastest, and a crash of
        the run cannot take the window down), on that many data-parallel processes; 0: on a
        QThread in this process."""
        if self.running:
            raise RuntimeError("a run is already going")
        if processes >= 1:
            self.run_thread = None
            pw = ProcessWorker(project, out_dir, resume_from, base_dir, parent=self,
                               processes=processes)
            pw.finished.connect(self._finished)
            self.worker = pw
            self.started.emit(pw)
            pw.start()
            return pw
        collect_garbage_in_gui_thread()
        import studio.training.trainer  # noqa: F401 - load torch here, not on the worker

        self.run_thread = QThread()
        worker = TrainingWorker(project, out_dir, resume_from, base_dir)
        worker.moveToThread(self.run_thread)
        self.run_thread.started.connect(worker.run)
        worker.finished.connect(self._finished)
        self.worker = worker
        self.started.emit(worker)
        self.run_thread.start()
        return worker

    def _finished(self, result: RunOutcome) -> None:
        thread = self.run_thread
        if thread is not None:
            thread.quit()
            thread.wait()
        self.run_thread = None
        self.ended.emit(result)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop a run and wait for it (no 'QThread destroyed while running', no orphan)."""
        w = self.worker
        if isinstance(w, ProcessWorker):
            if w.running:
                w.stop()
                if not w.proc.waitForFinished(timeout_ms):
                    w.proc.kill()
                    w.proc.waitForFinished(5_000)
            return
        if w is not None:
            w.stop()
        if self.run_thread is not None:
            self.run_thread.quit()
            self.run_thread.wait(timeout_ms)
            self.run_thread = None
