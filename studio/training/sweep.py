"""Hyperparameter sweeps on Optuna: each trial is an ordinary run in the sweep's folder, fed to
the pruner every epoch; the study lives in Optuna's journal file beside them (or any storage
Optuna takes, so several processes or machines share one study).

Optuna does the searching (samplers, pruners, the trial budget across workers, importances);
this module maps the project's ``sweep`` onto it and keeps ``sweep.json`` current for people
and the window. Optuna is imported when a sweep runs, never when Studio starts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError, TrainingError, first_line
from studio.core.project import Project, atomic_write, file_stem
from studio.core.sweep_spec import apply_params

from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    import optuna

JOURNAL = "study.journal"
SUMMARY = "sweep.json"
STUDY = "studio"
IMPORTANCE_AFTER = 3  # complete trials before importances mean anything


def default_dir(project_path: Path | None) -> Path:
    """``sweep-<project>`` in the project's runs folder: stable, so running again resumes."""
    from .run_folder import runs_dir

    name = file_stem(project_path) if project_path is not None else "untitled"
    return runs_dir(project_path) / f"sweep-{name}"


def storage_url(out_dir: Path, storage: str | None) -> Any:
    """The storage given (any URL Optuna takes), or the journal file in the sweep folder."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage:
        return storage
    out_dir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(out_dir / JOURNAL)))


def open_study(project: Project, out_dir: Path, storage: str | None = None,
               study: str | None = None, worker: int = 0) -> optuna.Study:
    """The sweep's study, created or loaded (a rerun resumes it). The sampler's seed comes
    from the project's, the trials already in the study and the worker's number: a resumed
    sweep or a second worker draws new values instead of repeating the first ones."""
    import optuna

    spec = _spec(project)
    samplers: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
        "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
        "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
        "grid": lambda seed: optuna.samplers.GridSampler(_grid(spec["parameters"]), seed=seed),
        "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    }
    pruners: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
        # the first trials run whole: the median needs something to compare with
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=project.training.epochs),
        "none": lambda: optuna.pruners.NopPruner(),
    }
    make = samplers[spec["sampler"]]
    seed = project.training.seed
    try:
        s = optuna.create_study(
            study_name=study or STUDY, storage=storage_url(out_dir, storage),
            sampler=make(seed), pruner=pruners[spec["pruner"]](),
            direction=spec["objective"]["direction"], load_if_exists=True)
    except (ImportError, ValueError, RuntimeError, OSError) as exc:
        raise TrainingError(f"cannot open the study: {first_line(exc)}", "--storage") from None
    before = len(s.get_trials(deepcopy=False))
    if before or worker:
        s.sampler = make((seed + 7919 * before + 104729 * worker) % 2**32)
    return s


def _spec(project: Project) -> dict[str, Any]:
    if not project.sweep or not project.sweep.get("parameters"):
        raise TrainingError("the project has no sweep parameters: add them under \"sweep\" "
                            "(or right-click a field in the inspector ▸ Sweep this…)", "sweep")
    return project.sweep


def _grid(parameters: dict[str, Any]) -> dict[str, list[Any]]:
    out = {}
    for path, p in parameters.items():
        if p["type"] == "categorical":
            out[path] = list(p["choices"])
        else:
            out[path] = list(range(p["low"], p["high"] + 1, p.get("step") or 1))
    return out


def suggest(trial: optuna.Trial, parameters: dict[str, Any]) -> dict[str, Any]:
    """The trial's values, one per path, drawn by the study's sampler."""
    values: dict[str, Any] = {}
    for path, p in parameters.items():
        if p["type"] == "categorical":
            values[path] = trial.suggest_categorical(path, p["choices"])
        elif p["type"] == "int":
            values[path] = trial.suggest_int(path, p["low"], p["high"], step=p.get("step") or 1,
                                             log=bool(p.get("log")))
        else:
            values[path] = trial.suggest_float(path, p["low"], p["high"], step=p.get("step"),
                                               log=bool(p.get("log")))
    return values


class _Report(Callback):
    """Each epoch's objective to the trial; a pruned trial's run stops at the epoch's end."""

    def __init__(self, trial: optuna.Trial, metric: str, stop: threading.Event) -> None:
        self.trial, self.metric, self.stop = trial, metric, stop
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.metric)
        if isinstance(value, int | float) and math.isfinite(value):
            self.trial.report(float(value), epoch + 1)
            if self.trial.should_prune():
                self.pruned_at = epoch + 1
                self.trainer.request_stop("pruned")
        if self.stop.is_set():
            self.trainer.request_stop("stopped")

    def on_progress(self, logs: dict[str, Any]) -> None:
        if self.stop.is_set():  # a stop asked mid-epoch acts within a batch
            self.trainer.request_stop("stopped")


