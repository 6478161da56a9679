"""Every way a run can fail, in a real training process (the command the window runs).

Each test first trains one good epoch, then continues the run into a fault: NaN loss, a real
out-of-memory (the process's address space capped), a shape that does not fit, missing data, a
disk that refuses the checkpoint (the file-size limit), a stop or a SIGKILL in the middle of
writing a checkpoint. Each must end with one readable line (or a clean stop), the project file
untouched and the last good checkpoint still loadable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.core.project import DataSettings, Project, sample_paths
from studio.training.checkpoint import load_checkpoint

posix = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX resource limits")


def sample(name: str) -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith(name)))


def studio(*args: str, preexec=None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec)


def good_run(tmp_path: Path, project: Project) -> tuple[Path, Path, bytes, bytes]:
    """A project file and a run folder holding one good epoch."""
    path = tmp_path / "p.studio.json"
    project.save(path)
    out = tmp_path / "run"
    r = studio("train", path, "--epochs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    return path, out, path.read_bytes(), (out / "last.ckpt").read_bytes()


def assert_intact(path: Path, out: Path, project_bytes: bytes, ckpt_bytes: bytes) -> None:
    assert path.read_bytes() == project_bytes  # the user's project file was not touched
    assert (out / "last.ckpt").read_bytes() == ckpt_bytes  # the last good checkpoint stays
    assert load_checkpoint(out / "last.ckpt")["epoch"] == 1


def one_line(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.splitlines() if x.startswith("studio:")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_nan_loss(tmp_path) -> None:
    project = sample("regression_mlp")
    project.training.optimizer = {"type": "SGD", "lr": 0.01}
    project.data.batch_size = 16  # many steps an epoch: lr 100 diverges within the epoch
    path, out, pb, cb = good_run(tmp_path, project)
    r = studio("train", path, "--resume", out / "last.ckpt", "--epochs", "3", "--lr", "100")
    assert "NaN or infinite at epoch 2, step" in one_line(r)
    assert_intact(path, out, pb, cb)


@pytest.mark.slow
@posix
def test_out_of_memory(tmp_path) -> None:
    import resource

    project = sample("mnist_cnn")
    project.graph.set_params("conv1", {"out_channels": 256, "kernel_size": 3})
    path, out, pb, cb = good_run(tmp_path, project)
    with open("/proc/self/status") as f:  # this process has torch loaded, as the child will
        vm = next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmSize:"))
    cap = vm + (2 << 30)  # room for the run, not for 4,000 × 256 × 26 × 26 floats (2.8 GB)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    r = studio("train", path, "--resume", out / "last.ckpt", "--epochs", "2",
               "--batch-size", "4000", preexec=limit)
    line = one_line(r)
    assert "out of memory on cpu with batch size 4000; try a batch size of 2000" in line
    assert_intact(path, out, pb, cb)


@pytest.mark.slow
def test_shape_that_does_not_fit(tmp_path) -> None:
    path, out, pb, cb = good_run(tmp_path, sample("mnist_mlp"))
    wrong = tmp_path / "wrong.studio.json"
    p = Project.load(path)
    p.graph.set_params("input", {"shape": [3, 28, 28]})
    p.save(wrong)
    r = studio("train", wrong, "--resume", out / "last.ckpt", "--epochs", "2")
    assert "node 'input'" in one_line(r) and "[1, 28, 28]" in one_line(r)
    assert_intact(path, out, pb, cb)


def test_missing_data(tmp_path) -> None:
    path, out, pb, cb = good_run(tmp_path, sample("wine"))
    moved = tmp_path / "moved.studio.json"
    p = Project.load(path)
    p.data = DataSettings(dataset="csv", options={"path": str(tmp_path / "gone.csv")})
    p.save(moved)
    r = studio("train", moved, "--out", out, "--epochs", "2")
    assert "gone.csv" in one_line(r)
    assert_intact(path, out, pb, cb)


@posix
def test_disk_full_while_writing_a_checkpoint(tmp_path) -> None:
    import resource

    path, out, pb, cb = good_run(tmp_path, sample("mnist_mlp"))
    cap = len(cb) // 2  # metrics lines fit; a checkpoint does not

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    r = studio("train", path, "--resume", out / "last.ckpt", "--epochs", "3", preexec=limit)
    line = one_line(r)
    assert "could not write the last checkpoint" in line and "the previous one is intact" in line
    assert_intact(path, out, pb, cb)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]  # no half file left


def _big_run(tmp_path: Path) -> tuple[Path, Path]:
    """A network whose checkpoint (~250 MB) takes long enough to write to be caught at it,
    trained on 64 images so that its epochs take no time next to the writes."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "few.npz", x=rng.random((64, 1, 28, 28), dtype=np.float32),
             y=rng.integers(0, 10, 64))
    project = sample("mnist_mlp")
    project.graph.set_params("dense1", {"out_features": 20_000})
    project.data = DataSettings(dataset="npz", options={"path": "few.npz"}, val_fraction=0.25,
                                batch_size=16)
    path = tmp_path / "big.studio.json"
    project.save(path)
    return path, tmp_path / "run"


