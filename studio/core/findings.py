"""What the Problems list holds and ``studio validate`` prints: findings, each with a fix made
of plain edits that the editor applies as one undo step.

A finding comes from the network doctor (``doctor.py``, with a code and a reason) or is one of
the shape analysis's problems (no code; its suggested layer becomes an ``InsertLayer``).
Nothing here knows Qt: the window maps each edit onto its editor's commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .graph import Edge, Graph
from .shapes import Analysis, Problem, Severity, describe

# -- edits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoveNode:
    """Delete a node; a chain through it is joined again (the editor's delete-and-reconnect)."""

    node: str


@dataclass(frozen=True)
class SetParams:
    """Replace a node's parameters (what the user set, not the defaults)."""

    node: str
    params: dict[str, Any]


@dataclass(frozen=True)
class SetSetting:
    """Set one field of ``project.data`` or ``project.training``."""

    section: str
    name: str
    value: Any


@dataclass(frozen=True)
class InsertLayer:
    """Put a new layer into the wire ``src → dst`` (input ``port``)."""

    layer: str
    src: str
    dst: str
    port: int = 0


Edit = RemoveNode | SetParams | SetSetting | InsertLayer
_OPS = {RemoveNode: "remove_node", SetParams: "set_params", SetSetting: "set_setting",
        InsertLayer: "insert_layer"}


@dataclass(frozen=True)
class Fix:
    """What one click (or double-click) does: ``label`` says it, ``edits`` do it."""

    label: str
    edits: tuple[Edit, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label,
                "edits": [{"op": _OPS[type(e)], **vars(e)} for e in self.edits]}


@dataclass(frozen=True)
class Finding:
    """One entry of the Problems list: a doctor finding, or a shape problem (``code`` None)."""

    code: str | None
    severity: Severity
    node: str | None
    message: str
    reason: str = ""
    fix: Fix | None = None
    #: the node whose shape error this finding explains (listed right after that error)
    explains: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The form ``studio validate --json`` prints."""
        return {"severity": self.severity, "code": self.code, "node": self.node,
                "message": self.message, "reason": self.reason or None,
                "fix": self.fix.to_dict() if self.fix else None}


def lift(fix: Fix | None, top: Callable[[str], str]) -> Fix | None:
    """A fix found on the opened network (``studio.core.flat``) as edits of the network
    itself, or None where it would edit a block's definition (shared by every instance): a
    layer inserted after a block's output goes after the instance."""
    if fix is None:
        return None
    edits: list[Edit] = []
    for e in fix.edits:
        if isinstance(e, InsertLayer) and "." not in e.dst:
            edits.append(replace(e, src=top(e.src)))
        elif (isinstance(e, RemoveNode | SetParams) and "." in e.node) or \
                isinstance(e, InsertLayer):
            return None
        else:
            edits.append(e)
    return Fix(fix.label, tuple(edits))


def problem_fix(graph: Graph, p: Problem) -> Fix | None:
    """A shape problem's suggested layer as a fix: inserted before the node."""
    ins = graph.in_edges(p.node) if p.node is not None and p.node in graph else []
    if p.fix is None or len(ins) != 1:
        return None
    e: Edge = ins[0]
    return Fix(f"insert {p.fix} before {describe(graph, e.dst)}",
               (InsertLayer(p.fix, e.src, e.dst, e.port),))


def problem_list(graph: Graph, analysis: Analysis, findings: list[Finding]) -> list[Finding]:
    """What the Problems list and ``studio validate`` show, in order: the analysis's problems,
    each followed by the findings that explain it, then the other findings, errors first."""
    out: list[Finding] = []
    for p in analysis.problems:
        out.append(Finding(None, p.severity, p.node, p.message, fix=problem_fix(graph, p)))
        out += [f for f in findings if f.explains is not None and f.explains == p.node
                and f not in out]
    rest = [f for f in findings if f not in out]
    return out + [f for f in rest if f.severity == "error"] + \
        [f for f in rest if f.severity != "error"]
