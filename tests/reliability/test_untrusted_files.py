"""Opening files from elsewhere: nothing executes, nothing is written where a file says."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from studio.core.errors import DatasetError, ProjectError, TrainingError
from studio.core.project import Project, sample_paths
from studio.data.sources import load_arrays
from studio.training.checkpoint import load_checkpoint
from tests.training.test_data import make_mnist


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_checkpoint_with_code_in_it_is_refused_and_nothing_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "studio.checkpoint", "version": 1, "model": Boom()}, path)
    with pytest.raises(TrainingError, match="not a readable Studio checkpoint"):
        load_checkpoint(path)
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(Boom(), f)
    with pytest.raises(TrainingError):
        load_checkpoint(tmp_path / "evil.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_a_cifar_batch_with_code_in_it_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": Boom(), "labels": [0]}, f, protocol=2)
    with pytest.raises(DatasetError, match=r"refusing to load __builtin__\.exec"):
        load_arrays("cifar10", {"root": str(tmp_path)})
    assert not (tmp_path / "PWNED").exists()


def test_project_files_name_only_allow_listed_types() -> None:
    doc = json.loads(next(iter(sample_paths())).read_text())
    for where, value in (("loss", {"type": "os.system"}),
                         ("optimizer", {"type": "__import__", "lr": 1})):
        bad = json.loads(json.dumps(doc))
        bad["training"][where] = value
        with pytest.raises(ProjectError, match=f"training.{where}"):
            Project.loads(json.dumps(bad))
    bad = json.loads(json.dumps(doc))
    bad["graph"]["nodes"][1]["type"] = "subprocess.Popen"
    with pytest.raises(ProjectError, match="unknown layer type"):
        Project.loads(json.dumps(bad))


def test_size_limits_say_what_they_are(tmp_path) -> None:
    big = tmp_path / "big.studio.json"
    big.write_bytes(b" " * (64 * 1024 * 1024 + 1))
    with pytest.raises(ProjectError, match="MiB"):
        Project.load(big)
    nodes = [{"id": f"n{i}", "type": "ReLU"} for i in range(10_001)]
    with pytest.raises(ProjectError, match="at most 10000"):
        Project.loads(json.dumps({"format": "studio.project", "version": 1,
                                  "graph": {"nodes": nodes, "edges": []}}))


def test_downloads_go_to_studios_folder_not_where_the_project_points(tmp_path, monkeypatch
                                                                    ) -> None:
    """A project saying root=/somewhere, download=true must not make the app write there."""
    import torchvision.datasets as tvd

    own = tmp_path / "studio-data"
    monkeypatch.setenv("STUDIO_DATA_DIR", str(own))
    monkeypatch.delenv("STUDIO_NO_DOWNLOAD", raising=False)
    roots = []

    class Downloader:  # stands in for the network: writes real IDX files where it is told
        def __init__(self, root, train, download):
            roots.append(root)
            if train:
                make_mnist(Path(root))

    monkeypatch.setattr(tvd, "MNIST", Downloader)
    theirs = tmp_path / "theirs"
    a = load_arrays("mnist", {"root": str(theirs), "download": True})
    assert len(a.x) == 60 and not theirs.exists()
    assert roots and all(r == str(own) for r in roots)


posix = pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")


@posix
def test_devices_pipes_and_folders_are_never_read_as_files(tmp_path) -> None:
    """Each of these used to read forever, block forever or crash with a traceback."""
    import os

    from studio.training.checkpoint import load_weights
    from studio.training.transfer import read_state

    fifo = tmp_path / "pipe.studio.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    for path, kind in ((fifo, r"a pipe \(FIFO\)"), (zero, "a device"), (tmp_path, "a folder")):
        with pytest.raises(ProjectError, match=f"is {kind}, not a file"):
            Project.load(path)
    for reader in (load_checkpoint, load_weights, read_state):
        for path, kind in ((fifo, "a pipe"), (zero, "a device")):
            with pytest.raises(TrainingError, match=f"is {kind}"):
                reader(path)


@posix
def test_initial_weights_linked_to_dev_zero_fail_the_run_at_once(tmp_path) -> None:
    from studio.training import Trainer
    from tests.training.helpers import mlp

    link = tmp_path / "w.safetensors"
    link.symlink_to("/dev/zero")
    result = Trainer(mlp(epochs=1, init_weights=str(link))).fit()
    assert result.status == "failed"
    assert "is a device, not a file" in result.message
    assert "training.init_weights" in result.message


def test_a_project_inside_weights_has_the_project_files_limit(tmp_path) -> None:
    from studio.core.project import MAX_FILE_BYTES
    from studio.training.checkpoint import embedded_project, load_weights, save_weights

    project = Project.load(sample_paths()[0])
    text = project.dumps()
    padded = text.replace('"name": ', '"name": "' + "x" * (MAX_FILE_BYTES + 10) + '", "_": ', 1)
    path = tmp_path / "big.safetensors"
    save_weights(path, {"w": torch.zeros(1)}, {"studio.project": padded})
    _, meta = load_weights(path)
    with pytest.raises(ProjectError, match="its embedded project is larger than 64 MiB, the limit"):
        embedded_project(meta, path)
    save_weights(path, {"w": torch.zeros(1)}, {"studio.project": text})
    assert embedded_project(load_weights(path)[1], path).name == project.name
