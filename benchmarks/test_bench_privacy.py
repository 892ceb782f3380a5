"""Privacy checks over 10,000,000 rows × 5 quasi-identifiers (issue 6, pytest-benchmark),
baseline in the same run.

Goal: k-anonymity over 10M rows × 5 quasi-identifiers in under 2 s.

Data (session fixture, seeded): 10,000,000 rows of a synthetic admissions table — `age`
(int16, 18–90), `sex` (2 strings), `zip3` (int32, 900 values, Zipf-like), `year` (int16,
10 values), `ethnicity` (6 strings) as quasi-identifiers, `diagnosis` (40 strings, the
sensitive attribute) and `los_days` (float64, a measurement) — in memory and as Parquet
(polars defaults: zstd) in a temporary directory. About 4 million equivalence classes,
most of them small: the hard case for a group-by.

Group `privacy-k`:
- `memory`: `k_anonymity` on the in-memory frame (the figure the goal is about);
- `parquet`: the same from the Parquet file (scan + group-by);
- `counter`: baseline — a plain-Python `collections.Counter` over row tuples, the way a
  script would do it, on a 500,000-row slice (the full 10M would take minutes and several
  GB); its time is scaled ×20 for the ratio, which is quoted in `extra_info`.
Group `privacy-other`: `l_diversity` (same QIs + `diagnosis`), `detect_identifiers`
(10,000 sampled values per text column) and `assess` (all of it) on the in-memory frame.

Figures land in `extra_info` (`min_s`, `rows_per_s`, `ratio_vs_counter`, `goal_met`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from policyengine.privacy import assess, detect_identifiers, k_anonymity, l_diversity

ROWS = 10_000_000
QIS = ["age", "sex", "zip3", "year", "ethnicity"]
SLICE = 500_000
GOAL_S = 2.0
RESULTS: dict[str, float] = {}


def _frame(seed: int = 20261201) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    zip_p = 1.0 / np.arange(1, 901) ** 0.8
    diag_p = 1.0 / np.arange(1, 41) ** 1.1
    ethnicities = pl.Series(["a", "b", "c", "d", "e", "f"])
    diagnoses = pl.Series([f"dx{i:02d}" for i in range(40)])
    return pl.DataFrame(
        {
            "age": rng.integers(18, 91, ROWS).astype(np.int16),
            "sex": pl.Series(["F", "M"]).gather(pl.Series(rng.integers(0, 2, ROWS))),
            "zip3": rng.choice(900, ROWS, p=zip_p / zip_p.sum()).astype(np.int32),
            "year": rng.integers(2015, 2025, ROWS).astype(np.int16),
            "ethnicity": ethnicities.gather(pl.Series(rng.integers(0, 6, ROWS))),
            "diagnosis": diagnoses.gather(pl.Series(rng.choice(40, ROWS, p=diag_p / diag_p.sum()))),
            "los_days": rng.gamma(2.0, 2.5, ROWS),
        }
    )


@pytest.fixture(scope="session")
def frame() -> pl.DataFrame:
    return _frame()


@pytest.fixture(scope="session")
def parquet(frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("privacy_bench") / "admissions.parquet"
    frame.write_parquet(path)
    return path


def _note(benchmark: Any, key: str, rows: int = ROWS) -> None:
    RESULTS[key] = benchmark.stats.stats.min
    benchmark.extra_info["min_s"] = round(benchmark.stats.stats.min, 4)
    benchmark.extra_info["median_s"] = round(benchmark.stats.stats.median, 4)
    benchmark.extra_info["rows_per_s"] = round(rows / benchmark.stats.stats.min)


@pytest.mark.benchmark(group="privacy-k")
def test_k_anonymity_in_memory(benchmark: Any, frame: pl.DataFrame) -> None:
    result = benchmark.pedantic(
        k_anonymity, args=(frame, QIS), rounds=5, iterations=1, warmup_rounds=1
    )
    assert result.rows == ROWS and result.k == 1 and result.classes > 1_000_000
    _note(benchmark, "memory")
    benchmark.extra_info["classes"] = result.classes
    benchmark.extra_info["goal_met"] = benchmark.stats.stats.min < GOAL_S


@pytest.mark.benchmark(group="privacy-k")
def test_k_anonymity_from_parquet(benchmark: Any, parquet: Path) -> None:
    lazy = pl.scan_parquet(parquet)
    result = benchmark.pedantic(
        k_anonymity, args=(lazy, QIS), rounds=3, iterations=1, warmup_rounds=1
    )
    assert result.rows == ROWS
    _note(benchmark, "parquet")


def counter_k(rows: list[tuple[Any, ...]]) -> tuple[int, int]:
    """What a plain-Python script does: count row tuples, take the smallest count."""
    counts = Counter(rows)
    return min(counts.values()), len(counts)


@pytest.mark.benchmark(group="privacy-k")
def test_counter_baseline(benchmark: Any, frame: pl.DataFrame) -> None:
    head = frame.head(SLICE)
    rows = head.select(QIS).rows()  # materialising the tuples is not timed
    k, classes = benchmark.pedantic(counter_k, args=(rows,), rounds=3, iterations=1)
    ours = k_anonymity(head, QIS)
    assert (ours.k, ours.classes) == (k, classes)  # same answer on the slice
    _note(benchmark, "counter", SLICE)
    scaled = benchmark.stats.stats.min * ROWS / SLICE
    benchmark.extra_info["scaled_to_10m_s"] = round(scaled, 2)
    if "memory" in RESULTS:
        benchmark.extra_info["ratio_vs_counter"] = round(scaled / RESULTS["memory"], 1)


@pytest.mark.benchmark(group="privacy-other")
def test_l_diversity(benchmark: Any, frame: pl.DataFrame) -> None:
    result = benchmark.pedantic(
        l_diversity, args=(frame, QIS, "diagnosis"), rounds=3, iterations=1, warmup_rounds=1
    )
    assert result.l == 1 and result.entropy_l is not None
    _note(benchmark, "l")


@pytest.mark.benchmark(group="privacy-other")
def test_detect_identifiers(benchmark: Any, frame: pl.DataFrame) -> None:
    found = benchmark.pedantic(detect_identifiers, args=(frame,), rounds=3, iterations=1)
    assert found == []  # no identifier-like columns in the synthetic table
    _note(benchmark, "identifiers")


@pytest.mark.benchmark(group="privacy-other")
def test_assess(benchmark: Any, frame: pl.DataFrame) -> None:
    result = benchmark.pedantic(
        assess,
        args=(frame, QIS, "diagnosis"),
        kwargs={"group_by": ["zip3"]},
        rounds=3,
        iterations=1,
    )
    assert not result.passed and result.cell_size is not None
    _note(benchmark, "assess")
