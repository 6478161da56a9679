"""Design, Train and Evaluate in the centre of the window, driven as a user drives them: the
mode bar, Ctrl+1/2/3, F5; what each view shows, what comes back, and the window's size."""

from __future__ import annotations

from itertools import combinations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QWidget

from studio.core.project import sample_paths
from studio.ui.main_window import MainWindow

from .helpers import open_window

CTRL = Qt.KeyboardModifier.ControlModifier
A = Qt.DockWidgetArea


def activate(qtbot, w: MainWindow) -> None:
    """Keys go to the active window, as they do on a desktop."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    activate(qtbot, w)
    yield w
    w.runs.shutdown()


def press(qtbot, w: MainWindow, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(w, key, modifier)


def in_window(w: QWidget, widget: QWidget) -> QRect:
    """Where a widget is, in the window's coordinates."""
    return QRect(widget.mapTo(w, QPoint(0, 0)), widget.size())


def shows(widget: QWidget) -> bool:
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def middle_drag(view, start: QPoint, end: QPoint) -> None:
    """Pan the canvas as a user does: hold the middle button and move."""
    vp = view.viewport()
    mid, none = Qt.MouseButton.MiddleButton, Qt.MouseButton.NoButton
    for kind, pos, button, buttons in (
            (QEvent.Type.MouseButtonPress, start, mid, mid),
            (QEvent.Type.MouseMove, (start + end) / 2, none, mid),
            (QEvent.Type.MouseMove, end, none, mid),
            (QEvent.Type.MouseButtonRelease, end, mid, none)):
        ev = QMouseEvent(kind, QPointF(pos), QPointF(vp.mapToGlobal(pos)), button, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)


def test_keys_and_the_mode_bar_switch_views(window, qtbot) -> None:
    w = window
    assert w.views.current == "design" and shows(w.view)
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    assert w.views.current == "train"
    assert shows(w.dashboard) and not w.view.isVisible()
    assert w.views.actions["train"].isChecked() and w.views.bar.current() == "train"
    press(qtbot, w, Qt.Key.Key_3, CTRL)
    assert w.views.current == "evaluate" and shows(w.evaluation)
    assert not w.dashboard.isVisible()
    qtbot.mouseClick(w.views.bar.buttons["design"], Qt.MouseButton.LeftButton)
    assert w.views.current == "design" and shows(w.view)
    qtbot.mouseClick(w.views.bar.buttons["train"], Qt.MouseButton.LeftButton)
    assert w.views.current == "train" and shows(w.dashboard)
    w.views.actions["design"].trigger()  # View ▸ Design
    assert w.views.current == "design"
    # the bar names each view with its key
    assert [(b.text(), b.key_text) for b in w.views.bar.buttons.values()] == [
        ("Design", "Ctrl+1"), ("Train", "Ctrl+2"), ("Evaluate", "Ctrl+3"), ("Sweep", "Ctrl+4")]


def test_one_runs_list_shows_in_train_and_in_evaluate(window, qtbot) -> None:
    w = window
    panel = w.runs_panel
    assert not panel.isVisible()  # Design has no runs list
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    assert shows(panel) and w.views.pages["train"].isAncestorOf(panel)
    panel.compare_text.setPlainText("kept")
    press(qtbot, w, Qt.Key.Key_3, CTRL)
    assert shows(panel) and w.views.pages["evaluate"].isAncestorOf(panel)
    assert w.runs_panel is panel and panel.compare_text.toPlainText() == "kept"
    assert in_window(w, panel).top() > in_window(w, w.evaluation).bottom()  # below the view


def test_design_comes_back_with_its_zoom_pan_and_selection(window, qtbot) -> None:
    w = window
    view, scene = w.view, w.scene
    for _ in range(3):
        press(qtbot, w, Qt.Key.Key_Plus, CTRL)  # View ▸ Zoom In
    middle_drag(view, QPoint(300, 300), QPoint(260, 180))
    for i, nid in enumerate(("conv1", "pool1")):
        item = scene.nodes[nid]
        view.centerOn(item)
        at = view.mapFromScene(item.sceneBoundingRect().center())
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, CTRL if i else
                         Qt.KeyboardModifier.NoModifier, at)
    middle_drag(view, QPoint(300, 300), QPoint(330, 240))
    assert set(w.editing.selected_ids()) == {"conv1", "pool1"}
    before = (view.transform(), view.horizontalScrollBar().value(),
              view.verticalScrollBar().value(), view.mapToScene(view.viewport().rect()))
    assert before[0].m11() > 1.5 and view.verticalScrollBar().maximum() > 0
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    qtbot.waitUntil(lambda: shows(w.dashboard))
    press(qtbot, w, Qt.Key.Key_Delete)  # the canvas's actions are off out of Design
    assert {"conv1", "pool1"} <= set(w.editor.graph.nodes)
    press(qtbot, w, Qt.Key.Key_1, CTRL)
    qtbot.waitUntil(lambda: shows(view))
    after = (view.transform(), view.horizontalScrollBar().value(),
             view.verticalScrollBar().value(), view.mapToScene(view.viewport().rect()))
    assert after == before
    assert set(w.editing.selected_ids()) == {"conv1", "pool1"}
    assert w.act_delete.isEnabled()


