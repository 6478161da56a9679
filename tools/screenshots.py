"""The README's pictures: Design, Train and Evaluate at 1366×768, light and dark.

Run: python tools/screenshots.py [--out docs/images]
Opens the default sample in Design (a layer selected, fitted), then trains the MNIST MLP sample
for real in the window (an earlier run first, checked in the runs list so it is overlaid) and
grabs the Train view during the run and the Evaluate view after it; then trains the default
sample for one epoch and grabs the Explain tab (Grad-CAM on a three, conv1's feature maps), and
the Compress dialog after pruning half its channels, and the ResNet Blocks sample with a block
selected and opened. Writes ``{design,train,evaluate,explain,compress,blocks,blocks-open}-
{light,dark}.png`` (``--only NAME`` for some).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DATA_DIR", tempfile.mkdtemp())
os.environ.setdefault("STUDIO_RECOVERY_DIR", tempfile.mkdtemp())

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QTreeWidgetItem

from studio.core.project import default_sample, sample_paths
from studio.ui.app import apply_theme
from studio.ui.main_window import MainWindow

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"
SIZE = (1366, 768)


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()


def wait(app: QApplication, condition, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def window(app: QApplication, theme: str) -> MainWindow:
    """The default sample in a fresh window at the README's size, in the theme."""
    apply_theme(app, theme == "dark")
    ini = Path(tempfile.mkdtemp()) / "s.ini"
    w = MainWindow(default_sample(), QSettings(str(ini), QSettings.Format.IniFormat))
    w.resize(*SIZE)
    w.show()
    settle(app)
    return w


def shoot(app: QApplication, theme: str, out: Path) -> None:
    w = window(app, theme)
    w.editing.select_node("conv2")
    w.view.fit()
    settle(app)
    w.grab().save(str(out / f"design-{theme}.png"))

    mlp = next(p for p in sample_paths() if p.name.startswith("mnist_mlp"))
    w.files.open_path(mlp, ask=False)
    w.runs.set_run_processes(1)  # a separate process, as users run
    w.editor.set_setting("training", "epochs", 2)
    w.editor.set_setting("training", "optimizer", {"type": "Adam", "lr": 0.003})
    w.runs.train()
    wait(app, lambda: w.runs.last_result is not None)  # an earlier run to compare with
    earlier = w.runs_panel.tree.topLevelItem(0)
    assert isinstance(earlier, QTreeWidgetItem)
    earlier.setCheckState(0, Qt.CheckState.Checked)
    w.editor.set_setting("training", "epochs", 4)
    w.editor.set_setting("training", "optimizer", {"type": "Adam", "lr": 0.001})
    w.runs.last_result = None
    w.runs.train()
    wait(app, lambda: w.dashboard.series["val_loss"].n >= 3)
    w.dashboard.redraw()
    settle(app)
    w.grab().save(str(out / f"train-{theme}.png"))
    wait(app, lambda: w.runs.last_result is not None)
    w.views.show("evaluate")
    settle(app, 1.0)
    w.grab().save(str(out / f"evaluate-{theme}.png"))
    w.editor.stack.setClean()
    w.close()


def shoot_explain(app: QApplication, theme: str, out: Path) -> None:
    w = window(app, theme)
    w.runs.set_run_processes(0)
    w.editor.set_setting("training", "epochs", 1)
    w.runs.train()
    wait(app, lambda: w.runs.last_result is not None and bool(w.evaluation.pred))
    w.views.show("evaluate")
    ev = w.evaluation
    ev.open_cell(3, 3)
    panel = ev.explain
    answers: list[object] = []
    panel.job.answered.connect(answers.append)
    panel.job.failed.connect(answers.append)
    panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    w.editing.select_node("conv1")
    ev._explain_item(ev.cell_gallery.item(0))
    wait(app, lambda: bool(answers))
    settle(app, 0.5)
    w.grab().save(str(out / f"explain-{theme}.png"))
    w.editor.stack.setClean()
    w.close()


def shoot_compress(app: QApplication, theme: str, out: Path) -> None:
    w = window(app, theme)
    w.runs.set_run_processes(0)
    w.editor.set_setting("training", "epochs", 2)
    w.runs.train()
    wait(app, lambda: w.runs.last_result is not None)
    w.compress.open_dialog()
    d = w.compress.dialog
    assert d is not None
    d.method.setCurrentIndex(d.method.findData("prune-structured"))
    d.amount.setValue(50)
    d.finetune.setValue(1)
    done: list[object] = []
    d.finished_work.connect(lambda ok, text: done.append((ok, text)))
    d.start()
    wait(app, lambda: bool(done))
    settle(app, 0.5)
    d.grab().save(str(out / f"compress-{theme}.png"))
    d.close()
    w.editor.stack.setClean()
    w.close()


def shoot_blocks(app: QApplication, theme: str, out: Path) -> None:
    """The ResNet Blocks sample: a block selected (its page in the inspector, its rows in the
    summary), then the block opened, with the breadcrumb back."""
    w = window(app, theme)
    w.files.open_path(next(p for p in sample_paths() if p.name.startswith("resnet_blocks")))
    settle(app)
    w.editing.select_node("stage1")
    w.view.fit()
    summary = w.summary.tree
    summary.topLevelItem(4).setExpanded(True)  # stage1, its repetitions below
    tree = w.layer_palette.tree
    tree.scrollToItem(tree.block_items()[-1])  # the palette's blocks: the project's, the library
    settle(app)
    w.grab().save(str(out / f"blocks-{theme}.png"))
    w.editor.open_block("stage1")
    settle(app)
    w.editing.select_node("conv2")
    settle(app)
    w.grab().save(str(out / f"blocks-open-{theme}.png"))
    w.editor.stack.setClean()
    w.close()


SHOTS = {"main": shoot, "explain": shoot_explain, "compress": shoot_compress,
         "blocks": shoot_blocks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DOCS)
    ap.add_argument("--only", choices=sorted(SHOTS), action="append")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication([])
    for theme in ("light", "dark"):
        for name in args.only or list(SHOTS):
            SHOTS[name](app, theme, args.out)
        print(f"wrote {args.out} ({theme})", flush=True)


if __name__ == "__main__":
    main()
