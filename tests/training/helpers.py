"""Small real projects for trainer tests."""

from __future__ import annotations

from studio.core.graph import Graph, Node
from studio.core.project import DataSettings, Project, TrainingSettings, sample_paths


def sample(name: str) -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith(name)))


def mlp(dataset: str = "wine", inputs: int = 13, classes: int = 3, **training) -> Project:
    g = Graph()
    layers = [("x", "Input", {"shape": [inputs]}), ("h", "Linear", {"out_features": 16}),
              ("act", "ReLU", {}), ("drop", "Dropout", {"p": 0.2}),
              ("out", "Linear", {"out_features": classes})]
    prev = None
    for nid, t, p in layers:
        g.add_node(Node(nid, t, p))
        if prev:
            g.connect(prev, nid)
        prev = nid
    t = {"epochs": 4, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("mlp", g, DataSettings(dataset=dataset, batch_size=16),
                   TrainingSettings(**t))
