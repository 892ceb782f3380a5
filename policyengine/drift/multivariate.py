"""Multivariate drift: changes in how features move together, which per-column tests miss.

- PCA reconstruction error: fit principal components on the standardised reference,
  keep enough to explain `variance` of it, and compare how well they reconstruct the
  current rows. A broken correlation raises the error even when every marginal is
  unchanged. The p-value is a one-sided z-test on the mean per-row error.
- Domain-classifier AUC: can a (quadratic-feature) logistic regression tell reference
  rows from current rows? Out-of-fold AUC 0.5 means no; 1.0 means perfectly.

numpy only. Missing values are imputed with the reference mean (0 after scaling); a
constant reference column is left unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from policyengine.drift.errors import DriftError
from policyengine.drift.metrics import FloatArray

__all__ = [
    "MultivariateResult",
    "PCAReconstruction",
    "domain_classifier_auc",
    "pca_reconstruction_drift",
]

Data = pl.DataFrame | npt.ArrayLike


@dataclass(frozen=True, slots=True)
class MultivariateResult:
    method: Literal["pca_reconstruction", "domain_classifier"]
    value: float
    p_value: float | None
    threshold: float
    compared: Literal["value", "p_value"]
    drifted: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Literal["drift", "ok"]:
        return "drift" if self.drifted else "ok"


def _matrix(data: Data, columns: Sequence[str] | None) -> tuple[FloatArray, list[str]]:
    if isinstance(data, pl.DataFrame):
        names = (
            list(columns)
            if columns is not None
            else [c for c, t in data.schema.items() if t.is_numeric()]
        )
        missing = [c for c in names if c not in data.columns]
        if missing:
            raise DriftError(f"no column `{missing[0]}` in the data")
        if not names:
            raise DriftError("multivariate drift needs at least one numeric column")
        x = data.select([pl.col(c).cast(pl.Float64) for c in names]).to_numpy()
        return np.asarray(x, dtype=np.float64), names
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise DriftError("multivariate drift needs a 2-d array (rows × features)")
    return arr, list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]


class _Scaler:
    def __init__(self, x: FloatArray) -> None:
        finite = np.where(np.isfinite(x), x, np.nan)
        with np.errstate(invalid="ignore"):
            self.mean = (
                np.nan_to_num(np.nanmean(finite, axis=0)) if x.shape[0] else np.zeros(x.shape[1])
            )
            std = np.nan_to_num(np.nanstd(finite, axis=0)) if x.shape[0] else np.ones(x.shape[1])
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, x: FloatArray) -> FloatArray:
        z = (x - self.mean) / self.std
        out: FloatArray = np.where(np.isfinite(z), z, 0.0)
        return out


def _sample(x: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
    if x.shape[0] <= n:
        return x
    return x[np.sort(rng.choice(x.shape[0], n, replace=False))]


class PCAReconstruction:
    """PCA fitted on the reference; `errors(x)` is each row's reconstruction distance."""

    def __init__(self, variance: float = 0.65, max_rows: int = 200_000, seed: int = 0) -> None:
        if not 0 < variance <= 1:
            raise DriftError(f"`variance` must be in (0, 1], got `{variance}`")
        self.variance = variance
        self.max_rows = max_rows
        self.seed = seed
        self.components: FloatArray | None = None
        self._scale: _Scaler | None = None

    def fit(self, reference: FloatArray) -> PCAReconstruction:
        if reference.shape[0] < 2:
            raise DriftError("pca reconstruction needs at least two reference rows")
        self._scale = _Scaler(reference)
        z = self._scale(_sample(reference, self.max_rows, np.random.default_rng(self.seed)))
        _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        explained = s**2 / max(float((s**2).sum()), 1e-300)
        k = int(np.searchsorted(np.cumsum(explained), self.variance - 1e-12) + 1)
        self.components = vt[: min(k, vt.shape[0])]
        return self

    def errors(self, x: FloatArray) -> FloatArray:
        assert self.components is not None and self._scale is not None, "fit first"
        z = self._scale(x)
        recon = (z @ self.components.T) @ self.components
        out: FloatArray = np.sqrt(((z - recon) ** 2).sum(axis=1))
        return out


