"""The trainer on real data: accuracy, resume, control from another thread, faults."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from studio.core.graph import Graph, Node
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training import Callback, Trainer
from studio.training.checkpoint import load_checkpoint, load_weights
from tests.graphs import net

from .helpers import mlp, sample


class StopAt(Callback):
    """Stops the run after a given epoch (0-based) or a given global step."""

    def __init__(self, epoch: int | None = None, step: int | None = None) -> None:
        self.epoch, self.step = epoch, step

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            self.trainer.stop()

    def on_progress(self, logs):
        if self.step is not None and logs["step"] >= self.step:
            self.trainer.stop()


def test_run_writes_every_artefact(tmp_path) -> None:
    result = Trainer(mlp(), out_dir=tmp_path).fit()
    assert result.status == "completed" and result.epochs == 4
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3, 4]
    assert lines[-1]["val_accuracy"] == result.logs["val_accuracy"] > 0.8
    assert {"val_precision", "val_recall", "val_f1", "val_confusion"} <= set(lines[-1])
    ckpt = load_checkpoint(tmp_path / "last.ckpt")  # weights_only=True inside
    assert ckpt["epoch"] == 4
    assert torch.load(tmp_path / "best.ckpt", weights_only=True)["format"] == "studio.checkpoint"
    weights, meta = load_weights(tmp_path / "model.safetensors")
    assert set(weights) == set(ckpt["model"])
    assert Project.loads(meta["studio.project"]).graph.structure() == mlp().graph.structure()
    assert load_file(tmp_path / "model.safetensors")["out.weight"].shape == (3, 16)
    assert Project.load(tmp_path / "project.studio.json").training.epochs == 4


def test_resume_after_epoch_2_matches_uninterrupted_run_bit_for_bit(tmp_path) -> None:
    project = mlp(epochs=4, scheduler={"type": "StepLR", "step_size": 1, "gamma": 0.7})
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    first = Trainer(project, out_dir=tmp_path / "cut", callbacks=[StopAt(epoch=1)]).fit()
    assert first.status == "stopped" and first.epochs == 2
    resumed = Trainer(project, out_dir=tmp_path / "cut").fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert resumed.status == "completed"
    for a, b in zip(full.history, resumed.history, strict=True):
        assert {k: v for k, v in a.items() if "time" not in k and "per_s" not in k} == \
               {k: v for k, v in b.items() if "time" not in k and "per_s" not in k}
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_resume_mid_epoch_gives_the_same_weights(tmp_path) -> None:
    project = mlp(epochs=2)
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    cut = Trainer(project, out_dir=tmp_path / "cut", callbacks=[StopAt(step=12)],
                  report_hz=0).fit()
    assert cut.status == "stopped" and "batch" in cut.message
    assert load_checkpoint(tmp_path / "cut" / "last.ckpt")["batch"] > 0
    said: list[str] = []

    class Log(Callback):
        def on_message(self, text):
            said.append(text)

    resumed = Trainer(project, out_dir=tmp_path / "cut", callbacks=[Log()]).fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert any(t.startswith("resumed after epoch 1, batch ") for t in said)  # the run log says
    assert resumed.logs["val_loss"] == full.logs["val_loss"]
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_pause_resume_and_stop_take_effect_within_one_batch() -> None:
    project = mlp(dataset="digits", inputs=64, classes=10, epochs=50)
    project.data.batch_size = 8
    steps: list[int] = []
    at: dict[str, int] = {}  # the step when each message came, read in the training thread
    events = {name: threading.Event() for name in ("paused", "resumed")}

    class Watch(Callback):
        def on_progress(self, logs):
            steps.append(logs["step"])

        def on_message(self, text):
            if text in events:
                at[text] = self.trainer.step
                events[text].set()

    trainer = Trainer(project, callbacks=[Watch()], report_hz=200)
    result: list = []
    th = threading.Thread(target=lambda: result.append(trainer.fit()))
    th.start()
    try:
        while len(steps) < 5:
            threading.Event().wait(0.01)
        trainer.pause()
        asked = trainer.step
        assert events["paused"].wait(30)
        assert at["paused"] <= asked + 1  # the step in flight finishes, then the loop waits
        trainer.resume()
        assert events["resumed"].wait(30)
        assert at["resumed"] == at["paused"]  # nothing moved while paused
        while trainer.step < at["resumed"] + 5:
            threading.Event().wait(0.01)
        trainer.stop()
        stop_step = trainer.step
    finally:
        trainer.stop()
        th.join(30)
    assert not th.is_alive()
    assert result[0].status == "stopped"
    assert trainer.step <= stop_step + 1


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path) -> None:
    project = sample("regression_mlp")
    project.training.epochs = 2
    project.data.batch_size = 16  # many steps an epoch (the sample takes one full batch)
    good = Trainer(project, out_dir=tmp_path).fit()
    assert good.status == "completed"
    before = (tmp_path / "last.ckpt").read_bytes()
    project.training.epochs = 4
    project.training.optimizer = {"type": "SGD", "lr": 100.0}  # diverges within a few steps
    bad = Trainer(project, out_dir=tmp_path).fit(resume_from=tmp_path / "last.ckpt")
    assert bad.status == "failed"
    assert "NaN or infinite at epoch 3, step" in bad.message
    assert (tmp_path / "last.ckpt").read_bytes() == before
    assert load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 2


def test_missing_dataset_says_where_it_looked(tmp_path) -> None:
    project = sample("mnist_cnn")
    project.data = DataSettings(dataset="mnist", options={"root": str(tmp_path)})
    result = Trainer(project).fit()
    assert result.status == "failed"
    assert f"looked for train-images-idx3-ubyte[.gz] in {tmp_path}/MNIST/raw" in result.message


def test_data_that_does_not_fit_names_the_input_node() -> None:
    project = mlp(inputs=7)
    result = Trainer(project).fit()
    assert result.status == "failed"
    assert result.message.startswith("node 'x': the dataset gives samples of shape [13] but "
                                     "Input 'x' expects [7]")


def test_wrong_number_of_classes_names_the_output_node() -> None:
    result = Trainer(mlp(classes=2)).fit()
    assert "the dataset has 3 classes but the output 'out' gives [2]" in result.message


def test_token_ids_beyond_the_vocabulary_name_the_embedding(tmp_path) -> None:
    """On CUDA such ids kill the device context; they are refused before any step runs."""
    np.savez(tmp_path / "tokens.npz", x=np.random.RandomState(0).randint(0, 50, (40, 6)),
             y=np.arange(40) % 2)
    g = Graph()
    for nid, t, p in [("ids", "Input", {"shape": [6], "dtype": "int64"}),
                      ("emb", "Embedding", {"num_embeddings": 10, "embedding_dim": 4}),
                      ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 2})]:
        g.add_node(Node(nid, t, p))
    for a, b in [("ids", "emb"), ("emb", "flat"), ("flat", "out")]:
        g.connect(a, b)
    project = Project("tokens", g, DataSettings(dataset="npz", options={"path": "tokens.npz"},
                                                normalize=False), TrainingSettings(epochs=1))
    result = Trainer(project, base_dir=tmp_path).fit()
    assert result.status == "failed"
    assert result.message == ("Embedding 'emb': token ids run from 0 to 49 but num_embeddings "
                              "is 10; set it to at least 50")


def test_a_network_too_big_for_memory_is_refused_before_allocating() -> None:
    """4 TiB of weights: counted and refused, never allocated (an OS that overcommits would
    grant the allocation and then kill the process as the pages were touched)."""
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [13]}))
    g.add_node(Node("wide", "Linear", {"out_features": 1 << 20}))
    g.add_node(Node("huge", "Linear", {"out_features": 1 << 20}))  # 2^40 weights
    g.add_node(Node("out", "Linear", {"out_features": 3}))
    for a, b in [("x", "wide"), ("wide", "huge"), ("huge", "out")]:
        g.connect(a, b)
    project = Project("oom", g, DataSettings(dataset="wine"), TrainingSettings(epochs=1))
    result = Trainer(project).fit()
    assert result.status == "failed"
    assert result.message.startswith("graph: out of memory: the network's 1.10 T parameters "
                                     "need about 17.59 TB")
    assert "make the network smaller" in result.message


def test_early_stopping_restores_best_weights(tmp_path) -> None:
    project = mlp(epochs=60, early_stopping={"monitor": "val_loss", "patience": 2})
    project.training.optimizer = {"type": "Adam", "lr": 0.05}
    result = Trainer(project, out_dir=tmp_path).fit()
    assert result.status == "early_stopped" and result.epochs < 60
    best = min(h["val_loss"] for h in result.history)
    ckpt = load_checkpoint(tmp_path / "best.ckpt")
    assert ckpt["callbacks"]["checkpointer"]["best"] == best


@pytest.mark.parametrize("scheduler", [
    {"type": "CosineAnnealingLR", "warmup_epochs": 1},
    {"type": "OneCycleLR"},
    # "max" on a falling training loss: never an improvement, so the rate drops every epoch
    {"type": "ReduceLROnPlateau", "monitor": "loss", "mode": "max", "patience": 0},
])
def test_schedulers_change_the_learning_rate(scheduler) -> None:
    result = Trainer(mlp(epochs=4, scheduler=scheduler)).fit()
    assert result.status == "completed", result.message
    lrs = [h["lr"] for h in result.history]
    assert len(set(lrs)) > 1


def test_regularisation_and_clipping_run(tmp_path) -> None:
    result = Trainer(mlp(epochs=2, l1=1e-4, l2=1e-3, grad_clip=1.0)).fit()
    assert result.status == "completed" and result.logs["val_accuracy"] > 0.5


def test_large_image_folders_stream_from_disk_like_in_memory_ones(tmp_path, monkeypatch) -> None:
    """Above the in-memory limit, DataLoader workers read the files; results stay the same."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for c in ("dark", "light"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(24):
            base = 40 if c == "dark" else 200
            Image.fromarray(rng.randint(base - 30, base + 30, (12, 12, 3)).astype(np.uint8)
                            ).save(tmp_path / "img" / c / f"{i}.png")
    g = Graph()
    for nid, t, p in [("x", "Input", {"shape": [3, 8, 8]}),
                      ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                      ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 2})]:
        g.add_node(Node(nid, t, p))
    for a, b in [("x", "conv"), ("conv", "flat"), ("flat", "out")]:
        g.connect(a, b)
    project = Project("folder", g, DataSettings(
        dataset="image-folder", options={"path": "img", "size": [8, 8]}, batch_size=8),
        TrainingSettings(epochs=2, device="cpu"))
    in_memory = Trainer(project, base_dir=tmp_path).fit()
    monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")
    messages: list[str] = []

    class Log(Callback):
        def on_message(self, text):
            messages.append(text)

    trainer = Trainer(project, base_dir=tmp_path, callbacks=[Log()])
    streamed = trainer.fit()
    assert streamed.status == "completed", streamed.message
    assert trainer.bundle.files is not None and "read from disk" in messages[0]
    assert streamed.logs["val_accuracy"] == in_memory.logs["val_accuracy"]
    assert streamed.logs["val_loss"] == pytest.approx(in_memory.logs["val_loss"], rel=1e-3)


