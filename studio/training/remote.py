"""A run in its own process: events out as JSON lines, commands in as lines.

``studio train PROJECT --events`` writes one JSON object per line on stdout (at most the
trainer's 20 reports a second, plus epochs and messages) and reads ``pause``, ``resume`` and
``stop`` lines on stdin. The window launches that command, so a crash of the run (a segfault in
a native kernel, the OOM killer) cannot take the editor down, and the trainer runs on its
process's main thread, where PyTorch's CPU kernels are fastest.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path
from typing import IO, Any

from .callbacks import Callback

PROTOCOL = 1


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings JSON can carry, tensors are left out."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()
                if isinstance(v, int | float | str | bool | list | dict | type(None))}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def restore(value: Any) -> Any:
    """The reverse of the float cleaning: "nan"/"inf" strings in logs back to floats."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore(v) for v in value]
    return value


class EventStream(Callback):
    """Writes the trainer's events as JSON lines (thread-safe: the command reader writes too)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **_clean(fields)})
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def on_run_start(self, info: dict[str, Any]) -> None:
        self.emit("run_start", info=info, protocol=PROTOCOL)

    def on_progress(self, logs: dict[str, Any]) -> None:
        self.emit("progress", logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.emit("epoch_end", logs=logs)

    def on_message(self, text: str) -> None:
        trainer = getattr(self, "trainer", None)
        self.emit("message", text=text, step=getattr(trainer, "step", None))

    def on_checkpoint(self, kind: str, path: Path) -> None:
        self.emit("checkpoint", kind=kind, path=str(path))

    def on_layer_stats(self, record: dict[str, Any]) -> None:
        self.emit("layer_stats", **record)


def listen(trainer: Any, events: EventStream, stream: IO[str] | None = None) -> threading.Thread:
    """Reads commands on a daemon thread; end of input (the window went away) stops the run."""
    source = stream or sys.stdin

    def loop() -> None:
        for line in source:
            cmd = line.strip()
            if cmd == "pause":
                trainer.pause()  # the loop says "paused" (with its step) when it holds
            elif cmd == "resume":
                trainer.resume()
            elif cmd == "stop":
                trainer.stop()
            elif cmd:
                events.emit("message", text=f"unknown command {cmd!r} ignored")
        trainer.request_stop("stopped")

    t = threading.Thread(target=loop, name="studio-commands", daemon=True)
    t.start()
    return t


def parse(line: bytes | str) -> dict[str, Any] | None:
    """One event from a line of the stream; None for anything that is not one (stray prints
    from user code or libraries must not break the dashboard)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or "event" not in obj:
        return None
    event: dict[str, Any] = restore(obj)  # a dict restores to a dict
    return event
