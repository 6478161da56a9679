"""How generated code is laid out: values as literals, calls within the line length.

Shared by ``code.py`` (the module of ``model.py``) and ``classes.py`` (its classes).
"""

from __future__ import annotations

from typing import Any

from .quote import py_str, py_value

WIDTH = 100  # the line length of generated code, as of Studio's own


def literal(v: Any) -> str:
    """A parameter value as source (lists as tuples, as torch's signatures write them)."""
    try:
        return py_value(tuple(v) if isinstance(v, list) else v)
    except TypeError:  # only torch's own defaults (never project text) are of other types
        return repr(v)


def call(indent: int, head: str, args: list[str], tail: str = "", comment: str = ""
         ) -> list[str]:
    """``head(args)tail  # comment`` laid out as a person would within the line length: one
    line when it fits; else the comment on a line above and the arguments wrapped under the
    open parenthesis, or one per line after it when the head is long, or, for names at
    Studio's limit of 64 characters, the value in parentheses below its target."""
    pad = " " * indent
    one = f"{pad}{head}({', '.join(args)}){tail}"
    if comment and len(one) + 4 + len(comment) <= WIDTH:
        return [f"{one}  # {comment}"]
    lines = [f"{pad}# {comment}"] if comment else []
    if len(one) <= WIDTH or not args:
        return [*lines, one]
    opening = f"{pad}{head}("
    if len(opening) > WIDTH - 4 and " = " in head:
        target, value = head.split(" = ", 1)
        return [*lines, f"{pad}{target} = (", *call(indent + 4, value, args, tail),
                f"{pad})"]
    if len(opening) > WIDTH // 2:
        inner = " " * (indent + 4)
        return [*lines, opening, *(f"{inner}{a}," for a in args), f"{pad}){tail}"]
    column = len(opening)
    current = opening
    for i, a in enumerate(args):
        piece = a + (f"){tail}" if i == len(args) - 1 else ",")
        if current.endswith("("):
            current += piece
        elif len(current) + 1 + len(piece) <= WIDTH:
            current += " " + piece
        else:
            lines.append(current)
            current = " " * column + piece
    return [*lines, current]


def text_constant(name: str, text: str, indent: int = 0) -> list[str]:
    """``NAME = 'text'``, as pieces of one literal in parentheses when it is too long for a
    line; every piece through ``py_str``."""
    pad = " " * indent
    line = f"{pad}{name} = {py_str(text)}"
    if len(line) <= WIDTH:
        return [line]
    pieces: list[str] = []
    piece = ""
    for c in text:
        if piece and len(py_str(piece + c)) > WIDTH - 4 - indent:
            pieces.append(piece)
            piece = ""
        piece += c
    return [f"{pad}{name} = (", *(f"{pad}    {py_str(p)}" for p in [*pieces, piece]), f"{pad})"]
