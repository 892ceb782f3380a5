"""The compare step: a named metric, its threshold and options, applied to the reference
and current profiles of one column, giving a `MetricResult` with a verdict.

This is the interface a compiled `monitor` policy calls: it holds per-column
`MetricSpec`s (metric name, threshold, options) and gets back, for each, the value, the
p-value where the metric is a test, the threshold and the verdict. Definitions are in
`spec/drift.md`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from policyengine.drift import metrics as m
from policyengine.drift.errors import DriftError
from policyengine.drift.metrics import FloatArray, IntArray
from policyengine.drift.profile import (
    DEFAULT_BINS,
    CategoricalProfile,
    ColumnKind,
    ColumnProfile,
    NumericProfile,
)

__all__ = [
    "METRICS",
    "ColumnPair",
    "MetricDef",
    "MetricResult",
    "MetricSpec",
    "Verdict",
    "evaluate",
    "evaluate_metric",
    "json_float",
    "json_value",
    "validate_spec",
]

Verdict = Literal["drift", "ok", "no_data"]
Compared = Literal["value", "p_value"]
Computed = tuple[float, float | None, dict[str, Any]]

# Category names listed in details (new/missing categories); the count is always exact.
_LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One check on one column: metric name, threshold (None: the metric's default) and
    options (e.g. `bins`, `on="statistic"`)."""

    metric: str
    threshold: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricResult:
    column: str
    metric: str
    value: float | None
    """The statistic or distance; None when there was no data to compare."""
    p_value: float | None
    threshold: float
    compared: Compared
    """What the threshold applies to: `p_value` (drift when below) or `value` (drift when
    above)."""
    verdict: Verdict
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": json_float(self.value),
            "p_value": json_float(self.p_value),
            "threshold": self.threshold,
            "compared": self.compared,
            "verdict": self.verdict,
            "drifted": self.drifted,
            "details": {k: json_value(v) for k, v in self.details.items()},
        }


def json_float(v: float | None) -> float | str | None:
    """JSON has no infinities: they are written as the strings "inf" / "-inf" / "nan"."""
    if v is None:
        return None
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def json_value(v: Any) -> Any:
    if isinstance(v, float):
        return json_float(v)
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return json_value(v.item())
    return v


# --------------------------------------------------------------------------- column pairs


class ColumnPair:
    """Reference and current profiles of one column, with shared intermediate results
    (the ECDF walk, rebinned counts, aligned categories) computed once for all metrics."""

    def __init__(self, name: str, reference: ColumnProfile, current: ColumnProfile) -> None:
        if reference.kind != current.kind:
            raise DriftError(
                f"column `{name}` is {reference.kind} in the reference but {current.kind} now",
                "compare columns of the same type, or set the column's kind explicitly",
            )
        self.name = name
        self.reference = reference
        self.current = current
        self._gap: m.EcdfGap | None = None
        self._binned: dict[int | None, tuple[IntArray, IntArray, int]] = {}
        self._categories: tuple[list[str], IntArray, IntArray] | None = None

    @property
    def kind(self) -> ColumnKind:
        return self.reference.kind

    def numeric(self) -> tuple[NumericProfile, NumericProfile]:
        r, c = self.reference, self.current
        assert isinstance(r, NumericProfile) and isinstance(c, NumericProfile)
        return r, c

    def categorical(self) -> tuple[CategoricalProfile, CategoricalProfile]:
        r, c = self.reference, self.current
        assert isinstance(r, CategoricalProfile) and isinstance(c, CategoricalProfile)
        return r, c

    @property
    def exact(self) -> bool:
        r, c = self.numeric()
        return r.values is not None and c.values is not None

    def gap(self) -> m.EcdfGap:
        if self._gap is None:
            r, c = self.numeric()
            if r.values is not None and c.values is not None:
                self._gap = m.ecdf_gap(r.values, c.values)
            else:
                rs, cs = _sketch_of(r), _sketch_of(c)
                self._gap = m.ecdf_gap_weighted(
                    rs[0], rs[1].astype(np.float64), cs[0], cs[1].astype(np.float64)
                )
        return self._gap

    def binned(self, bins: int | None) -> tuple[IntArray, IntArray, int]:
        """(reference counts, current counts, number of bins) on the reference's bins:
        the profiles' own counts when the window was counted in the reference's binning
        and `bins` is that binning's (or None); otherwise rebinned from the values."""
        if bins in self._binned:
            return self._binned[bins]
        r, c = self.numeric()
        rb, cb = r.binning, c.binning
        if (
            rb is not None
            and cb is not None
            and r.bin_counts is not None
            and c.bin_counts is not None
            and rb.same_as(cb)
            and bins in (None, rb.bins)
        ):
            out = (r.bin_counts, c.bin_counts, int(r.bin_counts.size))
        elif r.values is not None and c.values is not None:
            n_bins = bins if bins is not None else (rb.bins if rb is not None else DEFAULT_BINS)
            edges = m.quantile_edges(r.values, n_bins)
            out = (
                m.counts_in_bins(r.values, edges),
                m.counts_in_bins(c.values, edges),
                edges.size + 1,
            )
        else:
            raise DriftError(
                f"column `{self.name}`: the window was not counted in the reference's bins"
                + (f" (bins = {bins})" if bins is not None else ""),
                "profile the window against the reference, or keep the sorted values in both",
            )
        self._binned[bins] = out
        return out

    def categories(self) -> tuple[list[str], IntArray, IntArray]:
        if self._categories is None:
            r, c = self.categorical()
            names = sorted(set(r.counts) | set(c.counts))
            rc = np.array([r.counts.get(k, 0) for k in names], dtype=np.int64)
            cc = np.array([c.counts.get(k, 0) for k in names], dtype=np.int64)
            self._categories = (names, rc, cc)
        return self._categories


