"""Trained weights loaded into the network and data that trained them, for evaluating,
explaining and compressing a finished (or running) run's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .transfer import load_exact, read_state


def load_trained(project: Any, weights: str | Path, base_dir: Path | None = None, *,
                 cpu: bool = False, compact: bool | None = None) -> Any:
    """A set-up :class:`~studio.training.trainer.Trainer` holding ``weights``: the network
    and data exactly as that run trained them, for evaluating or explaining.

    Nothing is drawn from torch's global generator, nor is it seeded (the network is built
    for loading: see ``build_module``): a run training in a thread of this process (Run Where
    ▸ In This Process) draws its dropout masks from it. ``cpu``: stay off a GPU that may be
    training. ``compact``: False keeps image samples as normalised floats (one sample at a
    time is read).
    """
    from .trainer import Trainer

    weights = Path(weights)
    state = read_state(weights)
    trainer = Trainer(project, base_dir=base_dir, default_callbacks=False)
    trainer.settings.init_weights = None  # the given weights replace them anyway
    if cpu:
        trainer.settings.device = "cpu"
        trainer.settings.compile = False
    if compact is not None:
        trainer.compact_images = compact
    trainer.seed_global = False
    trainer.setup()
    load_exact(trainer.model, state, str(weights))
    return trainer


def reload(model: torch.nn.Module, weights: str | Path) -> None:
    """Newer weights of the same network (a run's next epoch) into a loaded model."""
    with torch.no_grad():
        load_exact(model, read_state(weights), str(weights))
