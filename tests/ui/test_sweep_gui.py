"""Sweeps as a user drives them: right-click a field ▸ Sweep this…, Run ▸ Sweep, the Sweep
view and the runs list fill as trials end, Apply best is one undo step."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel, QLineEdit

from studio.core.project import sample_paths

from .helpers import open_window


def _answer_menu_then_dialog(low: str | None = None) -> None:
    """Choose "Sweep this…" in the context menu, then accept the range dialog."""
    def pick() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(20, pick)
            return
        next(a for a in menu.actions() if a.text() == "Sweep this…").trigger()
        menu.close()

    def accept() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None or not hasattr(dialog, "result_spec"):
            QTimer.singleShot(20, accept)
            return
        if low is not None:
            dialog.fields["low"].setText(low)
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()

    QTimer.singleShot(20, pick)
    QTimer.singleShot(40, accept)


def test_a_field_swept_trained_and_its_best_applied(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))  # a sweep folder of its own
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = open_window(qtbot, tmp_path, wine)
    w.inspector.show_settings()
    # the optimizer's lr field: right-click ▸ Sweep this…, the proposed range with low edited
    lr_field = next(e for e in w.inspector.findChildren(QLineEdit)
                    if e.toolTip().startswith("lr"))
    form = lr_field.parentWidget()
    _answer_menu_then_dialog(low="0.0005")
    form._menu(lr_field, form.schema.params[[p.name for p in form.schema.params].index("lr")],
               lr_field.rect().center())
    qtbot.waitUntil(lambda: w.project.sweep is not None, timeout=10_000)
    spec = w.project.sweep["parameters"]["training.optimizer.lr"]
    assert spec["type"] == "float" and spec["low"] == 0.0005 and spec["log"]
    assert w.editor.stack.undoText() == "Sweep training.optimizer.lr"
    w.editor.set_sweep({**w.project.sweep, "trials": 3, "sampler": "random", "pruner": "none"})
    assert w.project.sweep["trials"] == 3
    w.editor.set_setting("training", "epochs", 2)
    w.editor.set_setting("training", "early_stopping", None)
    # the inspector lists it, with a button that takes it out
    from studio.ui.sweep_box import SweepBox

    qtbot.waitUntil(lambda: w.inspector.findChild(SweepBox) is not None)
    box = w.inspector.findChild(SweepBox)
    assert "optimizer.lr" in " ".join(lbl.text() for lbl in box.findChildren(QLabel))

    w.act_sweep.trigger()
    assert w.views.current == "sweep" and w.sweeps.running
    qtbot.waitUntil(lambda: not w.sweeps.running, timeout=180_000)
    view = w.training_views().sweep
    assert view.table.rowCount() == 3, w.sweeps.output
    assert "3 of 3 trials" in view.headline.text()
    names = [w.runs_panel.tree.topLevelItem(i).text(0)
             for i in range(w.runs_panel.tree.topLevelItemCount())]
    assert sum(n.startswith("sweep-wine_classifier/trial-") for n in names) == 3
    best = view.data["best"]
    before = w.project.training.optimizer.get("lr")
    view.apply_button.click()
    assert w.project.training.optimizer["lr"] == best["params"]["training.optimizer.lr"]
    w.editor.stack.undo()
    assert w.project.training.optimizer.get("lr") == before


def test_the_sweep_view_says_what_to_do_before_any_sweep(qtbot, tmp_path, monkeypatch
                                                          ) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))  # no sweep folder yet
    from studio.ui.training.sweep_view import EMPTY

    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    w = open_window(qtbot, tmp_path, wine)
    w.views.show("sweep")
    view = w.training_views().sweep
    assert view.headline.text() == EMPTY and view.table.rowCount() == 0
    assert not view.apply_button.isEnabled() and not view.resume_button.isEnabled()
    w.editor.set_sweep({"parameters": {"training.optimizer.lr": {
        "type": "float", "low": 1e-4, "high": 0.1, "log": True}}})
    w.sweeps.poll()
    assert view.resume_button.isEnabled() and view.resume_button.text() == "Run"
