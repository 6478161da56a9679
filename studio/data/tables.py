"""CSV tables: one row per sample, a target column, numbers or text in the others.

Parsed from text read with a byte limit; a missing or out-of-range value is an error naming
its line and column, never a silent change of what a column means. Missing feature cells are
filled (numbers only, after the split, from the training part: ``bundle.prepare``) or their
rows dropped only when the dataset option ``missing`` says so, and a note says how many.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import read_limited

from .arrays import F32_MAX, Arrays, number_name, task_of, user_path

#: a CSV is parsed in memory as Python strings (~10× its size); beyond this, use .npz
MAX_CSV_BYTES = 512 * 2**20
#: cells that mean "no value" (compared in lower case)
MISSING = frozenset({"", "na", "n/a", "nan", "+nan", "-nan", "null", "?"})


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
                   where: Callable[[int], str], fix: str = "fill it or remove the row",
                   gaps_ok: bool = False) -> None:
    """Refuse a missing (unless ``gaps_ok``: filled later), infinite or float32-overflowing
    cell of a numeric column, naming the line: it would otherwise become NaN or inf that
    training cannot use."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(nums) <= F32_MAX) & ~(gaps_ok & np.isnan(nums)))
    if not len(bad):
        return
    i = int(bad[0])
    cell = values[i]
    if np.isnan(nums[i]):
        state = "is empty" if not cell else f"is missing ({cell!r})"
        raise DatasetError(f"{what} {state}; {fix}", where(i))
    if np.isinf(nums[i]):
        raise DatasetError(f"{what} holds {cell!r}, which is not a finite number", where(i))
    raise DatasetError(f"{what} holds {cell}, beyond the range of 32-bit floats (±3.4e38); "
                       "rescale the column", where(i))


def load_csv(options: dict[str, Any], base: Path | None) -> Arrays:
    path = user_path(options, base)
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
    missing = options.get("missing", "refuse")
    cells = {c: [r[c].strip() for r in body] for c in cols}
    messages: list[str] = []
    if missing == "drop":
        body, lines, cells = _drop_gaps(body, lines, cells, messages)
    columns, names = [], []
    for c in cols:
        values = cells[c]
        gaps = [i for i, v in enumerate(values) if v.lower() in MISSING]
        if len(gaps) == len(values):
            messages.append(f"column {header[c]!r} is empty in every row; it is left out")
            continue
        nums = _numbers(values)
        if nums is not None:
            _check_numbers(nums, values, f"column {header[c]!r}", where,
                           "fill it, remove the row, or set data.options.missing to mean, median, "
                           "most_frequent or drop",
                           gaps_ok=missing in ("mean", "median", "most_frequent"))
            columns.append(nums[:, None])
            names.append(header[c])
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
            names += [f"{header[c]}={v}" for v in cats]
        else:
            columns.append(codes[:, None].astype(np.float32))
            names.append(header[c])
    if not columns:
        raise DatasetError("every feature column is empty", str(path))
    x = np.concatenate(columns, axis=1).astype(np.float32)
    fill = missing if missing in ("mean", "median", "most_frequent") and np.isnan(x).any() \
        else ""
    raw_y = [r[t].strip() for r in body]
    for i, v in enumerate(raw_y):
        if v.lower() in MISSING:
            state = "is empty" if not v else f"is missing ({v!r})"
            raise DatasetError(f"the target {target!r} {state}; fill it or remove the row",
                               where(i))
    ynum = _numbers(raw_y)
    task = task_of(ynum if ynum is not None else np.array(raw_y), options.get("task", "auto"))
    if task == "regression":
        if ynum is None:
            i = next(i for i, v in enumerate(raw_y) if _number(v) is None)
            raise DatasetError(f"target {target!r} is not numeric ({raw_y[i]!r} on line "
                               f"{lines[i + 1]})", "data.options.task")
        _check_numbers(ynum, raw_y, f"the target {target!r}", where)
        return Arrays(x, ynum.reshape(-1, 1).astype(np.float32), task, messages=messages,
                      fill=fill, columns=names)
    # numeric labels are grouped by value: "1" and "1.0" are one class, named "1"
    label: dict[str, str] = {}
    keys: dict[str, tuple[int, float, str]] = {}
    for v in set(raw_y):
        num = _number(v)
        label[v] = v if num is None else number_name(num)
        keys[label[v]] = (1, 0.0, v) if num is None else (0, num, "")
    labels = sorted(keys, key=keys.__getitem__)
    index = {name: i for i, name in enumerate(labels)}
    return Arrays(x, np.array([index[label[v]] for v in raw_y], dtype=np.int64), task, labels,
                  messages=messages, fill=fill, columns=names)


def _drop_gaps(body: list[list[str]], lines: list[int], cells: dict[int, list[str]],
               messages: list[str]) -> tuple[list[list[str]], list[int], dict[int, list[str]]]:
    """The rows without a missing feature cell (columns empty in every row are left out
    later, so they drop nothing), and a note of how many went."""
    used = [v for v in cells.values() if not all(c.lower() in MISSING for c in v)]
    gone = [i for i in range(len(body)) if any(v[i].lower() in MISSING for v in used)]
    if not gone:
        return body, lines, cells
    keep = sorted(set(range(len(body))) - set(gone))
    if len(keep) < 2:
        raise DatasetError(f"dropping the rows with missing feature cells leaves {len(keep)} "
                           "row(s); fill the cells or choose another way to handle them",
                           "data.options.missing")
    messages.append(f"{len(gone):,} row(s) with missing feature cells dropped, the first on "
                    f"line {lines[gone[0] + 1]}; {len(keep):,} remain")
    return ([body[i] for i in keep], [lines[0]] + [lines[i + 1] for i in keep],
            {c: [v[i] for i in keep] for c, v in cells.items()})