def test_design_docks_hide_elsewhere_and_come_back_as_they_were(window, qtbot) -> None:
    w = window
    w.resize(1366, 768)
    w.bottom_dock.toggleViewAction().trigger()  # View ▸ Model: the user closes it
    w.resizeDocks([w.palette_dock], [240], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: w.palette_dock.width() == 240)
    places = {d: in_window(w, d) for d in (w.palette_dock, w.inspector_dock)}
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    docks = (w.palette_dock, w.inspector_dock, w.bottom_dock)
    assert not any(d.isVisible() for d in docks)
    assert not any(d.toggleViewAction().isVisible() for d in docks)  # not offered here
    press(qtbot, w, Qt.Key.Key_3, CTRL)
    assert not any(d.isVisible() for d in docks)
    press(qtbot, w, Qt.Key.Key_1, CTRL)
    qtbot.waitUntil(lambda: all(in_window(w, d) == r for d, r in places.items()))
    assert not w.bottom_dock.isVisible()  # closed, as the user left it
    assert all(d.toggleViewAction().isVisible() for d in docks)


def test_reset_layout_restores_the_default_arrangement(window, qtbot) -> None:
    w = window
    w.resize(1366, 768)
    w.inspector_dock.setFloating(True)  # as a drag out of the window leaves it
    w.addDockWidget(A.RightDockWidgetArea, w.palette_dock)
    w.bottom_dock.toggleViewAction().trigger()
    w.addToolBar(Qt.ToolBarArea.LeftToolBarArea, w.toolbar)
    [reset] = [a for a in w.view_menu.actions() if a.text() == "&Reset Layout"]
    reset.trigger()
    qtbot.waitUntil(lambda: w.inspector_dock.isVisible() and not w.inspector_dock.isFloating())
    assert w.dockWidgetArea(w.palette_dock) == A.LeftDockWidgetArea
    assert w.dockWidgetArea(w.inspector_dock) == A.RightDockWidgetArea
    assert w.dockWidgetArea(w.bottom_dock) == A.BottomDockWidgetArea
    assert w.bottom_dock.isVisible() and w.palette_dock.isVisible()
    assert w.toolBarArea(w.toolbar) == Qt.ToolBarArea.TopToolBarArea
    qtbot.waitUntil(lambda: 170 <= w.palette_dock.width() <= 260)
    assert 300 <= w.inspector_dock.width() <= 380
    assert w.views.current == "design"


def test_f5_with_problems_goes_to_design_and_lists_them(window, qtbot) -> None:
    w = window
    w.editor.delete(["flatten"])
    w.editor.connect_nodes("pool2", "dense1")
    w.reanalyse()
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    press(qtbot, w, Qt.Key.Key_F5)
    assert not w.runs.running
    assert w.views.current == "design" and w.bottom_tabs.currentWidget() is w.problems
    assert shows(w.problems)


def test_a_project_opened_elsewhere_is_fitted_when_design_shows(window, qtbot,
                                                                 monkeypatch) -> None:
    w = window
    fitted: list[tuple[str, bool]] = []
    fit = w.view.fit
    monkeypatch.setattr(w.view, "fit", lambda: fitted.append((w.views.current, shows(w.view)))
                        or fit())
    press(qtbot, w, Qt.Key.Key_2, CTRL)
    assert w.files.open_path(next(p for p in sample_paths() if p.name.startswith("wine")))
    turned: list[bool] = []
    QTimer.singleShot(0, lambda: turned.append(True))  # after the window's own zero timers
    qtbot.waitUntil(lambda: turned == [True])
    assert fitted == []  # no fit of a canvas out of view, at a size it will not have
    press(qtbot, w, Qt.Key.Key_1, CTRL)
    qtbot.waitUntil(lambda: fitted == [("design", True)])


def test_first_launch_fills_most_of_the_screen_centred(window) -> None:
    available = QGuiApplication.primaryScreen().availableGeometry()
    size = window.geometry()
    assert abs(size.width() - 0.9 * available.width()) <= 2
    assert abs(size.height() - 0.9 * available.height()) <= 2
    assert (size.center() - available.center()).manhattanLength() <= 2


@pytest.mark.parametrize("size", [(1024, 700), (1366, 768)])
def test_every_view_fits_a_small_window_without_overlaps(window, qtbot, size) -> None:
    w = window
    w.resize(*size)
    w.views.reset_layout()
    parts = {"design": [w.view, w.palette_dock, w.inspector_dock, w.bottom_dock],
             "train": [w.dashboard, w.runs_panel], "evaluate": [w.evaluation, w.runs_panel]}
    for name, widgets in parts.items():
        w.views.show(name)
        qtbot.waitUntil(lambda ws=widgets: all(shows(x) for x in ws))
        assert (w.width(), w.height()) == size  # nothing held the window bigger
        rects = [in_window(w, x) for x in [*widgets, w.views.bar, w.toolbar]]
        for r in rects:
            assert r.width() > 0 and r.height() > 0 and w.rect().contains(r), (name, r)
        for a, b in combinations(rects, 2):
            assert not a.intersects(b), (name, a, b)


