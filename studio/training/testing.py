"""The final test: a finished run's weights scored once on the test part.

The weights scored are those a user would keep: the best epoch's (``best.ckpt``) when the run
had a validation part to choose them by, its last otherwise. They are read back from the file
the run wrote, with the same code and evaluation as ``studio evaluate --weights best.ckpt
--split test``, so the two give the same numbers. The trainer's model keeps its last weights
(``model.safetensors`` is still the last epoch's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core.errors import TrainingError

from .callbacks import Checkpointer


def scored_weights(trainer: Any) -> tuple[Path | None, int]:
    """(checkpoint to score, its epoch counted from 1); None: the model's current weights,
    which ``model.safetensors`` will hold.

    A run without an output folder has no checkpoint to go back to: its last weights (or the
    ones early stopping restored) are scored.
    """
    if trainer.bundle.n_val == 0 or trainer.out_dir is None:
        return None, trainer.epoch
    for c in trainer.callbacks.callbacks:
        if isinstance(c, Checkpointer) and c.tracker.best_epoch >= 0:
            path = Path(trainer.out_dir) / "best.ckpt"
            if path.exists():
                return path, c.tracker.best_epoch + 1
    return None, trainer.epoch


def run_test(trainer: Any) -> dict[str, Any]:
    """``test_…`` metrics of the run's kept weights; also the final line of ``metrics.jsonl``.
    Empty when the data has no test part."""
    from .console import format_logs
    from .transfer import load_exact, read_state

    if trainer.bundle.n_test == 0:
        return {}
    path, epoch = scored_weights(trainer)
    last = None
    if path is not None:
        last = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        load_exact(trainer.model, read_state(path), str(path))
    try:
        logs: dict[str, Any] = trainer.evaluate("test")
    finally:
        if last is not None:
            trainer.model.load_state_dict(last)
    which = f"best weights, epoch {epoch}" if path is not None else "final weights"
    trainer.message(f"test ({which}, {trainer.bundle.n_test:,} samples): {format_logs(logs)}")
    if trainer.out_dir is not None:
        # no "epoch" key: readers of the per-epoch history skip this line
        line = dict(logs)  # as the epochs' lines, with the confusion matrix
        # the file that holds the scored weights, to give to ``studio evaluate --weights``
        line.update(weights=path.name if path is not None else "model.safetensors",
                    weights_epoch=epoch)
        try:
            with open(Path(trainer.out_dir) / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        except OSError as exc:
            raise TrainingError(f"cannot write the test metrics: {exc.strerror or exc}",
                                str(trainer.out_dir)) from None
    return logs