def _sketch_of(p: NumericProfile) -> tuple[FloatArray, IntArray]:
    if p.sketch is not None:
        return p.sketch.points, p.sketch.weights
    assert p.values is not None
    return p.values, np.ones(p.values.size, dtype=np.int64)


# --------------------------------------------------------------------------- metric definitions


@dataclass(frozen=True, slots=True)
class Option:
    kind: type
    default: Any
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric the compare step knows: where it applies, its default threshold, the
    options it takes, and how it is computed for each column kind."""

    name: str
    title: str
    default_threshold: float | None
    numeric: Callable[[ColumnPair, Mapping[str, Any]], Computed] | None = None
    categorical: Callable[[ColumnPair, Mapping[str, Any]], Computed] | None = None
    test: bool = False
    """Has a p-value, and by default the threshold applies to it (drift when below)."""
    options: Mapping[str, Option] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[ColumnKind, ...]:
        out: list[ColumnKind] = []
        if self.numeric is not None:
            out.append("numeric")
        if self.categorical is not None:
            out.append("categorical")
        return tuple(out)


_BINS = Option(int, None, minimum=1)
_EPS = Option(float, m.EPSILON, minimum=0.0)
_ON = Option(str, "p_value", ("p_value", "statistic"))


def _psi_num(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    rc, cc, n = p.binned(o.get("bins"))
    return m.psi(rc, cc, epsilon=o["epsilon"]), None, {"bins": n, "epsilon": o["epsilon"]}


def _psi_cat(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    names, rc, cc = p.categories()
    return (
        m.psi(rc, cc, epsilon=o["epsilon"]),
        None,
        {"categories": len(names), "epsilon": o["epsilon"]},
    )


def _binned_metric(
    fn: Callable[[IntArray, IntArray], float], extra: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> tuple[
    Callable[[ColumnPair, Mapping[str, Any]], Computed],
    Callable[[ColumnPair, Mapping[str, Any]], Computed],
]:
    def num(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
        rc, cc, n = p.binned(o.get("bins"))
        return fn(rc, cc), None, {"bins": n, **extra(o)}

    def cat(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
        names, rc, cc = p.categories()
        return fn(rc, cc), None, {"categories": len(names), **extra(o)}

    return num, cat


_js_num, _js_cat = _binned_metric(lambda r, c: m.js_distance(r, c, base=2.0), lambda o: {"base": 2})
_hel_num, _hel_cat = _binned_metric(m.hellinger, lambda o: {})
_tvd_num, _tvd_cat = _binned_metric(m.total_variation, lambda o: {})


def _kl(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    if p.kind == "numeric":
        rc, cc, n = p.binned(o.get("bins"))
        where: dict[str, Any] = {"bins": n}
    else:
        names, rc, cc = p.categories()
        where = {"categories": len(names)}
    value = m.kl_divergence(rc, cc, epsilon=o["epsilon"])
    return value, None, {**where, "direction": "KL(current || reference)", "epsilon": o["epsilon"]}


def _direction(sign: int) -> str:
    return {
        1: "current is shifted towards larger values",
        -1: "current is shifted towards smaller values",
    }.get(sign, "no difference")


def _ks(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.numeric()
    gap = p.gap()
    if p.exact:
        assert r.values is not None and c.values is not None
        _, res = m.ks_test(r.values, c.values, method=o["method"], gap=gap)
        method = res.method
        pv = res.p_value
    else:
        pv = m.ks_pvalue(gap.statistic, r.count, c.count)
        method = "asymp"
    return (
        gap.statistic,
        pv,
        {
            "method": method,
            "location": gap.location,
            "direction": _direction(gap.sign),
            "exact_statistic": p.exact,
            "n_reference": r.count,
            "n_current": c.count,
        },
    )


def _wasserstein(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, _ = p.numeric()
    raw = p.gap().wasserstein
    std = r.std
    details: dict[str, Any] = {"raw": raw, "reference_std": std, "exact": p.exact}
    if not o["normalise"]:
        return raw, None, details
    if std is None or std == 0.0:
        details["note"] = "the reference is constant; any difference is infinitely large"
        return (0.0 if raw == 0.0 else math.inf), None, details
    return raw / std, None, details


def _need_values(p: ColumnPair, metric: str) -> tuple[FloatArray, FloatArray]:
    r, c = p.numeric()
    if r.values is None or c.values is None:
        raise _NoData(f"{metric} needs the sorted values, and a profile kept only a sketch")
    return r.values, c.values


class _NoData(Exception):
    """The metric is undefined on this data (too few values, a constant sample…)."""


def _anderson(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    rv, cv = _need_values(p, "anderson-darling")
    try:
        res = m.anderson_darling(rv, cv)
    except ValueError as exc:
        raise _NoData(str(exc)) from None
    details: dict[str, Any] = {"variant": "midrank", "method": res.method}
    if res.p_value_bound == "upper":
        details["p_value_note"] = "capped: the true p-value is at least 0.25"
    elif res.p_value_bound == "lower":
        details["p_value_note"] = "floored: the true p-value is at most 0.001"
    return res.statistic, res.p_value, details


def _cvm(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    rv, cv = _need_values(p, "cramér-von mises")
    try:
        res = m.cramer_von_mises(rv, cv, method=o["method"])
    except ValueError as exc:
        raise _NoData(str(exc)) from None
    return res.statistic, res.p_value, {"method": res.method}


def _mean_shift(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.numeric()
    mr, mc, sr = r.mean, c.mean, r.std
    assert mr is not None and mc is not None and sr is not None
    diff = mc - mr
    details = {"reference_mean": mr, "current_mean": mc, "difference": diff, "reference_std": sr}
    if sr == 0.0:
        return (0.0 if diff == 0.0 else math.inf), None, details
    return abs(diff) / sr, None, details


def _std_shift(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.numeric()
    sr, sc = r.std, c.std
    assert sr is not None and sc is not None
    details = {"reference_std": sr, "current_std": sc}
    if sr == 0.0:
        return (0.0 if sc == 0.0 else math.inf), None, details
    return abs(sc / sr - 1.0), None, details


def _missing_rate(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.reference, p.current
    if r.rows == 0 or c.rows == 0:
        raise _NoData("no rows")
    rr, cr = r.missing / r.rows, c.missing / c.rows
    return abs(cr - rr), None, {"reference_rate": rr, "current_rate": cr, "change": cr - rr}


def _out_of_range(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.numeric()
    n = c.count + c.neg_inf + c.pos_inf
    if n == 0 or r.minimum is None or r.maximum is None:
        raise _NoData("no values")
    if c.values is not None:
        below = int(np.searchsorted(c.values, r.minimum, side="left"))
        above = c.count - int(np.searchsorted(c.values, r.maximum, side="right"))
    elif c.binning is not None and c.binning.low == r.minimum and c.binning.high == r.maximum:
        below, above = c.below, c.above
    else:
        raise _NoData("the current profile was not counted against this reference's range")
    share = (below + above + c.neg_inf + c.pos_inf) / n
    return (
        share,
        None,
        {
            "below": below + c.neg_inf,
            "above": above + c.pos_inf,
            "reference_min": r.minimum,
            "reference_max": r.maximum,
        },
    )


def _new_categories(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.categorical()
    new = sorted((k for k in c.counts if k not in r.counts), key=lambda k: (-c.counts[k], k))
    share = sum(c.counts[k] for k in new) / c.count
    return share, None, {"count": len(new), "categories": new[:_LIST_LIMIT]}


def _missing_categories(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    r, c = p.categorical()
    gone = sorted((k for k in r.counts if k not in c.counts), key=lambda k: (-r.counts[k], k))
    share = sum(r.counts[k] for k in gone) / r.count
    return share, None, {"count": len(gone), "categories": gone[:_LIST_LIMIT]}


def _chi2(p: ColumnPair, o: Mapping[str, Any]) -> Computed:
    names, rc, cc = p.categories()
    res = m.chi2_homogeneity(rc, cc, correction=o["correction"])
    return res.statistic, res.p_value, {"dof": res.dof, "categories": len(names)}


METRICS: Mapping[str, MetricDef] = {
    d.name: d
    for d in (
        MetricDef(
            "psi",
            "Population stability index",
            0.2,
            _psi_num,
            _psi_cat,
            options={"bins": _BINS, "epsilon": _EPS},
        ),
        MetricDef(
            "ks",
            "Kolmogorov–Smirnov",
            None,
            _ks,
            test=True,
            options={"on": _ON, "method": Option(str, "auto", ("auto", "exact", "asymp"))},
        ),
        MetricDef(
            "wasserstein",
            "Wasserstein-1 distance",
            0.1,
            _wasserstein,
            options={"normalise": Option(bool, True)},
        ),
        MetricDef("js", "Jensen–Shannon distance", 0.1, _js_num, _js_cat, options={"bins": _BINS}),
        MetricDef(
            "kl",
            "KL divergence (current ‖ reference)",
            0.1,
            _kl,
            _kl,
            options={"bins": _BINS, "epsilon": _EPS},
        ),
        MetricDef(
            "hellinger", "Hellinger distance", 0.1, _hel_num, _hel_cat, options={"bins": _BINS}
        ),
        MetricDef(
            "tvd", "Total variation distance", 0.1, _tvd_num, _tvd_cat, options={"bins": _BINS}
        ),
        MetricDef(
            "anderson_darling",
            "Anderson–Darling (k-sample)",
            None,
            _anderson,
            test=True,
            options={"on": _ON},
        ),
        MetricDef(
            "cramer_von_mises",
            "Cramér–von Mises",
            None,
            _cvm,
            test=True,
            options={"on": _ON, "method": Option(str, "auto", ("auto", "exact", "asymptotic"))},
        ),
        MetricDef("mean_shift", "Mean shift (reference SDs)", 0.1, _mean_shift),
        MetricDef("std_shift", "Relative SD change", 0.1, _std_shift),
        MetricDef("missing_rate", "Missing-rate change", 0.05, _missing_rate, _missing_rate),
        MetricDef("out_of_range", "Out-of-range share", 0.01, _out_of_range),
        MetricDef(
            "chi2",
            "Chi-squared homogeneity",
            None,
            None,
            _chi2,
            test=True,
            options={"on": _ON, "correction": Option(bool, True)},
        ),
        MetricDef("new_categories", "New categories (current share)", 0.0, None, _new_categories),
        MetricDef(
            "missing_categories",
            "Missing categories (reference share)",
            0.0,
            None,
            _missing_categories,
        ),
    )
}

P_VALUE_ALPHA = 0.05
"""Default significance level for tests thresholded on their p-value."""


def validate_spec(
    spec: MetricSpec, kind: ColumnKind, column: str = ""
) -> tuple[MetricDef, dict[str, Any], float, Compared]:
    """Check a spec against the registry; returns (definition, options with defaults,
    threshold, what it is compared with). Raises `DriftError` for anything unknown."""
    where = f" for column `{column}`" if column else ""
    d = METRICS.get(spec.metric)
    if d is None:
        close = difflib.get_close_matches(spec.metric, list(METRICS), n=3, cutoff=0.5)
        raise DriftError(
            f"unknown drift metric `{spec.metric}`{where}",
            f"did you mean {', '.join(f'`{c}`' for c in close)}?"
            if close
            else f"known metrics: {', '.join(METRICS)}",
        )
    if kind not in d.kinds:
        raise DriftError(
            f"metric `{spec.metric}` does not apply to {kind} columns{where}",
            f"`{spec.metric}` applies to {' and '.join(d.kinds)} columns",
        )
    opts: dict[str, Any] = {}
    for key, value in spec.options.items():
        o = d.options.get(key)
        if o is None:
            raise DriftError(
                f"metric `{spec.metric}` has no option `{key}`{where}",
                f"options: {', '.join(f'`{k}`' for k in d.options)}"
                if d.options
                else "it takes no options",
            )
        opts[key] = _check_option(spec.metric, key, o, value, where)
    for key, o in d.options.items():
        opts.setdefault(key, o.default)
    compared: Compared = "p_value" if d.test and opts.get("on", "p_value") == "p_value" else "value"
    threshold = spec.threshold
    if threshold is None:
        threshold = P_VALUE_ALPHA if compared == "p_value" else d.default_threshold
    if threshold is None:
        raise DriftError(
            f"metric `{spec.metric}` compared on its statistic needs a threshold{where}",
            "set `threshold`, or compare on the p-value (the default)",
        )
    if spec.metric == "wasserstein" and not opts["normalise"] and spec.threshold is None:
        raise DriftError(
            f"raw wasserstein is in the column's units and needs an explicit threshold{where}",
            "set `threshold`, or keep `normalise = true` (default threshold 0.1 reference SDs)",
        )
    if (
        not isinstance(threshold, (int, float))
        or isinstance(threshold, bool)
        or not math.isfinite(threshold)
    ):
        raise DriftError(
            f"threshold of `{spec.metric}`{where} must be a finite number, got `{threshold}`"
        )
    if compared == "p_value" and not 0.0 <= threshold <= 1.0:
        raise DriftError(
            f"threshold of `{spec.metric}`{where} is a p-value and must be within 0 and 1, "
            f"got `{threshold}`",
            'to threshold the statistic instead, set `on = "statistic"`',
        )
    return d, opts, float(threshold), compared


def _check_option(metric: str, key: str, o: Option, value: Any, where: str) -> Any:
    ok = isinstance(value, o.kind) and not (o.kind is not bool and isinstance(value, bool))
    if o.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise DriftError(
            f"option `{key}` of `{metric}`{where} must be {o.kind.__name__}, got `{value!r}`"
        )
    if o.choices is not None and value not in o.choices:
        allowed = ", ".join(f"`{c}`" for c in o.choices)
        raise DriftError(
            f"option `{key}` of `{metric}`{where} must be one of {allowed}, got `{value}`"
        )
    if o.minimum is not None and value < o.minimum:
        raise DriftError(
            f"option `{key}` of `{metric}`{where} must be at least {o.minimum}, got `{value}`"
        )
    return value


def _has_data(pair: ColumnPair) -> str | None:
    r, c = pair.reference, pair.current
    if r.count == 0:
        return "the reference has no values in this column"
    if c.count == 0:
        return "the current window has no values in this column"
    return None


def evaluate_metric(pair: ColumnPair, spec: MetricSpec) -> MetricResult:
    """Compute one metric on one column pair and judge it against its threshold."""
    d, opts, threshold, compared = validate_spec(spec, pair.kind, pair.name)
    compute = d.numeric if pair.kind == "numeric" else d.categorical
    assert compute is not None
    reason = None if spec.metric == "missing_rate" else _has_data(pair)
    if reason is None:
        try:
            value, p_value, details = compute(pair, opts)
        except _NoData as exc:
            reason = str(exc)
    if reason is not None:
        return MetricResult(
            pair.name, d.name, None, None, threshold, compared, "no_data", {"reason": reason}
        )
    if compared == "p_value":
        assert p_value is not None
        drifted = p_value < threshold
    else:
        drifted = value > threshold
    if "on" in opts:
        details["on"] = opts["on"]
    return MetricResult(
        pair.name,
        d.name,
        value,
        p_value,
        threshold,
        compared,
        "drift" if drifted else "ok",
        details,
    )


def evaluate(pair: ColumnPair, specs: tuple[MetricSpec, ...]) -> tuple[MetricResult, ...]:
    return tuple(evaluate_metric(pair, s) for s in specs)
