"""Model ▸ Compress… and distillation as a user drives them: a trained run pruned and
quantized from the dialog, the before/after table read, the pruned project opened beside the
original; a teacher chosen in the inspector, its two loss parts on the Train view's chart."""

from __future__ import annotations

from studio.core.build import build_module
from studio.core.project import Project, sample_paths
from studio.training.checkpoint import save_weights

from .helpers import open_window


def _wine(qtbot, tmp_path):
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    project = Project.load(wine)
    project.save(tmp_path / "wine.studio.json")  # a copy of its own: runs go beside it
    w = open_window(qtbot, tmp_path, tmp_path / "wine.studio.json")
    w.runs.set_run_processes(0)  # a thread: the quickest run
    w.editor.set_setting("training", "epochs", 2)
    w.editor.set_setting("training", "early_stopping", None)
    return w


def _train(qtbot, w) -> None:
    w.runs.last_result = None
    w.act_train.trigger()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=120_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message


def _table(dialog) -> dict[str, list[str]]:
    t = dialog.table
    return {t.verticalHeaderItem(r).text(): [t.item(r, c).text() for c in range(3)]
            for r in range(t.rowCount())}


def test_a_run_is_pruned_and_quantized_from_the_dialog(qtbot, tmp_path) -> None:
    w = _wine(qtbot, tmp_path)
    _train(qtbot, w)
    w.act_compress.trigger()
    d = w.compress.dialog
    assert d is not None and d.isVisible() and d.weights.count() >= 1
    assert d.weights.currentText().endswith(("best.ckpt", "model.safetensors"))
    d.method.setCurrentIndex(d.method.findData("prune-structured"))
    d.amount.setValue(50)
    d.finetune.setValue(1)
    assert not d.calibration.isEnabled() and d.amount.isEnabled()
    with qtbot.waitSignal(d.finished_work, timeout=180_000) as got:
        d.btn_run.click()
    assert got.args[0], got.args[1]
    rows = _table(d)
    before, after, change = rows["multiply-adds per sample"]
    assert int(after.replace(",", "")) < int(before.replace(",", ""))
    assert change.endswith("of before") and "val accuracy" in rows
    assert "latency, batch 64 (ms)" in rows and "file size" in rows
    assert d.status.text().startswith("✓ structured pruning of 50%")
    assert "ONNX export check passed" in d.notes.text()
    # the pruned project opens in a window of its own, beside this one
    assert d.btn_open.isVisible()
    d.btn_open.click()
    other = w.compress.beside[-1]
    qtbot.addWidget(other)
    hidden = next(n for n in other.project.graph if n.type == "Linear")
    assert hidden.params["out_features"] < Project.load(w.project.path).graph.nodes[
        hidden.id].params["out_features"]
    assert other.isVisible() and w.isVisible()

    d.method.setCurrentIndex(d.method.findData("quantize"))
    assert d.calibration.isEnabled() and not d.amount.isEnabled()
    with qtbot.waitSignal(d.finished_work, timeout=180_000) as got:
        d.btn_run.click()
    assert got.args[0], got.args[1]
    assert d.status.text().startswith("✓ int8 (dynamic)") and d.out.suffix == ".onnx"
    assert d.out.exists() and not d.btn_open.isVisible()
    rows = _table(d)
    assert set(rows) >= {"file size", "latency, batch 1 (ms)", "val accuracy"}


def test_a_teacher_is_chosen_in_the_inspector_and_both_loss_parts_are_plotted(
        qtbot, tmp_path) -> None:
    w = _wine(qtbot, tmp_path)
    teacher = tmp_path / "teacher.safetensors"
    save_weights(teacher, build_module(w.project.graph, seed=3).state_dict(),
                 {"studio.project": w.project.dumps()})
    w.files.ask_weights_file = lambda: teacher
    assert w.project.training.distill is None
    w.inspector.show_settings()
    w.inspector.teacher_button.click()
    distill = w.project.training.distill
    assert distill is not None and distill.teacher == "teacher.safetensors"  # relative
    qtbot.waitUntil(lambda: w.inspector.teacher_button.text() == "…")  # rebuilt: the file
    assert w.inspector.teacher_clear.isVisibleTo(w.inspector)
    w.editor.stack.undo()  # one undo step
    assert w.project.training.distill is None
    w.editor.stack.redo()
    _train(qtbot, w)
    traces = w.dashboard.traces
    assert traces["distill_loss"].series.n == 2 and traces["label_loss"].series.n == 2
    assert "teacher&nbsp;part" in w.dashboard.charts["loss"].legend.text()

    # a teacher that reads other samples is refused in words, and nothing changes
    other = Project.load(next(p for p in sample_paths() if p.name.startswith("mnist_mlp")))
    wrong = tmp_path / "wrong.safetensors"
    save_weights(wrong, build_module(other.graph).state_dict(),
                 {"studio.project": other.dumps()})
    w.files.ask_weights_file = lambda: wrong
    w.inspector.teacher_button.click()
    assert w.errors and "reads samples of" in w.errors[-1]
    assert w.project.training.distill.teacher == "teacher.safetensors"
