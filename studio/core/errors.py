"""Errors users can read: every one names the place it is about."""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error Studio shows to a user.

    ``where`` names the place (a node id, a field path, a file and line) so the message can be
    shown as one line without a traceback.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ProjectError(StudioError):
    """A project file that cannot be read: bad JSON, a wrong field, an unknown type."""


class GraphError(StudioError):
    """An edit the graph refuses: a cycle, an occupied port, an unknown node."""


class CycleError(GraphError):
    """Connecting would close a loop."""


class PortError(GraphError):
    """The input port does not exist or already has an edge."""


class ParamError(StudioError):
    """A layer or setting parameter with a value outside its type, range or choices."""


class ShapeError(StudioError):
    """A graph whose shapes do not fit; ``where`` is the node id."""


class DatasetError(StudioError):
    """A dataset that is missing, malformed or does not fit the network."""


class TrainingError(StudioError):
    """A run that failed: NaN loss, out of memory, a shape mismatch at run time."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message as one line a user can read (its type when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__
