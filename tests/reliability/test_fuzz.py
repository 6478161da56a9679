"""Fuzzed project files, CSV tables, npz files, image folders, checkpoints and weights: a loaded
object or the project's own error, never another exception (a few hundred cases here;
tests/bench/fuzz.py runs 10k+)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import fuzz_targets as ft

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(ft.mutated_project())
def test_mutated_project_files(text: str) -> None:
    assert ft.load_project(text) in ("loaded", "ProjectError")


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_as_a_project(text: str) -> None:
    assert ft.load_project(text) in ("loaded", "ProjectError")


@FAST
@given(ft.csv_text(), st.sampled_from([{}, {"task": "regression"}, {"categorical": "ordinal"},
                                       {"target": "c0"}, {"features": [0, 7]}]))
def test_csv_tables(text: str, options: dict) -> None:
    assert ft.load_csv(text, options) in ("loaded", "DatasetError", "ProjectError")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_binary_garbage_as_csv(data: bytes) -> None:
    assert ft.load_csv(data) in ("loaded", "DatasetError")


@settings(max_examples=60, deadline=None)
@given(ft.typed_csv_text(), st.sampled_from([{}, {"task": "regression"},
                                             {"task": "classification"}, {"target": "c0"}]))
def test_csv_tables_of_numbers_with_blanks(text: str, options: dict) -> None:
    assert ft.load_csv(text, options) in ("loaded", "DatasetError")


@settings(max_examples=80, deadline=None)
@given(ft.npz_file(), st.sampled_from(["auto", "classification", "regression"]))
def test_npz_files(data: bytes, task: str) -> None:
    assert ft.load_npz(data, {"task": task}) in ("loaded", "DatasetError")


@settings(max_examples=25, deadline=None)
@given(ft.image_folder())
def test_image_folders(spec: dict) -> None:
    assert ft.load_image_folder(spec) in ("loaded", "DatasetError")


@FAST
@given(ft.mutated_bytes(ft.CKPT))
def test_damaged_checkpoints(data: bytes) -> None:
    assert ft.load_file(data, ".ckpt") in ("loaded", "TrainingError")


@FAST
@given(ft.mutated_bytes(ft.WEIGHTS))
def test_damaged_weights_files(data: bytes) -> None:
    assert ft.load_file(data, ".safetensors") in ("loaded", "TrainingError")


@pytest.fixture(scope="module")
def _a_real_run() -> None:
    ft.real_run_state()  # trained before Hypothesis draws: a strategy must not move torch's RNG


@pytest.mark.usefixtures("_a_real_run")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ft.mutated_run_state())
def test_damaged_checkpoints_as_a_resume_reads_them(state: dict) -> None:
    assert ft.resume_from(state) in ("loaded", "TrainingError")
