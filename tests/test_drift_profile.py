"""Profiles: exact merging of partitions, missing/infinite handling, the content hash and
the file format."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine.drift import (
    Binning,
    CategoricalProfile,
    DatasetProfile,
    DriftError,
    NumericProfile,
    ProfileOptions,
    Sketch,
    load_profile,
    merge_profiles,
    numeric_profile,
    profile_frame,
    save_profile,
    with_bins,
)
from policyengine.drift.metrics import quantile_edges

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def messy_values(draw: st.DrawFn) -> np.ndarray:
    """Floats with NaN (missing), ±inf and ties, in random order."""
    n = draw(st.integers(0, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(0, 2, n).round(draw(st.integers(0, 3)))
    for special, share in ((np.nan, 0.1), (np.inf, 0.03), (-np.inf, 0.03)):
        x[rng.random(n) < share * draw(st.integers(0, 1))] = special
    return x


def assert_same(a: NumericProfile, b: NumericProfile) -> None:
    assert (a.rows, a.missing, a.neg_inf, a.pos_inf, a.count) == (
        b.rows,
        b.missing,
        b.neg_inf,
        b.pos_inf,
        b.count,
    )
    assert (a.minimum, a.maximum, a.below, a.above) == (b.minimum, b.maximum, b.below, b.above)
    assert a.bin_counts is not None and b.bin_counts is not None
    assert a.bin_counts.tolist() == b.bin_counts.tolist()
    if a.values is not None or b.values is not None:
        assert a.values is not None and b.values is not None
        assert np.array_equal(a.values, b.values)


@FAST
@given(messy_values(), messy_values(), st.floats(0, 1), st.integers(1, 12))
def test_profile_of_union_equals_merge_of_profiles(
    reference: np.ndarray, window: np.ndarray, cut: float, bins: int
) -> None:
    ref = numeric_profile(reference, bins=bins)
    assert ref.binning is not None
    k = int(cut * window.size)
    whole = numeric_profile(window, binning=ref.binning)
    parts = merge_profiles(
        DatasetProfile({"x": numeric_profile(window[:k], binning=ref.binning)}, k),
        DatasetProfile({"x": numeric_profile(window[k:], binning=ref.binning)}, window.size - k),
    )
    merged = parts.columns["x"]
    assert isinstance(merged, NumericProfile)
    assert_same(whole, merged)
    assert parts.rows == window.size


@FAST
@given(messy_values(), messy_values(), st.integers(1, 10))
def test_binned_counts_stay_exact_when_values_become_a_sketch(
    reference: np.ndarray, window: np.ndarray, cap: int
) -> None:
    """Above `max_values` the sorted values give way to a sketch; counts stay exact."""
    opts = ProfileOptions(bins=10, max_values=cap, sketch_size=4)
    ref = numeric_profile(reference, bins=10, options=opts)
    assert ref.binning is not None
    halves = np.array_split(window, 3)
    profs = [numeric_profile(h, binning=ref.binning, options=opts) for h in halves]
    merged = merge_profiles(
        merge_profiles(*(DatasetProfile({"x": p}, p.rows, opts) for p in profs[:2])),
        DatasetProfile({"x": profs[2]}, profs[2].rows, opts),
    ).columns["x"]
    whole = numeric_profile(window, binning=ref.binning, options=opts)
    assert isinstance(merged, NumericProfile)
    assert merged.bin_counts is not None and whole.bin_counts is not None
    assert merged.bin_counts.tolist() == whole.bin_counts.tolist()
    assert (merged.count, merged.missing, merged.minimum, merged.maximum) == (
        whole.count,
        whole.missing,
        whole.minimum,
        whole.maximum,
    )
    if whole.count > cap:
        assert merged.values is None and merged.sketch is not None
        assert merged.sketch.count == whole.count
        assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-12)
        assert merged.std == pytest.approx(whole.std, rel=1e-7, abs=1e-12)


def test_missing_and_infinite_values_are_counted_apart() -> None:
    x = np.array([1.0, np.nan, np.inf, -np.inf, 3.0, 2.0, np.nan, np.inf])
    p = numeric_profile(x, bins=2)
    assert (p.rows, p.missing, p.neg_inf, p.pos_inf, p.count) == (8, 2, 1, 2, 3)
    assert p.values is not None and p.values.tolist() == [1.0, 2.0, 3.0]
    assert (p.minimum, p.maximum) == (1.0, 3.0)
    assert p.bin_counts is not None and p.bin_counts.sum() == 3


def test_nulls_are_missing_too() -> None:
    frame = pl.DataFrame({"x": [1.0, None, float("nan"), 4.0], "c": ["a", None, "b", "a"]})
    prof = profile_frame(frame)
    x, c = prof.columns["x"], prof.columns["c"]
    assert isinstance(x, NumericProfile) and isinstance(c, CategoricalProfile)
    assert (x.missing, x.count) == (2, 2)
    assert (c.missing, c.counts) == (1, {"a": 2, "b": 1})


def test_window_counts_out_of_range_values() -> None:
    ref = numeric_profile(np.arange(10.0), bins=5)
    assert ref.binning is not None
    win = numeric_profile(np.array([-1.0, 0.0, 5.0, 9.0, 12.0, 20.0]), binning=ref.binning)
    assert (win.below, win.above) == (1, 2)


def test_sketch_quantiles_are_close() -> None:
    x = np.sort(np.random.default_rng(0).normal(size=100_000))
    sk = Sketch.from_sorted(x, 512)
    assert sk.count == x.size
    merged = Sketch.from_sorted(x[::2], 512).merge(Sketch.from_sorted(x[1::2], 512), 512)
    assert merged.count == x.size and merged.points.size <= 512
    probs = np.linspace(0.05, 0.95, 19)
    for s in (sk, merged):
        assert np.abs(s.quantiles(probs) - np.quantile(x, probs)).max() < 0.02


def test_binning_a_merged_reference_needs_its_values() -> None:
    opts = ProfileOptions(max_values=5, sketch_size=4)
    chunk = numeric_profile(np.arange(20.0), options=opts)
    with pytest.raises(DriftError, match="sketch"):
        with_bins(chunk, 4)
    binned = with_bins(numeric_profile(np.arange(20.0)), 4)
    assert binned.binning is not None and binned.bin_counts is not None
    assert binned.bin_counts.tolist() == [5, 5, 5, 5]


def test_merging_differently_binned_windows_is_refused() -> None:
    a = numeric_profile(np.arange(5.0), binning=Binning(2, np.array([1.0]), 0.0, 4.0))
    b = numeric_profile(np.arange(5.0), binning=Binning(2, np.array([2.0]), 0.0, 4.0))
    with pytest.raises(DriftError, match="different bins"):
        merge_profiles(DatasetProfile({"x": a}, 5), DatasetProfile({"x": b}, 5))


def _frame(seed: int, n: int = 2_000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "age": rng.normal(50, 10, n),
            "dose": rng.integers(0, 5, n),
            "site": rng.choice(["a", "b", "c"], n),
            "flag": rng.random(n) < 0.3,
        }
    )


def test_dataset_merge_gives_the_same_digest() -> None:
    ref = profile_frame(_frame(1))
    window = _frame(2)
    whole = profile_frame(window, reference=ref)
    parts = merge_profiles(
        profile_frame(window[:700], reference=ref), profile_frame(window[700:], reference=ref)
    )
    assert whole.digest == parts.digest
    assert whole.digest.startswith("sha256:") and len(whole.digest) == 7 + 64


def test_digest_names_content_only() -> None:
    a = profile_frame(_frame(1), source="one.parquet")
    b = profile_frame(_frame(1), source="elsewhere.csv")
    c = profile_frame(_frame(3))
    assert a.digest == b.digest != c.digest


def test_save_load_round_trip(tmp_path: Path) -> None:
    ref = profile_frame(_frame(1), source="ref.parquet")
    path = tmp_path / "ref.profile.zip"
    digest = save_profile(ref, path)
    loaded = load_profile(path)
    assert digest == ref.digest == loaded.digest
    assert loaded.source == "ref.parquet"
    assert list(loaded.columns) == list(ref.columns)
    for name, col in ref.columns.items():
        other = loaded.columns[name]
        if isinstance(col, NumericProfile):
            assert isinstance(other, NumericProfile)
            assert col.binning is not None and other.binning is not None
            assert col.binning.same_as(other.binning)
            assert np.array_equal(col.values, other.values)  # type: ignore[arg-type]
            assert col.bin_counts.tolist() == other.bin_counts.tolist()  # type: ignore[union-attr]
        else:
            assert isinstance(other, CategoricalProfile) and col.counts == other.counts
    # and the loaded profile compares a window identically
    window = _frame(2)
    assert (
        profile_frame(window, reference=ref).digest
        == profile_frame(window, reference=loaded).digest
    )


def test_sketch_profiles_round_trip(tmp_path: Path) -> None:
    opts = ProfileOptions(max_values=100, sketch_size=32)
    ref = profile_frame(_frame(1), options=opts)
    age = ref.columns["age"]
    assert isinstance(age, NumericProfile) and age.sketch is not None and age.values is None
    save_profile(ref, tmp_path / "p.zip")
    loaded = load_profile(tmp_path / "p.zip")
    back = loaded.columns["age"]
    assert isinstance(back, NumericProfile) and back.sketch is not None
    assert np.array_equal(back.sketch.points, age.sketch.points)
    assert back.moments == age.moments
    assert loaded.digest == ref.digest


def _rewrite(path: Path, member: str, edit: object) -> None:
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    items[member] = edit(items[member])  # type: ignore[operator]
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in items.items():
            zf.writestr(n, data)


def test_tampering_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "ref.zip"
    save_profile(profile_frame(_frame(1)), path)
    values = next(n for n in zipfile.ZipFile(path).namelist() if n.endswith("values"))
    _rewrite(path, values, lambda b: b[:-8] + np.float64(1e9).tobytes())
    with pytest.raises(DriftError, match="does not match its hash"):
        load_profile(path)
    assert load_profile(path, verify=False).rows == 2_000

    save_profile(profile_frame(_frame(1)), path)

    def bump(raw: bytes) -> bytes:
        doc = json.loads(raw)
        doc["profile"]["columns"][0]["missing"] += 1
        return json.dumps(doc).encode()

    _rewrite(path, "manifest.json", bump)
    with pytest.raises(DriftError, match="does not match its digest"):
        load_profile(path)


def test_unreadable_profiles_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(DriftError, match="no such profile"):
        load_profile(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DriftError, match="not a drift profile"):
        load_profile(tmp_path / "junk.zip")
    path = tmp_path / "old.zip"
    save_profile(profile_frame(_frame(1)), path)

    def downgrade(raw: bytes) -> bytes:
        doc = json.loads(raw)
        doc["profile"]["schema_version"] = 0
        return json.dumps(doc).encode()

    _rewrite(path, "manifest.json", downgrade)
    with pytest.raises(DriftError, match="schema version `0`"):
        load_profile(path)


def test_constant_and_empty_columns() -> None:
    const = numeric_profile(np.full(50, 7.0), bins=10)
    assert const.binning is not None and const.binning.edges.tolist() == [7.0]
    assert const.std == 0.0
    empty = numeric_profile(np.array([np.nan, np.nan]), bins=10)
    assert (empty.count, empty.minimum, empty.mean, empty.std) == (0, None, None, None)
    assert quantile_edges(np.array([]), 10).size == 0
