"""The Train view fed with a real run's events: its plots get the space, read every run under
the cursor, smooth as TensorBoard does, and its header, map and log answer the window."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtWidgets import QApplication

from studio.core.project import Project, sample_paths
from studio.core.shapes import analyze
from studio.ui.training import smoothing
from studio.ui.training.charts import number
from studio.ui.training.dashboard import Dashboard
from studio.ui.training.runs import RunsPanel, read_run

Event = tuple[float, str, Any]


def sample(name: str) -> Path:
    return next(p for p in sample_paths() if p.name.startswith(name))


def train(out: Path, lr: float, epochs: int = 2) -> list[Event]:
    """A real run of the MNIST MLP sample in this process; its events as the window gets them,
    each with the second it arrived."""
    import time

    from studio.training import Trainer
    from studio.training.callbacks import Callback

    project = Project.load(sample("mnist_mlp"))
    project.training.epochs = epochs
    project.training.optimizer = {"type": "Adam", "lr": lr}
    events: list[Event] = []
    t0 = time.monotonic()

    class Record(Callback):
        def on_run_start(self, info: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "start", info))

        def on_progress(self, logs: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "progress", dict(logs)))

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            events.append((time.monotonic() - t0, "epoch", dict(logs)))

    result = Trainer(project, out_dir=out, callbacks=[Record()]).fit()
    assert result.status == "completed"
    return events


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real runs in one runs folder: the one replayed as current, an earlier to overlay."""
    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as mp:  # as conftest's autouse fixture, for the module
        for name in ("CACHE", "DATA", "RECOVERY"):
            mp.setenv(f"STUDIO_{name}_DIR", str(base / name.lower()))
        runs = tmp_path_factory.mktemp("runs")
        earlier = train(runs / "mnist_mlp-earlier", lr=3e-3)
        current = train(runs / "mnist_mlp-current", lr=1e-3)
    assert earlier
    return {"runs": runs, "events": current, "earlier": runs / "mnist_mlp-earlier"}


def replay(d: Dashboard, events: list[Event], until: float = math.inf) -> None:
    """Feed the events as the window does, on the run's own clock."""
    now = [0.0]
    d.clock = lambda: now[0]
    d.reset()
    for t, kind, data in events:
        if t > until:
            break
        now[0] = t
        if kind == "start":
            d.reset(data)
        elif kind == "progress":
            d.add_progress(data)
        elif kind == "epoch":
            d.add_epoch(data)
            d.add_message(f"epoch {data['epoch']}: loss {data['loss']:.4f}")
    d.redraw()


@pytest.fixture
def view(qtbot, recorded) -> Dashboard:
    d = Dashboard()
    d.timer.stop()  # the test redraws when it wants to
    qtbot.addWidget(d)
    replay(d, recorded["events"])
    return d


def shown_at(qtbot, d: Dashboard, w: int, h: int) -> None:
    d.resize(w, h)
    d.show()
    qtbot.waitExposed(d)
    qtbot.waitUntil(lambda: d.charts["loss"].height() > h // 2
                    and d.chart_area.width() + d.side.width() >= w - 12)  # laid out
    d.redraw()


def overlay_earlier(d: Dashboard, recorded: dict[str, Any]) -> str:
    run = read_run(recorded["earlier"])
    d.set_overlays({run.name: run.history()})
    return run.name


def vb_rect(chart) -> QRect:
    """The chart's data area, in the chart's own coordinates."""
    vb = chart.plot.getViewBox()
    r = chart.widget.mapFromScene(vb.sceneBoundingRect()).boundingRect()
    return r.translated(chart.widget.mapTo(chart, r.topLeft()) - r.topLeft())


@pytest.mark.parametrize("size", [(1366, 650), (1920, 1000), (1366, 455)])
def test_plots_take_the_space_and_legends_stay_outside_the_data(view, qtbot, recorded,
                                                                size) -> None:
    overlay_earlier(view, recorded)
    shown_at(qtbot, view, *size)
    # a short view (the window's runs list below it) puts the three charts side by side
    assert view.chart_area.layout_name == ("row" if size[1] < 600 else "grid")
    charts = view.charts.values()
    area = sum(c.width() * c.height() for c in charts)
    assert area >= 0.5 * size[0] * size[1]
    assert view.side.width() <= 0.25 * size[0]
    for c in charts:
        data = vb_rect(c)
        assert data.height() >= 180, (c.title.text(), data)
        legend = c.legend.geometry()
        assert c.rect().contains(legend)
        assert not legend.intersects(data)
        assert c.legend.heightForWidth(legend.width()) <= legend.height()  # nothing cut
        named = c.legend.text().replace("&#8203;", "")  # where a long name may break
        assert recorded["earlier"].name in named  # the overlaid run is named on every chart


