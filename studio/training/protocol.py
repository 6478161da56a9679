"""What callbacks may see of a run: a small protocol, so they never import the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from studio.core.errors import StudioError
from studio.core.settings import TrainingSettings


@dataclass
class RunResult:
    """How a run ended. ``status``: completed, early_stopped, stopped or failed."""

    status: str
    message: str
    epochs: int
    logs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    error: StudioError | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class Run(Protocol):
    """The trainer as callbacks use it."""

    model: nn.Module
    failed: StudioError | None
    settings: TrainingSettings

    def message(self, text: str) -> None: ...
    def request_stop(self, reason: str) -> None: ...
    def stop(self) -> None: ...
    def fail(self, error: StudioError) -> None: ...
    def checkpoint_state(self) -> dict[str, Any]: ...
    def write_checkpoint(self, path: Path, state: dict[str, Any], kind: str) -> None: ...
