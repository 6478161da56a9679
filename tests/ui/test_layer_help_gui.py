"""The inspector explains the layer selected on the canvas: its formula, shape rule, advice and
a working link to PyTorch's page; an activation also shows f and f′ from the module it builds,
following its parameters as they are edited."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPoint, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication

from studio.core import catalog
from studio.core.graph import Graph, Node
from studio.core.project import Project
from studio.ui.editor import Editor
from studio.ui.inspector import Inspector
from tests.graphs import net
from tests.ui.test_inspector import type_into

from .helpers import open_window


@pytest.fixture
def window(qtbot, tmp_path):
    project = Project(graph=net(
        ("input", "Input", {"shape": [3, 16, 16]}),
        ("conv", "Conv2d", {"out_channels": 8}),
        ("leaky", "LeakyReLU", {}),
        ("flatten", "Flatten", {}),
        ("dense", "Linear", {"out_features": 10}),
        ("softmax", "Softmax", {}),
    ))
    path = tmp_path / "net.studio.json"
    project.save(path)
    w = open_window(qtbot, tmp_path, path)
    w.resize(1366, 768)
    qtbot.waitExposed(w)
    yield w
    w.editor.stack.setClean()


def select(w, node_id: str) -> None:
    """As a click on the card does: the scene's selection drives the inspector."""
    w.scene.clearSelection()
    w.scene.nodes[node_id].setSelected(True)
    QApplication.processEvents()
    assert w.inspector.node_id == node_id


class _Browser(QObject):
    """Stands in for the web browser: records the pages the app asks to open."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toString())


def test_a_selected_layer_shows_its_formula_and_a_link_that_opens(window, qtbot) -> None:
    select(window, "conv")
    spec = catalog.CATALOG["Conv2d"]
    inspector = window.inspector
    assert inspector.formula_label.text().split("\n")[0] == "y[o,i,j] = b[o] + Σ_c Σ_u Σ_v " \
        "W[o,c,u,v]·x[c, s·i + d·u, s·j + d·v]"
    assert inspector.formula_label.isVisible()
    page = inspector.widget()
    shown = " ".join(label.text() for label in page.findChildren(type(inspector.formula_label)))
    assert spec.about in shown and "out_channels" in shown  # the advice and the shape rule
    assert inspector.function_plot is None  # not an activation
    link = inspector.doc_link
    assert link.isVisible() and link.openExternalLinks()
    browser = _Browser()
    QDesktopServices.setUrlHandler("https", browser, "open")
    try:
        qtbot.mouseClick(link, Qt.MouseButton.LeftButton,
                         pos=QPoint(12, link.height() // 2))
        qtbot.waitUntil(lambda: bool(browser.opened))
    finally:
        QDesktopServices.unsetUrlHandler("https")
    assert browser.opened == ["https://docs.pytorch.org/docs/stable/generated/torch.nn.Conv2d.html"]


def test_leaky_relus_plot_is_its_module_and_follows_its_slope(window, qtbot) -> None:
    select(window, "leaky")
    plot = window.inspector.function_plot
    assert plot is not None and plot.isVisible()
    x, y = plot.f_curve.getData()
    _, dy = plot.df_curve.getData()
    assert x.min() == -4 and x.max() == 4
    assert np.allclose(y, np.where(x > 0, x, 0.01 * x))
    assert np.allclose(dy[x < 0], 0.01) and np.allclose(dy[x > 0], 1.0)

    type_into(qtbot, window.inspector.form.widgets["negative_slope"], "0.2")
    assert window.editor.graph.nodes["leaky"].params == {"negative_slope": 0.2}
    _, dy = plot.df_curve.getData()
    assert np.allclose(dy[x < 0], 0.2) and np.allclose(dy[x > 0], 1.0)
    window.editor.stack.undo()  # the model changes, the plot follows
    _, dy = plot.df_curve.getData()
    assert np.allclose(dy[x < 0], 0.01)


def test_vector_valued_softmax_gets_help_but_no_plot(window) -> None:
    select(window, "softmax")
    assert window.inspector.function_plot is None
    assert "Σ_j" in window.inspector.formula_label.text()


def test_every_layers_help_fits_a_narrow_inspector(qtbot) -> None:
    """Long formulas and shape rules wrap instead of widening the dock."""
    graph = Graph()
    for i, layer_type in enumerate(catalog.CATALOG):  # short ids: the title does not wrap
        graph.add_node(Node(f"n{i}", layer_type, {}))
    w = Inspector(Editor(Project(graph=graph)))
    qtbot.addWidget(w)
    w.resize(250, 700)
    w.show()
    qtbot.waitExposed(w)
    for node_id in graph.nodes:
        w.show_node(node_id)
        QApplication.processEvents()
        assert w.horizontalScrollBar().maximum() == 0, graph.nodes[node_id].type
