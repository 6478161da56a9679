"""Run ▸ Find Learning Rate as a user drives it: the test runs beside the window, the curve
and the suggestion show, one click sets the rate and one undo takes it back."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt

from studio.core.project import sample_paths

from .helpers import open_window


def test_the_suggested_rate_is_one_click_and_one_undo_away(qtbot, tmp_path) -> None:
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = open_window(qtbot, tmp_path, wine)
    before = w.project.training.optimizer.get("lr")
    w.act_lr_find.trigger()
    dialog = w.runs.lr_dialog
    assert dialog.isVisible() and not dialog.use.isEnabled()
    qtbot.waitUntil(lambda: dialog.found is not None, timeout=60_000)
    found = dialog.found
    xs, ys = dialog.curve.getData()
    assert len(xs) == len(found.lrs) >= 20 and list(ys) == found.losses
    assert dialog.marker.isVisible()
    assert math.isclose(10 ** dialog.marker.value(), found.valley, rel_tol=1e-9)
    dialog.method.setCurrentIndex(dialog.method.findData("steepest"))
    assert math.isclose(10 ** dialog.marker.value(), found.steepest, rel_tol=1e-9)
    assert f"{found.steepest:.1e}" in dialog.use.text()
    qtbot.mouseClick(dialog.use, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    lr = w.project.training.optimizer["lr"]
    assert lr == float(f"{found.steepest:.2g}")
    assert w.editor.stack.count() == 1
    w.editor.stack.undo()
    assert w.project.training.optimizer.get("lr") == before


def test_closing_mid_test_cancels_it_and_changes_nothing(qtbot, tmp_path) -> None:
    mnist = next(p for p in sample_paths() if p.name.startswith("mnist_cnn"))
    w = open_window(qtbot, tmp_path, mnist)
    before = w.project.to_dict()
    w.act_lr_find.trigger()
    dialog = w.runs.lr_dialog
    qtbot.waitUntil(lambda: dialog.bar.value() >= 2, timeout=60_000)
    dialog.reject()
    dialog.test.worker.join(timeout=30)
    assert not dialog.test.worker.is_alive() and dialog.found is None
    assert w.project.to_dict() == before and w.editor.stack.count() == 0
