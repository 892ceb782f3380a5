"""Drift statistics agree with scipy to 1e-9 on generated data, and the fast paths agree
with the plain computations they replace."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from policyengine.drift import metrics as m

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-9


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= TOL * max(abs(a), abs(b), scale)


@st.composite
def samples(draw: st.DrawFn, lo: int = 1, hi: int = 300) -> np.ndarray:
    """Continuous, heavily tied, or far-from-zero samples (sorted)."""
    n = draw(st.integers(lo, hi))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["normal", "ties", "offset", "wide"]))
    rng = np.random.default_rng(seed)
    shift = draw(st.floats(-2, 2))
    if kind == "normal":
        x = rng.normal(shift, draw(st.floats(0.1, 3)), n)
    elif kind == "ties":
        x = rng.integers(0, draw(st.integers(1, 6)), n).astype(np.float64) + round(shift)
    elif kind == "offset":
        x = 1e6 + rng.exponential(1 + abs(shift), n)
    else:
        x = rng.standard_cauchy(n) * 100
    return np.sort(x)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy, n = 0
@pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")  # scipy falls back to asymp
@FAST
@given(samples(), samples())
def test_ks_statistic_and_pvalue_match_scipy(a: np.ndarray, b: np.ndarray) -> None:
    gap, res = m.ks_test(a, b)
    ref = stats.ks_2samp(a, b)
    assert gap.statistic == pytest.approx(float(ref.statistic), abs=1e-12)
    assert close(res.p_value, float(ref.pvalue))
    _, asym = m.ks_test(a, b, method="asymp")
    ref_asym = float(stats.ks_2samp(a, b, method="asymp").pvalue)
    if math.isnan(ref_asym):  # scipy: n = round(1·1/2) = 0; ours takes n = 1
        assert a.size == b.size == 1 and 0.0 <= asym.p_value <= 1.0
    else:
        assert close(asym.p_value, ref_asym)


@FAST
@given(samples(), samples())
def test_wasserstein_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    w = m.ecdf_gap(a, b).wasserstein
    ref = float(stats.wasserstein_distance(a, b))
    spread = float(max(a[-1], b[-1]) - min(a[0], b[0])) or 1.0
    assert abs(w - ref) <= TOL * max(ref, spread * 1e-3)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(4_200, 30_000),
    st.integers(4_200, 30_000),
    st.booleans(),
    st.sampled_from(["same", "shift", "ties", "offset", "disjoint"]),
    st.integers(0, 2**32 - 1),
)
def test_cell_walk_matches_scipy_on_large_samples(
    na: int, nb: int, equal: bool, kind: str, seed: int
) -> None:
    """Above 4,096 values the walk runs on cells (and W on order statistics when the
    sizes are equal); it must stay exact, ties and all."""
    rng = np.random.default_rng(seed)
    nb = na if equal else nb
    if kind == "same":
        a, b = rng.normal(size=na), rng.normal(size=nb)
    elif kind == "shift":
        a, b = rng.normal(size=na), rng.normal(0.3, 1.2, nb)
    elif kind == "ties":
        a, b = rng.integers(0, 40, na).astype(float), rng.integers(2, 45, nb).astype(float)
    elif kind == "offset":
        a, b = 1e6 + rng.exponential(1, na), 1e6 + rng.exponential(1.05, nb)
    else:
        a, b = rng.normal(size=na), rng.normal(50, 1, nb)
    a.sort()
    b.sort()
    gap = m.ecdf_gap(a, b)
    assert gap.statistic == pytest.approx(float(stats.ks_2samp(a, b).statistic), abs=1e-12)
    ref_w = float(stats.wasserstein_distance(a, b))
    assert abs(gap.wasserstein - ref_w) <= TOL * max(ref_w, 1e-3)
    # equal sizes take the order-statistics shortcut for W; the general walk agrees too
    full = m._walk_cells(a, b, need_w=True)
    assert full.statistic == gap.statistic
    assert abs(full.wasserstein - ref_w) <= TOL * max(ref_w, 1e-3)
    # the location really is where the CDFs differ by D
    fa = np.searchsorted(a, gap.location, side="right") / na
    fb = np.searchsorted(b, gap.location, side="right") / nb
    assert abs(abs(fa - fb) - gap.statistic) <= 1e-12
    assert gap.sign == (1 if fa > fb else -1 if fa < fb else 0)


def test_merged_and_cell_walks_agree_exactly() -> None:
    rng = np.random.default_rng(7)
    a = np.sort(rng.normal(size=20_000).round(2))
    b = np.sort(rng.normal(0.05, 1, 15_000).round(2))
    merged, cells = m._walk_merged(a, b), m._walk_cells(a, b, need_w=True)
    assert merged.statistic == cells.statistic
    assert cells.wasserstein == pytest.approx(merged.wasserstein, rel=1e-12)


@pytest.mark.parametrize("n", [12_000, 60_000, 250_000])
@pytest.mark.parametrize("lam2", [2.3, 6.0, 40.0, 300.0])
def test_fast_kolmogorov_tail_matches_scipy(n: int, lam2: float) -> None:
    """scipy evaluates this tail with an O(n) sum (0.5 s at n = 500k); the quadrature
    must give the same number."""
    d = math.sqrt(lam2 / n)
    ref = float(stats.kstwo.sf(d, float(n)))
    mine = m._kstwo_sf(d, float(n))
    assert abs(mine - ref) <= 1e-12 * max(ref, 1e-300) or abs(mine - ref) < 1e-300
    assert close(m.ks_pvalue(d, 2 * n, 2 * n), ref)


def test_ks_pvalue_outside_the_fast_branch_is_scipys() -> None:
    for n, d in [(50, 0.2), (5_000, 0.01), (2_000_000, 0.002), (300_000, 0.0005)]:
        assert m._kstwo_sf(d, float(n)) == float(stats.kstwo.sf(d, float(n)))


@st.composite
def count_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(1, 12))
    ref = np.array(draw(st.lists(st.integers(0, 500), min_size=k, max_size=k)), dtype=np.int64)
    cur = np.array(draw(st.lists(st.integers(0, 500), min_size=k, max_size=k)), dtype=np.int64)
    ref[draw(st.integers(0, k - 1))] += 1
    cur[draw(st.integers(0, k - 1))] += 1
    return ref, cur


@FAST
@given(count_pairs(), st.booleans())
def test_chi2_matches_scipy(pair: tuple[np.ndarray, np.ndarray], correction: bool) -> None:
    ref, cur = pair
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    res = m.chi2_homogeneity(ref, cur, correction=correction)
    if ref.size == 1:
        assert (res.statistic, res.p_value, res.dof) == (0.0, 1.0, 0)
        return
    s = stats.chi2_contingency(np.vstack((ref, cur)), correction=correction)
    assert close(res.statistic, float(s.statistic)) and close(res.p_value, float(s.pvalue))
    assert res.dof == int(s.dof)


@FAST
@given(count_pairs())
def test_binned_distances(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = pair
    p, q = ref / ref.sum(), cur / cur.sum()
    assert close(m.js_distance(ref, cur), float(jensenshannon(p, q, base=2)))
    assert close(m.js_distance(ref, cur, base=math.e), float(jensenshannon(p, q)))
    assert close(m.total_variation(ref, cur), 0.5 * float(np.abs(p - q).sum()))
    # H² = 1 − Bhattacharyya coefficient (compared squared: the root amplifies rounding)
    assert m.hellinger(ref, cur) ** 2 == pytest.approx(1 - float(np.sqrt(p * q).sum()), abs=1e-12)
    eps = m.EPSILON
    ps, qs = np.where(p == 0, eps, p), np.where(q == 0, eps, q)
    assert close(m.psi(ref, cur), float(np.sum((qs - ps) * np.log(qs / ps))))
    assert close(m.kl_divergence(ref, cur), float(special.rel_entr(q, ps).sum()))
    if (p > 0).all() and (q > 0).all():
        # PSI is the symmetrised KL; KL's direction is current ‖ reference
        kl_cr = float(stats.entropy(q, p))
        assert close(m.kl_divergence(ref, cur), kl_cr)
        assert close(m.psi(ref, cur), kl_cr + float(stats.entropy(p, q)))
    assert 0.0 <= m.js_distance(ref, cur) <= 1.0 + 1e-12
    assert m.js_distance(ref, ref) == pytest.approx(0.0, abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(samples(lo=2, hi=60), samples(lo=2, hi=60))
def test_anderson_darling_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    if np.unique(np.concatenate((a, b))).size < 2 or a.size + b.size < 4:
        with pytest.raises(ValueError):
            m.anderson_darling(a, b)
        return
    res = m.anderson_darling(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stats.anderson_ksamp([a, b], variant="midrank")
    assert close(res.statistic, float(ref.statistic))
    assert close(res.p_value, float(ref.pvalue))
    if res.p_value_bound == "upper":
        assert res.p_value == 0.25
    if res.p_value_bound == "lower":
        assert res.p_value == 0.001


@settings(max_examples=40, deadline=None)
@given(samples(lo=2, hi=45), samples(lo=2, hi=45))
def test_cramer_von_mises_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    res = m.cramer_von_mises(a, b)
    ref = stats.cramervonmises_2samp(a, b)
    assert close(res.statistic, float(ref.statistic))
    assert close(res.p_value, float(ref.pvalue))
    assert res.method == ("exact" if max(a.size, b.size) <= 20 else "asymptotic")


def test_cramer_von_mises_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least two"):
        m.cramer_von_mises(np.array([1.0]), np.array([1.0, 2.0]))


@FAST
@given(samples(lo=1, hi=500), st.integers(1, 20))
def test_quantile_edges_follow_numpy(x: np.ndarray, bins: int) -> None:
    probs = np.arange(1, bins) / bins
    assert np.allclose(m.sorted_quantiles(x, probs), np.quantile(x, probs), rtol=1e-14, atol=0)
    edges = m.quantile_edges(x, bins)
    assert (np.diff(edges) > 0).all()
    counts = m.counts_in_bins(x, edges)
    assert counts.sum() == x.size and counts.size == edges.size + 1
    # unsorted counting and sorted counting agree; bins are right-closed
    shuffled = np.random.default_rng(0).permutation(x)
    assert (m.bin_counts(shuffled, edges) == counts).all()
    for i, e in enumerate(edges):
        assert counts[: i + 1].sum() == int((x <= e).sum())


def test_constant_reference_still_has_two_bins() -> None:
    edges = m.quantile_edges(np.full(100, 3.0), 10)
    assert edges.tolist() == [3.0]
    assert m.counts_in_bins(np.full(5, 4.0), edges).tolist() == [0, 5]


def test_identical_samples_have_no_gap() -> None:
    x = np.sort(np.random.default_rng(1).normal(size=10_000))
    gap = m.ecdf_gap(x, x.copy())
    assert (gap.statistic, gap.wasserstein, gap.sign) == (0.0, 0.0, 0)
    constant = np.full(5_000, 2.0)
    assert m.ecdf_gap(constant, constant.copy()).statistic == 0.0


def test_weighted_walk_reduces_to_the_exact_one_with_unit_weights() -> None:
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.normal(size=300)), np.sort(rng.normal(0.2, 1, 200))
    exact = m.ecdf_gap(a, b)
    weighted = m.ecdf_gap_weighted(a, np.ones(300), b, np.ones(200))
    assert weighted.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert weighted.wasserstein == pytest.approx(exact.wasserstein, rel=1e-12)


def test_empty_samples_are_rejected() -> None:
    with pytest.raises(ValueError):
        m.ecdf_gap(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError):
        m.psi([0, 0], [1, 2])