def _start_and_catch_a_checkpoint_write(path: Path, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(path), "--epochs",
                             "3", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and (out / "last.ckpt").exists() and any(
                f.startswith(".last.ckpt.") for f in os.listdir(out)):
            return proc  # the second epoch's checkpoint is being written now
        time.sleep(0.002)
    proc.kill()
    pytest.fail("never caught a checkpoint being written")


@pytest.mark.slow
@posix
def test_stop_during_a_checkpoint_write(tmp_path) -> None:
    path, out = _big_run(tmp_path)
    proc = _start_and_catch_a_checkpoint_write(path, out)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stop after the current batch
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["epoch"] >= 1
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    r = studio("train", path, "--resume", out / "last.ckpt", "--epochs", str(ckpt["epoch"] + 1))
    assert r.returncode == 0, r.stderr  # and the run goes on from it


@pytest.mark.slow
@posix
def test_killed_during_a_checkpoint_write(tmp_path) -> None:
    path, out = _big_run(tmp_path)
    proc = _start_and_catch_a_checkpoint_write(path, out)
    before = load_checkpoint(out / "last.ckpt")["epoch"]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    ckpt = load_checkpoint(out / "last.ckpt")  # the previous file, or the complete new one
    assert ckpt["epoch"] in (before, before + 1)
    # the kill usually cuts the write short and leaves its temporary file behind (it may also
    # land just after the rename); the next run removes what is left
    r = studio("train", path, "--resume", out / "last.ckpt", "--epochs", str(ckpt["epoch"]))
    assert r.returncode == 0, r.stderr
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]  # the next run cleaned up


def _small_files_only() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))  # `ulimit -f`: nothing fits


@pytest.mark.slow
@posix
def test_a_disk_that_refuses_every_write_at_the_start_is_one_line(tmp_path) -> None:
    path, out, _, _ = good_run(tmp_path, sample("wine"))
    cases = [
        (("train", path, "--epochs", "1", "--out", tmp_path / "new"),
         f"{tmp_path / 'new'}: cannot write the run folder: File too large"),
        (("evaluate", path, "--weights", out / "best.ckpt", "--predictions", tmp_path / "p.npz"),
         f"{tmp_path / 'p.npz'}: File too large"),
        (("import", "torchvision:resnet18", "--out", tmp_path / "r.studio.json"),
         f"{tmp_path / 'r.studio.json'}: File too large"),
    ]
    for args, expected in cases:
        line = one_line(studio(*args, preexec=_small_files_only))
        assert expected in line, line


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path) -> None:
    path, _, _, _ = good_run(tmp_path, sample("wine"))
    (tmp_path / "afile").write_text("x")
    line = one_line(studio("train", path, "--out", tmp_path / "afile" / "run"))
    assert "cannot write the run folder: Not a directory" in line
