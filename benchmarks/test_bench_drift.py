"""Drift report throughput and memory (issue 3, pytest-benchmark), baseline in the same run.

Data (session fixture, seeded): 1,000,000 reference and 1,000,000 current rows, 20 float64
columns (normal, log-normal, uniform, gamma; several shifted in the current window) and 5
string columns with 10–50 levels (Zipf-like, tilted in the current window), written to
Parquet (polars defaults: zstd) in a temporary directory.

Group `drift`:
- `full`: the default report end to end from the two Parquet files (numeric: KS, PSI,
  Wasserstein; categorical: chi², JS, PSI);
- `cached`: the same for the current window against a reference profile in memory;
- `scipy`: baseline — read both files with polars, then per column `scipy.stats.ks_2samp`
  + `wasserstein_distance` (numeric) and `chi2_contingency` (categorical); one round.
Group `drift-memory`: peak RSS of one report in a fresh interpreter, next to the raw size
of both frames and the peak of merely reading them.

Figures land in `extra_info` (`ratio_vs_scipy`, `peak_rss_mb`, …); nothing asserts time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from policyengine.drift import DatasetProfile, run_report, save_profile

ROWS = 1_000_000
NUMERIC = 20
LEVELS = (10, 20, 30, 40, 50)
RESULTS: dict[str, float] = {}


def _frame(seed: int, shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for j in range(NUMERIC):
        kind = j % 4
        s = shift * (j % 3)  # a third of the columns never move
        if kind == 0:
            x = rng.normal(s, 1.0, ROWS)
        elif kind == 1:
            x = rng.lognormal(0.0, 0.5 + 0.1 * s, ROWS)
        elif kind == 2:
            x = rng.uniform(0.0, 10.0 + s, ROWS)
        else:
            x = rng.gamma(2.0, 2.0 + s, ROWS)
        cols[f"num_{j:02d}"] = x
    for j, n_levels in enumerate(LEVELS):
        names = pl.Series([f"level_{j}_{i:02d}" for i in range(n_levels)])
        p = 1.0 / np.arange(1, n_levels + 1) ** (1.0 + shift * 0.2 * (j % 2))
        codes = rng.choice(n_levels, size=ROWS, p=p / p.sum())
        cols[f"cat_{j}"] = names.gather(pl.Series(codes))
    return pl.DataFrame(cols)


@pytest.fixture(scope="session")
def drift_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("drift_bench")
    ref, cur = d / "reference.parquet", d / "current.parquet"
    _frame(20261127, 0.0).write_parquet(ref)
    _frame(20261128, 0.1).write_parquet(cur)
    return ref, cur


@pytest.fixture(scope="session")
def reference_profile(drift_files: tuple[Path, Path]) -> DatasetProfile:
    """The reference profile as `--save-reference` builds it."""
    full = run_report(drift_files[0], drift_files[1], keep_reference=True).reference_profile
    assert full is not None
    return full


def _note(benchmark: Any, key: str) -> None:
    RESULTS[key] = benchmark.stats.stats.min
    benchmark.extra_info["min_s"] = round(benchmark.stats.stats.min, 4)
    benchmark.extra_info["median_s"] = round(benchmark.stats.stats.median, 4)


@pytest.mark.benchmark(group="drift")
def test_full_report(benchmark: Any, drift_files: tuple[Path, Path]) -> None:
    ref, cur = drift_files
    report = benchmark.pedantic(
        run_report, args=(ref, cur), rounds=7, iterations=1, warmup_rounds=1
    )
    assert len(report.columns) == NUMERIC + len(LEVELS)
    assert report.drifted and not all(c.drifted for c in report.columns)
    _note(benchmark, "full")


@pytest.mark.benchmark(group="drift")
def test_cached_reference(
    benchmark: Any, drift_files: tuple[Path, Path], reference_profile: DatasetProfile
) -> None:
    assert reference_profile.digest.startswith("sha256:")  # hashed once, outside the timing
    report = benchmark.pedantic(
        run_report,
        args=(reference_profile, drift_files[1]),
        rounds=7,
        iterations=1,
        warmup_rounds=1,
    )
    assert report.reference.digest == reference_profile.digest
    _note(benchmark, "cached")


def scipy_loop(ref_path: Path, cur_path: Path) -> dict[str, tuple[float, ...]]:
    """What a per-column scipy script does: read, then test column by column."""
    ref, cur = pl.read_parquet(ref_path), pl.read_parquet(cur_path)
    out: dict[str, tuple[float, ...]] = {}
    for name in ref.columns:
        if ref[name].dtype == pl.Float64:
            a, b = ref[name].to_numpy(), cur[name].to_numpy()
            ks = stats.ks_2samp(a, b)
            out[name] = (
                float(ks.statistic),
                float(ks.pvalue),
                float(stats.wasserstein_distance(a, b)),
            )
        else:
            counts = (
                pl.concat(
                    [ref.select(name).with_columns(side=0), cur.select(name).with_columns(side=1)]
                )
                .group_by(name, "side")
                .len()
                .pivot(on="side", index=name, values="len")
                .fill_null(0)
            )
            chi = stats.chi2_contingency(counts.select("0", "1").to_numpy().T)
            out[name] = (float(chi.statistic), float(chi.pvalue))
    return out


@pytest.mark.benchmark(group="drift")
def test_scipy_baseline(benchmark: Any, drift_files: tuple[Path, Path]) -> None:
    result = benchmark.pedantic(scipy_loop, args=drift_files, rounds=1, iterations=1)
    _note(benchmark, "scipy")
    # same answers as ours on the statistics both compute
    ours = {c.column: c for c in run_report(*drift_files).columns}
    for name, values in result.items():
        first = ours[name].metrics[0]
        assert first.value == pytest.approx(values[0], rel=1e-9, abs=1e-12)
        assert first.p_value == pytest.approx(values[1], rel=1e-9, abs=1e-12)
    if "full" in RESULTS:
        benchmark.extra_info["ratio_full_vs_scipy"] = round(RESULTS["scipy"] / RESULTS["full"], 1)
    if "cached" in RESULTS:
        benchmark.extra_info["ratio_cached_vs_scipy"] = round(
            RESULTS["scipy"] / RESULTS["cached"], 1
        )


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import polars as pl
    from policyengine.drift import run_report
    def peak():
        # VmHWM, not ru_maxrss: the latter survives fork+exec from the (large) parent
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    base = peak()
    what, ref, cur = sys.argv[1:4]
    if what == "report":
        run_report(ref, cur)
    elif what == "cached":
        from policyengine.drift import load_profile
        prof = load_profile(ref)
        base = peak()  # the profile itself is resident before the window is read
        run_report(prof, cur)
    else:
        frames = pl.read_parquet(ref), pl.read_parquet(cur)
    print(json.dumps({"baseline_mb": base, "peak_mb": peak()}))
    """
)


