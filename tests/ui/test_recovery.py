"""Crash recovery: a real app process killed with SIGKILL, its unsaved edits offered back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from studio.core.project import Project, sample_paths
from studio.core.recovery import RecoverySession, orphans

from .helpers import open_window


@pytest.fixture
def project_file(tmp_path):
    src = next(p for p in sample_paths() if p.name.startswith("mnist_mlp"))
    path = tmp_path / "net.studio.json"
    Project.load(src).save(path)
    return path


make_window = open_window


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_unsaved_edits_survive_sigkill_and_are_offered_at_the_next_launch(
        qtbot, tmp_path, project_file, monkeypatch) -> None:
    env = {**os.environ, "STUDIO_AUTOSAVE_MS": "200", "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.Popen([sys.executable, "-m", "tests.ui.recovery_child",
                              str(project_file), str(tmp_path / "child.ini")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not line:
            line = child.stdout.readline().strip()
        assert line == "ready", child.stderr.read() if child.poll() is not None else line
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    on_disk = json.loads(project_file.read_text())
    assert next(n for n in on_disk["graph"]["nodes"] if n["id"] == "dense1")["params"] == {
        "out_features": 128}  # the saved file was never touched
    w = make_window(qtbot, tmp_path, project_file)
    offered = []
    w.recovery.ask_restore = lambda rec: offered.append(rec) or "restore"
    assert w.recovery.offer()
    assert len(offered) == 1 and offered[0].original == project_file
    assert offered[0].name == "MNIST MLP"
    assert w.editor.graph.nodes["dense1"].params["out_features"] == 77
    assert w.project.training.epochs == 9
    assert w.is_modified() and w.isWindowModified()  # unsaved until saved
    assert w.project.path == project_file
    assert w.files.save()
    assert Project.load(project_file).graph.nodes["dense1"].params["out_features"] == 77
    assert not w.recovery.session.path.exists()  # saved: nothing left to recover
    again = make_window(qtbot, tmp_path, project_file)
    again.recovery.ask_restore = lambda rec: pytest.fail("offered twice")
    assert not again.recovery.offer()
    again.close()
    w.close()


def test_a_clean_close_leaves_nothing_to_recover(qtbot, tmp_path, project_file) -> None:
    w = make_window(qtbot, tmp_path, project_file)
    w.editor.set_setting("training", "epochs", 3)
    w.recovery.autosave()
    assert w.recovery.session.path.exists() and w.recovery.session.lock_path.exists()
    folder = w.recovery.session.folder
    assert w.close()  # discards (ask_save answers Discard)
    assert not list(folder.glob(f"{w.recovery.session.id}*"))
    assert orphans(folder) == []


def test_autosave_follows_the_undo_stack_and_runs(qtbot, tmp_path, project_file) -> None:
    w = make_window(qtbot, tmp_path, project_file)
    w.editor.set_setting("training", "epochs", 3)
    w.recovery.timer.setInterval(50)
    qtbot.waitUntil(lambda: w.recovery.session.path.exists(), timeout=5000)
    saved = json.loads(w.recovery.session.path.read_text())
    assert saved["project"]["training"]["epochs"] == 3
    assert saved["original"] == str(project_file)
    w.editor.stack.undo()  # back to the saved state: nothing unsaved
    assert not w.recovery.session.path.exists()
    w.close()


def test_recovery_choices_discard_and_later(tmp_path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    dead = RecoverySession(folder)
    p = Project(name="Lost")
    dead.write(p)
    assert orphans(folder) == []  # its owner (this process) is alive
    dead._lock.close()  # as the OS does when the process dies
    dead._lock = None
    found = orphans(folder)
    assert [r.name for r in found] == ["Lost"] and found[0].original is None
    assert found[0].load().name == "Lost"
    found[0].discard()
    assert orphans(folder) == [] and not list(folder.iterdir())
    # a session that died with nothing unsaved leaves a lock only: cleaned up, not offered
    quiet = RecoverySession(folder)
    quiet._lock.close()
    quiet._lock = None
    assert orphans(folder) == [] and not list(folder.iterdir())
    # a torn or foreign recovery file is a message, not a crash
    broken = RecoverySession(folder)
    broken.path.write_text("{not json")
    broken._lock.close()
    broken._lock = None
    (rec,) = orphans(folder)
    with pytest.raises(Exception, match="recovery file cannot be read"):
        rec.load()
