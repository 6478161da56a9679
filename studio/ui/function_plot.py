"""The inspector's picture of an activation: f(x) and f′(x) over x ∈ [−4, 4].

Both curves come from the module the node builds, with its current parameters, and the
derivative from autograd: the plot shows what the network computes, never a second copy of a
formula that could drift from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.core import catalog

from .training.traces import dim, faint, role_colour, style_plot

X_RANGE = (-4.0, 4.0)
POINTS = 401  # a step of 0.02: kinks stay sharp, and 0 is one of the points
PLOT_HEIGHT = 170


def plottable(layer_type: str) -> bool:
    """An element-wise activation; softmax and its log (which take a ``dim``) map vectors."""
    spec = catalog.get(layer_type)
    return spec is not None and spec.category == "Activation" and "dim" not in spec.schema


def curves(layer_type: str, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``f(x)`` and ``f′(x)`` from the built module (autograd for the derivative)."""
    import torch

    from studio.core.build import make_layer

    module = make_layer(layer_type, [(POINTS,)], params).double()
    x = torch.linspace(*X_RANGE, POINTS, dtype=torch.float64, requires_grad=True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # element-wise: the sum's gradient is f′ pointwise
    return x.detach().numpy(), y.detach().numpy(), dy.numpy()


class FunctionPlot(QWidget):
    """f(x) (solid) and f′(x) (dashed) of one activation node, redrawn when its params change."""

    def __init__(self, layer_type: str, params: dict[str, Any]) -> None:
        super().__init__()
        self.layer_type = layer_type
        pal = self.palette()
        fg = pal.text().color()
        self.widget = style_plot(pg.PlotWidget(), pal)
        self.widget.setFixedHeight(PLOT_HEIGHT)
        # a picture, not an instrument: the wheel scrolls the inspector instead of zooming
        self.widget.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        plot = self.widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.layout.setContentsMargins(2, 4, 6, 2)
        plot.getAxis("left").setWidth(30)
        for angle in (0, 90):  # the axes through the origin
            plot.addItem(pg.InfiniteLine(0, angle=angle, pen=pg.mkPen(faint(fg, 60))),
                         ignoreBounds=True)
        legend = plot.addLegend(offset=(6, 4), labelTextColor=dim(pal), brush=None,
                                verSpacing=-6)
        legend.setLabelTextSize("8pt")
        self.f_curve = plot.plot([], [], name="f(x)", antialias=True,
                                 pen=pg.mkPen(role_colour("step", pal), width=2))
        self.df_curve = plot.plot([], [], name="f′(x)", antialias=True,
                                  pen=pg.mkPen(role_colour("val", pal), width=2,
                                               style=Qt.PenStyle.DashLine))
        plot.setXRange(*X_RANGE, padding=0.02)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.widget)
        self.set_params(params)

    def set_params(self, params: dict[str, Any]) -> None:
        x, y, dy = curves(self.layer_type, params)
        self.f_curve.setData(x, y)
        self.df_curve.setData(x, dy)
        self.widget.getPlotItem().enableAutoRange(axis="y")
