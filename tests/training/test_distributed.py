"""Data-parallel runs on 2 CPU processes over loopback: torchrun, DDP, gloo, as users run them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from studio.core.project import DataSettings, Project
from studio.training import Callback, Trainer
from studio.training.checkpoint import load_checkpoint
from studio.training.distributed import Shard, strip_launch_flags

from .helpers import mlp, sample

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="this torch has no torch.distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_progress(self, logs) -> None:
        if logs["step"] >= self.at:
            raise RuntimeError("a fault in process 1 alone")


def _rank_main(rank: int, world: int, port: int, project_text: str | list[str], out: str
               ) -> None:
    """One process of a run started as torchrun would: the rank in the environment (a list
    gives each rank its own project, to make one of them fail)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    callbacks = []
    if isinstance(project_text, list):
        project_text = project_text[rank]
    if project_text.startswith("crash-at-step-5:"):  # a fault in this process alone
        project_text = project_text.split(":", 1)[1]
        callbacks.append(_CrashAt(5))
    trainer = Trainer(Project.loads(project_text), out_dir=out, callbacks=callbacks)
    result = trainer.fit()
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()},
              os.path.join(out, f"rank{rank}.safetensors"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"status": result.status, "message": result.message, "logs": {
            k: v for k, v in result.logs.items() if not k.endswith("confusion")},
            "steps": trainer.step}, f)


def test_two_processes_end_with_identical_weights_in_the_expected_accuracy_band(tmp_path
                                                                                 ) -> None:
    import torch.multiprocessing as mp

    project = mlp(epochs=6)
    mp.start_processes(_rank_main, args=(2, _free_port(), project.dumps(), str(tmp_path)),
                       nprocs=2, start_method="spawn")
    r0, r1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert info[0]["status"] == info[1]["status"] == "completed"
    assert info[0]["logs"] == info[1]["logs"]  # every process saw rank 0's epoch logs
    single = Trainer(project).fit()
    # 142 training samples: 71 per process in batches of 8 = 9 steps an epoch, not 18
    assert info[0]["steps"] == 6 * 9
    assert info[0]["logs"]["val_accuracy"] > 0.85
    assert abs(info[0]["logs"]["val_accuracy"] - single.logs["val_accuracy"]) <= 0.1
    assert abs(info[0]["logs"]["loss"] - single.logs["loss"]) < 0.15
    # only rank 0 wrote the run's files, and its weights are those of every rank
    saved = load_file(tmp_path / "model.safetensors")
    assert all(torch.equal(saved[k], r0[k]) for k in saved)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6


def test_a_process_failing_to_start_fails_every_process_with_its_message(tmp_path) -> None:
    import torch.multiprocessing as mp

    good = mlp(epochs=2)
    bad = mlp(epochs=2, init_weights=str(tmp_path / "only-rank-1-looks-here.safetensors"))
    mp.start_processes(_rank_main, args=(2, _free_port(), [good.dumps(), bad.dumps()],
                                         str(tmp_path)), nprocs=2, start_method="spawn")
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert info[0]["status"] == info[1]["status"] == "failed"
    assert "weights file not found" in info[0]["message"]
    assert "(process 1)" in info[0]["message"]  # rank 0 reports the other's failure
    assert info[0]["steps"] == info[1]["steps"] == 0


def test_a_fault_in_one_process_mid_run_ends_the_others_too(tmp_path) -> None:
    import torch.multiprocessing as mp

    project = mlp(epochs=50)
    t0 = time.perf_counter()
    mp.start_processes(_rank_main, args=(2, _free_port(), [project.dumps(),
                                                           "crash-at-step-5:" + project.dumps()],
                                         str(tmp_path)), nprocs=2, start_method="spawn")
    assert time.perf_counter() - t0 < 120
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert info[1]["status"] == "failed" and "a fault in process 1 alone" in info[1]["message"]
    assert info[0]["status"] == "failed", info[0]
    assert "another process of this run stopped unexpectedly" in info[0]["message"]


