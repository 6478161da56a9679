"""NumPy ``.npz`` files with arrays ``x`` and ``y``, read without pickle.

Each member's header is checked against the bytes it really holds and against free memory
before anything is allocated (a renamed ``.npy``, a torn archive, a declared shape of
terabytes or a zip bomb each end in one line).
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import human_bytes, open_regular

from .arrays import F32_MAX, Arrays, check_memory, label_names, task_of, user_path

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




def load_npz(options: dict[str, Any], base: Path | None) -> Arrays:
    path = user_path(options, base)
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
    check_memory(info.file_size, f"array {key!r} unpacks to", where)
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
        check_memory(count * max(dtype.itemsize, 4), f"array {key!r} of shape {list(shape)} "
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


def _soft_row(y: np.ndarray) -> int | None:
    """The first row that is not one-hot when every row of ``y`` [N, K] is a probability
    distribution (soft labels, as label smoothing or distillation writes them), else None.

    Refused rather than trained: soft targets would reach the split's stratification, the
    class metrics, the Evaluate view and the exported train.py, which all take one class id
    per sample; read as regression they end in a loss that does not fit the task.
    """
    if y.ndim != 2 or y.shape[1] < 2 or not len(y) or y.dtype.kind != "f":
        return None
    if y.min() < 0 or y.max() > 1 or not np.allclose(y.sum(axis=1), 1.0, rtol=0, atol=1e-4):
        return None
    hard = np.all((y == 0) | (y == 1), axis=1)
    return None if hard.all() else int(np.argmin(hard))


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
    soft = _soft_row(y) if want != "regression" else None
    if soft is not None:
        raise DatasetError(
            f"array 'y' holds class probabilities (rows of {y.shape[1]} that sum to 1; row "
            f"{soft} is not one-hot), which are not trained on yet: save hard labels "
            "(y.argmax(axis=1)) in the file named by data.options.path, or set "
            "data.options.task to regression to fit the probabilities as numbers", where)
    if y.ndim > 1 and want == "classification":
        raise DatasetError(f"y has shape {list(y.shape)}; classification needs one label per "
                           f"sample (shape [{len(y)}]) or one-hot rows (shape [{len(y)}, "
                           "classes])", where)
    task = "regression" if y.ndim > 1 else task_of(y, want)
    if task == "classification":
        labels, codes = np.unique(y, return_inverse=True)
        image = x.dtype == np.uint8 and x.ndim == 4
        return Arrays(x if image else _checked_float32(x, "x", where),
                      codes.reshape(-1).astype(np.int64), task, label_names(labels),
                      image=image, messages=messages)
    if y.dtype.kind not in "biuf":
        raise DatasetError(f"y holds {_KINDS.get(y.dtype.kind, 'values')}; regression needs "
                           "numbers", "data.options.task" if want == "regression" else where)
    return Arrays(_checked_float32(x, "x", where),
                  _checked_float32(y, "y", where).reshape(len(y), math.prod(y.shape[1:])), task,
                  messages=messages)