def make_objective(project: Project, out_dir: Path, stop: threading.Event,
                   base_dir: Path | None = None) -> Callable[[optuna.Trial], float]:
    """Train one trial's project; its value is the best epoch's objective (the weights a
    user would keep), pruned trials raise ``TrialPruned``, failed ones a StudioError."""
    import optuna

    from .trainer import Trainer

    spec = _spec(project)
    metric, direction = spec["objective"]["metric"], spec["objective"]["direction"]

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, spec["parameters"])
        run = out_dir / f"trial-{trial.number:04d}"
        trial.set_user_attr("run", run.name)
        trial.set_user_attr("started", time.time())
        try:
            p = apply_params(project, values)
        except StudioError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        p.sweep = None
        report = _Report(trial, metric, stop)
        result = Trainer(p, out_dir=run, callbacks=[report],
                         base_dir=base_dir or (project.path.parent if project.path else None)
                         ).fit()
        if report.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {report.pruned_at}")
        if result.status == "failed":
            trial.set_user_attr("error", result.message)
            raise TrainingError(result.message, run.name)
        values_seen: list[float] = [e[metric] for e in result.history
                                    if isinstance(e.get(metric), float)
                                    and math.isfinite(e[metric])]
        if not values_seen:
            trial.set_user_attr("error", f"no epoch logged {metric}")
            raise TrainingError(f"no epoch logged {metric}", run.name)
        if stop.is_set() and result.status == "stopped":
            raise TrainingError("the sweep was stopped during this trial", run.name)
        return float(max(values_seen) if direction == "maximize" else min(values_seen))

    return objective


def summary(study: optuna.Study, project: Project, total: int | None = None
            ) -> dict[str, Any]:
    """``sweep.json``: the best trial and every trial with its state, value and run."""
    import optuna

    spec = _spec(project)
    states = {optuna.trial.TrialState.COMPLETE: "complete",
              optuna.trial.TrialState.PRUNED: "pruned",
              optuna.trial.TrialState.FAIL: "failed",
              optuna.trial.TrialState.RUNNING: "running",
              optuna.trial.TrialState.WAITING: "running"}
    trials = []
    for t in study.get_trials(deepcopy=False):
        end = t.datetime_complete.timestamp() if t.datetime_complete else None
        start = t.datetime_start.timestamp() if t.datetime_start else None
        trials.append({
            "number": t.number, "state": states[t.state], "value": t.value,
            "params": dict(t.params), "run": t.user_attrs.get("run"),
            "duration_s": (end - start) if end and start else None,
            **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {}),
        })
    complete = [t for t in study.get_trials(deepcopy=False,
                                             states=(optuna.trial.TrialState.COMPLETE,))]
    best = None
    if complete:
        b = study.best_trial
        best = {"number": b.number, "value": b.value, "params": dict(b.params)}
    importances: dict[str, float] = {}
    if len(complete) >= IMPORTANCE_AFTER and len(spec["parameters"]) > 1:
        try:
            with warnings.catch_warnings():  # "importances will be equal": they are shown so
                warnings.simplefilter("ignore")
                importances = {k: float(v) for k, v in
                               optuna.importance.get_param_importances(study).items()}
        except (RuntimeError, ValueError, ZeroDivisionError, ImportError):
            importances = {}  # too few distinct values yet: none, rather than a failed sweep
    return {"objective": spec["objective"], "total": total or spec["trials"], "best": best,
            "trials": trials, "importances": importances}


def write_summary(study: optuna.Study, project: Project, out_dir: Path,
                  total: int | None = None) -> dict[str, Any]:
    data = summary(study, project, total)
    atomic_write(out_dir / SUMMARY, (json.dumps(data, indent=1) + "\n").encode())
    return data


def read_sweep(out_dir: Path) -> dict[str, Any]:
    """The sweep's ``sweep.json`` (empty before the first trial ends)."""
    path = Path(out_dir) / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TrainingError(f"not a readable sweep summary ({exc})", str(path)) from None
    return data if isinstance(data, dict) else {}


def fail_stale(study: optuna.Study) -> int:
    """Trials left running by a worker that is gone (a killed sweep) are marked failed, so
    the budget counts them and a resumed sweep goes on. Only called with no live worker."""
    import optuna

    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return len(stale)


