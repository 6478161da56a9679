"""Image folders: one sub-folder per class, decoded in memory or, when too large, on demand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import DatasetError
from studio.core.files import is_regular

from .arrays import Arrays, user_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image_folder(options: dict[str, Any], base: Path | None) -> Arrays:
    """Images in one sub-folder per class. Entries named like images that are not regular
    files (a pipe, a device, a folder, a dangling link) are skipped and reported in the
    messages: they cannot be images, and reading them could block or never end."""
    root = user_path(options, base)
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
