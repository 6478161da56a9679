"""The wheel alone is a working Studio: samples and icons ship inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_of_the_source_tree_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "studio").rglob(
        "__init__.py")}
    assert found <= listed, f"add to pyproject.toml: {sorted(found - listed)}"
    assert {"studio.samples", "studio.resources"} <= listed


def test_a_wheel_installed_elsewhere_opens_the_default_sample(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True,
                   capture_output=True, timeout=300, cwd=tmp_path)
    wheel = next(wheels.glob("studio-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "studio/samples/mnist_cnn.studio.json" in names
    assert "studio/resources/icons/studio.svg" in names
    assert "studio/export/templates/train.py" in names  # the exported package's script
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q",
                    "--target", str(site), str(wheel)], check=True, capture_output=True,
                   timeout=300, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                             "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import studio, studio.core.project as p; "
                            "print(studio.__file__); print(p.default_sample())"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    module, sample = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(sample).is_relative_to(site)
    # no display: `studio` with no file prints the default sample's summary
    r = subprocess.run([sys.executable, "-m", "studio"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MNIST CNN" in r.stdout and "mnist_cnn.studio.json: valid" in r.stdout
    r = subprocess.run([sys.executable, "-m", "studio", "summary", sample],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "Total" in r.stdout, r.stderr
