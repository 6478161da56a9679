"""GPU paths: run where CUDA is present (skipped elsewhere, e.g. on CI)."""

from __future__ import annotations

import warnings

import pytest
import torch

from studio.training import Callback, Trainer

from .helpers import sample
from .test_data import make_cifar

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_cnn_trains_on_cuda_in_each_precision(precision) -> None:
    project = sample("mnist_cnn")
    project.training.device = "cuda"
    project.training.precision = precision
    project.training.epochs = 2
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert result.logs["val_accuracy"] > 0.9
    assert trainer.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert (trainer.precision.scaler is not None) == (precision == "fp16")


def test_augmentation_runs_on_the_gpu(tmp_path) -> None:
    make_cifar(tmp_path, per_batch=64)
    project = sample("cifar_cnn")
    project.data.options = {"root": str(tmp_path)}
    project.training.device = "cuda"
    project.training.epochs = 1
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert trainer.batches.augment is not None
    assert trainer.aug_gen.device.type == "cuda"


def test_no_per_step_host_sync() -> None:
    """Syncs happen at reports and epoch ends only, not once per step."""
    project = sample("mnist_mlp")
    project.training.device = "cuda"
    project.training.epochs = 1
    steps: list[int] = []

    class Count(Callback):
        def on_progress(self, logs):
            steps.append(logs["step"])

    trainer = Trainer(project, report_hz=2, callbacks=[Count()])
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = trainer.fit()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.status == "completed"
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert trainer.step >= 100
    assert len(syncs) < trainer.step / 4, [str(w.message) for w in syncs[:5]]


def test_resume_on_cuda(tmp_path) -> None:
    project = sample("mnist_mlp")
    project.training.device = "cuda"
    project.training.epochs = 3

    class StopAfterFirst(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                self.trainer.stop()

    first = Trainer(project, out_dir=tmp_path, callbacks=[StopAfterFirst()]).fit()
    assert first.status == "stopped" and first.epochs == 1
    resumed = Trainer(project, out_dir=tmp_path).fit(resume_from=tmp_path / "last.ckpt")
    assert resumed.status == "completed" and [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_activations_beyond_gpu_memory_fail_with_a_batch_size_hint() -> None:
    """A real CUDA out-of-memory: the caching allocator refuses, the app gets a message."""
    project = sample("mnist_cnn")
    project.training.device = "cuda"
    project.graph.set_params("conv1", {"out_channels": 16384, "kernel_size": 3})
    project.data.batch_size = 4000  # 4000 × 16384 × 26 × 26 floats ≈ 177 GB
    result = Trainer(project).fit()
    assert result.status == "failed"
    assert "out of memory on cuda with batch size 4000; try a batch size of 2000" in \
        result.message
    torch.cuda.empty_cache()


def test_the_fast_path_is_automatic_on_cuda() -> None:
    """precision auto: uint8 images resident on the GPU, bf16 autocast, channels_last."""
    project = sample("mnist_cnn")
    assert project.training.precision == "auto"
    project.training.device = "cuda"
    project.training.epochs = 2
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.status == "completed", result.message
    assert trainer.bundle.x_train.dtype == torch.uint8 and trainer.bundle.x_train.is_cuda
    if torch.cuda.is_bf16_supported():
        assert trainer.precision.dtype == torch.bfloat16
    assert trainer.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert result.logs["val_accuracy"] > 0.9
