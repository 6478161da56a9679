"""A finished run as the window receives it: the trainer's ``RunResult`` plus what the window
adds, the validation predictions for the evaluation views and the run's wall time.

Importing this module loads torch (through the trainer): import it where a run ends, not
at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

from studio.training.trainer import RunResult


@dataclass
class RunOutcome(RunResult):
    predictions: dict[str, Any] | None = None  # None: the run collected none
    seconds: float = 0.0

    @classmethod
    def of(cls, result: RunResult) -> Self:
        """The trainer's result, with no predictions yet."""
        return cls(**{f.name: getattr(result, f.name) for f in fields(RunResult)})
