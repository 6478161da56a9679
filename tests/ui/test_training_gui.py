"""Training from the window: live curves, evaluation views, control, faults, closing mid-run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from studio.core.project import sample_paths
from studio.ui.main_window import MainWindow


def sample(name: str):
    return next(p for p in sample_paths() if p.name.startswith(name))


@pytest.fixture(params=["process"])
def window(qtbot, tmp_path, request):
    w = MainWindow(path=sample("mnist_mlp"),
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.errors = []
    w.show_error = lambda title, text: w.errors.append(text)
    w.runs.ask_stop_run = lambda: True
    w.runs_panel.confirm_delete = lambda names: True
    w.files.ask_save = lambda: QMessageBox.StandardButton.Discard
    w.runs.set_run_processes({"thread": 0, "process": 1, "ddp2": 2}[request.param])
    qtbot.addWidget(w)
    w.show()
    yield w
    w.runs.shutdown()


@pytest.mark.parametrize("window", ["thread", "process", "ddp2"], indirect=True)
def test_train_plots_live_and_matches_the_metrics_file(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 3)
    seen: list[int] = []
    window.dashboard.curves["batch_loss"].sigPlotChanged.connect(
        lambda *_: seen.append(window.dashboard.series["batch_loss"].n))
    window.act_train.trigger()
    assert window.runs.running and not window.act_train.isEnabled()
    assert window.views.current == "train"  # a run shows the Train view
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=180_000)
    result = window.runs.last_result
    assert result.status == "completed", result.message
    assert seen and max(seen) >= 3  # points arrived while it ran, not only at the end
    metrics = window.runs.run_dir / "metrics.jsonl"
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    lines = [r for r in rows if "val_loss" in r]  # epochs; the last row is the test split's
    assert "test_accuracy" in rows[-1]
    x, y = window.dashboard.curves["val_loss"].getData()
    assert list(x) == [1.0, 2.0, 3.0]
    assert np.allclose(y, [ln["val_loss"] for ln in lines])
    x, y = window.dashboard.curves["metric"].getData()
    assert np.allclose(y, [ln["accuracy"] for ln in lines])
    assert lines[-1]["val_accuracy"] > 0.85
    # the confusion matrix and a cell's gallery of images
    ev = window.evaluation
    assert ev.confusion.rowCount() == 10
    diag = sum(int(ev.confusion.item(i, i).text()) for i in range(10))
    assert diag == round(lines[-1]["val_accuracy"] * 1000)
    ev.confusion.cellClicked.emit(3, 3)
    assert ev.cell_gallery.count() == int(ev.confusion.item(3, 3).text())
    assert not ev.cell_gallery.item(0).icon().isNull()  # images are shown as images
    assert ev.wrong.count() == 1000 - diag
    assert window.act_train.isEnabled()
    log = window.dashboard.log.toPlainText()
    if window.runs.run_processes == 2:
        assert "on 2 data-parallel processes (cpu)" in log
        assert "2 processes ended with identical weights" in log
        assert window.run_where_group.checkedAction().text() == "On 2 Processes (Data-Parallel)"


def test_editing_during_a_run_does_not_touch_the_running_model(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 2)
    window.act_train.trigger()
    window.editor.set_params("dense1", {"out_features": 7})  # edit while it trains
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=180_000)
    assert window.runs.last_result.status == "completed"
    trained = json.loads((window.runs.run_dir / "project.studio.json").read_text())
    dense1 = next(n for n in trained["graph"]["nodes"] if n["id"] == "dense1")
    assert dense1["params"] == {"out_features": 128}


@pytest.mark.parametrize("window", ["thread", "process", "ddp2"], indirect=True)
def test_pause_resume_stop_from_the_window(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 200)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.dashboard.series["batch_loss"].n >= 2, timeout=60_000)
    worker = window.runs.runner.worker
    # the run says "paused" when its loop holds and "resumed" when it goes on; a direct
    # connection notes its step at that very moment, in whichever thread the run reports from
    said: dict[str, int] = {}
    worker.message.connect(lambda text: said.setdefault(text, worker.step),
                           Qt.ConnectionType.DirectConnection)
    window.act_pause.trigger()
    assert window.act_pause.text() == "&Resume"
    # seen in the log (queued like the progress reports, so any report from before the
    # pause has been delivered by then)
    qtbot.waitUntil(lambda: "paused" in window.dashboard.log.toPlainText().splitlines(),
                    timeout=30_000)
    held = said["paused"]
    with qtbot.assertNotEmitted(worker.progress, wait=500):  # no step while paused
        pass
    assert worker.step == held
    window.act_pause.trigger()
    qtbot.waitUntil(lambda: "resumed" in said, timeout=30_000)
    assert said["resumed"] == held  # it went on from the batch where it held
    qtbot.waitUntil(lambda: worker.step > held + 3, timeout=30_000)
    window.act_stop.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=60_000)
    assert window.runs.last_result.status == "stopped"
    assert (window.runs.run_dir / "last.ckpt").exists()


@pytest.mark.parametrize("window", ["thread", "process", "ddp2"], indirect=True)
def test_a_failing_run_shows_its_message_and_keeps_the_app_up(window, qtbot, tmp_path) -> None:
    window.editor.set_setting("data", "dataset", "fashion-mnist")
    window.editor.set_setting("data", "options", {"root": str(tmp_path / "none")})
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=60_000)
    assert window.runs.last_result.status == "failed"
    assert "FashionMNIST files not found" in window.dashboard.log.toPlainText()
    assert "training failed" in window.statusBar().currentMessage()
    assert window.isVisible() and len(window.editor.graph) == 6


@pytest.mark.parametrize("window", ["thread", "process", "ddp2"], indirect=True)
def test_closing_mid_run_stops_it_cleanly(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 200)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.dashboard.series["batch_loss"].n >= 1, timeout=60_000)
    thread, worker = window.runs.runner.run_thread, window.runs.runner.worker
    assert window.close()
    if thread is not None:
        assert thread.isFinished()
    else:  # the child process was stopped and waited for, not left behind
        assert worker.proc.state() == worker.proc.ProcessState.NotRunning
        assert worker.proc.exitCode() == 0
    assert not window.runs.running


def test_runs_are_listed_overlaid_compared_resumed_and_deleted(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 1)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=120_000)
    first = window.runs.run_dir
    window.runs.last_result = None
    window.editor.set_setting("training", "epochs", 2)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.dashboard.series["batch_loss"].n >= 2, timeout=60_000)
    window.act_stop.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=60_000)
    stopped = window.runs.run_dir
    panel = window.runs_panel
    assert {first.name, stopped.name} <= set(panel.runs)
    assert panel.runs[stopped.name].status == "stopped" and panel.runs[stopped.name].resumable
    # overlay the finished run's validation curve on the loss plot
    panel.item(first.name).setCheckState(0, Qt.CheckState.Checked)
    assert first.name in panel.overlays
    assert list(panel.overlays[first.name].getData()[0]) == [1.0]
    # compare settings
    panel.item(first.name).setSelected(True)
    panel.item(stopped.name).setSelected(True)
    panel.btn_compare.click()
    assert "training.epochs:" in panel.compare_text.toPlainText()
    # resume the stopped run: it finishes in its own folder
    panel.tree.clearSelection()
    panel.item(stopped.name).setSelected(True)
    window.runs.last_result = None
    panel.btn_resume.click()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=120_000)
    assert window.runs.last_result.status == "completed" and window.runs.run_dir == stopped
    assert panel.runs[stopped.name].status == "completed"
    # delete the first run
    panel.tree.clearSelection()
    panel.item(first.name).setSelected(True)
    panel.btn_delete.click()
    assert not first.exists() and first.name not in panel.runs
    assert first.name not in panel.overlays


def test_a_killed_training_process_leaves_the_app_up_and_the_run_resumable(window, qtbot
                                                                          ) -> None:
    import os
    import signal

    window.editor.set_setting("training", "epochs", 200)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.dashboard.series["val_loss"].n >= 1, timeout=120_000)
    worker = window.runs.runner.worker
    os.kill(worker.proc.processId(), signal.SIGKILL)  # as the OOM killer would
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=30_000)
    result = window.runs.last_result
    assert result.status == "failed" and "killed or crashed" in result.message
    assert "training failed" in window.statusBar().currentMessage()
    assert window.isVisible() and len(window.editor.graph) == 6 and window.act_train.isEnabled()
    run = window.runs_panel.runs[window.runs.run_dir.name]
    assert run.status == "failed" and run.resumable
    # resuming continues after the last completed epoch
    window.runs_panel.tree.clearSelection()
    window.runs_panel.item(run.name).setSelected(True)
    window.runs.last_result = None
    window.runs_panel.btn_resume.click()
    qtbot.waitUntil(lambda: "resumed after epoch" in window.dashboard.log.toPlainText(),
                    timeout=60_000)
    window.act_stop.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=60_000)
    assert window.runs.last_result.status == "stopped"


def test_any_checkpoint_of_a_run_can_be_evaluated_on_demand(window, qtbot) -> None:
    window.editor.set_setting("training", "epochs", 2)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=120_000)
    metrics = window.runs.run_dir / "metrics.jsonl"
    lines = [r for r in map(json.loads, metrics.read_text().splitlines()) if "val_loss" in r]
    panel = window.runs_panel
    item = panel.item(window.runs.run_dir.name)
    files = {item.child(i).text(0): item.child(i) for i in range(item.childCount())}
    assert set(files) == {"best.ckpt", "last.ckpt", "model.safetensors"}
    window.evaluation.tabs.clear()
    for name in ("last.ckpt", "best.ckpt"):
        panel.tree.clearSelection()
        files[name].setSelected(True)
        window.evaluation.summary.setText("")
        panel.btn_evaluate.click()
        qtbot.waitUntil(lambda: window.evaluation.summary.text() != "", timeout=60_000)
        assert window.views.current == "evaluate"  # evaluating shows the Evaluate view
        assert window.evaluation.isVisible() and window.runs_panel.isVisible()
        ev = window.evaluation
        diag = sum(int(ev.confusion.item(i, i).text()) for i in range(10))
        best = max(range(len(lines)), key=lambda i: -lines[i]["val_loss"])
        expected = lines[-1] if name == "last.ckpt" else lines[best]
        assert diag == round(expected["val_accuracy"] * 1000)  # the checkpoint's own epoch
        assert f"val_accuracy <b>{expected['val_accuracy']:.4f}" in ev.summary.text()
    # a checkpoint that does not fit the project is a message, not a crash
    (window.runs.run_dir / "last.ckpt").write_bytes(b"not a checkpoint")
    panel.tree.clearSelection()
    files["last.ckpt"].setSelected(True)
    panel.btn_evaluate.click()
    qtbot.waitUntil(lambda: "evaluation failed" in window.statusBar().currentMessage(),
                    timeout=60_000)
    assert "not a readable Studio checkpoint" in window.statusBar().currentMessage()
