"""How a layer card is drawn at each zoom: the full card, a title card, or a coloured box.

Text is never drawn below 8 px on screen (STYLE.md): when a line would be smaller, the card
switches to a simpler drawing with fewer, larger lines instead of shrinking the text. Fonts
are set in pixels so the card's content fits its fixed size and the on-screen size of a line
is its pixel size times the view's scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen

from studio.core.blockdef import BLOCK
from studio.core.graph import Graph, Node

NODE_W, NODE_H = 190.0, 64.0
PORT_R = 6.0
CATEGORY_COLOURS = {
    "Input": "#4c78a8", "Core": "#72b7b2", "Convolution": "#f58518", "Pooling": "#e45756",
    "Normalization": "#54a24b", "Regularization": "#b279a2", "Embedding": "#9d755d",
    "Recurrent": "#eeca3b", "Attention": "#ff9da6", "Activation": "#bab0ac", "Merge": "#79706e",
    "Block": "#5b6abf",
}
PROBLEM = QColor("#d62728")
WARNING = QColor("#b8860b")  # the Problems list's amber: the network doctor's warnings
SELECTED = QColor("#1f77b4")

MIN_TEXT_PX = 8.0  # the smallest text ever drawn, in screen pixels
TITLE_PX, BODY_PX = 13.0, 11.0  # a full card's lines, in scene pixels
BIG_TITLE_PX = 28.0  # the largest title a card holds
FULL, TITLE, BOX = "full", "title", "box"
#: the smallest zoom at which a full card (every line) reads; Fit never goes below it
LEGIBLE_SCALE = MIN_TEXT_PX / BODY_PX
_TEXT_X = 14.0
_TEXT_W = NODE_W - 20.0


def key_params(node: Node) -> str:
    """The few parameters worth reading on the canvas: the ones the user set."""
    parts = []
    for k, v in node.params.items():
        text = "×".join(str(x) for x in v) if isinstance(v, list) else str(v)
        parts.append(f"{k}={text}")
    return ", ".join(parts)


def card_words(node: Node, graph: Graph | None, in_block: bool) -> tuple[str, str]:
    """A card's title and its second line: a layer's type and the params the user set; a
    block's name (``BasicBlock ×2``) and its size; inside a block, an Input is one of its
    ports, fed by the network, not a shape."""
    if node.type == BLOCK:
        repeat = node.params.get("repeat", 1)
        title = f"{node.params.get('block', '?')}" + (f" ×{repeat}" if repeat != 1 else "")
        d = graph.blocks.get(node.params.get("block", "")) if graph is not None else None
        if d is None:
            return title, "not defined"
        layers = sum(1 for n in d.graph if not n.is_input)
        return title, f"{layers} layer{'s' if layers != 1 else ''} · double-click to open"
    if in_block and node.is_input:
        ports = [n.id for n in graph if n.is_input] if graph is not None else []
        k = ports.index(node.id) if node.id in ports else 0
        return node.type, f"block input {k}" + (f" of {len(ports)}" if len(ports) > 1 else "")
    return node.type, key_params(node)


def detail_for(scale: float) -> str:
    """The card drawn at a view scale: every line, the type and shape in larger type, or none."""
    if scale * BODY_PX >= MIN_TEXT_PX - 1e-9:
        return FULL
    if scale * BIG_TITLE_PX >= MIN_TEXT_PX - 1e-9:
        return TITLE
    return BOX


def category_colour(category: str | None) -> QColor:
    return QColor(CATEGORY_COLOURS.get(category or "", "#888888"))


def pixel_font(base: QFont, px: float, bold: bool = False) -> QFont:
    """``base`` at ``px`` scene pixels, rounded up: a size chosen as a floor stays above it."""
    font = QFont(base)
    font.setPixelSize(max(1, math.ceil(px - 1e-6)))
    font.setBold(bold)
    return font


@dataclass
class Card:
    """What one card says and how it is marked."""

    kind: str  # the layer type
    node_id: str
    params: str
    status: str  # the output shape, or the problem when there is one
    colour: QColor
    problem: bool = False
    selected: bool = False
    warning: bool = False  # a doctor's warning: the project trains, but look here
    #: live layer health during and after a run: (level "ok"/"warn"/"bad", colour 0…1)
    health: tuple[str, float] | None = None
    #: a block instance: drawn as a stack of cards, so it reads as "several layers inside"
    stacked: bool = False


def paint_card(painter: QPainter, card: Card, scale: float, base: QColor, text: QColor,
               font: QFont, ports: list[QPointF]) -> str:
    """Draw ``card`` at ``scale``; returns the detail drawn (FULL, TITLE or BOX)."""
    detail = detail_for(scale)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    rect = QRectF(0, 0, NODE_W, NODE_H)
    marked = card.problem or card.selected or card.warning
    quiet = card.colour.darker(130) if base.lightness() > 127 else card.colour.darker(105)
    border = (PROBLEM if card.problem else SELECTED if card.selected
              else WARNING if card.warning else quiet)
    if detail == BOX:
        pen = QPen(border, 3 if marked else 1.5)
        pen.setCosmetic(True)  # stays visible however far out the view is
        painter.setPen(pen)
        painter.setBrush(card.colour.lighter(115) if not card.problem else PROBLEM.lighter(140))
        painter.drawRoundedRect(rect, 8, 8)
        if card.health is not None:  # zoomed out, the dot grows to stay visible
            paint_health(painter, QPointF(NODE_W - 16, NODE_H / 2), 12, *card.health)
        return detail
    if card.stacked:  # two cards peeking out behind: a group, which opens
        painter.setPen(QPen(quiet, 1.2))
        painter.setBrush(QBrush(base))
        for k in (2, 1):
            painter.drawRoundedRect(rect.translated(4 * k, 4 * k), 8, 8)
    painter.setPen(QPen(border, 3 if marked else 1.5))
    painter.setBrush(QBrush(base))
    painter.drawRoundedRect(rect, 8, 8)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(card.colour)
    painter.drawRoundedRect(QRectF(0, 0, 8, NODE_H), 4, 4)
    if detail == FULL:
        _full_text(painter, card, text, font)
    else:
        _title_text(painter, card, scale, text, font)
    painter.setPen(QPen(card.colour.darker(150), 1.5))
    painter.setBrush(base)
    for p in ports:
        painter.drawEllipse(p, PORT_R, PORT_R)
    painter.setBrush(card.colour)
    painter.drawEllipse(QPointF(NODE_W / 2, NODE_H), PORT_R, PORT_R)
    if card.health is not None:
        paint_health(painter, QPointF(NODE_W - 11, 11), 6, *card.health)
    return detail


def health_colour(value: float) -> QColor:
    """One scale for layer health: blue (gradients vanishing, or units dead) through green to
    red (gradients exploding); ``value`` is ``studio.core.health.Mark.value``."""
    return QColor.fromHsvF(max(0.0, min(1.0, 1.0 - value)) * 240 / 360, 0.7, 0.9)


def paint_health(painter: QPainter, centre: QPointF, radius: float, level: str,
                 value: float) -> None:
    """The health dot: its fill on the colour scale, a ring in the Problems list's colours when
    the run-time doctor has a warning (amber) or an error (red) about the node."""
    ring = {"warn": WARNING, "bad": PROBLEM}.get(level)
    pen = QPen(ring, max(2.0, radius / 3)) if ring is not None else QPen(QColor(0, 0, 0, 90), 1)
    painter.setPen(pen)
    painter.setBrush(health_colour(value))
    painter.drawEllipse(centre, radius, radius)


def _line(painter: QPainter, y: float, px: float, content: str) -> None:
    """One left-aligned line, elided to the card's width."""
    font = painter.font()
    metrics = QFontMetricsF(font)
    shown = metrics.elidedText(content, Qt.TextElideMode.ElideRight, _TEXT_W)
    painter.drawText(QRectF(_TEXT_X, y, _TEXT_W, px * 1.4), Qt.AlignmentFlag.AlignLeft, shown)