def test_compiled_run_trains_and_saves_plain_weight_names(tmp_path) -> None:
    result = Trainer(mlp(epochs=1, compile=True), out_dir=tmp_path).fit()
    assert result.status == "completed", result.message
    assert result.logs["val_accuracy"] > 0.5
    names = set(load_checkpoint(tmp_path / "last.ckpt")["model"])
    assert names == {"h.weight", "h.bias", "out.weight", "out.bias"}


def test_images_kept_as_uint8_train_like_float_images() -> None:
    """The GPU fast path's uint8 residency, forced on the CPU: same batches, same training."""
    project = sample("mnist_cnn")
    project.training.epochs = 1
    plain = Trainer(project)
    plain.setup()
    compact = Trainer(project)
    compact.compact_images = True
    compact.setup()
    assert compact.bundle.x_train.dtype == torch.uint8
    assert compact.bundle.x_train.element_size() * 4 == plain.bundle.x_train.element_size()
    xa, ya = next(iter(plain.split_batches("val", 256).epoch()))
    xb, yb = next(iter(compact.split_batches("val", 256).epoch()))
    assert xb.dtype == torch.float32 and torch.equal(ya, yb)
    assert torch.allclose(xa, xb, atol=1e-5)
    a = Trainer(project).fit()
    t = Trainer(project)
    t.compact_images = True
    b = t.fit()
    assert b.logs["val_accuracy"] == pytest.approx(a.logs["val_accuracy"], abs=0.01)
    assert b.logs["val_loss"] == pytest.approx(a.logs["val_loss"], rel=0.05)


