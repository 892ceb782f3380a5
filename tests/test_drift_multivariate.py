"""Multivariate drift: a broken correlation that no per-column test can see."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from policyengine.drift import (
    DriftError,
    PCAReconstruction,
    domain_classifier_auc,
    pca_reconstruction_drift,
)


def correlated(seed: int, n: int, sign: float) -> pl.DataFrame:
    """Three features with identical marginals; `sign` flips how x and y move together."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = sign * 0.9 * x + np.sqrt(1 - 0.81) * rng.normal(size=n)
    return pl.DataFrame({"x": x, "y": y, "z": rng.normal(size=n)})


def test_pca_sees_a_flipped_correlation_with_unchanged_marginals() -> None:
    ref, cur = correlated(0, 4_000, 1.0), correlated(1, 2_000, -1.0)
    for c in ("x", "y", "z"):  # each column on its own looks the same
        assert stats.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()).pvalue > 0.01
    res = pca_reconstruction_drift(ref, cur)
    assert res.drifted and res.p_value is not None and res.p_value < 1e-6
    assert res.details["current_error"] > 2 * res.details["reference_error"]
    assert res.details["components"] == 2


def test_pca_is_quiet_without_drift() -> None:
    res = pca_reconstruction_drift(correlated(2, 4_000, 1.0), correlated(3, 2_000, 1.0))
    assert not res.drifted and abs(res.value) < 0.1


def test_domain_classifier() -> None:
    ref = correlated(4, 3_000, 1.0)
    shifted = correlated(5, 3_000, 1.0).with_columns(pl.col("z") + 0.5)
    res = domain_classifier_auc(ref, shifted)
    assert res.drifted and res.value > 0.6
    same = domain_classifier_auc(ref, correlated(6, 3_000, 1.0))
    assert not same.drifted and abs(same.value - 0.5) < 0.05
    # squares let a linear model see a change of spread
    wide = correlated(7, 3_000, 1.0).with_columns(pl.col("z") * 2)
    assert domain_classifier_auc(ref, wide).drifted


def test_arrays_missing_values_and_errors() -> None:
    rng = np.random.default_rng(8)
    a = rng.normal(size=(500, 3))
    b = a.copy()
    b[::7, 1] = np.nan
    model = PCAReconstruction(variance=0.99).fit(a)
    assert model.errors(b).shape == (500,) and np.isfinite(model.errors(b)).all()
    with pytest.raises(DriftError, match="different numbers of features"):
        pca_reconstruction_drift(a, a[:, :2])
    with pytest.raises(DriftError, match="at least 5 rows"):
        domain_classifier_auc(a, a[:3])
    with pytest.raises(DriftError, match="variance"):
        PCAReconstruction(variance=1.5)
    with pytest.raises(DriftError, match="no column `w`"):
        pca_reconstruction_drift(
            pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": [1.0]}), columns=["w"]
        )
