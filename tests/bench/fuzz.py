"""The long fuzz run: 10,000+ cases over the project, CSV, npz, image-folder, checkpoint and
weights loaders, and the checks a resume makes of a checkpoint's fields.

Run: python -m tests.bench.fuzz [--cases 3000]   (cases per target; 8 targets)

The same strategies and checks as tests/reliability/test_fuzz.py, with many more examples and
fresh randomness each run. Prints how many inputs loaded and how many were refused with the
project's own error; any other exception stops the run with Hypothesis's shrunk example.
"""

from __future__ import annotations

import argparse
import collections
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import fuzz_targets as ft


def run(name: str, strategy, check, cases: int) -> None:
    counts: collections.Counter[str] = collections.Counter()

    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def target(value) -> None:
        counts[check(value)] += 1

    t0 = time.perf_counter()
    target()
    total = sum(counts.values())
    print(f"  {name:24s} {total:6,d} cases in {time.perf_counter() - t0:6.1f} s: "
          + ", ".join(f"{k} {v:,d}" for k, v in counts.most_common()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=3000)
    args = ap.parse_args()
    print(f"fuzzing the loaders, {args.cases:,d} cases each")
    run("project files", ft.mutated_project(), ft.load_project, args.cases)
    run("CSV tables", ft.csv_text(), ft.load_csv, args.cases)
    run("CSV tables of numbers", st.tuples(ft.typed_csv_text(), st.sampled_from(
        [{}, {"task": "regression"}, {"task": "classification"}])),
        lambda v: ft.load_csv(*v), args.cases)
    run("npz files", st.tuples(ft.npz_file(), st.sampled_from(
        ["auto", "classification", "regression"])),
        lambda v: ft.load_npz(v[0], {"task": v[1]}), args.cases)
    run("image folders", ft.image_folder(), ft.load_image_folder, args.cases)
    run("checkpoints (.ckpt)", ft.mutated_bytes(ft.CKPT),
        lambda d: ft.load_file(d, ".ckpt"), args.cases)
    run("weights (.safetensors)", ft.mutated_bytes(ft.WEIGHTS),
        lambda d: ft.load_file(d, ".safetensors"), args.cases)
    ft.real_run_state()  # trained before drawing: a strategy must not move torch's RNG
    run("checkpoints as a resume reads them", ft.mutated_run_state(), ft.resume_from,
        args.cases)


if __name__ == "__main__":
    main()
