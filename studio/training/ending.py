"""The end of a run: the final test, the weights file and the result a run reports.

Apart from the trainer so that the trainer stays about setting up and stepping; these read
and write its state as the trainer's own methods did.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from .checkpoint import save_weights
from .protocol import RunResult
from .testing import run_test

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


def finish(t: Trainer) -> None:
    """After the last epoch: callbacks told, the test part scored, the weights written."""
    if t.stop_reason != "stopped":
        t.callbacks.on_train_end()
    t.strategy.finish(t)
    if not t.main:
        return
    if t.stop_reason not in ("stopped", "pruned"):  # a pruned trial is not kept
        t.test_logs = run_test(t)
    if t.out_dir is not None:
        if t.stop_reason == "stopped" and t.batch_in_epoch:
            t.write_checkpoint(t.out_dir / "last.ckpt", t.checkpoint_state(), "last")
        save_weights(t.out_dir / "model.safetensors", t.model.state_dict(),
                     t.weights_metadata())
        t.callbacks.on_checkpoint("weights", t.out_dir / "model.safetensors")


def result(t: Trainer) -> RunResult:
    """How the run went, also written to ``summary.json``; callbacks hear it last."""
    logs = dict(t.history.epochs[-1]) if t.history.epochs else {}
    logs.update(t.test_logs)
    if t.failed is not None:
        status, msg = "failed", str(t.failed)
    elif t.stop_reason == "stopped":
        status = "stopped"
        msg = f"stopped after epoch {t.epoch}" + (
            f", batch {t.batch_in_epoch}" if t.batch_in_epoch else "")
    elif t.stop_reason in ("early_stopped", "pruned"):  # pruned: by a sweep
        status = t.stop_reason
        msg = f"{'pruned' if status == 'pruned' else 'stopped early'} after epoch {t.epoch}"
    else:
        status, msg = "completed", f"completed {t.epoch} epochs"
    out = RunResult(status, msg, t.epoch, logs, list(t.history.epochs), t.out_dir, t.failed)
    if t.out_dir is not None and t.out_dir.exists() and t.main:
        from studio.core.project import atomic_write

        clean = {k: v for k, v in logs.items() if not k.endswith("confusion")}
        with contextlib.suppress(OSError):
            atomic_write(t.out_dir / "summary.json", json.dumps(
                {"status": status, "message": msg, "epochs": t.epoch, "logs": clean},
                indent=2).encode())
    t.callbacks.on_run_end(out)
    return out