def test_tall_docks_scroll_instead_of_growing_the_window(window, qtbot) -> None:
    w = window
    w.resize(1024, 700)
    w.scene.clearSelection()  # the inspector shows the long settings form
    qtbot.waitUntil(lambda: w.inspector.verticalScrollBar().maximum() > 0)
    assert w.layer_palette.tree.verticalScrollBar().maximum() > 0
    assert w.height() == 700


def test_the_last_view_and_the_window_size_come_back(window, qtbot) -> None:
    w = window
    size = QGuiApplication.primaryScreen().availableGeometry().size() - QSize(40, 60)
    w.resize(size)  # within the screen: a restored window is kept on it
    press(qtbot, w, Qt.Key.Key_3, CTRL)
    assert w.close()
    again = MainWindow(settings=w.settings)
    qtbot.addWidget(again)
    again.show()
    assert again.views.current == "evaluate" and again.views.bar.current() == "evaluate"
    assert again.views.actions["evaluate"].isChecked()
    assert again.size() == size
    # the window shows first; Evaluate's page (with its plotting library) a moment later
    assert not again.training_views_built
    qtbot.waitUntil(lambda: again.training_views_built)
    qtbot.waitUntil(lambda: shows(again.evaluation) and shows(again.runs_panel))
    assert again.runs_panel.folder == again.runs_dir()
    assert not again.palette_dock.isVisible()
    again.views.show("design")
    assert again.palette_dock.isVisible() and again.inspector_dock.isVisible()
    again.close()


@pytest.mark.slow
def test_f5_shows_training_when_the_setting_is_on_and_not_when_off(qtbot, tmp_path) -> None:
    w = open_window(qtbot, tmp_path, next(p for p in sample_paths() if p.name.startswith("wine")))
    w.runs.set_run_processes(0)  # a thread: the quickest start
    w.editor.set_setting("training", "epochs", 1)
    activate(qtbot, w)
    assert w.act_show_training.isChecked()  # on by default
    press(qtbot, w, Qt.Key.Key_F5)
    assert w.runs.running and w.views.current == "train"
    press(qtbot, w, Qt.Key.Key_1, CTRL)  # back to Design: the run goes on
    assert w.views.current == "design" and w.runs.running
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=120_000)
    assert w.runs.last_result.status == "completed", w.runs.last_result.message
    w.act_show_training.trigger()  # Run ▸ Show Training When a Run Starts: off
    w.runs.last_result = None
    press(qtbot, w, Qt.Key.Key_F5)
    assert w.runs.running and w.views.current == "design"
    qtbot.waitUntil(lambda: w.runs.last_result is not None, timeout=120_000)
    assert w.views.current == "design"
    w.close()
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert not again.act_show_training.isChecked()  # remembered


def test_design_keeps_summary_and_problems_and_the_run_widgets_left_the_docks(window) -> None:
    tabs = window.bottom_tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Summary", "Problems"]
    for widget in (window.dashboard, window.evaluation, window.runs_panel):
        assert not any(d.isAncestorOf(widget) for d in window.findChildren(QDockWidget))
        assert window.views.stack.isAncestorOf(widget)  # owned by the window, shown by a view


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_during_a_real_run_the_train_view_gives_the_plots_the_window(qtbot, tmp_path, size
                                                                      ) -> None:
    """The issue that started the views: three plots in a 220-pixel dock, 0–2 px of data."""
    w = open_window(qtbot, tmp_path, next(p for p in sample_paths() if p.name.startswith("wine")))
    w.resize(*size)
    w.runs.set_run_processes(0)
    w.editor.set_setting("training", "epochs", 400)
    activate(qtbot, w)
    press(qtbot, w, Qt.Key.Key_F5)
    d = w.dashboard
    qtbot.waitUntil(lambda: d.series["val_loss"].n >= 3, timeout=120_000)  # a run under way
    assert w.runs.running and w.views.current == "train"
    try:
        QApplication.processEvents()
        assert w.width() == size[0] and w.height() == size[1]  # nothing pushed the window out
        charts = list(d.charts.values())
        window_area = w.width() * w.height()
        assert sum(c.width() * c.height() for c in charts) >= 0.5 * window_area
        for c in charts:
            vb = c.plot.getViewBox()
            data = c.widget.mapFromScene(vb.sceneBoundingRect()).boundingRect()
            assert data.height() >= 180, (c.title.text(), data.height())
            legend = c.legend.geometry()
            assert c.rect().contains(legend) and legend.bottom() <= c.widget.geometry().top()
            assert c.legend.heightForWidth(legend.width()) <= legend.height()  # not cut
            assert shows(c) and in_window(w, c).intersects(w.rect())
    finally:
        w.runs.stop()
        qtbot.waitUntil(lambda: not w.runs.running, timeout=60_000)
