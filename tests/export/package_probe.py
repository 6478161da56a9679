"""Run inside exported packages, without Studio: what their own train.py builds, described.

``python package_probe.py JOBS.json`` makes Studio unimportable, then for each job imports
``train`` from the job's package folder and, for each of its configs, prepares the data and
builds the model, loss, optimizer and schedulers (and trains, when a case asks for epochs).
It prints one JSON object. The ``describe`` functions are imported by the tests too, which
describe what ``studio train`` builds the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

PACKAGE_MODULES = ("train", "loaders", "builders", "split", "model")
#: scheduler entries that say nothing about the schedule (torch's bookkeeping of a call)
NOT_COMPARED = {"_get_lr_called_within_step"}


def digest(t: Any) -> dict[str, Any]:
    """A tensor's dtype, shape and exact bytes (and its sum, to read a difference by)."""
    t = t.detach().cpu().contiguous()
    return {"dtype": str(t.dtype), "shape": list(t.shape),
            "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest(),
            "sum": float(t.double().sum())}


def plain(value: Any) -> Any:
    """JSON's view of a value (tuples as lists, tensors as digests): both sides compare alike."""
    def tensor(t: Any) -> Any:
        if hasattr(t, "detach"):
            return digest(t)
        raise TypeError(f"{type(t).__name__} in a state dict")

    return json.loads(json.dumps(value, default=tensor))


def describe_loss(loss: Any) -> dict[str, Any]:
    """Loss modules keep their settings as attributes (their state dicts are empty)."""
    return {"type": type(loss).__name__,
            "attributes": plain({k: v for k, v in vars(loss).items()
                                 if not k.startswith("_") and k != "training"}),
            "state": {k: digest(v) for k, v in loss.state_dict().items()}}


def describe_optimizer(opt: Any) -> dict[str, Any]:
    groups = [{**{k: v for k, v in g.items() if k != "params"},
               "shapes": [list(p.shape) for p in g["params"]]} for g in opt.param_groups]
    return {"type": type(opt).__name__, "param_groups": plain(groups),
            "state_dict": plain(opt.state_dict()), "defaults": plain(opt.defaults)}


def describe_scheduler(sched: Any) -> dict[str, Any] | None:
    if sched is None:
        return None
    state = {k: v for k, v in sched.state_dict().items()
             if k not in NOT_COMPARED and not callable(v)}
    return {"type": type(sched).__name__, "state_dict": plain(state)}


def describe(loss: Any, optimizer: Any, scheduler: Any, batch_scheduler: Any, base_lrs: Any,
             warmup_steps: int, steps_per_epoch: int, model: Any) -> dict[str, Any]:
    return {"loss": describe_loss(loss), "optimizer": describe_optimizer(optimizer),
            "scheduler": describe_scheduler(scheduler),
            "batch_scheduler": describe_scheduler(batch_scheduler),
            "base_lrs": plain(base_lrs), "warmup_steps": warmup_steps,
            "steps_per_epoch": steps_per_epoch,
            "initial_weights": {k: digest(v) for k, v in model.state_dict().items()}}


DATA = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def describe_data(data: Any) -> dict[str, Any]:
    return {name: None if getattr(data, name) is None else digest(getattr(data, name))
            for name in DATA}


def probe(case: dict[str, Any]) -> dict[str, Any]:
    import torch
    import train

    config = train.load_config(Path(case["config"]))
    data = train.prepare(config)
    out: dict[str, Any] = {"data": describe_data(data), "train_idx": data.train_idx.tolist(),
                           "val_idx": data.val_idx.tolist(),
                           "test_idx": [] if data.test_idx is None else data.test_idx.tolist()}
    if case.get("objects"):
        steps = train.steps_per_epoch(config, len(data.x_train))
        model = train.initial_model(config)
        run = train.build(config, model, steps)
        out["objects"] = describe(run.loss_fn, run.optimizer, run.scheduler,
                                  run.batch_scheduler, run.base_lrs, run.warmup_steps, steps,
                                  model)
    if case.get("epochs"):
        with contextlib.redirect_stdout(sys.stderr):  # the epochs' lines; stdout is the JSON
            out["history"] = train.train(config, case["epochs"], torch.device("cpu"), None)
    return out


def main(jobs_file: str) -> None:
    sys.modules["studio"] = None  # type: ignore[assignment]  # any import of Studio fails
    results: dict[str, Any] = {}
    files: dict[str, list[str]] = {}
    for job in json.loads(Path(jobs_file).read_text()):
        folder = job["package"]
        os.chdir(folder)
        sys.path.insert(0, folder)
        for case in job["cases"]:
            results[case["id"]] = probe(case)
        files[folder] = [str(Path(sys.modules[m].__file__ or "")) for m in PACKAGE_MODULES]
        for m in PACKAGE_MODULES:
            del sys.modules[m]
        sys.path.remove(folder)
    studio = sorted(n for n, m in sys.modules.items()
                    if m is not None and n.split(".")[0] == "studio")
    print(json.dumps({"results": results, "files": files, "studio_modules": studio}))


if __name__ == "__main__":
    sys.path.pop(0)  # this file's folder: the packages' modules come from their own folders
    main(sys.argv[1])