def test_log_y_toggles_each_chart_on_its_own(view, qtbot) -> None:
    loss, metric = view.charts["loss"], view.charts["metric"]
    qtbot.mouseClick(loss.log_button, Qt.MouseButton.LeftButton)
    assert loss.log_y and loss.plot.getAxis("left").logMode
    assert view.curves["val_loss"].opts["logMode"][1]
    assert not metric.log_y
    loss.show_cursor(2.0)  # the crosshair's dots sit on the curves in log space too
    x, y = loss.dots.getData()  # a scatter: log space is the chart's to apply
    val = loss.readings["val_loss"]
    assert (val.x, math.log10(val.smoothed)) in zip(x.tolist(), y.tolist(), strict=True)
    qtbot.mouseClick(loss.log_button, Qt.MouseButton.LeftButton)
    assert not loss.log_y


def test_crosshair_reads_the_current_run_and_an_overlaid_run(view, qtbot, recorded) -> None:
    name = overlay_earlier(view, recorded)
    shown_at(qtbot, view, 1366, 650)
    epochs = [e for _, kind, e in recorded["events"] if kind == "epoch"]
    earlier = [json.loads(x) for x in (recorded["earlier"] / "metrics.jsonl").read_text()
               .splitlines()]
    chart = view.charts["metric"]
    pos = chart.plot.getViewBox().mapViewToScene(QPointF(2.02, 0.9))
    with qtbot.waitSignal(chart.cursor_moved):
        chart.widget.scene().sigMouseMoved.emit(pos)
    loss = view.charts["loss"].readings  # one crosshair reads every chart (linked x)
    assert loss["val_loss"].x == 2.0 and loss["val_loss"].raw == epochs[1]["val_loss"]
    assert loss[f"{name}/val_loss"].raw == earlier[1]["val_loss"]
    assert chart.readings["val_metric"].raw == epochs[1]["val_accuracy"]
    assert chart.readings[f"{name}/val"].raw == earlier[1]["val_accuracy"]
    assert abs(loss["batch_loss"].x - 2.02) < 0.1  # the per-step point nearest the cursor
    text = view.charts["loss"].legend.text()
    assert number(epochs[1]["val_loss"]) in text and number(earlier[1]["val_loss"]) in text
    assert chart.vline.isVisible() and chart.vline.value() == pytest.approx(2.02, abs=1e-3)
    view.plots["loss"].setXRange(1.9, 2.1)  # zooming with the crosshair up: no point is lost
    QApplication.processEvents()
    assert len(chart.dots.data) == len(chart.readings)
    outside = chart.widget.mapToScene(chart.widget.rect().topLeft())
    chart.widget.scene().sigMouseMoved.emit(QPointF(outside.x() + 1, outside.y() + 1))
    assert not chart.vline.isVisible()  # left the data area: newest values, no crosshair
    assert view.charts["loss"].readings["val_loss"].raw == epochs[-1]["val_loss"]


def reference_ema(xs: list[float], a: float) -> list[float]:
    s, out = 0.0, []
    for t, x in enumerate(xs, 1):
        s = a * s + (1 - a) * x
        out.append(s / (1 - a**t))
    return out


