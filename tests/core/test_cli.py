"""The CLI as users run it: a real subprocess, exit codes and what it prints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from studio.core.project import default_sample, sample_paths


def studio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=120)


def test_summary_prints_keras_style_table() -> None:
    r = studio("summary", str(default_sample()))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == 'Model: "MNIST CNN"'
    row = next(line for line in lines if line.startswith("conv1 (Conv2d)"))
    assert "(N, 32, 26, 26)" in row and "320" in row and "194,688" in row
    assert "Total params: 93,322" in lines  # as Keras prints for the book's MNIST convnet


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name)
def test_summary_json_matches_built_module(path) -> None:
    import torch  # noqa: F401 - the built module is the reference

    from studio.core.build import build_module
    from studio.core.project import Project

    r = studio("summary", "--json", str(path))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    model = build_module(Project.load(path).graph)
    assert s["total_params"] == sum(p.numel() for p in model.parameters())
    assert s["trainable_params"] == s["total_params"]
    assert s["total_macs"] == sum(n["macs"] for n in s["nodes"]) > 0
    named = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert named <= {n["id"] for n in s["nodes"] if n["params"]}


def test_validate_ok_and_broken(tmp_path) -> None:
    r = studio("validate", str(default_sample()))
    assert r.returncode == 0 and "OK" in r.stdout
    d = json.loads(default_sample().read_text())
    d["graph"]["edges"] = [e for e in d["graph"]["edges"] if e["to"] != "dense1"]
    bad = tmp_path / "broken.studio.json"
    bad.write_text(json.dumps(d))
    r = studio("validate", str(bad))
    assert r.returncode == 2
    assert "Linear 'dense1': input is not connected" in r.stderr


@pytest.mark.parametrize("content", ["{not json", '{"format": "studio.project", "version": 1, '
                                     '"graph": {"nodes": [{"id": "a", "type": "Lineer"}]}}'])
def test_bad_input_exits_2_with_one_line(tmp_path, content) -> None:
    f = tmp_path / "bad.studio.json"
    f.write_text(content)
    for cmd in ("summary", "validate"):
        r = studio(cmd, str(f))
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1
        assert r.stderr.startswith("studio: error: ") and "Traceback" not in r.stderr
    r = studio("summary", str(tmp_path / "missing.studio.json"))
    assert r.returncode == 2 and "file not found" in r.stderr
