"""The core stays pure: no Qt anywhere, and no torch until a module is built."""

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_core_imports_neither_qt_nor_torch() -> None:
    mods = _modules_after(
        "import studio.core.project, studio.core.shapes, studio.core.summary, "
        "studio.core.build, studio.core.layout, studio.cli"
    )
    assert not {m for m in mods if m.startswith(("PySide6", "pyqtgraph", "shiboken6"))}
    assert "torch" not in mods


def test_engine_packages_never_import_qt() -> None:
    mods = _modules_after(
        "import studio.core.modules, studio.data, studio.training"
    )
    assert "torch" in mods  # the check below is only meaningful once torch is in
    assert not {m for m in mods if m.startswith(("PySide6", "pyqtgraph", "shiboken6"))}
