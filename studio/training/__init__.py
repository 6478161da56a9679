"""The one training loop used by the CLI, the GUI worker and distributed runs (no Qt)."""

from .callbacks import Callback, EarlyStopping, History, TerminateOnNaN
from .trainer import RunResult, Trainer

__all__ = ["Callback", "EarlyStopping", "History", "RunResult", "TerminateOnNaN", "Trainer"]
