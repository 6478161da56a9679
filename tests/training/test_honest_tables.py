"""Honest tables and labels (issue 16, item 6): blanks in a numeric CSV column stay numeric and
are filled, dropped or refused as the dataset option ``missing`` says, with a note; min-max
scaling beside standardisation; probability label arrays are refused with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.core.errors import DatasetError
from studio.core.project import DataSettings
from studio.data import load_arrays, load_data
from studio.data.split import split_indices

FILL = {"mean": np.mean, "median": np.median,
        "most_frequent": lambda v: min(set(v), key=lambda x: (-list(v).count(x), x))}


def gappy_csv(folder: Path) -> Path:
    """30 rows; column ``b`` is blank on rows 3, 7 and 11 and 'NA' on row 20; ``c`` is text
    with one missing cell; the target is a class."""
    rows = ["a,b,c,label"]
    for i in range(30):
        b = "" if i in (3, 7, 11) else "NA" if i == 20 else str(float(i % 5))
        c = "" if i == 9 else ("red" if i % 2 else "blue")
        rows.append(f"{i},{b},{c},{i % 3}")
    f = folder / "gaps.csv"
    f.write_text("\n".join(rows) + "\n")
    return f


def test_blanks_are_refused_by_default_naming_line_column_and_the_option(tmp_path) -> None:
    f = gappy_csv(tmp_path)
    with pytest.raises(DatasetError) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 5"
    assert exc.value.message.startswith("column 'b' is empty")
    assert "data.options.missing" in exc.value.message


@pytest.mark.parametrize("how", ["mean", "median", "most_frequent"])
def test_blanks_are_filled_from_the_training_part_with_a_note(tmp_path, how) -> None:
    f = gappy_csv(tmp_path)
    options = {"path": str(f), "missing": how}
    a = load_arrays("csv", options)
    assert a.x.shape == (30, 5)  # a, b, one-hot c (blue, missing, red): b stays numeric
    train, _ = split_indices(a.y, 0.3, 0, stratify=True)
    known = [v for v in a.x[train, 1] if not np.isnan(v)]
    want = float(FILL[how](known))
    b = load_data(DataSettings(dataset="csv", options=options, val_fraction=0.3,
                               normalize=False))
    filled = [m for m in b.messages if m.startswith("column 'b'")]
    gaps = int(np.isnan(a.x[:, 1]).sum())
    assert gaps == 4 and filled == [
        f"column 'b': {gaps} missing cell(s) filled with the training part's "
        f"{how.replace('_', ' ')}{' value' if how == 'most_frequent' else ''}, {want:g}"]
    x = np.concatenate([b.x_train.numpy(), b.x_val.numpy()])
    assert np.isfinite(x).all()
    assert sorted(x[:, 1].tolist()) == sorted([v for v in a.x[:, 1] if not np.isnan(v)]
                                              + [np.float32(want)] * gaps)


def test_the_fill_value_ignores_the_validation_part(tmp_path) -> None:
    rows = ["a,y"] + [f"{'' if i == 0 else 1.0},{i}" for i in range(40)]
    f = tmp_path / "t.csv"
    f.write_text("\n".join(rows) + "\n")
    a = load_arrays("csv", {"path": str(f), "missing": "mean"})
    _, val = split_indices(a.y, 0.25, 0, stratify=False)
    lines = f.read_text().splitlines()
    big = int(val[val != 0][0])  # a validation row other than the gap's
    lines[big + 1] = f"1000000,{big}"
    f.write_text("\n".join(lines) + "\n")
    b = load_data(DataSettings(dataset="csv", options={"path": str(f), "missing": "mean",
                                                       "task": "regression"},
                               val_fraction=0.25, normalize=False))
    assert "filled with the training part's mean, 1" in b.messages[0]


def test_drop_removes_rows_with_a_missing_feature_cell_and_says_how_many(tmp_path) -> None:
    f = gappy_csv(tmp_path)
    a = load_arrays("csv", {"path": str(f), "missing": "drop"})
    assert len(a) == 25 and a.x.shape == (25, 4)  # a, b, one-hot c without a missing class
    assert a.messages == ["5 row(s) with missing feature cells dropped, the first on line 5; "
                          "25 remain"]
    assert not np.isnan(a.x).any()
    f.write_text("a,b,y\n1,,0\n,2,1\n3,,0\n")
    with pytest.raises(DatasetError, match="leaves 0 row") as exc:
        load_arrays("csv", {"path": str(f), "missing": "drop"})
    assert exc.value.where == "data.options.missing"


def test_a_blank_target_is_still_an_error_whatever_the_option(tmp_path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,y\n1,0\n2,\n3,1\n4,0\n")
    with pytest.raises(DatasetError, match="the target 'y' is empty") as exc:
        load_arrays("csv", {"path": str(f), "missing": "mean"})
    assert exc.value.where == f"{f}, line 3"


def test_minmax_maps_the_training_part_onto_0_to_1(tmp_path) -> None:
    rng = np.random.RandomState(0)
    x = rng.normal(5, 3, (50, 3)).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature stays finite
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 2)
    b = load_data(DataSettings(dataset="npz", options={"path": "d.npz"}, scaling="minmax"),
                  tmp_path)
    assert b.x_train.min(0).values[:2].tolist() == [0.0, 0.0]
    assert b.x_train.max(0).values[:2].tolist() == pytest.approx([1.0, 1.0])
    assert b.x_train[:, 2].abs().max() == 0 and b.norm["scaling"] == "minmax"
    # the same affine map reaches validation, which may leave 0…1
    lo, span = np.array(b.norm["mean"]), np.array(b.norm["std"])
    val = load_arrays("npz", {"path": "d.npz"}, tmp_path).x
    assert np.allclose(np.sort((val - lo) / span, axis=0),
                       np.sort(np.concatenate([b.x_train, b.x_val]), axis=0), atol=1e-5)
    images = rng.randint(10, 200, (12, 2, 4, 4)).astype(np.uint8)
    np.savez(tmp_path / "i.npz", x=images, y=np.arange(12) % 2)
    b = load_data(DataSettings(dataset="npz", options={"path": "i.npz"}, scaling="minmax",
                               val_fraction=0.25), tmp_path)
    per_channel = b.x_train.transpose(0, 1).reshape(2, -1)
    assert per_channel.min(1).values.tolist() == [0.0, 0.0]
    assert per_channel.max(1).values.tolist() == pytest.approx([1.0, 1.0])


def test_old_project_data_settings_load_unchanged(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.random.RandomState(0).rand(20, 3) * 9,
             y=np.arange(20) % 2)
    old = {"dataset": "npz", "options": {"path": "d.npz"}, "val_fraction": 0.2,
           "batch_size": 16, "normalize": True, "augment": []}
    d = DataSettings.model_validate(old)
    assert d.normalize is True and d.scaling == "standard"
    b = load_data(d, tmp_path)
    assert "scaling" not in b.norm
    assert b.x_train.mean(0).abs().max() < 1e-5  # standardised as before


def test_probability_labels_are_refused_naming_the_array_and_the_option(tmp_path) -> None:
    rng = np.random.RandomState(0)
    x = rng.rand(30, 4).astype(np.float32)
    np.savez(tmp_path / "soft.npz", x=x, y=rng.dirichlet([1, 1, 1], 30))
    with pytest.raises(DatasetError) as exc:
        load_arrays("npz", {"path": "soft.npz"}, tmp_path)
    assert "array 'y' holds class probabilities" in exc.value.message
    assert "data.options.path" in exc.value.message
    a = load_arrays("npz", {"path": "soft.npz", "task": "regression"}, tmp_path)
    assert a.task == "regression" and a.y.shape == (30, 3)
    np.savez(tmp_path / "hard.npz", x=x, y=np.eye(3)[np.arange(30) % 3])
    assert load_arrays("npz", {"path": "hard.npz"}, tmp_path).task == "classification"


def test_studio_validate_and_train_refuse_soft_labels_in_one_line(tmp_path, capsys) -> None:
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "soft.npz", x=rng.rand(30, 4).astype(np.float32),
             y=rng.dirichlet([1, 1, 1], 30))
    project = {
        "format": "studio.project", "version": 1, "name": "soft",
        "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [4]}},
                            {"id": "out", "type": "Linear", "params": {"out_features": 3}}],
                  "edges": [{"from": "input", "to": "out", "port": 0}]},
        "data": {"dataset": "npz", "options": {"path": "soft.npz"}},
        "training": {"epochs": 1, "device": "cpu"}}
    path = tmp_path / "soft.studio.json"
    path.write_text(json.dumps(project))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: " in err[0] and "class probabilities" in err[0], err
    r = subprocess.run([sys.executable, "-m", "studio", "train", str(path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio:"), lines
    assert "class probabilities" in lines[0] and "Traceback" not in r.stderr
