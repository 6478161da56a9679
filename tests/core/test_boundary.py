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


def test_no_module_of_studio_imports_itself_back() -> None:
    """No import cycle between Studio's modules (imports for type checking aside)."""
    import grimp

    graph = grimp.build_graph("studio", exclude_type_checking_imports=True)
    imports = {m: {x for x in graph.find_modules_directly_imported_by(m)
                   if x.startswith("studio")} for m in graph.modules}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(imports.get(m, ())):
            if state.get(n) == 1:
                cycles.append([*path[path.index(n):], n])
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(imports):
        if m not in state:
            visit(m, [m])
    assert not cycles, " → ".join(cycles[0])
