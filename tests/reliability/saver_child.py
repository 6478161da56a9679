"""Saves a project, a checkpoint, a weights file and the settings in a loop, in child processes
that it kills with SIGKILL at random moments (for the atomic-save test; not a test module).

Run: python -m tests.reliability.saver_child FOLDER KILLS SEED — after every kill it checks
that each file on disk loads whole; prints one JSON line.
Children are forked from this process after the imports, so each kill costs milliseconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch
from PySide6.QtCore import QSettings

from studio.core.project import Project, sample_paths
from studio.training.checkpoint import save_checkpoint, save_weights


def versions() -> list[Project]:
    base = Project.load(next(p for p in sample_paths() if p.name.startswith("mnist_cnn")))
    out = []
    for k in (1, 2):
        p = base.copy()
        p.name = f"version {k}"
        p.training.epochs = k
        out.append(p)
    return out


def saver(folder: Path) -> None:
    """Never returns: rewrites every file, alternating between two versions of each."""
    projects = versions()
    states = [{f"w{i}": torch.full((64, 256), float(k)) for i in range(8)} for k in (1, 2)]
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    k = 0
    while True:
        k = 1 - k
        projects[k].save(folder / "project.studio.json")
        save_checkpoint(folder / "last.ckpt", {"epoch": k + 1, "model": states[k]})
        save_weights(folder / "model.safetensors", states[k], {"studio.version": k + 1})
        settings.setValue("recentFiles", [f"/p/{k + 1}/{i}" for i in range(20)])
        settings.setValue("version", k + 1)
        settings.sync()


def check(folder: Path) -> str | None:
    """What is wrong with the files on disk after a kill, or None: each must load whole."""
    from studio.core.errors import StudioError
    from studio.training.checkpoint import load_checkpoint, load_weights

    try:
        if (folder / "project.studio.json").exists():
            p = Project.load(folder / "project.studio.json")
            if (p.name, p.training.epochs) not in (("version 1", 1), ("version 2", 2)):
                return f"project is a mix: {p.name}, {p.training.epochs} epochs"
        if (folder / "last.ckpt").exists():
            c = load_checkpoint(folder / "last.ckpt")
            if not all(bool((t == c["epoch"]).all()) for t in c["model"].values()):
                return "checkpoint tensors are a mix"
        if (folder / "model.safetensors").exists():
            t, meta = load_weights(folder / "model.safetensors")
            v = int(meta["studio.version"])
            if len(t) != 8 or not all(bool((x == v).all()) for x in t.values()):
                return "weights file torn"
        if (folder / "settings.ini").exists():
            s = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
            v = s.value("version")
            if s.status() != QSettings.Status.NoError or (
                    v is not None and s.value("recentFiles") != [f"/p/{v}/{i}"
                                                                 for i in range(20)]):
                return "settings torn"
    except (StudioError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> None:
    folder, kills, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    problems: list[str] = []
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            try:
                saver(folder)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.002, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        problem = check(folder)
        if problem:
            problems.append(problem)
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
    print(json.dumps({"kills": kills, "seconds": time.perf_counter() - started,
                      "torn_temp_files": len(leftovers), "checked": kills,
                      "problems": problems}), flush=True)


if __name__ == "__main__":
    main()
