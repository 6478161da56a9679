"""``studio train --events``: the protocol the window's separate-process runs rely on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from studio.core.project import sample_paths
from studio.training.predictions import load_predictions, save_predictions
from studio.training.remote import EventStream, parse
from tests.training.helpers import final_logs

MLP = next(p for p in sample_paths() if p.name == "mnist_mlp.studio.json")


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio", "train", *args, "--events"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def next_event(p: subprocess.Popen, kind: str) -> dict:
    for line in p.stdout:
        ev = parse(line)
        assert ev is not None, f"not an event: {line!r}"  # nothing else reaches stdout
        if ev["event"] == kind:
            return ev
    raise AssertionError(f"no {kind} event; stderr: {p.stderr.read()[-2000:]}")


def test_end_of_commands_stops_the_run(tmp_path) -> None:
    """A window that went away (its end of the pipe closed) leaves no orphan training."""
    p = spawn(str(MLP), "--epochs", "200", "--out", str(tmp_path / "run"))
    p.stdin.close()
    events = [parse(line) for line in p.stdout]
    assert p.wait(timeout=120) == 0
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "end"
    assert events[-1]["status"] == "stopped"


def test_pause_resume_stop_by_commands_and_the_end_event(tmp_path) -> None:
    out = tmp_path / "run"
    p = spawn(str(MLP), "--epochs", "200", "--out", str(out))
    start = next_event(p, "run_start")
    assert start["info"]["params"] == 101_770 and start["protocol"] == 1
    first = next_event(p, "epoch_end")["logs"]
    assert set(first) >= {"loss", "val_loss", "val_accuracy", "samples_per_s"}
    p.stdin.write("pause\n")
    p.stdin.flush()
    while (ev := next_event(p, "message"))["text"] != "paused":
        pass
    held = ev["step"]
    p.stdin.write("resume\n")
    p.stdin.flush()
    resumed = next_event(p, "message")
    assert resumed["text"] == "resumed" and resumed["step"] == held  # no step while paused
    later = next_event(p, "progress")["logs"]["step"]
    assert later > held
    p.stdin.write("stop\n")
    p.stdin.flush()
    end = next_event(p, "end")
    assert p.wait(timeout=60) == 0
    assert end["status"] == "stopped" and end["error"] is None
    assert end["history"][0] == json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    pred, logs = load_predictions(out / "predictions.npz")
    assert pred["y_true"].shape == pred["y_pred"].shape == (1000,)
    assert pred["images"].shape == (1000, 28, 28, 1) and pred["images"].dtype == np.uint8
    assert logs["val_accuracy"] == end["logs"]["val_accuracy"]


def test_a_failing_run_ends_with_a_failed_event(tmp_path) -> None:
    bad = json.loads(MLP.read_text())
    bad["data"] = {**bad["data"], "dataset": "fashion-mnist",
                   "options": {"root": str(tmp_path / "none")}}
    path = tmp_path / "bad.studio.json"
    path.write_text(json.dumps(bad))
    p = spawn(str(path), "--out", str(tmp_path / "run"))
    end = next_event(p, "end")
    assert p.wait(timeout=60) == 0
    assert end["status"] == "failed" and "FashionMNIST files not found" in end["message"]
    assert end["error"]["message"] in end["message"]


def test_parse_ignores_what_is_not_an_event_and_keeps_non_finite_numbers() -> None:
    import io

    buf = io.StringIO()
    EventStream(buf).emit("progress", logs={"loss": float("nan"), "lr": float("inf"), "n": 3})
    ev = parse(buf.getvalue())
    assert np.isnan(ev["logs"]["loss"]) and ev["logs"]["lr"] == float("inf")
    for junk in ("", "hello", "{not json", "[1, 2]", '{"no_event": 1}', b"\xff\xfe"):
        assert parse(junk) is None


def test_evaluate_command_reproduces_the_checkpoint_metrics(tmp_path) -> None:
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "studio", "train", str(MLP), "--epochs", "1",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    logs = final_logs(out)
    for weights in ("best.ckpt", "model.safetensors"):
        r = subprocess.run([sys.executable, "-m", "studio", "evaluate", str(MLP), "--weights",
                            str(out / weights), "--predictions", str(tmp_path / "p.npz")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert f"val_accuracy {logs['val_accuracy']:.4f}" in r.stdout
        pred, _ = load_predictions(tmp_path / "p.npz")
        assert (pred["y_true"] == pred["y_pred"]).mean() == logs["val_accuracy"]
    r = subprocess.run([sys.executable, "-m", "studio", "evaluate", str(MLP), "--weights",
                        str(tmp_path / "missing.ckpt")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr


def test_predictions_file_round_trips_without_pickle(tmp_path) -> None:
    pred = {"task": "classification", "classes": ["a", "b"], "y_true": np.array([0, 1]),
            "y_pred": np.array([1, 1]), "confidence": np.array([0.6, 0.9], np.float32)}
    save_predictions(tmp_path / "p.npz", pred, {"val_loss": 0.5, "val_confusion": [[1]]})
    back, logs = load_predictions(tmp_path / "p.npz")
    assert back["classes"] == ["a", "b"] and logs == {"val_loss": 0.5}
    assert np.array_equal(back["y_pred"], pred["y_pred"])
    with np.load(tmp_path / "p.npz", allow_pickle=False) as f:  # loads with pickle refused
        assert "meta" in f.files
