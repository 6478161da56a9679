"""GUI tests never block on a dialog: an unexpected one fails the test instead of hanging CI."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox


@pytest.fixture(autouse=True)
def _no_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"a modal dialog would have blocked the test: {args[1:3]}")

    for name in ("question", "warning", "critical", "information", "exec"):
        monkeypatch.setattr(QMessageBox, name, refuse)
    for name in ("getOpenFileName", "getSaveFileName"):
        monkeypatch.setattr(QFileDialog, name, refuse)
