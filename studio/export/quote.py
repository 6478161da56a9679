"""The one way text from a project reaches generated code: as a Python literal.

A project is untrusted input (a shared file, or the project embedded in a shared weights file),
so its name, paths, column and metric names must come out of generated code as data whatever
they hold: quotes of either kind, backslashes, newlines, U+2028, NUL, lone surrogates, ``{…}``.
Documentation text is never interpolated into docstrings or comments; a generated file shows
such text as a constant (``PROJECT_NAME = '…'``).
"""

from __future__ import annotations

import math
from typing import Any


def py_str(text: str) -> str:
    """A one-line Python string literal that evaluates to ``text``.

    ``repr`` is enough: it escapes the quote it uses, backslashes and every character that is
    not printable, and the tokenizer's line breaks (and U+2028, NEL, form feed, NUL, surrogates,
    bidi controls) are all unprintable, so the literal is one line that cannot end early.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, not {type(text).__name__}")
    return repr(text)


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return py_str(value)
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        # inf and nan have no literal; float("inf") is what a person would write
        return repr(value) if math.isfinite(value) else f"float({py_str(repr(value))})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_str(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(_flat(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    raise TypeError(f"no literal for {type(value).__name__}")


def py_value(value: Any, indent: int = 0, width: int = 100, start: int | None = None) -> str:
    """A Python literal of JSON-like data (dicts with text keys, lists, tuples, text, numbers,
    booleans, None), laid out as a person would: short parts on one line, every string through
    ``py_str``. ``indent`` is the indentation of the line, ``start`` the literal's column."""
    flat = _flat(value)
    column = indent if start is None else start
    if column + len(flat) < width or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{py_str(k)}: "
                 + py_value(v, indent + 4, width, len(pad) + len(py_str(k)) + 2)
                 for k, v in value.items()]
        brackets = "{}"
    else:
        items = [pad + py_value(v, indent + 4, width) for v in value]
        brackets = "[]"
    return f"{brackets[0]}\n" + ",\n".join(items) + f",\n{' ' * indent}{brackets[1]}"
