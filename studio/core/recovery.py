"""Crash recovery: unsaved edits written beside a lock that dies with the process.

Each running window owns a session: a lock file it holds open with an exclusive ``flock`` for
its whole life, and a recovery file it rewrites (atomically) while the project has unsaved
changes. The operating system drops the lock when the process ends in any way — a clean quit,
a crash, SIGKILL, a power cut — so on the next launch a recovery file whose lock can be taken
belongs to a session that did not close cleanly, and is offered back to the user. A clean close
removes both files. Pure core: no Qt.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import ProjectError
from .files import try_lock
from .project import Project, atomic_write

FORMAT = "studio.recovery"
VERSION = 1


def recovery_dir() -> Path:
    env = os.environ.get("STUDIO_RECOVERY_DIR")
    if env:
        p = Path(env)
    else:
        import platformdirs

        p = Path(platformdirs.user_state_dir("studio")) / "recovery"
    p.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Recovered:
    """A recovery file left by a session that did not close cleanly."""

    path: Path
    lock: Path
    name: str
    original: Path | None
    saved_at: float

    def load(self) -> Project:
        """The project as it was, pointing at its original file (saving goes back there)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ProjectError("not a Studio recovery file", str(self.path))
            project = Project.loads(json.dumps(data["project"]), str(self.path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProjectError(f"the recovery file cannot be read ({exc})", str(self.path)
                               ) from None
        project.path = self.original
        return project

    def discard(self) -> None:
        for p in (self.path, self.lock):
            with contextlib.suppress(OSError):
                p.unlink()


class RecoverySession:
    """This process's lock and recovery file."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lock_path = self.folder / f"{self.id}.lock"
        self.path = self.folder / f"{self.id}.recovery.json"
        self._lock: IO[bytes] | None = open(self.lock_path, "wb")  # noqa: SIM115 - held open
        if not try_lock(self._lock):  # pragma: no cover - a fresh name nobody else holds
            raise OSError("could not lock the recovery session")
        self._lock.write(f"{os.getpid()}\n".encode())
        self._lock.flush()
        self.written_at: float | None = None

    def write(self, project: Project) -> Path:
        """The project's current state, replacing the previous recovery file atomically."""
        data: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "saved_at": time.time(),
            "original": str(project.path) if project.path else None, "name": project.name,
            "project": json.loads(project.dumps()),
        }
        atomic_write(self.path, json.dumps(data).encode("utf-8"))
        self.written_at = data["saved_at"]
        return self.path

    def clear(self) -> None:
        """Nothing unsaved any more (saved, or the changes discarded)."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.written_at = None

    def close(self) -> None:
        """A clean end: nothing to recover."""
        self.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
            with contextlib.suppress(OSError):
                self.lock_path.unlink()


def orphans(folder: Path | None = None) -> list[Recovered]:
    """Recovery files of sessions that ended without closing, newest first; lock files left
    without a recovery file (a crash with nothing unsaved) are removed on the way."""
    folder = folder or recovery_dir()
    found: list[Recovered] = []
    for lock in folder.glob("*.lock"):
        try:
            f = open(lock, "ab")  # noqa: SIM115 - closed below
        except OSError:
            continue
        try:
            if not try_lock(f):
                continue  # a live session (another window)
        finally:
            f.close()
        rec = lock.with_name(lock.name.removesuffix(".lock") + ".recovery.json")
        if not rec.exists():
            with contextlib.suppress(OSError):
                lock.unlink()
            continue
        try:
            meta = json.loads(rec.read_text(encoding="utf-8"))
            original = Path(meta["original"]) if meta.get("original") else None
            found.append(Recovered(rec, lock, str(meta.get("name", "Untitled")), original,
                                   float(meta.get("saved_at", rec.stat().st_mtime))))
        except (OSError, ValueError, KeyError, TypeError):
            found.append(Recovered(rec, lock, rec.name, None, rec.stat().st_mtime))
    return sorted(found, key=lambda r: r.saved_at, reverse=True)
