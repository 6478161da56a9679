"""What the fuzzers feed the loaders, and what counts as a correct outcome.

Shared by the Hypothesis tests (a few hundred cases in CI) and ``tests/bench/fuzz.py``
(10,000+). Every target returns the name of its outcome ("loaded" or the project's error
class); any other exception escapes and is the failure Hypothesis shrinks and reports.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from studio.core.errors import StudioError
from studio.core.project import Project, sample_paths

SAMPLES = [p.read_text() for p in sample_paths()]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_project(draw: Any) -> str:
    """A sample project with a few fields replaced, deleted or retyped, or its text cut."""
    text = draw(st.sampled_from(SAMPLES))
    if draw(st.integers(0, 9)) == 0:  # a torn file
        return text[:draw(st.integers(0, len(text)))]
    doc = json.loads(text)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_value)
    return json.dumps(doc, allow_nan=True)


def load_project(text: str) -> str:
    from studio.core.shapes import analyze
    from studio.core.summary import summary_table

    try:
        project = Project.loads(text)
    except StudioError as exc:
        return type(exc).__name__
    analyze(project.graph)  # a loaded project is one the editor can show
    summary_table(project.graph)
    Project.loads(project.dumps())  # and save again
    return "loaded"


csv_cell = st.one_of(st.sampled_from(["", "0", "1", "1.0", "2.5", "-3e4", "nan", "NaN", "NA",
                                      "null", "?", " ", "inf", "a", "b", "cat", '"q,uoted"',
                                      "x\ny", "ä", "1e309", "-1e39", "1e18",
                                      "9223372036854775807"]),
                     st.text(max_size=6))


@st.composite
def csv_text(draw: Any) -> str:
    cols = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(csv_cell, min_size=cols, max_size=cols), min_size=0,
                         max_size=12))
    if draw(st.booleans()) and rows:  # a ragged row
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    buf = io.StringIO()
    import csv

    csv.writer(buf).writerows([[f"c{i}" for i in range(cols)], *rows])
    text = buf.getvalue()
    if draw(st.integers(0, 7)) == 0:
        text = text[:draw(st.integers(0, len(text)))]
    return text


numeric_cell = st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-10**19, 10**19).map(str),
                         st.sampled_from(["1", "1.0", "2.00", "1e18", "-1e39", "1e309", "inf"]))
missing_cell = st.sampled_from(["", "nan", "NaN", "NA", "null", "?", " "])
label_cell = st.sampled_from(["0", "1", "1.0", "2", "2.0", "1e0"])


@st.composite
def typed_csv_text(draw: Any) -> str:
    """Columns of numbers, numeric labels or words, with the odd missing cell: the tables that
    reach the numeric paths (blanks, "1" next to "1.0", values float32 cannot hold)."""
    kinds = draw(st.lists(st.sampled_from(["number", "label", "word"]), min_size=1, max_size=4))
    cells = {"number": numeric_cell, "label": label_cell, "word": st.sampled_from("abc")}
    gaps = draw(st.sampled_from([0, 0, 12, 40]))  # one cell in ``gaps`` is missing (0: none)
    rows = [[draw(missing_cell) if gaps and draw(st.integers(1, gaps)) == 1 else draw(cells[k])
             for k in kinds] for _ in range(draw(st.integers(0, 30)))]
    buf = io.StringIO()
    import csv

    csv.writer(buf).writerows([[f"c{i}" for i in range(len(kinds))], *rows])
    return buf.getvalue()


def _load(dataset: str, options: dict[str, Any], **settings: Any) -> str:
    from studio.core.project import DataSettings
    from studio.data.bundle import load_data

    try:
        load_data(DataSettings(dataset=dataset, options=options, **settings))
    except StudioError as exc:
        return type(exc).__name__
    return "loaded"


def load_csv(text: str | bytes, options: dict[str, Any] | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return _load("csv", {"path": str(path), **(options or {})})


# -- npz ----------------------------------------------------------------------------------

def npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


VALUES = [0.0, 1.0, 2.0, -3.5, 7.25, 255.0, 1e18] * 3 + [np.nan, np.inf, 1e300]
#: real dtypes drawn three times as often as the ones refused
DTYPES = ["f4", "f8", "i8", "u1", "?"] * 3 + ["c16", "O", "U2", "M8[s]", "V4", "a_record"]


def _array(draw: Any, shape: tuple[int, ...], kinds: list[str]) -> np.ndarray:
    dtype = draw(st.sampled_from(kinds))
    if dtype == "O":
        return np.full(shape, None, dtype=object)
    if dtype == "U2":
        return np.full(shape, draw(st.sampled_from(["a", "b", "ab"])))
    if dtype == "a_record":
        return np.zeros(shape, [("a", "<f4"), ("b", "<i2")])
    if dtype in ("M8[s]", "V4"):
        return np.zeros(shape, dtype)
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    pool = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3))
    with np.errstate(invalid="ignore", over="ignore"):
        return rng.choice(pool, size=shape).astype(dtype)


@st.composite
def npz_arrays(draw: Any) -> bytes:
    """x and y of drawn dtypes and shapes: 0-d, complex, objects, text, dates, records,
    NaN, inf, values beyond float32, one-hot and other 2-d labels, lengths that differ."""
    n = draw(st.integers(0, 8))
    xs = draw(st.sampled_from([(), (n,), (n, 3), (n, 0), (n, 1, 4, 4)]))
    x = _array(draw, xs, DTYPES)
    kind = draw(st.sampled_from(["labels"] * 4 + ["one-hot", "2-d", "0-d", "other length"]))
    if kind == "one-hot":
        y = np.eye(3, dtype=draw(st.sampled_from(["f4", "i8", "?"])))[
            np.random.RandomState(n).randint(0, 3, n)]
    else:
        ys = {"labels": (n,), "2-d": (n, 2), "0-d": (), "other length": (n + 1,)}[kind]
        y = _array(draw, ys, DTYPES)
    data = npz_bytes(x=x, y=y)
    return zlib_compressed(data) if draw(st.booleans()) else data


def zlib_compressed(npz: bytes) -> bytes:
    """The same archive as np.savez_compressed writes it."""
    with zipfile.ZipFile(io.BytesIO(npz)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _declared(shape: tuple[int, ...], descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + b"\0" * 64


NPZ = npz_bytes(x=np.arange(24, dtype=np.float32).reshape(8, 3), y=np.arange(8) % 2)


@st.composite
def npz_file(draw: Any) -> bytes:
    """Random bytes, cut or overwritten archives, an .npy renamed, drawn arrays, headers that
    declare huge shapes."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(mutated_bytes(NPZ))
    if kind == 1:
        return npy_bytes(np.zeros((4, 2)))
    if kind == 2:
        dims = draw(st.lists(st.integers(0, 2**62), min_size=1, max_size=3))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("x.npy", _declared(tuple(dims), draw(st.sampled_from(["<f8", "|u1"]))))
            z.writestr("y.npy", npy_bytes(np.arange(4)))
        return buf.getvalue()
    return draw(npz_arrays())


