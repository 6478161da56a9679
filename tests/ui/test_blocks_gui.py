"""Blocks in the window, driven as a user drives them: select and group, open with a
double-click, edit inside, go back by the breadcrumb, repeat, ungroup, the library."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from studio.core.block_library import library_path
from studio.core.blockdef import BLOCK
from studio.core.project import Project, default_sample, sample_paths
from studio.core.shapes import analyze
from studio.ui.block_page import BlockPage
from studio.ui.cards import NODE_H, NODE_W, card_words
from studio.ui.main_window import MainWindow

from .test_main_window import type_into

STEM = ["conv1", "relu1", "pool1"]


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.errors = []
    w.show_error = lambda title, text: w.errors.append(text)
    w.files.ask_save = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    qtbot.waitExposed(w)
    return w


def settle() -> None:
    QApplication.processEvents()


def select(w: MainWindow, ids: list[str]) -> None:
    w.scene.clearSelection()
    for i in ids:
        w.scene.nodes[i].setSelected(True)


def group(qtbot, w: MainWindow, ids: list[str]) -> str:
    select(w, ids)
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    settle()
    return next(n.id for n in w.editor.graph if n.type == BLOCK)


def double_click(qtbot, w: MainWindow, node_id: str) -> None:
    at = w.scene.nodes[node_id].mapToScene(QPointF(NODE_W / 3, NODE_H / 2))
    w.view.centerOn(at)
    qtbot.mouseDClick(w.view.viewport(), Qt.MouseButton.LeftButton,
                      pos=w.view.mapFromScene(at))
    settle()


def test_group_open_edit_and_come_back(qtbot, window) -> None:
    w = window
    params = w.analysis.total_params
    inst = group(qtbot, w, STEM)
    assert set(STEM).isdisjoint(w.scene.nodes) and inst in w.scene.nodes
    assert w.analysis.ok and w.analysis.total_params == params
    assert w.editor.stack.count() == 1  # one undo step
    assert isinstance(w.inspector.widget(), BlockPage)  # the new card is selected
    rows = w.summary.rows()  # the block's row holds its totals, its layers below it
    assert rows[inst][1:] == ["Block ConvBlock", "(N, 32, 13, 13)", "320", "194,688"]
    assert rows[f"{inst}.conv1"][3] == "320" and f"{inst}.x" not in rows
    g = w.editor.graph
    assert card_words(g.nodes[inst], g, False) == ("ConvBlock", "3 layers · double-click to open")

    double_click(qtbot, w, inst)
    assert w.editor.scope == [(inst, "ConvBlock")]
    assert set(w.scene.nodes) == {"x", *STEM}
    assert w.blocks.breadcrumb.isVisible() and inst in w.blocks.breadcrumb.text()
    # the opened block shows the shapes its instance is fed
    assert w.scene.nodes["pool1"].shape_text == "(N, 32, 13, 13)"
    assert card_words(w.editor.graph.nodes["x"], w.editor.graph, True) == ("Input",
                                                                           "block input 0")

    w.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 3})  # edits the block
    settle()
    assert w.analysis.total_params == params - 24 * 9 - 24 - (24 * 9 * 64)
    assert w.scene.nodes["pool1"].shape_text == "(N, 8, 13, 13)"

    w.blocks.breadcrumb.label.linkActivated.emit("0")  # "Network" in the breadcrumb
    settle()
    assert w.editor.scope == [] and inst in w.scene.nodes
    assert not w.blocks.breadcrumb.isVisible()
    assert w.scene.nodes[inst].shape_text == "(N, 8, 13, 13)"

    w.editor.stack.undo()  # the edit inside, undone from outside
    settle()
    assert w.analysis.total_params == params
    w.editor.stack.undo()  # the grouping
    settle()
    assert set(STEM) <= set(w.scene.nodes) and not w.project.graph.blocks


def test_undoing_the_grouping_while_inside_goes_back_out(qtbot, window) -> None:
    w = window
    inst = group(qtbot, w, STEM)
    w.editor.open_block(inst)
    settle()
    w.editor.stack.undo()
    settle()
    assert w.editor.scope == [] and "conv1" in w.scene.nodes


def test_repeat_is_refused_with_the_reason_and_ungroup_puts_layers_back(qtbot, window) -> None:
    w = window
    inst = group(qtbot, w, STEM)
    page = w.inspector.widget()
    assert isinstance(page, BlockPage)
    refusals: list[str] = []
    w.editor.refused.connect(refusals.append)
    type_into(qtbot, page.repeat, "4")
    settle()
    assert refusals and "repetition 4" in refusals[-1]
    assert w.editor.graph.nodes[inst].params["repeat"] == 1
    assert page.repeat.value() == 1

    w.editing.select_node(inst)
    page = w.inspector.widget()
    type_into(qtbot, page.repeat, "2")
    settle()
    assert w.editor.graph.nodes[inst].params["repeat"] == 2
    assert w.scene.nodes[inst].shape_text == "(N, 32, 5, 5)"
    repeated = w.analysis.total_params
    rows = w.summary.rows()
    assert rows[inst][1] == "Block ConvBlock ×2"
    assert rows[f"{inst}.1"][1:3] == ["repetition 2", "(N, 32, 5, 5)"]
    assert rows[f"{inst}.1.conv1"][3] == f"{32 * 32 * 9 + 32:,}"

    w.editing.select_node(inst)
    w.blocks.ungroup()
    settle()
    assert not w.project.graph.blocks  # nothing uses the definition any more
    assert sum(1 for n in w.editor.graph if n.type == "Conv2d") == 4  # conv1 twice
    assert w.analysis.total_params == repeated


def test_instances_share_a_definition_until_made_unique(qtbot, window) -> None:
    w = window
    first = group(qtbot, w, STEM)
    w.editing.copy_selection()
    w.editing.paste()  # a second instance of the same block, unwired
    settle()
    second = next(n.id for n in w.editor.graph if n.type == BLOCK and n.id != first)
    w.editor.open_block(first)
    settle()
    w.editor.set_params("conv1", {"out_channels": 16, "kernel_size": 3})
    w.editor.close_blocks()
    settle()
    assert "16 layers" not in w.scene.nodes[second].toolTip()
    d = w.project.graph.blocks["ConvBlock"]
    assert d.graph.nodes["conv1"].params["out_channels"] == 16  # both use it

    w.editing.select_node(second)
    w.blocks.make_unique()
    settle()
    new = w.editor.graph.nodes[second].params["block"]
    assert new != "ConvBlock" and new in w.project.graph.blocks
    w.editor.open_block(second)
    settle()
    w.editor.set_params("conv1", {"out_channels": 4, "kernel_size": 3})
    settle()
    assert d.graph.nodes["conv1"].params["out_channels"] == 16  # the first is unchanged

    w.editor.close_blocks()
    w.editing.select_node(first)
    assert w.editor.rename_block("ConvBlock", "Stem")
    settle()
    assert w.editor.graph.nodes[first].params["block"] == "Stem"
    assert "Stem" in w.project.graph.blocks and "ConvBlock" not in w.project.graph.blocks
    w.editor.stack.undo()
    assert w.editor.graph.nodes[first].params["block"] == "ConvBlock"


def test_library_blocks_come_from_the_palette_and_saved_ones_join_it(qtbot, window) -> None:
    w = window
    tree = w.layer_palette.tree
    names = [i.text(0) for i in tree.block_items()]
    assert {"ConvBNReLU", "ResNetBasic", "ResNetBottleneck", "Inception", "SqueezeExcite",
            "MBConv", "TransformerEncoder", "MLPBlock"} <= set(names)
    w.layer_palette.filter.setText("resnet")
    shown = [i.text(0) for i in tree.block_items() if not i.isHidden()]
    assert shown == ["ResNetBasic", "ResNetBottleneck"]
    w.layer_palette.filter.clear()

    before = w.editor.stack.count()
    row = next(i for i in tree.block_items() if i.text(0) == "ResNetBasic")
    tree.itemDoubleClicked.emit(row, 0)  # the palette's double-click appends it
    settle()
    inst = next(n.id for n in w.editor.graph if n.type == BLOCK)
    assert w.editor.stack.count() == before + 1
    assert "ResNetBasic" in w.project.graph.blocks

    inst2 = group(qtbot, w, STEM)
    w.editing.select_node(inst2)
    w.blocks.save_to_library()
    settle()
    assert not w.errors
    assert library_path("ConvBlock").exists()
    assert "ConvBlock" in [i.text(0) for i in tree.block_items()]
    assert inst in w.scene.nodes
    asked: list[str] = []
    w.blocks.ask_replace = lambda name: asked.append(name) or False
    saved = library_path("ConvBlock").read_bytes()
    w.editor.open_block(inst2)
    settle()
    w.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 3})
    w.editor.close_blocks()
    settle()
    w.editing.select_node(inst2)
    w.blocks.save_to_library()  # a block of that name is saved already: asked, and kept
    assert asked == ["ConvBlock"] and library_path("ConvBlock").read_bytes() == saved


def test_the_palette_offers_another_use_of_the_projects_own_blocks(qtbot, window) -> None:
    w = window
    tree = w.layer_palette.tree
    assert tree.project_row.isHidden()  # the default sample has no blocks
    first = group(qtbot, w, STEM)
    assert [i.text(0) for i in tree.project_items()] == ["ConvBlock"]
    assert not tree.project_row.isHidden()
    w.scene.clearSelection()
    tree.itemDoubleClicked.emit(tree.project_items()[0], 0)
    settle()
    uses = [n.id for n in w.editor.graph if n.type == BLOCK]
    assert len(uses) == 2 and first in uses
    assert {w.editor.graph.nodes[u].params["block"] for u in uses} == {"ConvBlock"}
    w.editor.open_block(first)
    settle()
    refusals: list[str] = []
    w.editor.refused.connect(refusals.append)
    assert w.editor.add_layer("project-block:ConvBlock", (0, 0)) is None  # not in itself
    assert "inside itself" in refusals[-1]


def test_paste_brings_blocks_along_and_never_puts_one_inside_itself(qtbot, window,
                                                                   tmp_path) -> None:
    w = window
    inst = group(qtbot, w, STEM)
    select(w, [inst])
    w.editing.copy_selection()
    w.editor.open_block(inst)
    settle()
    refusals: list[str] = []
    w.editor.refused.connect(refusals.append)
    w.editing.paste()  # inside ConvBlock: ConvBlock again
    assert refusals and "inside itself" in refusals[-1]
    assert all(n.type != BLOCK for n in w.editor.graph)

    w.set_project(Project.load(default_sample()))  # another project: the block comes too
    w.editing.paste()
    settle()
    assert list(w.project.graph.blocks) == ["ConvBlock"]
    w.project.save(tmp_path / "p.studio.json")
    again = Project.load(tmp_path / "p.studio.json")
    assert analyze(again.graph).nodes[next(n.id for n in again.graph if n.type == BLOCK)
                                      ].shape is None  # pasted unwired, and it loads


def test_the_block_page_and_the_scope_follow_undo_and_renames(qtbot, window) -> None:
    w = window
    inst = group(qtbot, w, STEM)
    page = w.inspector.widget()
    type_into(qtbot, page.repeat, "2")
    settle()
    assert "(N, 32, 5, 5)" in w.inspector.widget().sizes.text()
    w.editor.stack.undo()
    settle()
    page = w.inspector.widget()
    assert page.repeat.value() == 1 and "(N, 32, 13, 13)" in page.sizes.text()

    w.editor.open_block(inst)
    settle()
    assert w.editor.rename_block("ConvBlock", "Stem")  # renamed from inside: still inside
    settle()
    assert w.editor.scope == [(inst, "Stem")] and "Stem" in w.blocks.breadcrumb.text()
    w.editor.stack.undo()
    settle()
    assert w.editor.scope == [(inst, "ConvBlock")] and set(w.scene.nodes) == {"x", *STEM}

    w.editing.select_in_network("conv2")  # the Problems list names the network's nodes
    assert w.editor.scope == [] and w.editing.selected_ids() == ["conv2"]
    w.editing.select_in_network(f"{inst}.relu1")  # a layer inside a block, by its path
    assert w.editor.scope == [(inst, "ConvBlock")] and w.editing.selected_ids() == ["relu1"]
    w.editor.close_blocks()
    settle()
    w.editor.stack.undo()  # the grouping: the open block goes, the canvas comes back out
    settle()
    assert w.editor.scope == [] and "conv1" in w.scene.nodes


def test_a_runs_layer_health_shows_on_a_block_and_on_its_layers_inside(qtbot, window) -> None:
    w = window
    wine = next(p for p in sample_paths() if p.name.startswith("wine_classifier"))
    assert w.files.open_path(wine)
    settle()
    inst = group(qtbot, w, ["dense1", "bn1", "relu1"])
    w.runs.set_run_processes(0)  # a thread: the quickest run
    w.editor.set_setting("training", "epochs", 2)
    w.editor.set_setting("training", "early_stopping", None)
    w.editor.set_setting("training", "layer_stats", {"every": 3})
    w.act_train.trigger()
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=60_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message
    card = w.scene.nodes[inst]
    assert card.health is not None and "3 layers inside" in card.toolTip()
    w.editor.open_block(inst)
    settle()
    inner = w.scene.nodes["dense1"]  # the block's own layer, by its path in the run
    assert inner.health is not None and "gradient norm" in inner.toolTip()
    w.editor.stack.setClean()
