"""Hostile data files (issue 13): each ends in one readable DatasetError naming the place, or in
a correct load; never a hang, a memory blow-up, an internal exception or a silently wrong
result. Paths that used to hang or eat memory run in a child process with capped memory and a
time limit, so a regression fails here instead of stalling the suite."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.errors import DatasetError
from studio.core.project import DataSettings
from studio.data import load_arrays, load_data
from studio.data.lazy import ImageFiles, LoaderBatches
from tests.reliability.fuzz_targets import npy_bytes, npz_bytes
from tests.training.test_data import make_cifar, make_mnist

posix = pytest.mark.skipif(sys.platform == "win32", reason="needs FIFOs and /dev/zero")

CHILD = r"""
import json, os, sys
from studio.core.errors import StudioError
from studio.core.project import DataSettings
from studio.data import load_data
for name, dataset, options, env in json.loads(sys.argv[1]):
    os.environ.update(env)
    try:
        b = load_data(DataSettings(dataset=dataset, options=options))
        out = {"outcome": "loaded", "n": b.n_train + b.n_val, "messages": b.messages}
    except StudioError as exc:
        out = {"outcome": type(exc).__name__, "message": exc.message, "where": exc.where}
    except BaseException as exc:
        out = {"outcome": type(exc).__name__, "message": str(exc)[:300]}
    print(json.dumps({"case": name, **out}), flush=True)
"""


def png(width: int, height: int, colour: int = 0) -> bytes:
    """A valid 1-bit PNG of one colour: a few KB on disk however many pixels it declares."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    row = b"\0" + bytes([255 * colour]) * ((width + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def image_folder(root: Path, per_class: int = 3) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(png(12, 10, colour=int(c == "b")))
    return root


