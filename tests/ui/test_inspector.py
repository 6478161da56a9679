"""The inspector's settings forms come from the schema: every setting editable, within its
limits, shown exactly, and each edit one undo step."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSpinBox

from studio.core.project import Project, sample_paths
from studio.core.settings import DataSettings, EarlyStopping, TrainingSettings, setting_specs
from studio.ui.editor import Editor
from studio.ui.inspector import Inspector


@pytest.fixture
def inspector(qtbot):
    project = Project.load(next(p for p in sample_paths() if p.name.startswith("cifar")))
    project.training.optimizer = {"type": "Adam", "lr": 0.001}
    editor = Editor(project)
    w = Inspector(editor)
    qtbot.addWidget(w)
    w.resize(360, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def type_into(qtbot, widget, text: str) -> None:
    target = widget.lineEdit() if isinstance(widget, QSpinBox) else widget
    target.selectAll()
    qtbot.keyClick(target, Qt.Key.Key_Delete)
    qtbot.keyClicks(target, text)
    qtbot.keyClick(target, Qt.Key.Key_Return)
    QApplication.processEvents()


def optimizer_form(w: Inspector):
    return next(f for f in w.widget().findChildren(type(w.training_form))
                if "eps" in f.widgets)


def test_every_scalar_setting_of_the_schema_has_a_field(inspector) -> None:
    data = {p.name for p in setting_specs(DataSettings)} - {"dataset"}
    training = {p.name for p in setting_specs(TrainingSettings)} - {"init_weights"}
    assert set(inspector.data_form.widgets) == data
    assert set(inspector.training_form.widgets) == training


def test_a_tiny_number_is_shown_and_kept_exactly(inspector, qtbot) -> None:
    form = optimizer_form(inspector)
    assert form.widgets["eps"].text() == "1e-08"  # a spin box showed 0.000000
    type_into(qtbot, optimizer_form(inspector).widgets["lr"], "0.003")
    opt = inspector.editor.project.training.optimizer
    assert opt["lr"] == 0.003
    assert opt.get("eps", 1e-8) == 1e-8


def test_limits_are_the_schemas(inspector, qtbot) -> None:
    project = inspector.editor.project
    type_into(qtbot, inspector.data_form.widgets["val_fraction"], "0.97")
    assert project.data.val_fraction == 0.97  # the old form stopped at 0.95
    field = inspector.data_form.widgets["val_fraction"]
    type_into(qtbot, field, "1")
    assert field.property("invalid") and "must be < 1" in field.toolTip()
    assert project.data.val_fraction == 0.97
    assert inspector.data_form.widgets["batch_size"].maximum() == 1 << 20


def test_settings_that_had_no_field_are_editable_and_undo(inspector, qtbot) -> None:
    project, stack = inspector.editor.project, inspector.editor.stack
    type_into(qtbot, inspector.training_form.widgets["grad_clip"], "1.5")
    assert project.training.grad_clip == 1.5
    assert inspector.training_form.widgets["grad_clip"].text() == "1.5"  # the page anew
    type_into(qtbot, inspector.training_form.widgets["grad_clip"], "")
    assert project.training.grad_clip is None  # empty: no clipping
    stack.undo()
    assert project.training.grad_clip == 1.5
    stack.undo()
    assert project.training.grad_clip is None


def test_early_stopping_and_augmentations_have_their_parameters(inspector, qtbot) -> None:
    project = inspector.editor.project
    inspector._set("training", "early_stopping", {})
    QApplication.processEvents()
    forms = inspector.widget().findChildren(type(inspector.training_form))
    es = next(f for f in forms if "restore_best" in f.widgets)
    assert set(es.widgets) == {p.name for p in setting_specs(EarlyStopping)}
    type_into(qtbot, es.widgets["min_delta"], "0.01")
    assert project.training.early_stopping.min_delta == 0.01
    forms = inspector.widget().findChildren(type(inspector.training_form))
    crop = next(f for f in forms if "padding" in f.widgets)
    type_into(qtbot, crop.widgets["padding"], "2")
    assert {"type": "random_crop", "padding": 2} in project.data.augment


def test_no_horizontal_scrolling_at_300_px(qtbot) -> None:
    from studio.ui.inspector import Inspector as Insp

    for sample in sample_paths():
        editor = Editor(Project.load(sample))
        editor.set_setting("training", "early_stopping", {})
        editor.set_setting("data", "augment", [{"type": "affine"}, {"type": "random_crop"}])
        w = Insp(editor)
        qtbot.addWidget(w)
        w.resize(300, 700)
        w.show()
        qtbot.waitExposed(w)
        pages = [None, *editor.graph.nodes]
        for node in pages:
            w.show_node(node) if node else w.show_settings()
            QApplication.processEvents()
            assert w.widget().minimumSizeHint().width() <= w.viewport().width(), (sample, node)
            assert not w.horizontalScrollBar().isVisible(), (sample, node)


def test_floats_round_trip_and_take_scientific_notation(inspector, qtbot) -> None:
    project = inspector.editor.project
    form = optimizer_form(inspector)
    for name in ("lr", "beta1", "beta2", "eps", "weight_decay"):
        field = form.widgets[name]
        before = project.training.optimizer.get(name)
        text = field.text()
        type_into(qtbot, field, text)  # committing what is shown changes nothing
        form = optimizer_form(inspector)
        assert project.training.optimizer.get(name) == before, name
        assert form.widgets[name].text() == text
    type_into(qtbot, optimizer_form(inspector).widgets["eps"], "3e-7")
    assert project.training.optimizer["eps"] == 3e-7
    assert optimizer_form(inspector).widgets["eps"].text() == "3e-07"
    type_into(qtbot, optimizer_form(inspector).widgets["lr"], "1E-4")
    assert project.training.optimizer["lr"] == 1e-4


def test_leaving_a_field_unchanged_makes_no_undo_step(inspector, qtbot) -> None:
    stack = inspector.editor.stack
    before = stack.count()
    field = optimizer_form(inspector).widgets["lr"]
    field.setFocus()
    type_into(qtbot, field, field.text())
    assert stack.count() == before


def test_layer_statistics_are_switched_on_and_tuned_in_the_inspector(inspector, qtbot) -> None:
    from PySide6.QtWidgets import QCheckBox

    from studio.core.settings import LayerStats

    project = inspector.editor.project
    box = next(c for c in inspector.widget().findChildren(QCheckBox)
               if c.text() == "layer stats")
    assert not box.isChecked()
    box.click()  # as a user switches it on
    assert project.training.layer_stats == LayerStats()  # every 100 steps, 32 bins
    QApplication.processEvents()
    forms = inspector.widget().findChildren(type(inspector.training_form))
    form = next(f for f in forms if "bins" in f.widgets)
    type_into(qtbot, form.widgets["every"], "10")
    assert project.training.layer_stats.every == 10
    assert inspector.editor.stack.count() == 2
    inspector.editor.stack.undo()
    inspector.editor.stack.undo()
    assert project.training.layer_stats is None
