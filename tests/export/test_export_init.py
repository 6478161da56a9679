"""The exported model.py initialises each node as Studio's builder does: same seed, same
weights (the package's own ``initial_model``, imported as train.py runs it)."""

from __future__ import annotations

import importlib
import sys

import torch

from studio.core.build import build_module
from studio.core.project import Project
from studio.export.code import package_files
from tests.core.test_init import INIT, project


def test_the_exported_model_starts_from_studios_weights(tmp_path, monkeypatch) -> None:
    p = Project.from_dict(project(INIT, seed=7))
    for name, data in package_files(p).items():
        (tmp_path / name).write_bytes(data)
    source = (tmp_path / "model.py").read_text()
    assert "nn.init.normal_(self.dense1.weight, mean=0.0, std=0.02)" in source
    assert "nn.init.orthogonal_(self.rnn1.weight_hh_l0, gain=1.0)" in source
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("train", "model", "builders", "loaders", "split")
    for n in names:
        monkeypatch.delitem(sys.modules, n, raising=False)
    try:
        train = importlib.import_module("train")
        exported = train.initial_model(train.load_config()).state_dict()
    finally:
        for n in names:
            sys.modules.pop(n, None)
    ours = build_module(p.graph, seed=7).state_dict()
    assert list(exported) == list(ours)
    assert all(torch.equal(exported[k], ours[k]) for k in ours)