@pytest.fixture(scope="module")
def child_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every path that once hung or read without end, loaded in one capped child process."""
    if sys.platform == "win32":
        pytest.skip("needs FIFOs and /dev/zero")
    import resource

    tmp = tmp_path_factory.mktemp("hostile")
    os.mkfifo(tmp / "pipe.csv")
    os.mkfifo(tmp / "pipe.npz")
    folder = image_folder(tmp / "img")
    os.mkfifo(folder / "a" / "x.png")
    (folder / "b" / "zero.png").symlink_to("/dev/zero")
    (folder / "b" / "folder.png").mkdir()
    (folder / "b" / "gone.png").symlink_to(tmp / "nothing")
    make_mnist(tmp / "mnist")
    raw = tmp / "mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw.unlink()
    os.mkfifo(raw)
    make_cifar(tmp / "cifar")
    batch = tmp / "cifar" / "cifar-10-batches-py" / "data_batch_1"
    batch.unlink()
    batch.symlink_to("/dev/zero")
    cases = [  # the ones that raised internal errors or ate memory first, the hangs last
        ("csv folder", "csv", {"path": str(tmp)}, {}),
        ("npz folder", "npz", {"path": str(tmp)}, {}),
        ("csv /dev/zero", "csv", {"path": "/dev/zero"}, {}),
        ("cifar batch linked to /dev/zero", "cifar10", {"root": str(tmp / "cifar")}, {}),
        ("csv fifo", "csv", {"path": str(tmp / "pipe.csv")}, {}),
        ("npz fifo", "npz", {"path": str(tmp / "pipe.npz")}, {}),
        ("mnist idx fifo", "mnist", {"root": str(tmp / "mnist")}, {}),
        ("image folder", "image-folder", {"path": str(folder), "size": [8, 8]}, {}),
        ("image folder, lazy", "image-folder", {"path": str(folder), "size": [8, 8]},
         {"STUDIO_IN_MEMORY_MB": "0"}),
    ]
    with open("/proc/self/status") as f:  # this process has torch loaded, as the child will
        vm = next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmSize:"))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), vm + (2 << 30)))

    try:
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cases)], text=True,
                             capture_output=True, timeout=120, preexec_fn=cap).stdout
    except subprocess.TimeoutExpired as exc:  # a hang: the cases before it still count
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    found = {d["case"]: d for d in map(json.loads, out.splitlines())}
    return {name: found.get(name, {"outcome": "did not finish in 120 s"})
            for name, *_ in cases}


@posix
@pytest.mark.parametrize("case, kind", [
    ("csv folder", "is a folder"), ("npz folder", "is a folder"),
    ("csv /dev/zero", "is a device"), ("cifar batch linked to /dev/zero", "is a device"),
    ("csv fifo", "is a pipe"), ("npz fifo", "is a pipe"), ("mnist idx fifo", "is a pipe")])
def test_only_regular_files_are_read(child_outcomes, case, kind) -> None:
    got = child_outcomes[case]
    assert got["outcome"] == "DatasetError", got
    assert got["message"].startswith(kind) and got["where"], got


@posix
@pytest.mark.parametrize("case", ["image folder", "image folder, lazy"])
def test_image_folder_skips_entries_that_are_not_files_and_says_so(child_outcomes, case
                                                                    ) -> None:
    got = child_outcomes[case]
    assert got["outcome"] == "loaded", got
    assert got["n"] == 6
    assert any("4 entries named like images but not regular files" in m
               for m in got["messages"]), got["messages"]


@posix
def test_a_file_that_became_a_pipe_after_listing_is_refused_not_waited_on(tmp_path) -> None:
    os.mkfifo(tmp_path / "x.png")
    files = ImageFiles([tmp_path / "x.png"], np.array([0]), (8, 8), gray=False)
    with pytest.raises(DatasetError, match="is a pipe") as exc:
        files.read(0)
    assert exc.value.where == str(tmp_path / "x.png")
    pixels, label, problem = files[0]  # what a DataLoader worker sees: no exception
    assert problem.startswith("is a pipe") and pixels.shape == (3, 8, 8) and label == 0


def test_damaged_idx_files_are_refused_naming_the_file(tmp_path) -> None:
    make_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte.gz"
    labels.unlink()
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x03\0\0")  # 3 dims, cut short
    with pytest.raises(DatasetError, match="the IDX header is cut short") as exc:
        load_arrays("mnist", {"root": str(tmp_path)})
    assert exc.value.where == str(raw / "train-labels-idx1-ubyte")
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + struct.pack(">I", 59)
                                                  + bytes(59))
    with pytest.raises(DatasetError, match="60 images but 59 labels"):
        load_arrays("mnist", {"root": str(tmp_path)})


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_the_csv_size_limit_counts_bytes_read_not_what_stat_says(monkeypatch) -> None:
    """/proc files are regular files whose size reads as 0 however much they hold."""
    import studio.data.tables as tables

    assert Path("/proc/self/maps").stat().st_size == 0
    monkeypatch.setattr(tables, "MAX_CSV_BYTES", 100)
    with pytest.raises(DatasetError, match="is larger than 100 bytes, the limit") as exc:
        load_arrays("csv", {"path": "/proc/self/maps"})
    assert exc.value.where == "/proc/self/maps"


# -- CSV ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["", "nan", "NaN", "NA", "null"])
def test_a_missing_regression_target_names_the_line_and_column(tmp_path, cell) -> None:
    rows = "".join(f"{i},{i * 1.5 + 0.25}\n" for i in range(40))
    f = tmp_path / "data.csv"
    f.write_text(f"size,price\n{rows}41,{cell}\n42,3.25\n")
    with pytest.raises(DatasetError) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 42"
    assert "the target 'price'" in exc.value.message and "fill it or remove the row" in \
        exc.value.message


@pytest.mark.parametrize("cell", ["", "nan", "NA", "null", "?"])
def test_a_missing_cell_in_a_numeric_column_is_refused_not_one_hot(tmp_path, cell) -> None:
    f = tmp_path / "data.csv"
    f.write_text(f"a,b,label\n1,2,x\n3,4,y\n\n5,{cell},x\n7,8,y\n")
    with pytest.raises(DatasetError) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 5"  # the blank line 4 counts
    assert exc.value.message.startswith("column 'b' is ")


def test_a_text_column_keeps_empty_cells_as_a_category_and_says_so(tmp_path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("colour,label\nred,0\n,1\nblue,0\nred,1\n")
    a = load_arrays("csv", {"path": str(f)})
    assert a.x.shape == (4, 3)
    assert a.messages == ["column 'colour': 1 missing cell(s), the first on line 3, are read "
                          "as a category of their own"]


def test_numeric_labels_are_grouped_by_value(tmp_path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("x,label\n0,1\n1,1.0\n2,2\n3,2.00\n4,10\n5,1e1\n")
    a = load_arrays("csv", {"path": str(f)})
    assert a.task == "classification" and a.classes == ["1", "2", "10"]
    assert a.y.tolist() == [0, 0, 1, 1, 2, 2]


def test_huge_integers_normalise_in_float64(tmp_path) -> None:
    """Values near 1e18 (ids, nanosecond times): float32 statistics overflowed, std was inf and
    the column silently became 0."""
    v = np.random.RandomState(0).randint(0, 9 * 10**18, 1000, dtype=np.int64)
    f = tmp_path / "data.csv"
    f.write_text("id,label\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(v)))
    b = load_data(DataSettings(dataset="csv", options={"path": str(f)}, val_fraction=0.0))
    assert b.norm["std"][0] == pytest.approx(v.std(), rel=1e-3)
    assert float(b.x_train[:, 0].std(unbiased=False)) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("cell, says", [("1e39", "beyond the range of 32-bit floats"),
                                        ("inf", "not a finite number"),
                                        ("-1e309", "not a finite number")])
def test_values_float32_cannot_hold_name_the_line_and_column(tmp_path, cell, says) -> None:
    f = tmp_path / "data.csv"
    f.write_text(f"a,b,label\n1,2,x\n3,{cell},y\n5,6,x\n")
    with pytest.raises(DatasetError, match=says) as exc:
        load_arrays("csv", {"path": str(f)})
    assert exc.value.where == f"{f}, line 3" and "column 'b'" in exc.value.message


# -- npz ----------------------------------------------------------------------------------

def declared(shape: tuple[int, ...], descr: str = "<f8", body: bytes = b"\0" * 64) -> bytes:
    """An .npy member whose header declares ``shape`` over a body of a few bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + body


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


