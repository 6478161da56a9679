"""The exported package builds what ``studio train`` builds, from the same project: the same
split, data, initial weights, loss, optimizer and schedulers for every entry of the catalog,
and then trains to the same numbers.

The package's side runs in one subprocess (``package_probe.py``) where Studio cannot be
imported; this side builds ``studio.training.Trainer(project).setup()`` and describes its
objects with the same functions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from studio.core.choices import CLASSIFICATION_LOSSES, LOSSES, OPTIMIZERS, SCHEDULERS
from studio.core.project import DataSettings, Project, TrainingSettings, sample_paths
from studio.data.sources import load_arrays
from studio.data.split import split_parts
from studio.export import export
from studio.export.code import package_files
from studio.training import Trainer
from tests.export.package_probe import describe, describe_data
from tests.graphs import net
from tests.training.test_data import make_cifar, make_mnist

PROBE = Path(__file__).with_name("package_probe.py")
SAMPLES = {p.name.split(".")[0]: p for p in sample_paths()}
WINE, DIABETES = SAMPLES["wine_classifier"], SAMPLES["regression_mlp"]

#: settings away from the defaults, so that each has to reach torch to compare equal
LOSS_PARAMS: dict[str, dict[str, Any]] = {
    "CrossEntropyLoss": {"label_smoothing": 0.1}, "MSELoss": {"reduction": "sum"},
    "SmoothL1Loss": {"beta": 0.5}, "HuberLoss": {"delta": 2.0},
    "MultiMarginLoss": {"margin": 0.5, "p": 2}}
OPTIMIZER_PARAMS: dict[str, dict[str, Any]] = {
    "SGD": {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    "Adam": {"beta1": 0.8, "amsgrad": True}, "AdamW": {"weight_decay": 0.05},
    "RMSprop": {"alpha": 0.9, "centered": True}, "Adagrad": {"lr_decay": 0.01},
    "Adadelta": {"rho": 0.8}}
SCHEDULER_PARAMS: dict[str, dict[str, Any]] = {
    "StepLR": {"step_size": 3, "gamma": 0.5}, "CosineAnnealingLR": {"eta_min": 1e-5},
    "OneCycleLR": {"pct_start": 0.25, "anneal_strategy": "linear"},
    "ReduceLROnPlateau": {"patience": 2, "factor": 0.5}}


def variant(path: Path, **training: Any) -> Project:
    d = Project.load(path).to_dict()
    d["training"].update({"device": "cpu", "epochs": 6, "early_stopping": None, **training})
    project = Project.from_dict(d)
    project.path = path
    return project


def catalog_cases() -> dict[str, Project]:
    """Every loss (on a dataset of its task), every optimizer (under OneCycleLR, which cycles
    the momentum of those that have one), every scheduler with and without warm-up."""
    cases = {}
    for loss in LOSSES:
        sample = WINE if loss in CLASSIFICATION_LOSSES else DIABETES
        cases[f"loss {loss}"] = variant(sample, loss={"type": loss, **LOSS_PARAMS.get(loss, {})})
    for opt in OPTIMIZERS:
        cases[f"optimizer {opt}"] = variant(
            WINE, optimizer={"type": opt, **OPTIMIZER_PARAMS.get(opt, {})},
            scheduler={"type": "OneCycleLR"})
    for sched in SCHEDULERS:
        for warmup in (0, 2):
            cases[f"scheduler {sched} warm-up {warmup}"] = variant(
                WINE, scheduler={"type": sched, "warmup_epochs": warmup,
                                 **SCHEDULER_PARAMS.get(sched, {})})
    cases["scheduler ReduceLROnPlateau on val_accuracy"] = variant(
        WINE, scheduler={"type": "ReduceLROnPlateau", "monitor": "val_accuracy"})
    return cases


def write_datasets(folder: Path) -> dict[str, dict[str, Any]]:
    """Files for every dataset kind read from disk, with what Studio's loaders transform: CSV
    labels "1" and "1.0" (one class), text and empty columns, blank cells filled or dropped
    (``missing``); one-hot npz labels; 8-bit npz
    images; image folders of several sizes; torchvision's layouts (gzipped IDX, pickles)."""
    from PIL import Image

    make_mnist(folder / "tv")
    make_mnist(folder / "tv", "FashionMNIST")
    make_cifar(folder / "tv")
    labels = ["1", "1.0", "2", "2.0", "other"] * 4
    rows = [f"{i * 1.5},{'black' if i % 3 else 'white'},,{i % 4 + 0.25},{v}"
            for i, v in enumerate(labels)]
    (folder / "table.csv").write_text("weight,colour,empty,price,kind\n" + "\n".join(rows))
    gaps = [f"{'' if i % 7 == 3 else i % 5 * 1.5},{'' if i == 4 else 'ab'[i % 2]},"
            f"{'NA' if i in (2, 9) else i * 0.5},{i % 3}" for i in range(30)]
    (folder / "gaps.csv").write_text("size,colour,weight,kind\n" + "\n".join(gaps))
    rng = np.random.RandomState(1)
    np.savez(folder / "onehot.npz", x=rng.rand(40, 6).astype(np.float32),
             y=np.eye(3)[np.arange(40) % 3])
    np.savez(folder / "images.npz", x=rng.randint(0, 256, (30, 1, 8, 8)).astype(np.uint8),
             y=np.arange(30) % 3)
    for c in ("cats", "dogs"):
        (folder / "img" / c).mkdir(parents=True)
        for i in range(6):
            pixels = rng.randint(0, 256, (10 + i, 12, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / "img" / c / f"{i}.png")
    tv = {"root": "tv"}
    return {
        "digits": {}, "iris": {}, "breast-cancer": {}, "diabetes": {}, "mnist-5k": {},
        "mnist": tv, "fashion-mnist": tv, "cifar10": tv,
        "csv": {"path": "table.csv", "target": "kind"},
        "csv regression": {"path": "table.csv", "target": "price", "categorical": "ordinal"},
        "npz": {"path": "onehot.npz"}, "npz images": {"path": "images.npz"},
        **{f"csv missing {how}": {"path": "gaps.csv", "missing": how}
           for how in ("mean", "median", "most_frequent", "drop")},
        "csv minmax": {"path": "table.csv", "target": "kind"},
        "npz images minmax": {"path": "images.npz"},
        "image-folder": {"path": "img", "size": [8, 6]},
        # a test part cut by data.test_fraction; mnist keeps its own and ignores the fraction
        "iris test": {}, "diabetes test": {}, "csv missing median test":
            {"path": "gaps.csv", "missing": "median"}, "mnist test": tv,
    }


def data_project(kind: str, options: dict[str, Any], folder: Path) -> Project:
    """The dataset under a network that fits it (Input → Flatten → Linear); a kind naming
    minmax scales its inputs to 0…1, one naming test holds out a fifth for the test part."""
    dataset = kind.split()[0]
    a = load_arrays(dataset, options, folder)
    width = len(a.classes) if a.task == "classification" else a.y.shape[1]
    graph = net(("input", "Input", {"shape": list(a.sample_shape)}),
                ("flat", "Flatten", {}), ("out", "Linear", {"out_features": width}))
    loss = "CrossEntropyLoss" if a.task == "classification" else "MSELoss"
    return Project(f"data {kind}", graph,
                   DataSettings(dataset=dataset, options=options, val_fraction=0.25,
                                test_fraction=0.2 if kind.endswith(" test") else 0.0,
                                batch_size=8,
                                scaling="minmax" if "minmax" in kind else "standard"),
                   TrainingSettings(loss={"type": loss}, device="cpu", seed=3))


def training_cases() -> dict[str, Project]:
    """Runs whose every epoch must match: warm-up, penalties, clipping and each way of stepping
    a scheduler (per batch, per epoch, on a monitored metric)."""
    return {
        "train OneCycleLR": variant(WINE, epochs=4, l1=1e-4, l2=1e-3, grad_clip=1.0,
                                    scheduler={"type": "OneCycleLR", "warmup_epochs": 1}),
        "train ReduceLROnPlateau": variant(
            WINE, epochs=4, optimizer={"type": "SGD", "lr": 0.05, "momentum": 0.9},
            scheduler={"type": "ReduceLROnPlateau", "monitor": "val_accuracy", "patience": 0,
                       "factor": 0.5}),
        "train regression StepLR": variant(
            DIABETES, epochs=4, scheduler={"type": "StepLR", "step_size": 1, "gamma": 0.5,
                                           "warmup_epochs": 1}),
    }


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's package side, from one subprocess; the cases' projects and folders."""
    tmp = tmp_path_factory.mktemp("parity")
    folder = tmp / "project"
    folder.mkdir()
    packages = {}
    for sample in (WINE, DIABETES):
        pkg = tmp / sample.name.split(".")[0]
        project = Project.load(sample)
        export(project, "python", pkg, base_dir=sample.parent)
        # the cases' configs below are what the export writes
        assert (pkg / "config.json").read_bytes() == \
            package_files(project, sample.parent)["config.json"]
        packages[sample] = pkg
    cases: dict[str, tuple[Project, Path, dict[str, Any]]] = {}
    for name, project in catalog_cases().items():
        cases[name] = (project, project.path.parent, {"objects": True})
    for kind, options in write_datasets(folder).items():
        cases[f"data {kind}"] = (data_project(kind, options, folder), folder, {})
    for name, project in training_cases().items():
        cases[name] = (project, project.path.parent, {"epochs": project.training.epochs})
    jobs: dict[Path, list[dict[str, Any]]] = {pkg: [] for pkg in packages.values()}
    for i, (name, (project, base, extra)) in enumerate(cases.items()):
        config = tmp / "configs" / f"{i}.json"
        config.parent.mkdir(exist_ok=True)
        config.write_bytes(package_files(project, base)["config.json"])
        pkg = packages[DIABETES if project.path == DIABETES else WINE]
        jobs[pkg].append({"id": name, "config": str(config), **extra})
    listing = tmp / "jobs.json"
    listing.write_text(json.dumps([{"package": str(p), "cases": c} for p, c in jobs.items()]))
    r = subprocess.run([sys.executable, str(PROBE), str(listing)], capture_output=True,
                       text=True, timeout=600, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    return {"results": out["results"], "files": out["files"], "studio": out["studio_modules"],
            "cases": cases}


def set_up(project: Project, base: Path) -> Trainer:
    """What ``studio train`` builds before its first step."""
    trainer = Trainer(project, base_dir=base)
    trainer.setup()
    return trainer


def studio_split(project: Project, base: Path) -> tuple[list[int], list[int], list[int]]:
    """Studio's split; the trainer's bundle holds the same test indices (None: no part cut)."""
    d = project.data
    a = load_arrays(d.dataset, d.options, base)
    held = 0.0 if a.x_test is not None else d.test_fraction
    train, val, test = split_parts(a.y, d.val_fraction, held, project.training.seed,
                                   a.task == "classification")
    return train.tolist(), val.tolist(), test.tolist()


def first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{where}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where}: package {a!r}, studio {b!r}"


def test_the_package_runs_its_own_modules_and_never_studio(probed) -> None:
    assert probed["studio"] == []
    for folder, files in probed["files"].items():
        assert [Path(f).parent for f in files] == [Path(folder)] * len(files), files


def test_every_loss_optimizer_and_scheduler_is_built_alike(probed) -> None:
    compared = 0
    for name, (project, base, extra) in probed["cases"].items():
        if not extra.get("objects"):
            continue
        got = probed["results"][name]
        t = set_up(project, base)
        want = describe(t.loss_fn, t.optimizer, t.scheduler, t.batch_scheduler, t.base_lrs,
                        t.warmup_steps, t.steps_per_epoch, t.model)
        assert got["objects"] == want, f"{name}: {first_difference(got['objects'], want)}"
        assert got["data"] == describe_data(t.bundle), name
        assert (got["train_idx"], got["val_idx"], got["test_idx"]) == \
            studio_split(project, base), name
        compared += 1
    assert compared == len(LOSSES) + len(OPTIMIZERS) + 2 * len(SCHEDULERS) + 1


def test_every_dataset_is_read_split_and_normalised_alike(probed) -> None:
    kinds = [name for name in probed["cases"] if name.startswith("data ")]
    assert len(kinds) == 23
    for name in kinds:
        project, base, _ = probed["cases"][name]
        got = probed["results"][name]
        t = set_up(project, base)
        want = describe_data(t.bundle)
        assert got["data"] == want, f"{name}: {first_difference(got['data'], want)}"
        split = studio_split(project, base)
        assert (got["train_idx"], got["val_idx"], got["test_idx"]) == split, name
        held = t.bundle.test_idx.tolist() if t.bundle.test_idx is not None else []
        assert held == split[2], name
        if name.endswith(" test"):  # a test part either way: cut, or the dataset's own
            assert got["data"]["x_test"] is not None and t.bundle.n_test > 0, name
            assert (len(split[2]) == 0) == (name == "data mnist test"), name


def test_the_package_trains_to_the_same_numbers_as_studio(probed) -> None:
    for name, (project, base, extra) in probed["cases"].items():
        if not extra.get("epochs"):
            continue
        result = Trainer(project, base_dir=base).fit()
        assert result.ok, result.message
        got = probed["results"][name]["history"]
        assert len(got) == len(result.history) == extra["epochs"]
        for epoch, (mine, theirs) in enumerate(zip(got, result.history, strict=True)):
            shared = [k for k in mine if k in theirs and k not in ("epoch", "time_s",
                                                                    "samples_per_s")]
            assert {"loss", "val_loss", "lr"} <= set(shared), shared
            for k in shared:
                assert mine[k] == pytest.approx(theirs[k], rel=1e-6, abs=1e-9), \
                    f"{name}, epoch {epoch + 1}: {k}"
