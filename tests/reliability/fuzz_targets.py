"""What the fuzzers feed the loaders, and what counts as a correct outcome.

Shared by the Hypothesis tests (a few hundred cases in CI) and ``tests/bench/fuzz.py``
(10,000+). Every target returns the name of its outcome ("loaded" or the project's error
class); any other exception escapes and is the failure Hypothesis shrinks and reports.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from studio.core.errors import StudioError
from studio.core.project import Project, sample_paths

SAMPLES = [p.read_text() for p in sample_paths()]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_project(draw: Any) -> str:
    """A sample project with a few fields replaced, deleted or retyped, or its text cut."""
    text = draw(st.sampled_from(SAMPLES))
    if draw(st.integers(0, 9)) == 0:  # a torn file
        return text[:draw(st.integers(0, len(text)))]
    doc = json.loads(text)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_value)
    return json.dumps(doc, allow_nan=True)


def load_project(text: str) -> str:
    from studio.core.shapes import analyze
    from studio.core.summary import summary_table

    try:
        project = Project.loads(text)
    except StudioError as exc:
        return type(exc).__name__
    analyze(project.graph)  # a loaded project is one the editor can show
    summary_table(project.graph)
    Project.loads(project.dumps())  # and save again
    return "loaded"


csv_cell = st.one_of(st.sampled_from(["", "0", "1", "2.5", "-3e4", "nan", "inf", "a", "b",
                                      "cat", '"q,uoted"', "x\ny", "ä", "1e309"]),
                     st.text(max_size=6))


@st.composite
def csv_text(draw: Any) -> str:
    cols = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(csv_cell, min_size=cols, max_size=cols), min_size=0,
                         max_size=12))
    if draw(st.booleans()) and rows:  # a ragged row
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    buf = io.StringIO()
    import csv

    csv.writer(buf).writerows([[f"c{i}" for i in range(cols)], *rows])
    text = buf.getvalue()
    if draw(st.integers(0, 7)) == 0:
        text = text[:draw(st.integers(0, len(text)))]
    return text


def load_csv(text: str | bytes, options: dict[str, Any] | None = None) -> str:
    from studio.core.project import DataSettings
    from studio.data.bundle import load_data

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        try:
            load_data(DataSettings(dataset="csv", options={"path": str(path), **(options or {})}))
        except StudioError as exc:
            return type(exc).__name__
    return "loaded"


def _real_checkpoint() -> bytes:
    import torch

    from studio.training.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "c.ckpt"
        save_checkpoint(p, {"epoch": 1, "model": {"w": torch.ones(3, 3)},
                            "project": Project().dumps()})
        return p.read_bytes()


def _real_weights() -> bytes:
    import torch

    from studio.training.checkpoint import save_weights

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "w.safetensors"
        save_weights(p, {"a.weight": torch.ones(4, 2), "a.bias": torch.zeros(4)},
                     {"studio.project": Project().dumps()})
        return p.read_bytes()


@st.composite
def mutated_bytes(draw: Any, original: bytes) -> bytes:
    """Truncations, overwritten byte runs and random bytes around a real file."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return original[:draw(st.integers(0, len(original)))]
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        run = draw(st.binary(min_size=1, max_size=8))
        data[at:at + len(run)] = run
    return bytes(data)


CKPT = _real_checkpoint()
WEIGHTS = _real_weights()


def load_file(data: bytes, suffix: str) -> str:
    from studio.training.transfer import read_state

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:
            state = read_state(path)
        except StudioError as exc:
            return type(exc).__name__
        assert isinstance(state, dict)
    return "loaded"