def test_smoothing_is_tensorboards_debiased_ema_and_incremental(view, qtbot, recorded,
                                                                monkeypatch) -> None:
    losses = [e["loss"] for _, kind, e in recorded["events"] if kind == "progress"]
    trace = view.traces["batch_loss"]
    assert view.weight == 0.6
    _, drawn = trace.smooth_item.getData()
    assert np.allclose(drawn, reference_ema(losses, 0.6))
    assert trace.raw_item.getData()[1].tolist() == losses  # the raw curve, faint beneath
    assert trace.raw_item.opts["pen"].color().alpha() < 255
    view.smoothing_slider.setValue(900)
    view.redraw()
    assert np.allclose(trace.smooth_item.getData()[1], reference_ema(losses, 0.9))
    # new points are smoothed one at a time: nothing recomputes the whole series
    monkeypatch.setattr(smoothing, "ema", lambda *a: pytest.fail("recomputed"))
    last = next(e for _, kind, e in reversed(recorded["events"]) if kind == "progress")
    for i in range(1, 4):
        view.add_progress({**last, "step": last["step"] + i, "loss": 0.5})
        view.redraw()
    assert np.allclose(trace.smooth_item.getData()[1],
                       reference_ema([*losses, 0.5, 0.5, 0.5], 0.9))
    monkeypatch.undo()
    view.set_smoothing(0.0)
    view.redraw()
    assert not trace.smooth_item.isVisible() and trace.raw_item.opts["pen"].color().alpha() == 255


def test_x_axis_by_step_epoch_or_wall_time(view, qtbot, recorded) -> None:
    shown_at(qtbot, view, 1366, 650)  # the charts' x ranges line up on screen
    events = recorded["events"]
    info = next(e for _, kind, e in events if kind == "start")
    progress = [(t, e) for t, kind, e in events if kind == "progress"]
    epochs = [(t, e) for t, kind, e in events if kind == "epoch"]
    name = overlay_earlier(view, recorded)
    spe = info["steps_per_epoch"]
    start = next(t for t, kind, _ in events if kind == "start")
    view.x_axis_box.setCurrentIndex(0)  # Step
    assert view.charts["lr"].x_axis.mode == "step"
    assert view.curves["batch_loss"].getData()[0].tolist() == [e["step"] for _, e in progress]
    assert view.curves["val_loss"].getData()[0].tolist() == [spe * 1.0, spe * 2.0]
    assert view.overlay_trace(name).raw_item.getData()[0].tolist() == [spe * 1.0, spe * 2.0]
    view.set_x_axis("time")
    assert np.allclose(view.curves["val_loss"].getData()[0], [t - start for t, _ in epochs])
    assert np.allclose(view.curves["lr"].getData()[0], [t - start for t, _ in progress])
    earlier = read_run(recorded["earlier"]).epochs
    assert np.allclose(view.overlay_trace(name).raw_item.getData()[0],
                       np.cumsum([e["time_s"] for e in earlier]))
    view.set_x_axis("epoch")
    assert view.curves["val_loss"].getData()[0].tolist() == [1.0, 2.0]
    assert view.x_axis_box.currentText() == "Epoch"


def test_full_screen_fills_the_plot_area_and_comes_back(view, qtbot) -> None:
    shown_at(qtbot, view, 1366, 650)
    area = view.chart_area.size()
    metric = view.charts["metric"]
    qtbot.mouseClick(metric.full_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: metric.height() > 0.9 * area.height()
                    and metric.width() > 0.9 * area.width())
    assert not view.charts["loss"].isVisible() and not view.charts["lr"].isVisible()
    qtbot.mouseClick(metric.full_button, Qt.MouseButton.LeftButton)
    assert all(c.isVisible() for c in view.charts.values())
    qtbot.waitUntil(lambda: metric.height() < 0.6 * area.height())


