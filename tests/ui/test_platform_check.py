"""On Linux, a missing system library for Qt's X11 plugin is one line naming what to install,
not Qt's abort."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio import cli
from studio.ui import platform_check

linux_cc = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("cc"),
                              reason="needs Linux and a C compiler")


def _plugin_needing(tmp_path: Path, *sonames: str) -> Path:
    """A shared library that needs ``sonames``, built against stubs that are then removed:
    loading it fails exactly as Qt's plugin does on a system without those libraries."""
    flags = []
    for so in sonames:
        stub = tmp_path / so
        subprocess.run(["cc", "-shared", "-fPIC", "-x", "c", "-", "-o", str(stub),
                        f"-Wl,-soname,{so}"], input="int stub_symbol(void){return 0;}",
                       text=True, check=True, capture_output=True)
        flags.append(str(stub))
    plugin = tmp_path / "libqxcb.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-x", "c", "-", "-o", str(plugin),
                    "-x", "none", "-Wl,--no-as-needed", *flags],
                   input="int plugin_symbol(void){return 1;}", text=True, check=True,
                   capture_output=True)
    for so in sonames:
        (tmp_path / so).unlink()
    return plugin


#: libraries no system has, standing for the real ones (which this machine may well have)
GONE = ("libstudio-gone-a.so.0", "libstudio-gone-b.so.1")


@pytest.fixture
def packages(monkeypatch) -> None:
    monkeypatch.setitem(platform_check.DEBIAN_PACKAGES, GONE[0], "libstudio-gone-a0")
    monkeypatch.setitem(platform_check.DEBIAN_PACKAGES, GONE[1], "libstudio-gone-b1")


@linux_cc
def test_the_missing_libraries_and_their_packages_are_named(tmp_path, packages) -> None:
    plugin = _plugin_needing(tmp_path, *GONE)
    assert platform_check.missing_libraries(plugin) == list(GONE)
    line = platform_check.xcb_problem(plugin)
    assert line is not None and "\n" not in line
    assert "sudo apt install libstudio-gone-a0 libstudio-gone-b1" in line
    assert platform_check.DEBIAN_PACKAGES["libxcb-cursor.so.0"] == "libxcb-cursor0"


@linux_cc
def test_a_plugin_that_loads_is_no_problem(tmp_path) -> None:
    plugin = _plugin_needing(tmp_path)  # needs nothing beyond libc
    assert platform_check.missing_libraries(plugin) == []
    assert platform_check.xcb_problem(plugin) is None


@linux_cc
def test_studio_exits_2_with_one_line_instead_of_qts_abort(tmp_path, monkeypatch, capsys,
                                                            packages) -> None:
    plugin = _plugin_needing(tmp_path, GONE[0])
    monkeypatch.setattr(platform_check, "xcb_plugin", lambda: plugin)
    import studio.ui.app

    def qt_would_abort(_path: object) -> int:
        raise AssertionError("Qt was started without the check")

    monkeypatch.setattr(studio.ui.app, "run_app", qt_would_abort)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    assert cli.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sudo apt install libstudio-gone-a0" in err[0]


def test_only_an_x11_session_is_checked() -> None:
    assert not platform_check.uses_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    assert not platform_check.uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert not platform_check.uses_xcb({})
    if sys.platform.startswith("linux"):
        assert platform_check.uses_xcb({"DISPLAY": ":0"})
        assert platform_check.uses_xcb({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "w"})