X, Y = np.random.RandomState(0).rand(6, 3), np.arange(6) % 2
GOOD = npz_bytes(x=X, y=Y)

HOSTILE_NPZ = {
    "an .npy renamed .npz": (npy_bytes(X), "single .npy array"),
    "x 0-d": (npz_bytes(x=np.array(1.0), y=Y), "array 'x' is a single value (0-d)"),
    "y 0-d": (npz_bytes(x=X, y=np.array(1)), "array 'y' is a single value (0-d)"),
    "complex x": (npz_bytes(x=X + 1j, y=Y), "array 'x' holds complex numbers (dtype complex128)"),
    "complex y": (npz_bytes(x=X, y=Y + 0j), "array 'y' holds complex numbers"),
    "object x": (npz_bytes(x=np.array([{}] * 6, dtype=object), y=Y),
                 "array 'x' holds Python objects (dtype object)"),
    "text x": (npz_bytes(x=np.array(["a"] * 6), y=Y), "array 'x' holds text (dtype <U1)"),
    "dates x": (npz_bytes(x=np.zeros(6, "datetime64[s]"), y=Y), "array 'x' holds dates"),
    "records x": (npz_bytes(x=np.zeros(6, [("a", "<f4")]), y=Y), "array 'x' holds records"),
    "truncated": (GOOD[:len(GOOD) // 2], "not a readable .npz file (BadZipFile"),
    "random bytes": (bytes(range(256)) * 4, "not a readable .npz file (BadZipFile"),
    "huge declared shape": (zipped({"x.npy": declared((10**12, 5)), "y.npy": npy_bytes(Y)}),
                            "array 'x' declares shape [1000000000000, 5] of float64"),
    "y 2-d, not one-hot, as classes": (npz_bytes(x=X, y=np.ones((6, 2))),
                                       "y has shape [6, 2]; classification needs one label"),
    "nan in x": (npz_bytes(x=np.where(np.arange(18).reshape(6, 3) == 13, np.nan, X), y=Y),
                 "x[4, 1] is nan"),
    "x beyond float32": (npz_bytes(x=X * 1e300, y=Y), "beyond the range of 32-bit floats"),
}


@pytest.mark.parametrize("case", list(HOSTILE_NPZ))
def test_hostile_npz_files_are_refused_with_one_line(tmp_path, case) -> None:
    data, says = HOSTILE_NPZ[case]
    (tmp_path / "d.npz").write_bytes(data)
    task = "classification" if "as classes" in case else "auto"
    with pytest.raises(DatasetError) as exc:
        load_arrays("npz", {"path": "d.npz", "task": task}, tmp_path)
    assert says in exc.value.message and "\n" not in str(exc.value)
    assert exc.value.where == str(tmp_path / "d.npz")


def test_an_npz_member_larger_than_free_memory_is_refused_before_unpacking(tmp_path,
                                                                          monkeypatch) -> None:
    """A zip bomb: 64 MiB of zeros compress to 64 KB; the free memory is set to 16 MiB."""
    import studio.core.memory

    body = np.zeros(8 * 2**20)  # 64 MiB of float64
    (tmp_path / "d.npz").write_bytes(zipped({"x.npy": npy_bytes(body.reshape(-1, 8)),
                                             "y.npy": npy_bytes(np.zeros(2**20))},
                                            zipfile.ZIP_DEFLATED))
    assert (tmp_path / "d.npz").stat().st_size < 2**20
    monkeypatch.setattr(studio.core.memory, "free_memory", lambda device: 16 * 2**20)
    with pytest.raises(DatasetError, match=r"array 'x' unpacks to 64 MiB, but only 16 MiB of "
                                           "memory is free"):
        load_arrays("npz", {"path": str(tmp_path / "d.npz")})


def test_one_hot_labels_become_class_indices_and_say_so(tmp_path) -> None:
    labels = np.arange(12) % 3
    np.savez(tmp_path / "d.npz", x=np.random.rand(12, 4), y=np.eye(3)[labels])
    a = load_arrays("npz", {"path": str(tmp_path / "d.npz")})
    assert a.task == "classification" and a.classes == ["0", "1", "2"]
    assert a.y.tolist() == labels.tolist()
    assert a.messages == ["y holds one-hot rows of 3 classes; read as class indices 0–2"]
    b = load_data(DataSettings(dataset="npz", options={"path": str(tmp_path / "d.npz")}))
    assert b.messages == a.messages and b.y_train.dim() == 1


def test_npz_float_labels_read_as_whole_numbers(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.random.rand(6, 2), y=np.array([1.0, 2.0] * 3))
    a = load_arrays("npz", {"path": str(tmp_path / "d.npz")})
    assert a.classes == ["1", "2"]


# -- images -------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [10_000, 14_000])  # above Pillow's warning; above its error
@pytest.mark.parametrize("lazy", [False, True])
def test_a_decompression_bomb_is_refused_naming_the_file(tmp_path, monkeypatch, side, lazy
                                                         ) -> None:
    folder = image_folder(tmp_path / "img")
    (folder / "a" / "bomb.png").write_bytes(png(side, side))
    assert (folder / "a" / "bomb.png").stat().st_size < 100_000
    if lazy:  # then the normalisation statistics read it first
        monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")
    with pytest.raises(DatasetError, match="has more than 89,478,485 pixels") as exc:
        load_data(DataSettings(dataset="image-folder", options={"path": str(folder)},
                               val_fraction=0.0))
    assert exc.value.where == str(folder / "a" / "bomb.png")


def test_every_listed_image_format_loads_and_nothing_else_is_decoded(tmp_path) -> None:
    """Pillow is held to the formats of the suffixes: an EPS named .png would otherwise be
    handed to Ghostscript, whatever its name says."""
    from PIL import Image

    for c, formats in (("a", ["PNG", "JPEG", "BMP"]), ("b", ["GIF", "TIFF", "WEBP"])):
        (tmp_path / c).mkdir()
        for fmt in formats:
            Image.new("RGB", (9, 7), (200, 10, 10)).save(tmp_path / c / f"x.{fmt.lower()}", fmt)
    a = load_arrays("image-folder", {"path": str(tmp_path), "size": [4, 4]})
    assert a.x.shape == (6, 3, 4, 4) and a.x[:, 0].min() > 150
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto\n%%EOF\n"
    (tmp_path / "a" / "y.png").write_bytes(eps)
    with pytest.raises(DatasetError, match="is damaged or not an image in a format read here"
                       ) as exc:
        load_arrays("image-folder", {"path": str(tmp_path), "size": [4, 4]})
    assert exc.value.where == str(tmp_path / "a" / "y.png")


def test_a_corrupt_image_read_by_a_worker_is_one_line_naming_the_file(tmp_path, monkeypatch
                                                                      ) -> None:
    folder = image_folder(tmp_path / "img")
    (folder / "b" / "torn.png").write_bytes(png(12, 10)[:-20])  # cut inside its pixels
    monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")
    b = load_data(DataSettings(dataset="image-folder", options={"path": str(folder),
                                                                "size": [8, 8]},
                               normalize=False, val_fraction=0.0))
    batches = LoaderBatches(b.files, b.train_idx, 2, shuffle=True, device=torch.device("cpu"),
                            mean=b.norm["mean"], std=b.norm["std"], workers=1,
                            generator=torch.Generator().manual_seed(0))
    with pytest.raises(DatasetError) as exc:
        for _ in batches.epoch():
            pass
    assert exc.value.where == str(folder / "b" / "torn.png")
    assert exc.value.message.startswith("cannot read image") and "\n" not in str(exc.value)