def _peak(what: str, ref: Path, cur: Path) -> dict[str, float]:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, what, str(ref), str(cur)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


@pytest.mark.benchmark(group="drift-memory")
def test_peak_memory(
    benchmark: Any,
    drift_files: tuple[Path, Path],
    reference_profile: DatasetProfile,
    tmp_path: Path,
) -> None:
    """Peak RSS in fresh interpreters (tracemalloc cannot see polars' allocations)."""
    ref, cur = drift_files
    raw = (pl.read_parquet(ref).estimated_size() + pl.read_parquet(cur).estimated_size()) / 2**20
    report = benchmark.pedantic(_peak, args=("report", ref, cur), rounds=1, iterations=1)
    frames = _peak("frames", ref, cur)
    save_profile(reference_profile, tmp_path / "reference.zip")
    cached = _peak("cached", tmp_path / "reference.zip", cur)
    info = benchmark.extra_info
    info["raw_data_mb"] = round(raw, 1)
    info["interpreter_mb"] = round(report["baseline_mb"], 1)
    info["report_peak_rss_mb"] = round(report["peak_mb"], 1)
    info["report_peak_over_interpreter_mb"] = round(report["peak_mb"] - report["baseline_mb"], 1)
    info["report_peak_over_raw"] = round(report["peak_mb"] / raw, 2)
    info["read_both_frames_peak_rss_mb"] = round(frames["peak_mb"], 1)
    info["cached_profile_resident_mb"] = round(cached["baseline_mb"], 1)
    info["cached_window_peak_rss_mb"] = round(cached["peak_mb"], 1)
    assert report["peak_mb"] > report["baseline_mb"]