def _full_text(painter: QPainter, card: Card, text: QColor, font: QFont) -> None:
    painter.setPen(text)
    painter.setFont(pixel_font(font, TITLE_PX, bold=True))
    _line(painter, 5, TITLE_PX, f"{card.kind}  ·  {card.node_id}")
    painter.setFont(pixel_font(font, BODY_PX))
    _line(painter, 25, BODY_PX, card.params)
    painter.setPen(PROBLEM if card.problem else text)
    _line(painter, 43, BODY_PX, card.status)


def _title_text(painter: QPainter, card: Card, scale: float, text: QColor, font: QFont) -> None:
    """The type as large as the card allows (≥ 8 px on screen), the shape below when it fits."""
    floor = MIN_TEXT_PX / scale
    title_px = min(BIG_TITLE_PX, max(TITLE_PX, 11.0 / scale))
    wide = QFontMetricsF(pixel_font(font, title_px, bold=True)).horizontalAdvance(card.kind)
    if wide > _TEXT_W:  # shrink a long name to fit (whole pixels), never below the floor
        title_px = max(floor, math.floor(title_px * _TEXT_W / wide))
    status_px = max(BODY_PX, floor)
    two_lines = title_px * 1.25 + status_px * 1.25 <= NODE_H - 6
    block = title_px * 1.25 + (status_px * 1.25 if two_lines else 0)
    y = (NODE_H - block) / 2
    painter.setPen(text)
    painter.setFont(pixel_font(font, title_px, bold=True))
    _line(painter, y, title_px, card.kind)
    if two_lines:
        painter.setPen(PROBLEM if card.problem else text)
        painter.setFont(pixel_font(font, status_px))
        _line(painter, y + title_px * 1.25, status_px, card.status)
