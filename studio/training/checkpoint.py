"""Checkpoints (full training state) and weights files, written atomically, read safely.

Checkpoints are ``torch.save`` dicts of tensors, numbers and strings only, so they load with
``weights_only=True``: a checkpoint from elsewhere cannot run code. Weights also go to
``.safetensors`` with the project embedded in the metadata.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import TrainingError
from studio.core.project import atomic_write

FORMAT = "studio.checkpoint"
VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write(Path(path), buf.getvalue())


def check_size(path: Path) -> None:
    """Refuse a file that cannot fit in free memory before reading any of it."""
    size = path.stat().st_size
    free = free_memory(torch.device("cpu"))
    if free is not None and size > free:
        raise TrainingError(f"the file is {size / 2**30:.1f} GiB but only {free / 2**30:.1f} "
                            "GiB of memory is free", str(path))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise TrainingError("checkpoint not found", str(path))
    check_size(path)
    try:
        with warnings.catch_warnings():  # a damaged file's oddities are the error below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or torn files
        first = (str(exc).strip().splitlines() or ["empty or cut short"])[0][:200]
        raise TrainingError(f"not a readable Studio checkpoint ({type(exc).__name__}: "
                            f"{first})", str(path)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError("not a Studio checkpoint", str(path))
    if state.get("version", 0) > VERSION:
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
    try:
        check_size(path)
        data = path.read_bytes()
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + header_len]).get("__metadata__", {}) or {}
    except (OSError, SafetensorError, ValueError) as exc:
        raise TrainingError(f"not a readable .safetensors file ({exc})", str(path)) from None
    return tensors, meta


def free_memory(device: torch.device) -> int | None:
    """Bytes free for new allocations on the device, or None when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
