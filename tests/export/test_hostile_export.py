"""A project is untrusted input: its text reaches generated code only as data.

Every string a project holds (its name, data paths, column names, metric names, the initial
weights path) carries payloads that create a marker file if they ever run as code: while
Studio exports and verifies the package, or later when a user imports ``model`` and ``train``
and reads ``config.json``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from studio.core.project import Project, sample_paths
from studio.export import export
from studio.export.quote import py_str, py_value
from studio.training.checkpoint import load_weights

WINE = next(p for p in sample_paths() if p.name.startswith("wine"))


def quote_free(text: str) -> str:
    """An expression for ``text`` without quotes, so a payload can sit inside any quoting."""
    return f"bytes({tuple(text.encode())}).decode()"


#: the shortest text setting a project holds (``early_stopping.monitor``); every payload fits
SHORTEST_FIELD = 200


@pytest.fixture
def marker() -> Iterator[Path]:
    """A file that payloads create if they run: its path kept short (in the system's temporary
    folder, not pytest's deeper one) so that every payload fits every field."""
    folder = Path(tempfile.mkdtemp(prefix="pw"))
    yield folder / "M"
    shutil.rmtree(folder)


def payloads(marker: Path) -> dict[str, str]:
    code = f"open({quote_free(str(marker))},chr(119))"  # creates the marker when it runs
    return {
        # this one ran in Studio's process when it verified the export, and at every import
        "class-net": ('Iris"""; import os, torch; from torch import nn; ' + code
                      + "; '''\nclass Net(nn.Module):\n    \"\"\""),
        "triple-double": f'Iris"""; {code}; """',
        "triple-single": f"Iris'''; {code}; '''",
        "newline": f"Iris\n{code}\n# ",
        "crlf-nul": f"Iris\r\n\x00{code}\r",
        "line-separators": f"Iris\u2028{code}\u2029",
        "nel-form-feed": f"Iris\x85{code}\x0c",
        "backslash-end": 'Iris"""\\',
        "fstring-braces": f"Iris {{{code}}} {{name!r}} {{0}}",
        "bidi": f"Iris\u202e\"\"\"; {code}; \"\"\"\u2066",
    }


def hostile(name: str, dataset: str) -> Project:
    """The wine network with ``name`` in every string field a project can hold."""
    p = Project.load(WINE)
    d = p.to_dict()
    d["name"] = name
    options = {"path": name, "target": name} if dataset == "csv" else {"root": name}
    d["data"] = {**d["data"], "dataset": dataset, "options": options}
    assert len(name) <= SHORTEST_FIELD, f"a payload of {len(name)} characters: shorten it"
    d["training"] = {**d["training"], "init_weights": name,
                     "early_stopping": {"monitor": name},
                     "scheduler": {"type": "ReduceLROnPlateau", "monitor": name}}
    return Project.from_dict(d)


def test_py_str_is_a_one_line_literal_of_any_text() -> None:
    texts = ['a"""b', "a'''b", "\\", "a\\", "\n\r\x00\u2028\u2029\x85\x0c\x0b", "\ud800x\udfff",
             "{__import__('os')}", "\u202e\u2066", "Café — ✓", "", "'\"", "\x1b[31m"]
    for text in texts:
        lit = py_str(text)
        assert len(lit.splitlines()) == 1 and lit.isprintable(), lit
        assert ast.literal_eval(lit) == text
        tree = ast.parse(f"X = {lit}\n")
        assert isinstance(tree.body[0].value, ast.Constant)  # data, not code
    value = {"a": [1, 2.5, None, True, texts], texts[0]: {"x": float("inf"), "n": -1}}
    tree = ast.parse(f"X = {py_value(value)}\n")
    assert len(tree.body) == 1
    assert eval(compile(ast.Expression(tree.body[0].value), "<t>", "eval"), {}) == value


def test_no_project_text_runs_as_code_in_an_export_or_its_import(tmp_path, marker) -> None:
    packages: list[tuple[Path, Project]] = []
    for i, (label, name) in enumerate(payloads(marker).items()):
        project = hostile(name, "csv" if i % 2 else "mnist")
        pkg = tmp_path / f"{label}_py"
        export(project, "python", pkg)
        assert not marker.exists(), f"{label}: ran while Studio exported it"
        packages.append((pkg, project))
        # the route of a shared weights file: the project embedded in it, opened and exported
        shared = tmp_path / f"{label}.safetensors"
        export(project, "safetensors", shared)
        _state, meta = load_weights(shared)
        again = Project.loads(meta["studio.project"])
        assert again.name == name
        export(again, "python", tmp_path / f"{label}_shared_py", weights=shared)
        assert not marker.exists(), f"{label}: ran while Studio exported it from weights"
        packages.append((tmp_path / f"{label}_shared_py", again))
    # a user imports the packages later: in a fresh interpreter, from inside each folder
    modules = ("model", "train", "loaders", "builders", "split")
    script = ("import json, os, sys\n"
              "out = []\n"
              "for d in sys.argv[1:]:\n"
              "    os.chdir(d)\n"
              "    sys.path.insert(0, d)\n"
              "    import model, train\n"
              "    out.append([model.PROJECT_NAME, train.load_config(),\n"
              "                sum(p.numel() for p in model.Net().parameters())])\n"
              f"    for m in {modules!r}:\n"
              "        del sys.modules[m]\n"
              "    sys.path.pop(0)\n"
              "print(json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", script, *(str(p) for p, _ in packages)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert not marker.exists(), "ran when the generated package was imported"
    assert r.returncode == 0, r.stderr[-3000:]
    templates = resources.files("studio.export") / "templates"
    for (pkg, project), (model_name, config, n) in zip(packages, json.loads(r.stdout),
                                                       strict=True):
        assert model_name == config["project"] == project.name
        assert config["data"] == project.data.model_dump(mode="json")
        t = config["training"]
        assert t["init_weights"] == t["scheduler"]["monitor"] == project.name
        assert t["early_stopping"]["monitor"] == project.name
        assert n > 0
        # the name stays visible to a reader of model.py, as a literal; the code Studio
        # copies holds no project text at all: every byte is the template's
        src = (pkg / "model.py").read_text(encoding="utf-8")
        body = ast.parse(src).body
        assert isinstance(body[0], ast.Expr) and all(  # a docstring, then no statement that
            isinstance(n, ast.Import | ast.ImportFrom | ast.Assign | ast.ClassDef)  # runs
            for n in body[1:])
        assigned = [n for n in body if isinstance(n, ast.Assign)]
        assert len(assigned) == 1 and ast.unparse(assigned[0].targets[0]) == "PROJECT_NAME"
        assert isinstance(assigned[0].value, ast.Constant)  # one literal, however it is laid out
        assert assigned[0].value.value == project.name
        for file in ("train.py", "loaders.py"):
            assert (pkg / file).read_bytes() == (templates / file).read_bytes()
        # config.json is data: plain ASCII JSON, whatever the name holds
        raw = (pkg / "config.json").read_bytes()
        assert raw.isascii() and json.loads(raw) == config
        readme = (pkg / "README.md").read_text(encoding="utf-8")
        assert readme.startswith("# Iris") and readme.splitlines()[1] == ""
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "-q",
                           *(str(p) for p, _ in packages)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("name", ['x"""\n', "x\\"], ids=["quotes", "backslash"])
def test_readme_heading_stays_one_line(name, tmp_path) -> None:
    export(hostile(name + "\u2028# injected", "csv"), "python", tmp_path / "pkg")
    first = (tmp_path / "pkg" / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# x") and first.endswith("# injected")
