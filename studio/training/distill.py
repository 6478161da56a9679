"""Knowledge distillation (``training.distill``): a trained teacher's softened outputs teach the
network being trained, as Hinton, Vinyals and Dean (2015) describe.

The loss is ``alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) ·
the ordinary loss``: the T² keeps the soft part's gradients the size of the hard part's when T
changes. The teacher is another run's weights file, which carries the project that built it:
it runs frozen, in eval mode, on the same batches. Both parts are logged every epoch
(``distill_loss`` and ``label_loss``) and plotted beside the loss.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from studio.core.errors import StudioError, TrainingError
from studio.core.project import Project

WHERE = "training.distill.teacher"


def teacher_file(path: Path) -> tuple[Project, dict[str, Any] | None]:
    """What a run's weights file (``.safetensors``) or checkpoint (``.ckpt``) says of the
    teacher, read once: the project that built it, and the scaling its samples had in its run
    (None when the file does not say: a checkpoint of an older Studio)."""
    import json

    from .checkpoint import embedded_project, load_checkpoint, load_weights

    if not path.is_file():
        raise TrainingError(f"the teacher's weights are not there: {path}", WHERE)
    try:
        if path.suffix == ".ckpt":
            state = load_checkpoint(path)
            text, raw = state.get("project"), state.get("norm")
            if not isinstance(text, str):
                raise TrainingError("this checkpoint carries no project", WHERE)
            project = Project.loads(text, source=f"{path} (its project)")
        else:
            _, meta = load_weights(path)
            project, raw = embedded_project(meta, path), meta.get("studio.norm")
    except StudioError as exc:
        raise TrainingError(f"the teacher cannot be read: {exc.message}", WHERE) from None
    try:
        norm = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        norm = None
    return project, norm if isinstance(norm, dict) else None


def check_teacher(path: Path, student: Any
                  ) -> tuple[Project, tuple[int, ...], dict[str, Any] | None]:
    """The teacher's project, the shape it reads samples in and its samples' scaling, once it
    is known to read the student's samples (in any shape) and answer with as many outputs;
    ``student`` is the student's shape analysis. The window asks this before setting one."""
    from studio.core.shapes import analyze

    project, norm = teacher_file(path)
    theirs = analyze(project.graph)
    if theirs.errors or theirs.output is None:
        raise TrainingError("the teacher's own project does not build", WHERE)
    shape = [student.nodes[i].shape for i in student.inputs]
    their_shape = [theirs.nodes[i].shape for i in theirs.inputs]
    if len(shape) != 1 or len(their_shape) != 1 or \
            math.prod(shape[0] or ()) != math.prod(their_shape[0] or ()):
        raise TrainingError(f"the teacher reads samples of {[list(s or ()) for s in their_shape]}"
                            f", this network {[list(s or ()) for s in shape]}: distillation "
                            "needs the same samples (a CNN may teach an MLP that reads them "
                            "flat)", WHERE)
    kinds = [student.nodes[i].dtype for i in student.inputs]
    their_kinds = [theirs.nodes[i].dtype for i in theirs.inputs]
    if kinds != their_kinds:
        raise TrainingError(f"the teacher reads {their_kinds[0]} samples, this network "
                            f"{kinds[0]}: distillation needs the same samples", WHERE)
    out, their_out = student.nodes[student.output].shape, theirs.nodes[theirs.output].shape
    if out != their_out:
        raise TrainingError(f"the teacher answers with {list(their_out or ())} outputs, this "
                            f"network with {list(out or ())}: distillation compares the two",
                            WHERE)
    return project, tuple(their_shape[0] or ()), norm


