"""Before Qt starts on Linux: can its X11 (xcb) platform plugin load at all?

When a library the plugin needs is missing (``libxcb-cursor0`` on a minimal desktop), Qt prints
a paragraph about plugins and aborts the process; nothing after it can catch that. Loading the
plugin ourselves first costs nothing when it works (Qt then finds it loaded) and, when it does
not, the dynamic loader names the missing library, which we turn into the package to install.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path

#: sonames the xcb plugin needs → their Debian/Ubuntu packages (as Qt's own docs list them)
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0", "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1", "libglib-2.0.so.0": "libglib2.0-0",
}


def uses_xcb(env: dict[str, str] | None = None) -> bool:
    """Whether Qt will pick its X11 plugin here (Linux, a display, no other platform asked)."""
    env = dict(os.environ) if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    path = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.exists() else None


def missing_libraries(plugin: Path) -> list[str]:
    """The shared libraries the plugin (and what it loads) cannot find; empty when it loads."""
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY)
        return []
    except OSError as exc:
        first = re.match(r"([^:\s]+\.so[.\d]*): cannot open", str(exc))
        found = [first.group(1)] if first else [str(exc).split(":")[0]]
    try:  # the loader stops at the first; ldd lists every one
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                             timeout=10).stdout
        more = re.findall(r"^\s*(\S+) => not found", out, re.M)
        found = list(dict.fromkeys([*found, *more]))
    except (OSError, subprocess.SubprocessError):
        pass
    return found


def xcb_problem(plugin: Path | None = None) -> str | None:
    """One line saying which libraries to install, or None when Qt's xcb plugin can load."""
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    if not missing:
        return None
    packages = [DEBIAN_PACKAGES.get(m, m) for m in missing]
    return (f"the window cannot open: Qt's X11 plugin needs {', '.join(missing)}, which this "
            f"system lacks; on Debian or Ubuntu: sudo apt install {' '.join(packages)} "
            "(the README lists all the libraries Qt needs)")