def run_sweep(project: Project, out_dir: Path, *, trials: int | None = None,
              parallel: int | None = None, storage: str | None = None,
              study: str | None = None, on_trial: Callable[[dict[str, Any]], None] | None = None,
              stop: threading.Event | None = None, worker: int | None = None,
              base_dir: Path | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep until its trial budget is used or ``stop`` is set; with
    ``parallel`` > 1, that many worker processes share the study (``worker``: this is the
    worker of that number, started by such a sweep). Returns ``sweep.json``."""
    import optuna

    spec = _spec(project)
    total = trials or spec["trials"]
    parallel = parallel or spec["parallel"]
    stop = stop or threading.Event()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if worker is not None:  # started by a sweep that holds the folder
        return _optimize(project, out_dir, total, storage, study, on_trial, stop, base_dir,
                         worker)
    from .run_folder import RunLock

    with RunLock(out_dir):  # one sweep per folder: a second would fail the first's trials
        if storage is None:  # a shared database may have other machines' trials running
            fail_stale(open_study(project, out_dir, None, study))
        if parallel > 1:
            return _run_workers(project, out_dir, total, parallel, storage, study, on_trial,
                                stop, open_study(project, out_dir, storage, study), base_dir)
        return _optimize(project, out_dir, total, storage, study, on_trial, stop, base_dir, 0)


def _optimize(project: Project, out_dir: Path, total: int, storage: str | None,
              study: str | None, on_trial: Callable[[dict[str, Any]], None] | None,
              stop: threading.Event, base_dir: Path | None, worker: int) -> dict[str, Any]:
    """Trials in this process until the budget (counted across all workers) is used."""
    import optuna

    s = open_study(project, out_dir, storage, study, worker)
    done = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL}

    def after(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        data = write_summary(st, project, out_dir, total)
        if on_trial is not None:
            on_trial({"trial": next(t for t in data["trials"] if t["number"] == trial.number),
                      "sweep": data})
        if stop.is_set():
            st.stop()

    budget = optuna.study.MaxTrialsCallback(total, states=tuple(done))
    if sum(t.state in done for t in s.get_trials(deepcopy=False)) < total:
        s.optimize(make_objective(project, out_dir, stop, base_dir), callbacks=[budget, after],
                   catch=(StudioError,), gc_after_trial=True)
    return write_summary(s, project, out_dir, total)


def _run_workers(project: Project, out_dir: Path, total: int, parallel: int,
                 storage: str | None, study: str | None,
                 on_trial: Callable[[dict[str, Any]], None] | None, stop: threading.Event,
                 s: optuna.Study, base_dir: Path | None) -> dict[str, Any]:
    """``parallel`` processes of ``studio sweep --worker`` on the study; this one watches
    ``sweep.json`` and tells ``on_trial`` of each trial that ends."""
    snapshot = out_dir / "project.studio.json"
    if project.path != snapshot:
        project.copy().save(snapshot)
    cmd = [sys.executable, "-m", "studio", "sweep", str(snapshot), "--out", str(out_dir),
           "--trials", str(total)]
    if storage:
        cmd += ["--storage", storage]
    if study:
        cmd += ["--study", study]
    base = base_dir or (project.path.parent if project.path else None)
    if base is not None:  # the snapshot's folder is not where the project's data lives
        cmd += ["--base-dir", str(base)]
    env = {**os.environ, "STUDIO_THREADS": str(max(1, (os.cpu_count() or 2) // parallel))}
    procs = [subprocess.Popen([*cmd, "--worker", str(i + 1)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(parallel)]
    told = {t.number for t in s.get_trials(deepcopy=False)}  # told before, or running
    try:
        while any(p.poll() is None for p in procs):
            if stop.is_set():
                for p in procs:
                    p.terminate()
            _tell_new(out_dir, told, on_trial)
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
    errors = [p.stderr.read().strip() for p in procs if p.returncode not in (0, None)
              and p.stderr is not None]
    data = write_summary(s, project, out_dir, total)
    _tell_new(out_dir, told, on_trial)
    if errors and not stop.is_set():
        raise TrainingError(f"a sweep worker failed: {errors[0].splitlines()[-1]}", "--parallel")
    return data


def _tell_new(out_dir: Path, told: set[int],
              on_trial: Callable[[dict[str, Any]], None] | None) -> None:
    try:
        data = read_sweep(out_dir)
    except TrainingError:
        return  # mid-write on a file system without atomic rename: next time
    for t in data.get("trials", []):
        if t["state"] != "running" and t["number"] not in told:
            told.add(t["number"])
            if on_trial is not None:
                on_trial({"trial": t, "sweep": data})
