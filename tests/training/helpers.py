"""Small real projects for trainer tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core.project import DataSettings, Project, TrainingSettings, sample_paths
from tests.graphs import net


def final_logs(out: Path) -> dict[str, Any]:
    """The last epoch's line of a run's metrics.jsonl (a run with a test part ends the file
    with its test line)."""
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "epoch" in x][-1]


def sample(name: str) -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith(name)))


def mlp(dataset: str = "wine", inputs: int = 13, classes: int = 3, **training) -> Project:
    g = net(("x", "Input", {"shape": [inputs]}), ("h", "Linear", {"out_features": 16}),
            ("act", "ReLU", {}), ("drop", "Dropout", {"p": 0.2}),
            ("out", "Linear", {"out_features": classes}))
    t = {"epochs": 4, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("mlp", g, DataSettings(dataset=dataset, batch_size=16),
                   TrainingSettings(**t))
