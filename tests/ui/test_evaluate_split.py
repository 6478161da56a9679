"""The Evaluate view's split selector: a run with a test part shows its validation
predictions, and choosing Test shows the same views for the weights the run scored on it."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from studio.core.project import sample_paths
from studio.ui.main_window import MainWindow


def test_the_split_selector_shows_the_test_part_as_the_run_scored_it(qtbot, tmp_path) -> None:
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = MainWindow(path=wine,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.files.ask_save = lambda: QMessageBox.StandardButton.Discard
    w.runs.set_run_processes(0)  # a thread: the quickest run
    qtbot.addWidget(w)
    w.show()
    try:
        w.editor.set_setting("training", "epochs", 1)
        w.editor.set_setting("data", "test_fraction", 0.2)
        w.act_train.trigger()
        qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
        assert w.runs.last_result.status == "completed", w.runs.last_result.message
        assert "test (" in w.dashboard.log.toPlainText()  # the Train view's log says it
        ev = w.evaluation
        assert ev.split_box.isVisibleTo(ev) and ev.split == "val"
        assert "val_accuracy" in ev.summary.text()
        final = json.loads((w.runs.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
        ev.split_box.setCurrentIndex(ev.split_box.findData("test"))  # the user picks Test
        qtbot.waitUntil(lambda: "test_accuracy" in ev.summary.text(), timeout=60_000)
        assert f"test_accuracy <b>{final['test_accuracy']:.4f}" in ev.summary.text()
        total = sum(int(ev.confusion.item(r, c).text()) for r in range(3) for c in range(3))
        assert total == sum(map(sum, final["test_confusion"])) == 36
        ev.split_box.setCurrentIndex(ev.split_box.findData("val"))  # kept: shown at once
        assert "val_accuracy" in ev.summary.text() and ev.split == "val"
    finally:
        w.runs.shutdown()
