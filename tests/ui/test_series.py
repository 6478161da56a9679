"""The dashboard's bounded plot view: few points to draw, every spike still shown."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.ui.training.dashboard import Series


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40_000), st.integers(1, 9), st.integers(0, 2**31))
def test_plot_view_is_bounded_ordered_and_keeps_the_extremes(n, chunks, seed) -> None:
    rng = np.random.default_rng(seed)
    ys = rng.standard_normal(n).cumsum()
    s = Series()
    Series.LIMIT = 512
    try:
        cuts = [*sorted(int(c) for c in rng.integers(0, n, chunks - 1)), n]
        done = 0
        for cut in cuts:  # appends and redraws interleave, as during a run
            for i in range(done, cut):
                s.append(float(i), float(ys[i]))
            done = cut
            x, y = s.plot_data()
            assert len(x) == len(y) <= 512 + s.bucket
            assert np.all(np.diff(x) > 0)  # in order, no point twice
            assert np.array_equal(y, ys[x.astype(int)])  # real points, not averages
            if done:
                assert y.max() == ys[:done].max() and y.min() == ys[:done].min()
                assert x[-1] == done - 1  # the newest point is always drawn
            if done <= 512:
                assert len(x) == done
    finally:
        Series.LIMIT = 2048
    s.clear()
    assert s.plot_data()[0].size == 0 and s.bucket == 1


def test_every_x_axis_reads_the_same_points_and_bulk_appends_match_single_ones() -> None:
    rng = np.random.default_rng(1)
    ys = rng.standard_normal(20_000)
    one, bulk = Series(axes=3), Series(axes=3)
    for i, y in enumerate(ys):
        one.append(float(i), float(y), i / 100, i / 10)
    bulk.extend(np.column_stack([np.arange(20_000), np.arange(20_000) / 100,
                                 np.arange(20_000) / 10]), ys)
    for axis, scale in ((0, 1), (1, 100), (2, 10)):
        x, y = one.plot_data(axis)
        assert np.allclose(x * scale, one.plot_data(0)[0])  # the same rows on every axis
        assert np.array_equal(y, ys[np.rint(x * scale).astype(int)])
        bx, by = bulk.plot_data(axis)
        assert np.array_equal(bx, x) and np.array_equal(by, y)
    assert (one.lo, one.hi) == (bulk.lo, bulk.hi) == (ys.min(), ys.max())
    assert one.nearest(41.6, 1) == 4160 and one.nearest(-5.0, 0) == 0
    assert one.nearest(1e9, 2) == 19_999 and Series().nearest(1.0) is None


def test_a_constant_learning_rate_is_drawn_at_its_value(qtbot) -> None:
    from studio.ui.training.dashboard import Dashboard

    d = Dashboard()
    qtbot.addWidget(d)
    d.reset({"epochs": 2})
    for step in range(1, 50):
        d.add_progress({"step": step, "batches": 25, "loss": 1.0 / step, "lr": 1e-3})
    d.redraw()
    lo, hi = d.plots["lr"].vb.viewRange()[1]
    assert lo <= 0.0 < 1e-3 < hi <= 3e-3  # not an axis centred on zero running negative
    d.add_progress({"step": 50, "batches": 25, "loss": 0.1, "lr": 5e-4})  # a schedule starts
    d.redraw()
    assert d.plots["lr"].vb.autoRangeEnabled()[1]