def rescale(mine: dict[str, Any], theirs: dict[str, Any] | None, values: int
            ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(a, b) with the teacher's input = the student's · a + b, per channel ([C, 1]) or per
    value, undoing the student's scaling and applying the teacher's; None when both scale
    alike. Samples are laid out channel first, so [N, C, -1] lines them up."""
    theirs = theirs if theirs is not None else mine
    if mine == theirs:
        return None

    def stats(norm: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not norm:
            return torch.zeros(1), torch.ones(1)
        return (torch.tensor(norm["mean"], dtype=torch.float32),
                torch.tensor(norm["std"], dtype=torch.float32))

    (m1, s1), (m2, s2) = stats(mine), stats(theirs)
    n = max(len(m1), len(m2))
    if any(len(t) not in (1, n) for t in (m1, m2)) or values % n:
        raise TrainingError("the teacher's samples were scaled per channel or feature in a "
                            "way this network's data cannot be matched to; train the "
                            "teacher with the same data settings", WHERE)
    a = (s1 / s2).expand(n).reshape(n, 1)
    b = ((m1 - m2) / s2).expand(n).reshape(n, 1)
    return a, b


def load_teacher(path: Path, student: Any, device: torch.device
                 ) -> tuple[nn.Module, tuple[int, ...], dict[str, Any] | None]:
    """The teacher's network with its weights, frozen and in eval mode on ``device``, the
    shape it reads samples in and their scaling (see :func:`check_teacher`)."""
    from studio.core.build import build_module

    from .transfer import load_exact, read_state

    project, shape, norm = check_teacher(path, student.analysis)
    model = build_module(project.graph, for_loading=True)
    load_exact(model, read_state(path), str(path))
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, shape, norm


def check_task(task: str, outputs: int) -> None:
    if task != "classification" or outputs < 2:
        raise TrainingError("distillation softens class scores: it needs a classifier with "
                            "two or more outputs (not a regression, nor one logit)",
                            "training.distill")


class Distiller:
    """The teacher and the mixed loss, with the epoch's mean of each part."""

    def __init__(self, teacher: nn.Module, temperature: float, alpha: float,
                 device: torch.device, shape: tuple[int, ...] = (-1,),
                 scale: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.teacher, self.t, self.alpha = teacher, float(temperature), float(alpha)
        self.shape = shape  # a sample as the teacher reads it
        #: the student's samples → the teacher's (its own normalisation), or None: the same
        self.scale = None if scale is None else (scale[0].to(device), scale[1].to(device))
        self.device = device
        self.reset()

    def reset(self) -> None:
        # device tensors: adding to them never waits for the GPU
        self.soft = torch.zeros((), device=self.device)
        self.hard = torch.zeros((), device=self.device)
        self.n = 0

    def loss(self, out: torch.Tensor, xb: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        """The mixed loss of one batch; ``hard`` is the ordinary loss already computed."""
        with torch.no_grad():  # the samples as the teacher reads them (scale, shape)
            x = xb
            if self.scale is not None:
                a, b = self.scale
                x = (xb.float().reshape(len(xb), len(a), -1) * a + b).reshape(xb.shape)
            target = self.teacher(x.reshape(len(x), *self.shape)).float()
        t = self.t
        soft = F.kl_div(F.log_softmax(out.float() / t, dim=-1), F.log_softmax(target / t, dim=-1),
                        reduction="batchmean", log_target=True) * (t * t)
        self.soft += soft.detach()
        self.hard += hard.detach().float()
        self.n += 1
        return self.alpha * soft + (1.0 - self.alpha) * hard

    def logs(self) -> dict[str, float]:
        """The epoch's means of the two parts (then starts counting the next epoch)."""
        n = max(1, self.n)
        out = {"distill_loss": float(self.soft) / n, "label_loss": float(self.hard) / n}
        self.reset()
        return out


def distiller_for(trainer: Any) -> Distiller | None:
    """The run's distiller when ``training.distill`` is set (None otherwise)."""
    from .transfer import resolve

    spec = trainer.settings.distill
    if spec is None:
        return None
    out = trainer.analysis.nodes[trainer.analysis.output].shape
    check_task(trainer.bundle.task, int(out[-1]) if out else 0)
    path = resolve(spec.teacher, trainer.base_dir)
    teacher, shape, norm = load_teacher(path, trainer, trainer.device)
    scale = rescale(trainer.bundle.norm, norm, math.prod(trainer.bundle.sample_shape))
    return Distiller(teacher, spec.temperature, spec.alpha, trainer.device, shape, scale)
