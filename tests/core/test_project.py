"""Project files: exact round trips, one readable error per malformed file, atomic saves."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core import project as project_mod
from studio.core.errors import ProjectError
from studio.core.project import Project, default_sample, sample_paths


def sample_dict() -> dict:
    return json.loads(default_sample().read_text())


def load_dict(d: dict) -> Project:
    return Project.loads(json.dumps(d), source="p.studio.json")


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name)
def test_samples_round_trip_exactly(path, tmp_path) -> None:
    p = Project.load(path)
    assert p.dumps() == path.read_text()  # samples are saved in canonical form
    out = p.save(tmp_path / "copy.studio.json")
    q = Project.load(out)
    assert q.to_dict() == p.to_dict()
    assert q.graph.structure() == p.graph.structure()


def test_default_sample_is_the_mnist_cnn_on_mnist_5k() -> None:
    p = Project.load(default_sample())
    assert p.data.dataset == "mnist-5k"
    assert [n.type for n in p.graph].count("Conv2d") == 3


def test_defaults_fill_missing_sections() -> None:
    p = load_dict({"format": "studio.project", "version": 1})
    assert p.training.optimizer == {"type": "Adam", "lr": 0.001}
    assert p.data.batch_size == 64 and len(p.graph) == 0


@pytest.mark.parametrize(("mutate", "where", "message"), [
    (lambda d: d["graph"]["nodes"][2].update(type="Conv3000d"),
     "graph.nodes[2] 'relu1'.type", "unknown layer type 'Conv3000d'"),
    (lambda d: d["graph"]["nodes"][1]["params"].update(out_channels=0),
     "graph.nodes[1] 'conv1'.params.out_channels", "must be ≥ 1, got 0"),
    (lambda d: d["graph"]["nodes"][1]["params"].update(kernal_size=3),
     "graph.nodes[1] 'conv1'.params", "unknown parameter 'kernal_size'"),
    (lambda d: d["graph"]["nodes"][1].update(id="conv 1"),
     "graph.nodes[1].id", "must start with a letter"),
    (lambda d: d["graph"]["edges"][0].update(to="nowhere"),
     "graph.edges[0].to", "no node 'nowhere'"),
    (lambda d: d["graph"]["edges"].append({"from": "dense2", "to": "conv1", "port": 0}),
     "graph.edges[12]", "would make a cycle"),
    (lambda d: d["training"]["optimizer"].update(lr="fast"),
     "training.optimizer.lr", "must be a number"),
    (lambda d: d["training"].update(loss={"type": "os.system"}),
     "training.loss", "unknown loss 'os.system'"),
    (lambda d: d["training"].update(epochs=0),
     "training.epochs", "must be ≥ 1, got 0"),
    (lambda d: d["data"].update(dataset="imagenet"),
     "data.dataset", "unknown dataset 'imagenet'"),
    (lambda d: d["data"].update(augment=[{"type": "hflip", "p": 2}]),
     "data.augment[0].p", "must be ≤ 1"),
    (lambda d: d.update(version=99), "version", "written by a newer Studio"),
    (lambda d: d.update(format="other"), "format", "not a Studio project"),
    (lambda d: d["data"].update(batchsize=3), "data.batchsize", "unknown field"),
])
def test_malformed_file_names_the_field(mutate, where, message) -> None:
    d = sample_dict()
    mutate(d)
    with pytest.raises(ProjectError) as exc:
        load_dict(d)
    assert exc.value.where == f"p.studio.json: {where}"
    assert message in exc.value.message


def test_bad_json_names_line_and_column() -> None:
    text = default_sample().read_text().replace('"version": 1,', '"version": 1,,')
    with pytest.raises(ProjectError) as exc:
        Project.loads(text, source="x.json")
    assert exc.value.where == "x.json, line 3 column 16"


def test_missing_and_oversized_files(tmp_path, monkeypatch) -> None:
    with pytest.raises(ProjectError, match="file not found"):
        Project.load(tmp_path / "nope.studio.json")
    big = tmp_path / "big.studio.json"
    big.write_text(" " * 2000)
    monkeypatch.setattr(project_mod, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ProjectError, match="larger than 1,000 bytes, the limit for project files"):
        Project.load(big)


def test_old_versions_are_migrated(monkeypatch) -> None:
    """A file from version 1 keeps loading once the format moves on (through every step)."""
    def v2_to_v3(d: dict) -> dict:
        d = dict(d)
        d["name"] = d["name"] + " (migrated)"
        return d
    monkeypatch.setattr(project_mod, "VERSION", 3)
    monkeypatch.setitem(project_mod.MIGRATIONS, 2, v2_to_v3)
    raw = sample_dict()
    assert raw["version"] == 1
    p = load_dict(raw)
    assert p.name == "MNIST CNN (migrated)"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch) -> None:
    p = Project.load(default_sample())
    target = tmp_path / "a.studio.json"
    p.save(target)
    before = target.read_bytes()

    def boom(*_a):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    p.name = "changed"
    with pytest.raises(OSError):
        p.save(target)
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["a.studio.json"]


def test_loading_never_imports_names_from_the_file() -> None:
    d = sample_dict()
    d["training"]["optimizer"] = {"type": "__import__('os').system('touch /tmp/pwned')"}
    with pytest.raises(ProjectError, match="unknown optimizer"):
        load_dict(d)


# -- fuzzing ------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=False), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _paths(d, prefix=()):
    yield prefix
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(sample_dict()) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=json_value, delete=st.booleans())
def test_fuzzed_projects_load_or_raise_project_error(path, value, delete) -> None:
    d = sample_dict()
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        p = load_dict(d)
    except ProjectError as exc:
        assert exc.where and str(exc)
    else:
        assert Project.loads(p.dumps()).to_dict() == p.to_dict()


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=200), json_value.map(json.dumps)))
def test_arbitrary_text_loads_or_raises_project_error(text) -> None:
    with contextlib.suppress(ProjectError):
        Project.loads(text)


def test_text_that_utf8_cannot_hold_is_refused_when_the_file_loads() -> None:
    text = Project(name="ok").dumps().replace('"name": "ok"', '"name": "a\\ud800b"')
    with pytest.raises(ProjectError) as err:
        Project.loads(text)
    assert err.value.where.endswith(": name") and "lone surrogate" in err.value.message
    nested = Project().dumps().replace('"options": {}', '"options": {"path": "\\udfff"}')
    with pytest.raises(ProjectError, match=r"data\.options\.path"):
        Project.loads(nested)


def test_description_round_trips_and_is_absent_when_empty(tmp_path) -> None:
    d = sample_dict()
    d["description"] = "a one-line note"
    assert load_dict(d).description == "a one-line note"
    project = load_dict(d)
    project.description = ""
    assert "description" not in project.to_dict()  # older Studios still open such files
    d["description"] = ["not", "text"]
    with pytest.raises(ProjectError) as exc:
        load_dict(d)
    assert exc.value.where.endswith("description") and "must be text" in str(exc.value)
