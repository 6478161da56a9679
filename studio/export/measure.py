"""What a compressed network bought and cost, measured the same way for every method: sizes on
disk, latency timed side by side, and the project's own metrics on its validation and test
parts. Pure core (torch, numpy; no Qt), shared by ``studio prune`` and ``studio quantize``.
"""

from __future__ import annotations

import gzip
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.project import Project

#: timed pairs: (A, B) alternate so that the machine's drift (another process, the clock
#: boost) falls on both alike; the median pair is reported
PAIRS = 7
MIN_TIME = 0.05  # seconds each timing runs for at least, repeating the call


def _per_call(fn: Callable[[], Any], min_time: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / n


def latency_pair(a: Callable[[], Any], b: Callable[[], Any], pairs: int = PAIRS,
                 min_time: float = MIN_TIME) -> tuple[float, float]:
    """Seconds per call of ``a`` and of ``b``: medians of ``pairs`` interleaved timings, each
    after one untimed warm-up call."""
    a()
    b()
    ta, tb = [], []
    for _ in range(pairs):
        ta.append(_per_call(a, min_time))
        tb.append(_per_call(b, min_time))
    return statistics.median(ta), statistics.median(tb)


def sizes(path: Path) -> dict[str, int]:
    """Bytes on disk, and gzip-compressed: zeros left by unstructured pruning only shrink a
    file once it is compressed."""
    data = Path(path).read_bytes()
    return {"file_bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6))}


def network_figures(project: Project, model: Any | None = None) -> dict[str, int]:
    """Parameters and multiply-adds per sample from shape inference; with the module, also
    its non-zero weights (what unstructured pruning changes)."""
    from studio.core.shapes import analyze

    a = analyze(project.graph)
    out = {"params": a.total_params, "macs": a.total_macs}
    if model is not None:
        out["nonzero_params"] = int(sum(int((p != 0).sum()) for p in model.parameters()))
    return out


def metric_logs(trainer: Any, forward: Callable[[Any], Any] | None = None) -> dict[str, float]:
    """The project's metrics on validation and test (where the data has them), as training
    logs them (``val_acc``, ``test_loss``…): of the set-up trainer's model, or of ``forward``
    (a batch as numpy in, outputs as numpy out: an onnxruntime session) on the same batches.
    """
    import torch

    from studio.training.metrics import EvalMeter

    b = trainer.bundle
    logs: dict[str, float] = {}
    for split, n in (("val", b.n_val), ("test", b.n_test)):
        if not n:
            continue
        if forward is None:
            with torch.no_grad():
                got = trainer.evaluate(split)
        else:
            meter = EvalMeter(b.task, b.num_classes, trainer.loss_type, torch.device("cpu"),
                              b.target_norm)
            for xb, yb in trainer.split_batches(split, 256).epoch():
                out = torch.from_numpy(forward(xb.cpu().numpy())).float()
                yb = yb.cpu()
                meter.update(trainer.loss_fn(out, yb).float(), out, yb)
            got = meter.compute(f"{split}_")
        logs.update({k: float(v) for k, v in got.items() if isinstance(v, int | float)})
    return logs


def ratio_note(what: str, before: float, after: float, batch: int) -> str | None:
    """A plain sentence when the smaller network is not faster here (it says so, not hides
    it), else None."""
    if after < before * 0.97:
        return None
    return (f"{what} is not faster on this machine at batch {batch}: {after * 1e3:.3g} ms "
            f"against {before * 1e3:.3g} ms ({before / after:.2f}×)")
