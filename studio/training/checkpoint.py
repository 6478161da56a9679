"""Checkpoints (full training state) and weights files, written atomically, read safely.

Checkpoints are ``torch.save`` dicts of tensors, numbers and strings only, so they load with
``weights_only=True``: a checkpoint from elsewhere cannot run code. Weights also go to
``.safetensors`` with the project embedded in the metadata.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import torch

from studio.core.errors import ProjectError, TrainingError
from studio.core.files import human_bytes, open_regular
from studio.core.memory import free_memory
from studio.core.project import MAX_FILE_BYTES, Project, atomic_write

FORMAT = "studio.checkpoint"
#: 2: callback states under stable keys, as objects that may hold tensors
VERSION = 2


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write(Path(path), buf.getvalue())


def _open_within_memory(path: Path) -> tuple[BinaryIO, int]:
    """A regular file (never a device or a pipe) that fits in free memory, opened."""
    f = open_regular(path, TrainingError)
    size = os.fstat(f.fileno()).st_size
    free = free_memory(torch.device("cpu"))
    if free is not None and size > free:
        f.close()
        raise TrainingError(f"the file is {human_bytes(size)} but only {human_bytes(free)} of "
                            "memory is free", str(path))
    return f, size


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TrainingError("checkpoint not found", str(path))
    f, _size = _open_within_memory(path)
    try:
        with f, warnings.catch_warnings():  # a damaged file's oddities are the error below
            warnings.simplefilter("ignore")
            state = torch.load(f, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or torn files
        first = (str(exc).strip().splitlines() or ["empty or cut short"])[0][:200]
        raise TrainingError(f"not a readable Studio checkpoint ({type(exc).__name__}: "
                            f"{first})", str(path)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError("not a Studio checkpoint", str(path))
    version = state.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise TrainingError("written by a newer Studio", str(path))
    return state


def save_weights(path: Path, model_state: dict[str, torch.Tensor], metadata: dict[str, Any]
                 ) -> None:
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    atomic_write(Path(path), save(tensors, metadata=meta))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    f, size = _open_within_memory(path)
    try:
        with f:
            data = f.read(size + 1)  # a file still growing is read only as far as it was
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        meta = (header.get("__metadata__") if isinstance(header, dict) else None) or {}
    except (OSError, SafetensorError, ValueError, RecursionError) as exc:
        raise TrainingError(f"not a readable .safetensors file ({exc})", str(path)) from None
    return tensors, meta


def embedded_project(meta: dict[str, str], path: str | Path) -> Project:
    """The project a weights file carries, under the same limits as a project file."""
    text = meta.get("studio.project")
    if not isinstance(text, str):
        raise TrainingError("this .safetensors file has no Studio project in its metadata",
                            str(path))
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise ProjectError(f"its embedded project is larger than {human_bytes(MAX_FILE_BYTES)}, "
                           "the limit for projects", str(path))
    return Project.loads(text, source=f"{path} (its project)")


__all__ = ["embedded_project", "free_memory", "load_checkpoint", "load_weights", "save_checkpoint",
           "save_weights"]