def test_each_process_takes_its_own_shard_and_the_shards_cover_the_epoch() -> None:
    shards = [Shard(10, 3, r, seed=1) for r in range(3)]
    for epoch in (0, 1):
        parts = []
        for s in shards:
            s.set_epoch(epoch)
            parts.append(s.positions().tolist())
        assert [len(p) for p in parts] == [4, 4, 4]  # padded to equal lengths
        assert {i for p in parts for i in p} == set(range(10))
        if epoch == 0:
            first = parts
    assert parts != first  # set_epoch reshuffles


def test_launch_flags_do_not_reach_the_workers() -> None:
    argv = ["train", "p.json", "--nproc-per-node", "2", "--nnodes=1", "--rdzv-endpoint",
            "h:1", "--epochs", "3"]
    assert strip_launch_flags(argv) == ["train", "p.json", "--epochs", "3"]


def studio(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def test_cli_trains_on_two_processes_stops_and_resumes_on_one(tmp_path) -> None:
    project = sample("mnist_mlp")
    project.training.epochs = 3
    project.data.batch_size = 8  # 250 steps an epoch per process: the stop lands mid-epoch
    project.data.test_fraction = 0.0  # 4,000 samples to train on
    path = tmp_path / "mlp.studio.json"
    project.save(path)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(path),
                             "--nproc-per-node", "2", "--events", "--out", str(out)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    events, stopped = [], False
    for line in proc.stdout:
        ev = json.loads(line)  # nothing but events on stdout, from rank 0 alone
        events.append(ev)
        if ev["event"] == "progress" and ev["logs"]["epoch"] == 2 and not stopped:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            stopped = True
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    starts = [e for e in events if e["event"] == "run_start"]
    assert len(starts) == 1 and starts[0]["info"]["processes"] == 2
    assert starts[0]["info"]["steps_per_epoch"] == 500  # 2,000 samples each, 4 a batch
    end = events[-1]
    assert end["event"] == "end" and end["status"] == "stopped", end
    assert any(e["event"] == "message" and e["text"] == "2 processes ended with identical "
               "weights" for e in events)
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 1 and 0 < ckpt["batch"] < 500
    # resume on one process: the interrupted epoch starts again, then runs to the end
    r = studio("train", str(path), "--resume", str(out / "last.ckpt"))
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    assert "resumes with 1: epoch 2 starts again" in text
    history = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["val_accuracy"] > 0.85


def test_a_failure_in_one_process_ends_every_process_with_one_line(tmp_path) -> None:
    project = sample("regression_mlp")
    project.training.optimizer = {"type": "SGD", "lr": 100.0}  # NaN within a few steps
    path = tmp_path / "bad.studio.json"
    project.save(path)
    t0 = time.perf_counter()
    r = studio("train", str(path), "--nproc-per-node", "2", "--out", str(tmp_path / "run"))
    assert time.perf_counter() - t0 < 120  # nobody left waiting in a collective
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("studio:")]
    assert len(errors) == 1 and "NaN or infinite" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    missing = Project.load(path)
    missing.data = DataSettings(dataset="csv", options={"path": str(tmp_path / "nowhere.csv")})
    missing.save(path)
    r = studio("train", str(path), "--nproc-per-node", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("studio:")] == [
        line for line in r.stderr.splitlines() if "nowhere.csv" in line][:1]


def test_two_machines_meet_at_a_rendezvous_endpoint(tmp_path) -> None:
    """The multi-node command, with both "machines" on loopback: c10d rendezvous, 2 nodes."""
    path = tmp_path / "wine.studio.json"
    mlp(epochs=3).save(path)
    endpoint = f"127.0.0.1:{_free_port()}"
    cmd = [sys.executable, "-m", "studio", "train", str(path), "--nnodes", "2",
           "--rdzv-endpoint", endpoint, "--rdzv-id", "test", "--out", str(tmp_path / "run")]
    nodes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outs
    text = "".join(o + e for o, e in outs)
    assert text.count("completed 3 epochs") == 1  # one report, from rank 0
    assert "2 processes ended with identical weights" in text
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3
    r = studio("train", str(path), "--nnodes", "2")
    assert r.returncode == 2 and r.stderr.strip() == (
        "studio: error: --rdzv-endpoint: a run on several machines needs --rdzv-endpoint "
        "HOST:PORT (the same on every machine)")
