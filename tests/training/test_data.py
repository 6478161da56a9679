"""Datasets from real on-disk formats written by the tests, and the batching around them."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from studio.core.errors import DatasetError
from studio.core.project import DataSettings
from studio.data import load_arrays, load_data
from studio.data.batches import Augmenter, Batches
from studio.data.split import split_indices


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                      *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_mnist(root, name="MNIST", n=60, n_test=20):
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.RandomState(0)
    write_idx(raw / "train-images-idx3-ubyte.gz", rng.randint(0, 256, (n, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(n) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.randint(0, 256, (n_test, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)


def make_cifar(root, per_batch=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.randint(0, 256, (per_batch, 3072)).astype(np.uint8),
                 "labels": [int(v) for v in np.arange(per_batch) % 10],
                 "batch_label": name}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_mnist_5k_is_real_and_cached() -> None:
    a = load_arrays("mnist-5k", {})
    assert a.x.shape == (5000, 1, 28, 28) and a.x.dtype == np.uint8
    assert sorted(set(a.y.tolist())) == list(range(10))
    b = load_arrays("mnist-5k", {})  # second time from the .npz cache
    assert np.array_equal(a.x, b.x)


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast-cancer", "diabetes"])
def test_bundled_sets(name) -> None:
    a = load_arrays(name, {})
    assert len(a.x) == len(a.y) > 100
    assert a.task == ("regression" if name == "diabetes" else "classification")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_torchvision_idx_files_are_read(tmp_path, name) -> None:
    make_mnist(tmp_path, "MNIST" if name == "mnist" else "FashionMNIST")
    a = load_arrays(name, {"root": str(tmp_path)})
    assert a.x.shape == (60, 1, 28, 28) and a.x_test.shape == (20, 1, 28, 28)
    assert a.classes[0] == ("0" if name == "mnist" else "T-shirt/top")


def test_cifar10_batches_are_read_without_executing_pickles(tmp_path) -> None:
    make_cifar(tmp_path)
    a = load_arrays("cifar10", {"root": str(tmp_path)})
    assert a.x.shape == (100, 3, 32, 32) and a.x_test.shape == (20, 3, 32, 32)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(DatasetError, match=r"refusing to load builtins\.print"):
        load_arrays("cifar10", {"root": str(tmp_path)})


def test_missing_torchvision_files_say_where_and_what_to_do(tmp_path) -> None:
    with pytest.raises(DatasetError) as exc:
        load_arrays("mnist", {"root": str(tmp_path)})
    msg = str(exc.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "download" in msg
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_arrays("cifar10", {"root": str(tmp_path)})


def test_csv_with_text_columns_and_named_target(tmp_path) -> None:
    f = tmp_path / "pets.csv"
    f.write_text("weight,colour,kind\n4.0,black,cat\n30,brown,dog\n5.5,white,cat\n"
                 "25,black,dog\n")
    a = load_arrays("csv", {"path": "pets.csv", "target": "kind"}, tmp_path)
    assert a.task == "classification" and a.classes == ["cat", "dog"]
    assert a.x.shape == (4, 4)  # weight + 3 one-hot colours
    assert a.y.tolist() == [0, 1, 0, 1]
    a = load_arrays("csv", {"path": str(f), "target": "weight", "categorical": "ordinal"})
    assert a.task == "regression" and a.x.shape == (4, 2)


def test_csv_errors_name_the_line_and_column(tmp_path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(DatasetError) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 3"
    f.write_text('a,b\n"one\ntwo",2\n\n3\n4,5\n')  # lines of the file, not rows of the table
    with pytest.raises(DatasetError) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 5"
    f.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DatasetError, match="no column 'c'"):
        load_arrays("csv", {"path": str(f), "target": "c"})
    with pytest.raises(DatasetError, match="does not exist"):
        load_arrays("csv", {"path": str(tmp_path / "nope.csv")})


def test_npz_and_image_folder(tmp_path) -> None:
    from PIL import Image

    np.savez(tmp_path / "d.npz", x=np.random.rand(30, 5).astype(np.float32),
             y=np.arange(30) % 3)
    a = load_arrays("npz", {"path": "d.npz"}, tmp_path)
    assert a.task == "classification" and a.x.shape == (30, 5)
    for c, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20, 10 + i), colour).save(tmp_path / "img" / c / f"{i}.png")
    a = load_arrays("image-folder", {"path": "img", "size": [8, 8]}, tmp_path)
    assert a.x.shape == (6, 3, 8, 8) and a.classes == ["blue", "red"]
    assert a.x[0, 2].min() == 255 and a.x[-1, 0].min() == 255  # blue first, then red


def test_stratified_split_keeps_class_shares() -> None:
    y = np.array([0] * 80 + [1] * 20)
    tr, va = split_indices(y, 0.2, seed=0, stratify=True)
    assert len(va) == 20 and (y[va] == 1).sum() == 4
    assert not set(tr) & set(va) and len(tr) + len(va) == 100


def test_load_data_normalises_with_training_statistics() -> None:
    b = load_data(DataSettings(dataset="wine", val_fraction=0.25), seed=1)
    assert b.x_train.mean(0).abs().max() < 1e-4
    assert torch.allclose(b.x_train.std(0, unbiased=False), torch.ones(13), atol=1e-3)
    assert len(b.x_val) == pytest.approx(178 * 0.25, abs=2)


def test_batches_cover_every_sample_once_and_resume_mid_epoch() -> None:
    x = torch.arange(10.0)[:, None]
    g = torch.Generator().manual_seed(0)
    batches = Batches(x, x[:, 0], 3, shuffle=True, generator=g)
    state = g.get_state()
    seen = torch.cat([xb for xb, _ in batches.epoch()])
    # 3 + 3 + 4: the tenth sample joins the last batch (BatchNorm cannot train on one)
    assert sorted(seen[:, 0].tolist()) == list(range(10)) and len(batches) == 3
    g.set_state(state)
    tail = torch.cat([xb for xb, _ in batches.epoch(start=2)])
    assert torch.equal(tail, seen[6:])


def test_augmentation_draws_per_sample() -> None:
    x = torch.arange(4 * 8 * 8, dtype=torch.float32).reshape(4, 1, 8, 8).repeat(16, 1, 1, 1)
    aug = Augmenter([{"type": "random_crop", "padding": 2}, {"type": "hflip"}],
                    torch.tensor([-1.0]), torch.Generator().manual_seed(0))
    out = aug(x)
    assert out.shape == x.shape
    distinct = {tuple(o.flatten().tolist()) for o in out[::4]}
    assert len(distinct) > 4  # the same image comes out differently across the batch
    assert (out == -1.0).any()  # padding shows the fill value
