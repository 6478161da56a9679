"""Run folders: where a run writes, how it is named, and the lock that keeps it one run's.

Two runs writing into one folder leave a mix of one's project and the other's weights with
interleaved metrics: each run holds an exclusive lock on ``.studio-run.lock`` in its folder for
its whole life (the OS drops it when the process ends in any way), and a second run is refused
with the first one's process and start time. The CLI and the window name new folders here, by
one rule.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import IO

from studio.core.errors import TrainingError
from studio.core.files import human_bytes, try_lock
from studio.core.project import file_stem, samples_dir

LOCK_NAME = ".studio-run.lock"
#: what ``atomic_write`` leaves behind when killed mid-write: ``.NAME.RANDOM.tmp``
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def user_runs_dir() -> Path:
    """Runs of samples and unsaved projects: the user's data folder, never the package."""
    base = os.environ.get("STUDIO_DATA_DIR")
    if base:
        return Path(base) / "runs"
    import platformdirs

    return Path(platformdirs.user_data_dir("studio")) / "runs"


def runs_dir(project_path: Path | None) -> Path:
    """``runs/`` beside the project file; samples and unsaved projects use the user folder."""
    if project_path is not None and project_path.resolve().parent != samples_dir().resolve():
        return project_path.parent / "runs"
    return user_runs_dir()


def new_run_dir(project_path: Path | None, root: Path | None = None) -> Path:
    """A fresh folder ``NAME-YYYYmmdd-HHMMSS`` (``-2``, ``-3``… when taken), created at once
    so that two runs started in the same second cannot both pick it."""
    root = root if root is not None else runs_dir(project_path)
    stem = file_stem(project_path) if project_path is not None else "untitled"
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            out = root / (base if n == 1 else f"{base}-{n}")
            try:
                out.mkdir()
                return out
            except FileExistsError:
                continue
    except OSError as exc:
        raise TrainingError(f"cannot create a run folder: {exc.strerror or exc}",
                            str(exc.filename or root)) from None
    raise TrainingError("no free run folder name", str(root))  # pragma: no cover


class RunLock:
    """The lock on a run folder, held from ``acquire`` to ``release`` (or the process's end)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        """Create the folder if needed and take its lock, or raise TrainingError saying who
        holds it."""
        path = self.folder / LOCK_NAME
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+b")  # noqa: SIM115 - held open for the run's whole life
        except OSError as exc:
            raise TrainingError(f"cannot write the run folder: {exc.strerror or exc}",
                                str(self.folder)) from None
        if not try_lock(f):
            f.seek(0)
            holder = _describe(f.read(4096))
            f.close()
            raise TrainingError(f"another run{holder} is writing into this folder; wait for it "
                                "to end or choose another folder (--out)", str(self.folder))
        with contextlib.suppress(OSError):
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                "started": time.time()}).encode())
            f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f" (process {int(info['pid'])} on {info['host']}, started {when})"
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return ""


def remove_stale_temp_files(folder: Path) -> str | None:
    """Delete the temporary files of writes that a kill cut short (``.last.ckpt.*.tmp``), which
    nobody else can be writing while this run holds the folder's lock; a line saying what was
    freed, or None."""
    count, size = 0, 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for e in entries:
        if _TEMP.match(e.name) and e.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                n = e.stat(follow_symlinks=False).st_size
                os.unlink(e.path)
                count, size = count + 1, size + n
    if not count:
        return None
    return (f"removed {count} unfinished temporary file(s) ({human_bytes(size)}) left by an "
            "interrupted write")
