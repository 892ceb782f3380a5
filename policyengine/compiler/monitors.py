"""The monitor pass: `monitor` blocks → immutable `MonitorSpec`s.

A monitor names the models it watches, the drift metrics each feature must satisfy and what
a breach sets off. The metric catalogue lives here, not in the numeric code, so a typo in a
policy is a compile error with a suggestion rather than a failed nightly job.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from policyengine.language import ast
from policyengine.language.diagnostics import Code, Diagnostic, did_you_mean

__all__ = [
    "METRICS",
    "SEVERITIES",
    "Condition",
    "FeatureCheckSpec",
    "MetricInfo",
    "MonitorSpec",
    "ReviewSpec",
    "compile_monitors",
]

SEVERITIES = ("info", "low", "medium", "high", "critical")
_ORDER_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class MetricInfo:
    kinds: tuple[str, ...]
    description: str
    p_value: bool = False


METRICS: Mapping[str, MetricInfo] = {
    "psi": MetricInfo(("numeric", "categorical"), "population stability index"),
    "ks": MetricInfo(("numeric",), "two-sample Kolmogorov–Smirnov statistic"),
    "ks.p": MetricInfo(("numeric",), "Kolmogorov–Smirnov p-value", p_value=True),
    "wasserstein": MetricInfo(("numeric",), "Wasserstein-1 distance"),
    "wasserstein_norm": MetricInfo(
        ("numeric",), "Wasserstein-1 distance divided by the reference standard deviation"
    ),
    "js": MetricInfo(("numeric", "categorical"), "Jensen–Shannon distance (base 2)"),
    "kl": MetricInfo(("numeric",), "KL divergence KL(current ‖ reference)"),
    "hellinger": MetricInfo(("numeric",), "Hellinger distance"),
    "ad": MetricInfo(("numeric",), "Anderson–Darling k-sample statistic"),
    "ad.p": MetricInfo(("numeric",), "Anderson–Darling p-value", p_value=True),
    "cvm": MetricInfo(("numeric",), "Cramér–von Mises two-sample statistic"),
    "cvm.p": MetricInfo(("numeric",), "Cramér–von Mises p-value", p_value=True),
    "mean_shift": MetricInfo(("numeric",), "|mean change| in reference standard deviations"),
    "std_shift": MetricInfo(("numeric",), "|current std / reference std − 1|"),
    "chi2": MetricInfo(("categorical",), "chi-squared homogeneity statistic"),
    "chi2.p": MetricInfo(("categorical",), "chi-squared p-value", p_value=True),
    "tvd": MetricInfo(("categorical",), "total variation distance"),
    "new_categories": MetricInfo(("categorical",), "categories seen only in current"),
    "missing_categories": MetricInfo(("categorical",), "reference categories absent now"),
    "missing_rate_change": MetricInfo(
        ("numeric", "categorical"), "current missing rate − reference missing rate"
    ),
    "out_of_range": MetricInfo(
        ("numeric",), "share of current values outside the reference [min, max]"
    ),
}


@dataclass(frozen=True)
class Condition:
    """`metric op threshold`: holds when the feature is *not* drifted on this metric."""

    metric: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """NaN never holds: a metric that could not be computed counts as a breach."""
        if math.isnan(value):
            return False
        if self.op == "<":
            return value < self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        return value >= self.threshold

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class FeatureCheckSpec:
    kind: str
    features: tuple[str, ...]
    conditions: tuple[Condition, ...]

    def specificity(self, column: str) -> tuple[int, int] | None:
        """How precisely this check names `column`: exact > glob (more literal text
        wins) > `*`; None when it does not match."""
        best: tuple[int, int] | None = None
        for pattern in self.features:
            if "*" not in pattern:
                rank = (2, len(pattern)) if pattern == column else None
            elif fnmatch.fnmatchcase(column, pattern):
                rank = (1, len(pattern.replace("*", ""))) if pattern != "*" else (0, 0)
            else:
                rank = None
            if rank is not None and (best is None or rank > best):
                best = rank
        return best


@dataclass(frozen=True)
class ReviewSpec:
    roles: tuple[str, ...]
    within: timedelta


@dataclass(frozen=True)
class MonitorSpec:
    """A compiled monitor: immutable, so one instance serves every evaluation."""

    id: str
    name: str
    package: str
    models: tuple[str, ...]
    checks: tuple[FeatureCheckSpec, ...]
    title: str | None = None
    doc: str = ""
    severity: str = "medium"
    refs: tuple[str, ...] = ()
    baseline: str | None = None
    window_duration: timedelta | None = None
    window_rows: int | None = None
    time_column: str | None = None
    alert: str | None = None
    review: ReviewSpec | None = None
    triggers: tuple[str, ...] = ()
    file: str = field(default="<string>", compare=False)
    line: int = field(default=0, compare=False)

    def applies_to(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def named_features(self) -> tuple[str, ...]:
        """Features the monitor names exactly: they must exist in the data."""
        return tuple(dict.fromkeys(f for c in self.checks for f in c.features if "*" not in f))

    def plan(self, columns: Mapping[str, str]) -> list[tuple[str, str, tuple[Condition, ...]]]:
        """For each column (name → `numeric` | `categorical`) the conditions that apply,
        from the most specific matching check(s) of its kind; unmatched columns are skipped."""
        out: list[tuple[str, str, tuple[Condition, ...]]] = []
        for column, kind in columns.items():
            ranked = [
                (rank, check)
                for check in self.checks
                if check.kind == kind and (rank := check.specificity(column)) is not None
            ]
            if not ranked:
                continue
            top = max(rank for rank, _ in ranked)
            conditions: dict[tuple[str, str, float], Condition] = {}
            for rank, check in ranked:
                if rank == top:
                    for c in check.conditions:
                        conditions[(c.metric, c.op, c.threshold)] = c
            out.append((column, kind, tuple(conditions.values())))
        return out


def compile_monitors(
    modules: Sequence[ast.Module], diags: list[Diagnostic]
) -> dict[str, MonitorSpec]:
    """Check every monitor block; return the valid ones by qualified id."""
    out: dict[str, MonitorSpec] = {}
    first: dict[str, ast.Monitor] = {}
    for module in modules:
        package = module.package.value
        for mon in module.monitors:
            qualified = f"{package}.{mon.name.value}"
            if qualified in first:
                diags.append(
                    Diagnostic(
                        Code.DUPLICATE_RULE,
                        f"monitor `{mon.name.value}` is defined twice in package `{package}`",
                        mon.name.span,
                        "monitor ids name drift results and reviews; rename one of them",
                        notes=(("first defined", first[qualified].name.span),),
                    )
                )
                continue
            first[qualified] = mon
            spec = _check(mon, qualified, package, module.path, diags)
            if spec is not None:
                out[qualified] = spec
    return out


def _error(
    diags: list[Diagnostic], code: Code, message: str, span: ast.Span, hint: str | None = None
) -> None:
    diags.append(Diagnostic(code, message, span, hint))


def _check(
    mon: ast.Monitor, qualified: str, package: str, path: str, diags: list[Diagnostic]
) -> MonitorSpec | None:
    before = len(diags)
    name = mon.name.value
    for keyword, span in mon.repeated:
        _error(
            diags,
            Code.REPEATED_CLAUSE,
            f"`{keyword}` is given more than once in monitor `{name}`",
            span,
            "keep one; only `numeric` and `categorical` checks may repeat",
        )
    if not mon.models:
        _error(
            diags,
            Code.MISSING_CLAUSE,
            f"monitor `{name}` does not say which models it watches",
            mon.name.span,
            'add `model "name"` (globs such as `"tox-*"` allowed)',
        )
    if not mon.checks:
        _error(
            diags,
            Code.MISSING_CLAUSE,
            f"monitor `{name}` checks no features",
            mon.name.span,
            "add e.g. `numeric *: psi < 0.2, ks.p > 0.01` or `categorical *: chi2.p > 0.01`",
        )
    severity = _severity(mon.severity, diags) if mon.severity else "medium"
    window_duration: timedelta | None = None
    window_rows: int | None = None
    if isinstance(mon.window, timedelta):
        window_duration = mon.window
    elif isinstance(mon.window, int):
        window_rows = mon.window
    if (window_duration is not None and window_duration <= timedelta(0)) or window_rows == 0:
        _error(
            diags,
            Code.BAD_CLAUSE_VALUE,
            f"monitor `{name}` has an empty window",
            mon.span,
            "use a positive duration (`window 7d`) or row count (`window 50000 rows`)",
        )
    checks = tuple(_feature_check(c, diags) for c in mon.checks)
    alert: str | None = None
    review: ReviewSpec | None = None
    triggers: list[str] = []
    seen: set[str] = set()
    for action in mon.actions:
        if action.kind in seen and action.kind != "trigger":
            _error(
                diags,
                Code.REPEATED_CLAUSE,
                f"`{action.kind}` is given more than once in the breach actions of `{name}`",
                action.span,
            )
        seen.add(action.kind)
        if action.kind == "alert" and action.severity is not None:
            alert = _severity(action.severity, diags)
        elif action.kind == "review" and action.within is not None:
            if action.within <= timedelta(0):
                _error(
                    diags,
                    Code.BAD_CLAUSE_VALUE,
                    "a review deadline must be positive",
                    action.span,
                    'e.g. `review by "qa" within 48h`',
                )
            review = ReviewSpec(action.roles, action.within)
        elif action.kind == "trigger" and action.target is not None:
            triggers.append(action.target.value)
    if len(diags) > before:
        return None
    return MonitorSpec(
        id=qualified,
        name=name,
        package=package,
        models=mon.models,
        checks=checks,
        title=mon.title,
        doc=mon.doc,
        severity=severity,
        refs=mon.refs,
        baseline=mon.baseline,
        window_duration=window_duration,
        window_rows=window_rows,
        time_column=mon.time_column,
        alert=alert,
        review=review,
        triggers=tuple(dict.fromkeys(triggers)),
        file=path,
        line=mon.name.span.line,
    )


def _severity(ident: ast.Ident, diags: list[Diagnostic]) -> str:
    if ident.value not in SEVERITIES:
        _error(
            diags,
            Code.BAD_CLAUSE_VALUE,
            f"unknown severity `{ident.value}`",
            ident.span,
            did_you_mean(ident.value, SEVERITIES)
            or f"expected one of {', '.join(f'`{s}`' for s in SEVERITIES)}",
        )
    return ident.value


def _feature_check(check: ast.FeatureCheck, diags: list[Diagnostic]) -> FeatureCheckSpec:
    kind = check.kind.value
    conditions: list[Condition] = []
    for cond in check.conditions:
        metric = cond.metric.value
        info = METRICS.get(metric)
        if info is None:
            allowed = [m for m, i in METRICS.items() if kind in i.kinds]
            _error(
                diags,
                Code.UNKNOWN_METRIC,
                f"unknown drift metric `{metric}`",
                cond.metric.span,
                did_you_mean(metric, allowed)
                or f"{kind} features take {', '.join(f'`{m}`' for m in allowed)}",
            )
            continue
        if kind not in info.kinds:
            allowed = [m for m, i in METRICS.items() if kind in i.kinds]
            _error(
                diags,
                Code.UNKNOWN_METRIC,
                f"`{metric}` ({info.description}) does not apply to {kind} features",
                cond.metric.span,
                f"{kind} features take {', '.join(f'`{m}`' for m in allowed)}",
            )
            continue
        if cond.op not in _ORDER_OPS:
            _error(
                diags,
                Code.BAD_CLAUSE_VALUE,
                f"a drift threshold is compared with `<`, `<=`, `>` or `>=`, not `{cond.op}`",
                cond.span,
                "write what must hold when there is no drift, e.g. `psi < 0.2`",
            )
            continue
        if not math.isfinite(cond.threshold):
            _error(diags, Code.BAD_CLAUSE_VALUE, "a drift threshold must be finite", cond.span)
            continue
        if info.p_value and not 0.0 <= cond.threshold <= 1.0:
            _error(
                diags,
                Code.BAD_CLAUSE_VALUE,
                f"`{metric}` is a p-value, so `{cond.threshold:g}` can never be its threshold",
                cond.span,
                "p-values lie between 0 and 1; e.g. `ks.p > 0.01`",
            )
            continue
        conditions.append(Condition(metric, cond.op, cond.threshold))
    return FeatureCheckSpec(kind, tuple(f.value for f in check.features), tuple(conditions))
