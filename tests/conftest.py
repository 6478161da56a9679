"""Test set-up: no display, no network, small thread count on the 2-core CI machine."""

from __future__ import annotations

import os

# Before any Qt import: tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_NO_DOWNLOAD", "1")

import pytest


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep caches and settings of tests away from the user's real folders."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("STUDIO_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("STUDIO_RECOVERY_DIR", str(base / "recovery"))
    # the user's block library: one of its own per test (the palette lists what it holds)
    monkeypatch.setenv("STUDIO_BLOCKS_DIR", str(tmp_path_factory.mktemp("blocks")))


def _hypothesis_profiles() -> None:
    from hypothesis import settings

    # CI runs the same examples every time (no flaky red builds); local runs explore anew.
    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()
