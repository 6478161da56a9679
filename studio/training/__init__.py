"""The one training loop used by the CLI, the GUI worker and distributed runs (no Qt).

Names load on first use: importing a light module of this package (``run_folder``) must not
pull in torch, which the window imports only after it is visible.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .callbacks import Callback, EarlyStopping, History, TerminateOnNaN
    from .trainer import RunResult, Trainer

_WHERE = {"Callback": "callbacks", "EarlyStopping": "callbacks", "History": "callbacks",
          "TerminateOnNaN": "callbacks", "RunResult": "trainer", "Trainer": "trainer"}

__all__ = ["Callback", "EarlyStopping", "History", "RunResult", "TerminateOnNaN", "Trainer"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