def load_npz(data: bytes, options: dict[str, Any] | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        path.write_bytes(data)
        return _load("npz", {"path": str(path), **(options or {})})


# -- image folders ------------------------------------------------------------------------

def _png(width: int, height: int) -> bytes:
    """A 1-bit PNG whose header declares ``width`` × ``height`` over almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _image(fmt: str, mode: str = "RGB", size: tuple[int, int] = (9, 7)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, fmt)
    return buf.getvalue()


IMAGES = {"png": _image("PNG"), "jpeg": _image("JPEG"), "gif": _image("GIF", "L"),
          "bmp": _image("BMP", size=(3, 40))}
#: readable images drawn about as often as all the rest together
ENTRIES = ["png", "jpeg", "gif", "bmp"] * 3 + [
    "truncated", "overwritten", "random", "empty", "bomb", "folder"] + (
    ["dangling link", "pipe", "link to /dev/zero"] if sys.platform != "win32" else [])


@st.composite
def image_folder(draw: Any) -> dict[str, Any]:
    """Two class folders of images, damaged images and entries that are not files at all."""
    entries = draw(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(ENTRIES)),
                            min_size=0, max_size=8))
    if draw(st.integers(0, 3)):  # mostly: one good image in each class to start with
        entries = [("a", "png"), ("b", "jpeg"), *entries]
    return {"entries": [(c, k, draw(mutated_bytes(IMAGES["png"])) if k == "overwritten"
                         else draw(st.binary(max_size=64)) if k == "random" else None)
                        for c, k in entries],
            "lazy": draw(st.booleans()), "normalize": draw(st.booleans()),
            "color": draw(st.sampled_from(["rgb", "grayscale"]))}


def _write_entry(path: Path, kind: str, data: bytes | None) -> None:
    if kind in IMAGES:
        path.write_bytes(IMAGES[kind])
    elif kind == "truncated":
        path.write_bytes(IMAGES["png"][:len(IMAGES["png"]) // 2])
    elif kind in ("overwritten", "random"):
        path.write_bytes(data or b"")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bomb":
        path.write_bytes(_png(20_000, 20_000))
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(path.parent / "nothing-here")
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")


def load_image_folder(spec: dict[str, Any]) -> str:
    """The folder through load_data and, when it stays on disk, one pass of the batches."""
    import torch

    from studio.core.project import DataSettings
    from studio.data.bundle import load_data
    from studio.data.lazy import LoaderBatches

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for c in ("a", "b"):
            (root / c).mkdir()
        for i, (c, kind, data) in enumerate(spec["entries"]):
            _write_entry(root / c / f"{i}.{'jpg' if kind == 'jpeg' else 'png'}", kind, data)
        old = os.environ.get("STUDIO_IN_MEMORY_MB")
        os.environ["STUDIO_IN_MEMORY_MB"] = "0" if spec["lazy"] else "1024"
        try:
            b = load_data(DataSettings(dataset="image-folder", normalize=spec["normalize"],
                                       options={"path": tmp, "size": [8, 8],
                                                "color": spec["color"]}))
            if b.files is not None:
                for idx in (b.train_idx, b.val_idx):
                    batches = LoaderBatches(b.files, idx, 3, shuffle=False,
                                            device=torch.device("cpu"), mean=b.norm["mean"],
                                            std=b.norm["std"], workers=0)
                    for _ in batches.epoch():
                        pass
        except StudioError as exc:
            return type(exc).__name__
        finally:
            if old is None:
                os.environ.pop("STUDIO_IN_MEMORY_MB", None)
            else:
                os.environ["STUDIO_IN_MEMORY_MB"] = old
    return "loaded"


def _real_checkpoint() -> bytes:
    import torch

    from studio.training.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "c.ckpt"
        save_checkpoint(p, {"epoch": 1, "model": {"w": torch.ones(3, 3)},
                            "project": Project().dumps()})
        return p.read_bytes()


def _real_weights() -> bytes:
    import torch

    from studio.training.checkpoint import save_weights

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "w.safetensors"
        save_weights(p, {"a.weight": torch.ones(4, 2), "a.bias": torch.zeros(4)},
                     {"studio.project": Project().dumps()})
        return p.read_bytes()


@st.composite
def mutated_bytes(draw: Any, original: bytes) -> bytes:
    """Truncations, overwritten byte runs and random bytes around a real file."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return original[:draw(st.integers(0, len(original)))]
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        run = draw(st.binary(min_size=1, max_size=8))
        data[at:at + len(run)] = run
    return bytes(data)


CKPT = _real_checkpoint()
WEIGHTS = _real_weights()


def load_file(data: bytes, suffix: str) -> str:
    from studio.training.transfer import read_state

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:
            state = read_state(path)
        except StudioError as exc:
            return type(exc).__name__
        assert isinstance(state, dict)
    return "loaded"


# -- checkpoints as a resume reads them --------------------------------------------------------

_RUN: dict[str, Any] = {}


def real_run_state() -> dict[str, Any]:
    """The state of a real one-epoch run on iris (made once): the shape a resume expects."""
    if not _RUN:
        from studio.core.project import DataSettings, TrainingSettings
        from studio.training import Trainer
        from tests.graphs import net

        g = net(("x", "Input", {"shape": [4]}), ("h", "Linear", {"out_features": 8}),
                ("act", "ReLU", {}), ("out", "Linear", {"out_features": 3}))
        project = Project("fuzz", g, DataSettings(dataset="iris", batch_size=32),
                          TrainingSettings(epochs=3, early_stopping={"patience": 1},
                                           scheduler={"type": "StepLR", "step_size": 1}))
        trainer = Trainer(project)
        trainer.setup()
        _RUN.update(project=project, state=trainer.checkpoint_state())
    return _RUN


_ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=3),
    st.sampled_from(["[]", "[{}]", '{"a": 1}', "not json"]),
)


@st.composite
def mutated_run_state(draw: Any) -> dict[str, Any]:
    """A real run's checkpoint with fields removed, retyped or replaced, nested ones too."""
    import torch

    state = dict(real_run_state()["state"])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(state)))
        how = draw(st.integers(0, 3))
        if how == 0:
            state.pop(key)
        elif how == 1:
            state[key] = draw(_ODD_VALUES)
        elif how == 2:
            dtype = draw(st.sampled_from([torch.uint8, torch.float32, torch.int64]))
            shape = draw(st.lists(st.integers(0, 6), max_size=2))
            state[key] = torch.zeros(shape, dtype=dtype)
        elif isinstance(state[key], dict) and state[key]:
            inner = dict(state[key])
            inner[draw(st.sampled_from(sorted(inner, key=str)))] = draw(_ODD_VALUES)
            state[key] = inner
    return state


def resume_from(state: dict[str, Any]) -> str:
    """Validate and restore a checkpoint into a freshly set-up trainer."""
    from studio.training import Trainer
    from studio.training import state as run_state

    trainer = Trainer(real_run_state()["project"])
    trainer.setup()
    try:
        run_state.restore(trainer, state, "fuzz.ckpt")
    except StudioError as exc:
        return type(exc).__name__
    return "loaded"