def pca_reconstruction_drift(
    reference: Data,
    current: Data,
    *,
    columns: Sequence[str] | None = None,
    variance: float = 0.65,
    alpha: float = 0.05,
    seed: int = 0,
) -> MultivariateResult:
    """Mean reconstruction error of current rows vs reference rows, with a one-sided
    z-test (drift when the current error is significantly larger, p < `alpha`). `value`
    is the relative change of the mean error."""
    ref, names = _matrix(reference, columns)
    cur, _ = _matrix(current, names if isinstance(current, pl.DataFrame) else columns)
    if cur.shape[1] != ref.shape[1]:
        raise DriftError("reference and current have different numbers of features")
    if cur.shape[0] == 0:
        raise DriftError("the current data has no rows")
    model = PCAReconstruction(variance=variance, seed=seed).fit(ref)
    er, ec = model.errors(ref), model.errors(cur)
    mr, mc = float(er.mean()), float(ec.mean())
    se = math.sqrt(
        float(er.var(ddof=1)) / er.size + float(ec.var(ddof=1) if ec.size > 1 else 0.0) / ec.size
    )
    z = (mc - mr) / se if se > 0 else (0.0 if mc == mr else math.inf)
    p = float(stats.norm.sf(z))
    rel = (mc - mr) / mr if mr > 0 else (0.0 if mc == mr else math.inf)
    assert model.components is not None
    return MultivariateResult(
        "pca_reconstruction",
        rel,
        p,
        alpha,
        "p_value",
        p < alpha,
        {
            "reference_error": mr,
            "current_error": mc,
            "components": int(model.components.shape[0]),
            "features": names,
            "z": z,
        },
    )


def _logistic(x: FloatArray, y: FloatArray, l2: float = 1.0, iterations: int = 25) -> FloatArray:
    """L2-regularised logistic regression by Newton's method (IRLS); intercept unpenalised."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -35, 35)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def _auc(scores: FloatArray, labels: FloatArray) -> float:
    ranks = stats.rankdata(scores)
    pos = labels == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def domain_classifier_auc(
    reference: Data,
    current: Data,
    *,
    columns: Sequence[str] | None = None,
    threshold: float = 0.55,
    folds: int = 5,
    max_rows: int = 20_000,
    seed: int = 0,
) -> MultivariateResult:
    """Out-of-fold AUC of a logistic regression on standardised features and their
    squares, separating (a seeded sample of) reference rows from current rows. Drift when
    the AUC exceeds `threshold`."""
    ref, names = _matrix(reference, columns)
    cur, _ = _matrix(current, names if isinstance(current, pl.DataFrame) else columns)
    if cur.shape[1] != ref.shape[1]:
        raise DriftError("reference and current have different numbers of features")
    if min(ref.shape[0], cur.shape[0]) < folds:
        raise DriftError(f"the domain classifier needs at least {folds} rows on each side")
    rng = np.random.default_rng(seed)
    scale = _Scaler(ref)
    a = scale(_sample(ref, max_rows, rng))
    b = scale(_sample(cur, max_rows, rng))
    z = np.vstack((a, b))
    x = np.hstack((np.ones((z.shape[0], 1)), z, z**2))
    y = np.concatenate((np.zeros(a.shape[0]), np.ones(b.shape[0])))
    fold = rng.permutation(np.arange(y.size) % folds)
    scores = np.empty(y.size)
    for k in range(folds):
        test = fold == k
        w = _logistic(x[~test], y[~test])
        scores[test] = x[test] @ w
    auc = _auc(scores, y)
    return MultivariateResult(
        "domain_classifier",
        auc,
        None,
        threshold,
        "value",
        auc > threshold,
        {"rows": [int(a.shape[0]), int(b.shape[0])], "folds": folds, "features": names},
    )
