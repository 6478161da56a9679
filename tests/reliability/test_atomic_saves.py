"""Atomic saves: writers killed with SIGKILL at random moments leave an old or a new file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PySide6.QtCore import QSettings

from studio.core.project import Project
from studio.training.checkpoint import load_checkpoint, load_weights

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")


@pytest.mark.slow
def test_200_kills_mid_save_leave_every_file_loadable(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "tests.reliability.saver_child", str(tmp_path),
                        "200", "7"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    assert stats["kills"] == stats["checked"] == 200
    assert stats["problems"] == []  # after every one of the 200 kills, every file loaded
    project = Project.load(tmp_path / "project.studio.json")
    assert (project.name, project.training.epochs) in (("version 1", 1), ("version 2", 2))
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    assert all(bool((t == ckpt["epoch"]).all()) for t in ckpt["model"].values())
    assert len(ckpt["model"]) == 8
    tensors, meta = load_weights(tmp_path / "model.safetensors")
    version = int(meta["studio.version"])
    assert len(tensors) == 8 and all(bool((t == version).all()) for t in tensors.values())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert settings.status() == QSettings.Status.NoError
    v = int(settings.value("version"))
    assert settings.value("recentFiles") == [f"/p/{v}/{i}" for i in range(20)]
    assert torch.is_tensor(next(iter(tensors.values())))
    # the kills did land in the middle of writes: their temporary files are still there
    assert stats["torn_temp_files"] > 0
