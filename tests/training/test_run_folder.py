"""One run per folder: a second run into a folder in use is refused, leftovers are cleaned."""

from __future__ import annotations

import os
import threading

from studio.core.project import default_sample
from studio.training import Callback, Trainer
from studio.training.run_folder import new_run_dir, runs_dir

from .helpers import mlp


class _Hold(Callback):
    """Keeps a run in its first epoch until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def on_progress(self, logs):
        self.started.set()
        assert self.release.wait(60)


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path) -> None:
    out = tmp_path / "run"
    hold = _Hold()
    first = Trainer(mlp(epochs=2), out_dir=out, callbacks=[hold], report_hz=1000)
    results: list = []
    th = threading.Thread(target=lambda: results.append(first.fit()))
    th.start()
    try:
        assert hold.started.wait(60)
        second = Trainer(mlp(epochs=1), out_dir=out).fit()
        assert second.status == "failed"
        assert "another run (process" in second.message
        assert "writing into this folder" in second.message and str(out) in second.message
    finally:
        hold.release.set()
        th.join(120)
    assert results[0].status == "completed"
    # the first run's files are all its own: its project and two epochs of metrics
    assert (out / "metrics.jsonl").read_text().count("\n") == 2
    again = Trainer(mlp(epochs=1), out_dir=out).fit()  # free once the first has ended
    assert again.status == "completed"


def test_leftovers_of_killed_writes_are_removed_at_the_next_run(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".last.ckpt.k2j4h5.tmp").write_bytes(b"x" * 3000)
    (out / ".model.safetensors.a_b9.tmp").write_bytes(b"x")
    (out / "notes.tmp").write_text("the user's own file")
    messages: list[str] = []

    class Log(Callback):
        def on_message(self, text):
            messages.append(text)

    result = Trainer(mlp(epochs=1), out_dir=out, callbacks=[Log()]).fit()
    assert result.status == "completed"
    assert sorted(f for f in os.listdir(out) if f.endswith(".tmp")) == ["notes.tmp"]
    assert any("removed 2 unfinished temporary file(s)" in m for m in messages)


def test_new_run_folders_never_collide_and_samples_run_in_the_user_folder(tmp_path,
                                                                           monkeypatch) -> None:
    import studio.training.run_folder as rf

    monkeypatch.setattr(rf.time, "strftime", lambda fmt, *a: "20261123-120000")  # one second
    project = tmp_path / "net.studio.json"
    made = [new_run_dir(project) for _ in range(3)]
    assert [p.name for p in made] == ["net-20261123-120000", "net-20261123-120000-2",
                                      "net-20261123-120000-3"]
    assert all(p.is_dir() and p.parent == tmp_path / "runs" for p in made)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "user"))
    assert runs_dir(default_sample()) == tmp_path / "user" / "runs"
    assert runs_dir(None) == tmp_path / "user" / "runs"
