"""Small real projects for trainer tests."""

from __future__ import annotations

from studio.core.project import DataSettings, Project, TrainingSettings, sample_paths
from tests.graphs import net


def sample(name: str) -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith(name)))


def mlp(dataset: str = "wine", inputs: int = 13, classes: int = 3, **training) -> Project:
    g = net(("x", "Input", {"shape": [inputs]}), ("h", "Linear", {"out_features": 16}),
            ("act", "ReLU", {}), ("drop", "Dropout", {"p": 0.2}),
            ("out", "Linear", {"out_features": classes}))
    t = {"epochs": 4, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("mlp", g, DataSettings(dataset=dataset, batch_size=16),
                   TrainingSettings(**t))
