"""Exports write what was asked for, where it was asked, and nothing of the user's unasked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from studio.core.project import Project, sample_paths
from studio.export import MARKER, MIN_OPSET, ExportError, export, opset_range

SAMPLES = sorted(sample_paths())
MLP = next(p for p in SAMPLES if p.name.startswith("mnist_mlp"))
RESIDUAL = next(p for p in SAMPLES if p.name.startswith("residual_cnn"))
WINE = next(p for p in SAMPLES if p.name.startswith("wine"))


def studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=300)


def opset_of(path: Path) -> int:
    model = onnx.load(str(path))
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("opset", [1, 7, 11, MIN_OPSET - 1, 99])
def test_an_opset_that_cannot_be_written_is_refused_up_front(opset, tmp_path) -> None:
    low, high = opset_range()
    assert (low, high) == (MIN_OPSET, onnx.defs.onnx_opset_version())
    with pytest.raises(ExportError) as err:
        export(Project.load(MLP), "onnx", tmp_path / "m.onnx", opset=opset)
    assert err.value.where == "--opset"
    assert f"opset {opset} cannot be written; choose {low} to {high}" in err.value.message
    assert not (tmp_path / "m.onnx").exists()


def test_the_onnx_file_holds_the_opset_asked_for_or_none_is_written(tmp_path) -> None:
    mlp = Project.load(MLP)
    for opset in (MIN_OPSET, 17, opset_range()[1]):
        report = export(mlp, "onnx", tmp_path / f"m{opset}.onnx", base_dir=MLP.parent,
                        opset=opset)
        assert opset_of(tmp_path / f"m{opset}.onnx") == opset
        assert any(m.startswith(f"opset {opset}; ONNX checker passed") for m in report.messages)
    # measured with torch 2.14: its converter cannot take this network below 18 and falls
    # back silently; a later converter that can must then write the opset asked for
    target = tmp_path / "r.onnx"
    target.write_bytes(b"the user's file")
    try:
        export(Project.load(RESIDUAL), "onnx", target, base_dir=RESIDUAL.parent, opset=17)
    except ExportError as err:
        assert err.where == "--opset"
        assert "cannot be written at opset 17" in err.message
        assert "use --opset 18" in err.message
        assert target.read_bytes() == b"the user's file"  # nothing wrong reached the target
    else:
        assert opset_of(target) == 17


def test_cli_refuses_an_opset_in_one_line_and_reports_the_one_written(tmp_path) -> None:
    r = studio("export", str(MLP), "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
               "--opset", "11")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("studio: error: --opset: opset 11 cannot be written; choose")
    assert not (tmp_path / "m.onnx").exists()
    r = studio("export", str(MLP), "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
               "--opset", "17")
    assert r.returncode == 0, r.stderr
    assert "note: opset 17; ONNX checker passed" in r.stderr
    assert opset_of(tmp_path / "m.onnx") == 17


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "safetensors"])
def test_a_file_export_to_a_folder_or_an_unwritable_place_is_one_line(fmt, tmp_path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = [(tmp_path / "dir", "is a folder; give a file name, e.g. "),
             (Path(f"/proc/nope/m.{fmt}"), "cannot write into /proc: "),
             (tmp_path / "file.txt" / f"m.{fmt}", "file.txt is a file, not a folder")]
    for out, words in cases:
        with pytest.raises(ExportError) as err:
            export(Project.load(WINE), fmt, out)
        assert words in err.value.message and err.value.where == str(out)
        assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file.txt"]


def test_python_export_keeps_out_of_a_folder_of_other_files_unless_forced(tmp_path) -> None:
    project = Project.load(WINE)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    export(project, "python", pkg)  # an empty folder is fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("my notes")
    (other / "data.csv").write_text("1,2\n")
    with pytest.raises(ExportError) as err:
        export(project, "python", other)
    assert err.value.where == str(other)
    assert err.value.message == ("the folder holds files that are not from a Studio export "
                                 "(data.csv); choose an empty folder, or pass --force to "
                                 "replace README.md and keep the rest")
    assert sorted(p.name for p in other.iterdir()) == ["README.md", "data.csv"]
    assert (other / "README.md").read_text() == "my notes"
    export(project, "python", other, force=True)
    assert (other / "README.md").read_text().startswith("# Tabular classifier (wine)")
    assert (other / "data.csv").read_text() == "1,2\n"  # not Studio's: kept
    marker = json.loads((other / MARKER).read_text())
    assert marker["format"] == "studio.export" and marker["export"] == "python"
    assert sorted(marker["files"]) == sorted(p.name for p in other.iterdir()
                                             if p.name not in (MARKER, "data.csv",
                                                               "__pycache__"))
    # now it is an earlier export: exporting again needs no force and keeps the user's files
    (other / "model.py").write_text("# my edits\n")
    export(project, "python", other)
    assert (other / "model.py").read_text().startswith('"""Generated by Studio')
    assert (other / "data.csv").read_text() == "1,2\n"
    # a marker that is not Studio's does not count
    (pkg / MARKER).write_text("{not json")
    (pkg / "mine.txt").write_text("x")
    with pytest.raises(ExportError, match=r"\(mine\.txt\);.* replace README\.md, builders\.py, "
                                          r"config\.json and 7 more and keep"):
        export(project, "python", pkg)


def test_an_export_made_before_the_marker_is_recognised(tmp_path) -> None:
    project = Project.load(WINE)
    pkg = tmp_path / "pkg"
    export(project, "python", pkg)
    (pkg / MARKER).unlink()
    src = (pkg / "model.py").read_text().split("\n", 1)[1]
    old_header = '"""Tabular classifier (wine) — generated by Studio from the project file'
    (pkg / "model.py").write_text(f"{old_header}; edit freely.\n{src}")  # as exports began
    (pkg / "trained.safetensors").write_bytes(b"")  # what running train.py leaves
    export(project, "python", pkg)
    assert (pkg / MARKER).exists() and (pkg / "trained.safetensors").exists()
    (pkg / MARKER).unlink()
    (pkg / "mine.txt").write_text("x")  # without the marker, only Studio's files count
    with pytest.raises(ExportError, match=r"mine\.txt"):
        export(project, "python", pkg)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.py").write_text('"""My own model."""\n')
    with pytest.raises(ExportError, match=r"\(model\.py\); .* --force to replace them$"):
        export(project, "python", alone)
    assert (alone / "model.py").read_text() == '"""My own model."""\n'


def test_cli_python_export_into_other_files_needs_force(tmp_path) -> None:
    (tmp_path / "README.md").write_text("mine")
    r = studio("export", str(WINE), "--format", "python", "--out", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{tmp_path}: the folder holds files that are not from a Studio export" in r.stderr
    assert (tmp_path / "README.md").read_text() == "mine"
    r = studio("export", str(WINE), "--format", "python", "--out", str(tmp_path), "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "README.md").read_text().startswith("# Tabular classifier (wine)")
