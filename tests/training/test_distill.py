"""Knowledge distillation (``training.distill``): Hinton's loss, computed on a frozen teacher
read from another run's weights, both parts logged; mismatched teachers refused in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from studio.core.project import DataSettings, Project, TrainingSettings
from studio.training.distill import Distiller
from studio.training.trainer import Trainer
from tests.graphs import net


def _mlp(hidden: int, classes: int = 10, dataset: str = "digits", **training) -> Project:
    g = net(("x", "Input", {"shape": [64]}), ("h", "Linear", {"out_features": hidden}),
            ("act", "ReLU", {}), ("out", "Linear", {"out_features": classes}))
    t = {"epochs": 3, "device": "cpu", "optimizer": {"type": "Adam", "lr": 0.01}, **training}
    return Project(f"mlp{hidden}", g, DataSettings(dataset=dataset, batch_size=64),
                   TrainingSettings(**t))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("teacher")
    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_CACHE_DIR", str(base / "cache"))
        mp.setenv("STUDIO_DATA_DIR", str(base / "data"))
        result = Trainer(_mlp(128, epochs=6), out_dir=folder / "run").fit()
    assert result.status == "completed", result.message
    return folder / "run" / "model.safetensors"


def test_the_loss_is_hintons() -> None:
    torch.manual_seed(0)
    teacher = torch.nn.Linear(5, 4)
    x, student_out = torch.randn(8, 5), torch.randn(8, 4, requires_grad=True)
    hard = F.cross_entropy(student_out, torch.randint(0, 4, (8,)))
    hard_value = float(hard.detach())
    d = Distiller(teacher, temperature=3.0, alpha=0.7, device=torch.device("cpu"))
    loss = d.loss(student_out, x, hard)
    value = float(loss.detach())
    with torch.no_grad():  # by hand: KL(teacher ‖ student) of the softened scores
        p_t = torch.softmax(teacher(x) / 3, -1)
        kl = float((p_t * (p_t.log() - torch.log_softmax(student_out / 3, -1))).sum(-1).mean())
    assert value == pytest.approx(0.7 * 9 * kl + 0.3 * hard_value, rel=1e-5)
    loss.backward()  # the gradient reaches the student; the teacher is not asked for one
    assert student_out.grad is not None and teacher.weight.grad is None
    logs = d.logs()
    assert logs["distill_loss"] == pytest.approx(9 * kl, rel=1e-5)
    assert logs["label_loss"] == pytest.approx(hard_value, rel=1e-6)
    assert d.logs() == {"distill_loss": 0.0, "label_loss": 0.0}  # counting starts again


def test_a_student_learns_from_a_frozen_teacher(teacher, tmp_path) -> None:
    from safetensors.torch import load_file

    before = load_file(str(teacher))
    student = _mlp(16, distill={"teacher": str(teacher), "temperature": 4.0, "alpha": 0.5})
    student.save(tmp_path / "student.studio.json")
    result = Trainer(student, out_dir=tmp_path / "run").fit()
    assert result.status == "completed", result.message
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [x for x in lines if "epoch" in x]
    assert len(epochs) == 3
    for e in epochs:  # both parts, every epoch, and the loss is their mix
        assert e["distill_loss"] > 0 and e["label_loss"] > 0
        assert e["loss"] == pytest.approx(0.5 * e["distill_loss"] + 0.5 * e["label_loss"],
                                          rel=0.05)
    assert epochs[-1]["distill_loss"] < epochs[0]["distill_loss"]  # it moves to the teacher
    assert epochs[-1]["val_accuracy"] > 0.85
    after = load_file(str(teacher))
    assert all(torch.equal(before[k], after[k]) for k in before)  # the file is only read


def test_mismatched_teachers_are_refused_in_words(teacher, tmp_path) -> None:
    from studio.core.build import build_module
    from studio.training.checkpoint import save_weights

    other = _mlp(16, classes=5)  # a teacher of another dataset: 5 classes
    five = tmp_path / "five.safetensors"
    save_weights(five, build_module(other.graph).state_dict(),
                 {"studio.project": other.dumps()})
    r = Trainer(_mlp(16, distill={"teacher": str(five)})).fit()
    assert r.status == "failed" and "the teacher answers with [5] outputs, this network " \
        "with [10]" in r.message
    bare = tmp_path / "bare.safetensors"  # weights without the project that built them
    save_weights(bare, build_module(other.graph).state_dict(), {})
    r = Trainer(_mlp(16, distill={"teacher": str(bare)})).fit()
    assert r.status == "failed" and "the teacher cannot be read" in r.message
    missing = _mlp(16, distill={"teacher": str(tmp_path / "nope.safetensors")})
    r = Trainer(missing).fit()
    assert r.status == "failed" and "not there" in r.message
    assert r.error is not None and r.error.where == "training.distill.teacher"
    regression = Project("reg", net(("x", "Input", {"shape": [10]}),
                                    ("out", "Linear", {"out_features": 1})),
                         DataSettings(dataset="diabetes"),
                         TrainingSettings(device="cpu", loss={"type": "MSELoss"},
                                          distill={"teacher": str(teacher)}))
    r = Trainer(regression).fit()
    assert r.status == "failed" and "needs a classifier" in r.message


def test_a_cnn_teaches_an_mlp_that_reads_the_samples_flat(tmp_path) -> None:
    from studio.core.build import build_module
    from studio.training.checkpoint import save_weights

    cnn = Project("cnn", net(("x", "Input", {"shape": [1, 8, 8]}),
                             ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
                             ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 10})),
                  DataSettings(dataset="digits"), TrainingSettings(device="cpu"))
    weights = tmp_path / "cnn.safetensors"
    save_weights(weights, build_module(cnn.graph).state_dict(), {"studio.project": cnn.dumps()})
    r = Trainer(_mlp(16, epochs=1, distill={"teacher": str(weights)})).fit()
    assert r.status == "completed", r.message
    assert r.logs["distill_loss"] > 0
    wide = Project("wide", net(("x", "Input", {"shape": [1, 9, 9]}),
                               ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 10})),
                   DataSettings(dataset="digits"), TrainingSettings(device="cpu"))
    other = tmp_path / "wide.safetensors"
    save_weights(other, build_module(wide.graph).state_dict(), {"studio.project": wide.dumps()})
    r = Trainer(_mlp(16, epochs=1, distill={"teacher": str(other)})).fit()
    assert r.status == "failed" and "reads samples of [[1, 9, 9]], this network [[64]]" in r.message


def test_the_teacher_reads_samples_scaled_as_in_its_own_run() -> None:
    """A student whose data is scaled otherwise (min-max, or not at all) hands the teacher
    its samples as the teacher's run scaled them."""
    from studio.data.bundle import load_data
    from studio.training.distill import rescale

    teacher = load_data(DataSettings(dataset="digits"), None, 0)  # standard scaling
    for student_data in (DataSettings(dataset="digits", scaling="minmax"),
                         DataSettings(dataset="digits", normalize=False)):
        student = load_data(student_data, None, 0)
        a, b = rescale(student.norm, teacher.norm, 64)
        x = student.x_val.reshape(len(student.x_val), len(a), -1) * a + b
        assert torch.allclose(x.reshape(teacher.x_val.shape), teacher.x_val, atol=1e-4)
    assert rescale(teacher.norm, teacher.norm, 64) is None  # the same scaling: untouched
    assert rescale(teacher.norm, None, 64) is None  # not known: taken as the same
