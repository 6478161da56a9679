"""File ▸ Export and Import from the window, as a user drives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.project import sample_paths
from studio.export import opset_range

from .helpers import open_window


@pytest.fixture
def window(qtbot, tmp_path):
    path = next(p for p in sample_paths() if p.name.startswith("mnist_mlp"))
    w = open_window(qtbot, tmp_path, path)
    yield w
    w.runs.shutdown()


def test_every_format_exports_from_the_dialog_with_its_verification(window, qtbot, tmp_path
                                                                    ) -> None:
    window.editor.set_setting("training", "epochs", 1)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=120_000)
    window.act_export.trigger()
    dlg = window.files.exporter
    assert dlg.isVisible() and not dlg.isModal()
    assert dlg.weights.currentText().endswith("/best.ckpt")  # the newest run, preselected
    for i, (fmt, suffix) in enumerate((("onnx", ".onnx"), ("pt2", ".pt2"),
                                       ("safetensors", ".safetensors"), ("python", ""))):
        dlg.format.setCurrentIndex(i)
        assert dlg.opset.isEnabled() == (fmt == "onnx")
        out = tmp_path / f"exported{suffix or '_py'}"
        dlg.out.setText(str(out))
        with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
            dlg.btn_export.click()
            assert not dlg.btn_export.isEnabled()  # one export at a time
        ok, text = sig.args
        assert ok, text
        assert text.startswith(f"✓ {fmt} → {out}: verified on 16 samples of the project's data")
        assert out.exists()
    grab = dlg.grab()
    assert not grab.isNull()
    grab.save(str(tmp_path / "export-dialog.png"))
    # a destination that cannot be written is a red message, not a crash
    dlg.format.setCurrentIndex(0)
    dlg.out.setText("/proc/nope/x.onnx")
    with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
        dlg.btn_export.click()
    assert sig.args[0] is False and sig.args[1].startswith("✗ ")
    # the exported weights file reopens as a project with those weights preselected
    window.files.open_path(tmp_path / "exported.safetensors", ask=False)
    assert not window.errors and len(window.editor.graph) == 6
    assert window.project.path is None and window.files.opened_weights is not None
    window.act_export.trigger()
    assert window.files.exporter.weights.currentData() == str(tmp_path / "exported.safetensors")


def test_import_a_torchvision_model_onto_the_canvas(window, qtbot) -> None:
    window.files.ask_architecture = lambda: "resnet18"
    window.act_import_tv.trigger()
    assert not window.errors
    # a stem, eight BasicBlock uses and a head (70 layers once the blocks are opened)
    g = window.editor.graph
    assert len(g) == 16 and window.project.path is None
    assert sum(1 for n in g if n.type == "Block") == 8
    assert "11,689,512 parameters" in window.statusBar().currentMessage()
    assert window.analysis is None or not window.analysis.errors
    assert len(window.scene.items()) == 16 + 15  # every card and wire drawn


def test_start_from_another_runs_weights_with_a_report_and_undo(window, qtbot, tmp_path) -> None:
    from studio.training import Trainer

    source = Trainer(window.project, out_dir=tmp_path / "source").fit(resume_from=None)
    assert source.ok
    window.files.save_to(tmp_path / "net.studio.json")
    params = dict(window.editor.graph.nodes["dense2"].params)
    window.editor.set_params("dense2", {**params, "bias": False})  # dense2 no longer fits
    infos: list[str] = []
    window.show_info = lambda title, text: infos.append(text)
    window.files.ask_weights_file = lambda: tmp_path / "source" / "model.safetensors"
    window.act_init_weights.trigger()
    assert not window.errors
    assert window.project.training.init_weights == "source/model.safetensors"  # relative
    assert infos[0].startswith("1 layer(s) loaded from model.safetensors (2 tensors); 1 changed")
    assert "'dense2': the file has dense2.bias, the network does not" in infos[0]
    window.editor.stack.undo()  # the edit of out_features stays; the weights setting goes
    assert window.project.training.init_weights is None
    window.editor.stack.undo()
    window.act_init_weights.trigger()  # now everything fits
    assert infos[1].startswith("2 layer(s) loaded from model.safetensors (4 tensors).")
    window.inspector.show_settings()
    assert window.inspector.init_weights_clear.isVisible()
    window.editor.set_setting("training", "epochs", 1)
    window.act_train.trigger()
    qtbot.waitUntil(lambda: window.runs.last_result is not None, timeout=120_000)
    assert window.runs.last_result.ok, window.runs.last_result.message
    assert "initial weights: 2 layer(s) loaded" in window.dashboard.log.toPlainText()
    # a pretrained start: the first epoch is already as good as the source run's last
    assert window.runs.last_result.logs["val_accuracy"] >= source.logs["val_accuracy"] - 0.02
    window.inspector.init_weights_clear.click()
    assert window.project.training.init_weights is None
    window.files.ask_weights_file = lambda: tmp_path / "net.studio.json"  # not weights at all
    window.act_init_weights.trigger()
    assert window.errors and "not a readable Studio checkpoint" in window.errors[-1]


def test_a_python_export_into_a_folder_of_other_files_asks_first(window, qtbot, tmp_path
                                                                  ) -> None:
    window.act_export.trigger()
    dlg = window.files.exporter
    assert (dlg.opset.minimum(), dlg.opset.maximum()) == opset_range()  # only what can work
    assert dlg.opset.value() == 18
    dlg.format.setCurrentIndex(3)
    assert dlg.format.currentData() == "python"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    (folder / "data.csv").write_text("1,2\n")
    dlg.out.setText(str(folder))
    asked: list[tuple[Path, list[str]]] = []

    def decline(f: Path, names: list[str]) -> bool:
        asked.append((f, names))
        return False

    dlg.ask_overwrite = decline
    dlg.btn_export.click()
    assert asked == [(folder, ["README.md", "data.csv"])]
    assert dlg.proc is None and dlg.btn_export.isEnabled()  # nothing started
    assert dlg.result_label.text().startswith(f"✗ not exported: {folder} holds other files")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data.csv"]
    dlg.ask_overwrite = lambda f, names: True
    with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
        dlg.btn_export.click()
    assert sig.args[0], sig.args[1]
    assert "--force" in dlg.command()
    assert (folder / "README.md").read_text().startswith("# MNIST MLP")
    assert (folder / "data.csv").read_text() == "1,2\n"  # not Studio's: kept
    # now the folder holds a Studio export: exporting again does not ask
    dlg.ask_overwrite = lambda f, names: pytest.fail(f"asked about an earlier export: {names}")
    with qtbot.waitSignal(dlg.finished_export, timeout=120_000) as sig:
        dlg.btn_export.click()
    assert sig.args[0], sig.args[1]
    assert "--force" not in dlg.command()


def test_the_dialog_offers_this_projects_runs_before_others_in_a_shared_folder(tmp_path
                                                                              ) -> None:
    """Samples share one runs folder: a newer run of another sample must not come first (by
    name, wine_classifier-… sorted after mnist_mlp-… and was offered for the MNIST MLP)."""
    import os

    from studio.ui.export_dialog import candidate_weights

    runs = tmp_path / "runs"
    for i, name in enumerate(["mnist_mlp-20261123-100000", "mnist_mlp-20261123-110000",
                              "wine_classifier-20261123-120000", "mnist_mlp_big-20261123-130000"]):
        (runs / name).mkdir(parents=True)
        (runs / name / "best.ckpt").write_bytes(b"x")
        os.utime(runs / name, (1000 + i, 1000 + i))
    found = [p.parent.name for p in candidate_weights(runs, tmp_path / "mnist_mlp.studio.json")]
    assert found == ["mnist_mlp-20261123-110000", "mnist_mlp-20261123-100000",
                     "mnist_mlp_big-20261123-130000", "wine_classifier-20261123-120000"]
