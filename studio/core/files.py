"""Reading files a project names: regular files only, and never more bytes than a limit.

A path in a project can point anywhere: ``/dev/zero`` (endless bytes, and its size reads as 0),
a FIFO (an open that never returns), a folder, a link to either. Every reader of user-named
files opens them here: the open cannot block (``O_NONBLOCK``), anything but a regular file is
refused with a message, and limits count the bytes actually read, not what ``stat`` claims.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import IO, BinaryIO

from .errors import StudioError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], error: type[StudioError] = StudioError
                 ) -> BinaryIO:
    """Open for reading in binary mode, or raise ``error`` saying why the path is not a
    readable regular file (links are followed, then judged by what they point at)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    where = str(path)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error("file not found", where) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", where) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"is {_kind(mode)}, not a file; only regular files are read", where)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # only the open had to be non-blocking
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | os.PathLike[str], error: type[StudioError] = StudioError) -> None:
    """Raise unless ``path`` is a readable regular file (for readers that take a path)."""
    open_regular(path, error).close()


def is_regular(path: Path) -> bool:
    """Whether a directory entry is a regular file (after links), without opening it."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def read_limited(path: str | os.PathLike[str], limit: int,
                 error: type[StudioError] = StudioError, advice: str = "",
                 what: str = "this kind of file") -> bytes:
    """The whole file, refused past ``limit`` bytes read (``advice`` follows the refusal)."""
    with open_regular(path, error) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise error(f"cannot read: {exc.strerror or exc}", str(path)) from None
    if len(data) > limit:
        raise error(f"is larger than {human_bytes(limit)}, the limit for {what}"
                    + (f"; {advice}" if advice else ""), str(path))
    return data


def human_bytes(n: float) -> str:
    """1,234 bytes, 12.5 KiB, 64 MiB, 1.5 GiB."""
    unit = "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            break
        n /= 1024
    return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:,.1f}".removesuffix(".0") + f" {unit}"


def try_lock(f: IO[bytes]) -> bool:
    """An exclusive, non-blocking lock on an open file, dropped by the OS when the process
    ends in any way; False when another process holds it."""
    if sys.platform == "win32":  # no fcntl there
        import msvcrt

        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
