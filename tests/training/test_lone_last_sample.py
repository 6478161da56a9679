"""A training epoch never ends on a batch of one sample: BatchNorm cannot train on one, so the
sample joins the batch before it, for data in memory, read from disk and split over processes.
Step counts and resuming mid-epoch follow the same cut; evaluation keeps plain batches."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from studio.core.project import DataSettings, Project, TrainingSettings
from studio.data.batches import Batches, batch_spans
from studio.data.bundle import load_data
from studio.data.lazy import ImageFiles, LoaderBatches
from studio.training import Callback, Trainer
from studio.training.distributed import Shard
from tests.graphs import net

from .helpers import sample


def sizes(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[int]:
    return [len(yb) for _, yb in batches]


def lone_sample_batch_size(n: int) -> int:
    """The largest batch size up to 64 that leaves one sample over: n % size == 1."""
    return max(b for b in range(2, 65) if n % b == 1)


class StopAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_progress(self, logs):
        if logs["step"] >= self.step:
            self.trainer.stop()


def test_a_lone_last_sample_joins_the_batch_before() -> None:
    def cut(n: int, b: int) -> list[int]:
        return [s.stop - s.start for s in batch_spans(n, b)]

    assert cut(10, 3) == [3, 3, 4]
    assert cut(9, 3) == [3, 3, 3] and cut(11, 3) == [3, 3, 3, 2]
    assert cut(1, 3) == [1] and cut(0, 3) == [] and cut(3, 1) == [1, 1, 1]


def test_in_memory_batches_fold_it_in_resume_after_it_and_keep_evaluation_plain() -> None:
    x = torch.arange(10.0)[:, None]
    g = torch.Generator().manual_seed(0)
    train = Batches(x, x[:, 0], 3, shuffle=True, generator=g)
    state = g.get_state()
    assert len(train) == 3 and sizes(train.epoch()) == [3, 3, 4]
    g.set_state(state)
    order = torch.cat([yb for _, yb in train.epoch()])
    g.set_state(state)
    assert torch.equal(torch.cat([yb for _, yb in train.epoch(start=2)]), order[6:])
    pixels = torch.arange(10, dtype=torch.uint8)[:, None]  # the normalise-per-batch path
    affine = (torch.tensor([2.0]), torch.tensor([1.0]))
    assert sizes(Batches(pixels, x[:, 0], 3, shuffle=True, generator=g, affine=affine)
                 .epoch()) == [3, 3, 4]
    evaluation = Batches(x, x[:, 0], 3, shuffle=False)
    assert len(evaluation) == 4 and sizes(evaluation.epoch()) == [3, 3, 3, 1]


def test_each_process_of_a_data_parallel_run_folds_its_lone_sample_in() -> None:
    x = torch.arange(13.0)[:, None]  # 7 per process (one repeated), 3 per batch
    seen = []
    for rank in (0, 1):
        shard = Shard(13, world=2, rank=rank, seed=0)
        batches = Batches(x, x[:, 0], 3, shuffle=True, shard=shard)
        batches.set_epoch(0)
        assert len(batches) == 2 and sizes(batches.epoch()) == [3, 4]
        seen += torch.cat([yb for _, yb in batches.epoch()]).tolist()
    assert sorted(set(seen)) == list(range(13))


def image_folder(root: Path, per_class: int) -> Path:
    from PIL import Image

    rng = np.random.RandomState(0)
    for c, base in (("dark", 40), ("light", 200)):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.randint(base - 30, base + 30, (10, 10, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_batches_read_from_disk_fold_it_in_too(tmp_path) -> None:
    folder = image_folder(tmp_path, 5)
    files = ImageFiles(sorted(folder.rglob("*.png")), np.repeat([0, 1], 5), (8, 8), False)
    common = {"device": torch.device("cpu"), "mean": [0.5] * 3, "std": [0.25] * 3,
              "workers": 0}
    g = torch.Generator().manual_seed(0)
    train = LoaderBatches(files, np.arange(10), 3, shuffle=True, generator=g, **common)
    assert len(train) == 3 and sizes(train.epoch()) == [3, 3, 4]
    assert sizes(train.epoch(start=2)) == [4]
    evaluation = LoaderBatches(files, np.arange(10), 3, shuffle=False, **common)
    assert len(evaluation) == 4 and sizes(evaluation.epoch()) == [3, 3, 3, 1]


def test_wine_with_batchnorm_trains_when_one_sample_is_left_over_and_resumes_mid_epoch(
        tmp_path) -> None:
    project = sample("wine_classifier")  # Linear → BatchNorm1d 'bn1' → …
    n = load_data(project.data, None, project.training.seed).n_train
    project.data.batch_size = lone_sample_batch_size(n)
    project.training.epochs, project.training.device = 2, "cpu"
    project.training.early_stopping = None
    full = Trainer(project, out_dir=tmp_path / "full").fit()
    assert full.status == "completed", full.message
    spe = n // project.data.batch_size
    cut = Trainer(project, out_dir=tmp_path / "cut", callbacks=[StopAtStep(spe + spe - 1)],
                  report_hz=0).fit()  # stopped before the second epoch's last, larger batch
    assert cut.status == "stopped" and f"batch {spe - 1}" in cut.message
    resumed = Trainer(project, out_dir=tmp_path / "cut").fit(
        resume_from=tmp_path / "cut" / "last.ckpt")
    assert resumed.status == "completed" and resumed.logs["val_loss"] == full.logs["val_loss"]
    w_full = load_file(tmp_path / "full" / "model.safetensors")
    w_res = load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)


def test_images_read_from_disk_train_batchnorm_with_one_sample_left_over(tmp_path,
                                                                          monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")
    image_folder(tmp_path / "img", 12)
    graph = net(("x", "Input", {"shape": [3, 8, 8]}), ("flat", "Flatten", {}),
                ("hidden", "Linear", {"out_features": 8}), ("bn", "BatchNorm1d", {}),
                ("out", "Linear", {"out_features": 2}))
    data = DataSettings(dataset="image-folder", options={"path": "img", "size": [8, 8]})
    bundle = load_data(data, tmp_path)
    assert bundle.files is not None
    data.batch_size = lone_sample_batch_size(bundle.n_train)
    project = Project(name="lazy", graph=graph, data=data,
                      training=TrainingSettings(epochs=1, device="cpu"))
    trainer = Trainer(project, base_dir=tmp_path)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert trainer.bundle.files is not None
    assert trainer.step == bundle.n_train // data.batch_size
