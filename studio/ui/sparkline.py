"""Layer-health tooltips with drawn sparklines: the recent history of a node's gradient norm or
dead-unit share as a small line picture inside the tooltip's rich text (a PNG data URL, which
Qt's rich text shows), so hovering a node shows where its figures are heading."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen

from studio.core.health import Mark

WIDTH, HEIGHT = 132, 26  # logical pixels; drawn at twice that for sharp high-DPI screens


def sparkline_png(values: Sequence[float], log: bool, colour: QColor) -> bytes:
    """The values as a line (log scale for norms), with the last point as a dot; a flat
    history is a flat line along the middle."""
    scale = 2
    img = QImage(WIDTH * scale, HEIGHT * scale, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    xs = [math.log10(max(v, 1e-12)) if log else v for v in values]
    if xs:
        lo, hi = min(xs), max(xs)
        span = hi - lo
        w, h, pad = img.width(), img.height(), 3 * scale
        step = (w - 2 * pad) / max(1, len(xs) - 1)

        def point(i: int, x: float) -> QPointF:
            y = 0.5 if span <= 0 else (x - lo) / span
            return QPointF(pad + i * step, h - pad - y * (h - 2 * pad))

        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath(point(0, xs[0]))
        for i, x in enumerate(xs[1:], 1):
            path.lineTo(point(i, x))
        p.setPen(QPen(colour, 1.6 * scale))
        p.drawPath(path)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(point(len(xs) - 1, xs[-1]), 2.2 * scale, 2.2 * scale)
        p.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")  # type: ignore[call-overload]  # the stub says bytes; Qt takes str
    return bytes(data.data())


def health_text(title: str, mark: Mark) -> str:
    """The tooltip without its pictures: cheap enough to set at every refresh; the pictures
    are drawn when the pointer comes to the item (:func:`health_html`)."""
    return f"{title}\n{mark.text}".strip()


def health_html(title: str, mark: Mark, colour: QColor) -> str:
    """A tooltip: ``title`` and the mark's lines, then each of its series drawn."""
    import base64

    rows = "<br>".join(html.escape(line) for line in mark.text.splitlines())
    pictures = []
    for name, values, log in mark.series:
        if len(values) < 2:
            continue
        png = base64.b64encode(sparkline_png(values, log, colour)).decode()
        scale = "log scale, " if log else ""
        pictures.append(f"<br><small>{html.escape(name)} ({scale}last {len(values)} "
                        f"samples)</small><br><img src='data:image/png;base64,{png}' "
                        f"width='{WIDTH}' height='{HEIGHT}'>")
    head = "<br>".join(html.escape(line) for line in title.splitlines())
    return f"<qt>{head}{rows and '<br>' + rows}{''.join(pictures)}</qt>"