def test_only_exact_8bit_images_are_packed() -> None:
    from studio.data.bundle import load_data, pack_uint8

    project = sample("mnist_cnn")
    bundle = load_data(project.data, seed=0)
    packed = pack_uint8(bundle)
    assert packed is not None
    u8, a, b = packed
    assert torch.allclose(u8.x_val.float() * a + b, bundle.x_val, atol=1e-5)
    bundle.x_train = bundle.x_train + 1e-3  # no longer whole pixel values
    assert pack_uint8(bundle) is None
    assert pack_uint8(load_data(mlp().data, seed=0)) is None  # not images at all


def _image_project(tmp_path, **training) -> Project:
    """8×8 digits as 1-channel uint8 images in an .npz, with augmentation on."""
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "digits.npz", x=(d.images[:, None] * 15).astype(np.uint8), y=d.target)
    g = net(("x", "Input", {"shape": [1, 8, 8]}),
            ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}), ("act", "ReLU", {}),
            ("flat", "Flatten", {}), ("drop", "Dropout", {"p": 0.2}),
            ("out", "Linear", {"out_features": 10}))
    data = DataSettings(dataset="npz", options={"path": str(tmp_path / "digits.npz")},
                        batch_size=32, augment=[{"type": "random_crop", "padding": 1},
                                                {"type": "hflip"}, {"type": "rotation"}])
    t = {"epochs": 3, "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project("aug", g, data, TrainingSettings(**t))


@pytest.mark.parametrize("stop", [StopAt(epoch=0), StopAt(step=20)], ids=["epoch", "mid-epoch"])
def test_resume_with_augmentation_matches_the_uninterrupted_run(tmp_path, stop) -> None:
    project = _image_project(tmp_path)
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    assert full.status == "completed"
    cut = Trainer(project, out_dir=tmp_path / "cut", callbacks=[stop], report_hz=0).fit()
    assert cut.status == "stopped"
    resumed = Trainer(project, out_dir=tmp_path / "cut").fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_a_resumed_run_that_stops_early_restores_the_best_weights_too(tmp_path) -> None:
    project = mlp(epochs=60, early_stopping={"monitor": "val_loss", "patience": 3})
    project.training.optimizer = {"type": "Adam", "lr": 0.05}
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    assert full.status == "early_stopped"
    losses = [h["val_loss"] for h in full.history]
    best = losses.index(min(losses))
    assert best < len(losses) - 1  # the last epoch was not the best: restoring matters
    cut = Trainer(project, out_dir=tmp_path / "cut", callbacks=[StopAt(epoch=best + 1)]).fit()
    assert cut.status == "stopped"
    resumed = Trainer(project, out_dir=tmp_path / "cut").fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert resumed.status == "early_stopped" and resumed.epochs == full.epochs
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)