def test_header_shows_the_runs_figures(qtbot, recorded) -> None:
    d = Dashboard()
    d.timer.stop()
    qtbot.addWidget(d)
    events = recorded["events"]
    progress = [(t, e) for t, kind, e in events if kind == "progress"]
    t, logs = progress[len(progress) // 2]
    replay(d, events, until=t)
    h = d.header
    assert h.status == "running"
    assert h.figure("epoch") == f"{logs['epoch']} / {logs['epochs']}"
    assert h.figure("step") == f"{logs['step']:,} / {logs['epochs'] * logs['batches']:,}"
    assert h.figure("lr") == f"{logs['lr']:.3g}" and h.figure("device") == "cpu"
    assert h.figure("rate") == f"{logs['samples_per_s']:,.0f}"
    eta = round(logs["eta_s"])
    assert h.figure("eta") == f"{eta // 60}:{eta % 60:02d}"
    start = next(t for t, kind, _ in events if kind == "start")
    elapsed = round(t - start)
    assert h.figure("elapsed") == f"{elapsed // 60}:{elapsed % 60:02d}"
    assert h.bar.value() == logs["step"]
    d.finish("completed", "completed 2 epochs")
    assert h.status == "completed" and h.pill.text() == "completed"
    assert not h.pause_button.isEnabled() and "completed 2 epochs" in h.message.full


def test_pause_and_stop_buttons_signal_the_window(qtbot) -> None:
    d = Dashboard()
    qtbot.addWidget(d)
    h = d.header
    assert h.status == "idle" and not h.pause_button.isEnabled()
    d.set_run_state(True, False)
    assert h.pause_button.text() == "Pause" and h.status == "running"
    with qtbot.waitSignal(d.pause_clicked):
        qtbot.mouseClick(h.pause_button, Qt.MouseButton.LeftButton)
    d.set_run_state(True, True)
    assert h.pause_button.text() == "Resume" and h.status == "paused"
    with qtbot.waitSignal(d.stop_clicked):
        qtbot.mouseClick(h.stop_button, Qt.MouseButton.LeftButton)
    d.set_run_state(False, False)
    assert not h.stop_button.isEnabled()


def test_clicking_a_layer_in_the_map_selects_it_and_shows_its_figures(qtbot) -> None:
    project = Project.load(sample("residual_cnn"))
    analysis = analyze(project.graph)
    d = Dashboard()
    qtbot.addWidget(d)
    shown_at(qtbot, d, 1366, 650)
    d.set_network(project.graph, analysis)
    assert list(d.map.boxes) == analysis.order
    box = d.map.boxes["block1_conv1"]
    d.map.ensureVisible(box)
    point = d.map.mapFromScene(box.sceneBoundingRect().center())
    with qtbot.waitSignal(d.node_selected) as signal:
        qtbot.mouseClick(d.map.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert signal.args == ["block1_conv1"]
    info = analysis.nodes["block1_conv1"]
    panel = d.layer_panel
    assert panel.values["type"].text() == "Conv2d"
    assert panel.values["params"].text() == f"{info.params:,}"
    assert panel.values["macs"].text() == f"{info.macs:,}"
    assert panel.values["output"].text() == "×".join(map(str, info.shape))
    assert f"{analysis.total_params:,}" in d.map_title.text()


def test_runs_checked_in_the_list_are_overlaid_on_every_chart_in_one_colour(view, qtbot,
                                                                           recorded) -> None:
    panel = RunsPanel(view)  # as the window builds it
    qtbot.addWidget(panel)
    panel.set_folder(recorded["runs"])
    name = recorded["earlier"].name
    panel.item(name).setCheckState(0, Qt.CheckState.Checked)
    colour = view.run_colours[name]
    for chart in view.charts.values():
        mine = [t for t in chart.traces.values() if t.run == name]
        assert mine and all(t.colour == colour for t in mine)
        assert all(t.colour != colour for t in chart.traces.values() if t.run is None)
    assert list(panel.overlays[name].getData()[0]) == [1.0, 2.0]
    panel.item(name).setCheckState(0, Qt.CheckState.Unchecked)
    assert not view.overlays and not panel.overlays
    assert all(t.run is None for c in view.charts.values() for t in c.traces.values())


def test_the_log_folds_to_its_last_line_and_opens_on_failure(view) -> None:
    assert view.fold.folded and not view.log.isVisibleTo(view)
    assert view.fold.last.full.startswith("epoch 2:")
    view.finish("failed", "out of memory")
    assert not view.fold.folded and view.log.isVisibleTo(view)
    assert view.header.status == "failed"


def test_an_overlaid_run_at_another_learning_rate_is_inside_the_lr_chart(view, qtbot,
                                                                         recorded) -> None:
    shown_at(qtbot, view, 1366, 650)
    name = overlay_earlier(view, recorded)  # trained at another rate than the current run
    lrs = [*view.traces["lr"].series.y[:view.traces["lr"].series.n],
           *view.overlay_trace(name, "lr").series.y[:1]]
    assert len(set(lrs)) > 1
    QApplication.processEvents()
    low, high = view.plots["lr"].viewRange()[1]
    assert low <= min(lrs) and max(lrs) <= high
