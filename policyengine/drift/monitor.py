"""Run a compiled `monitor` policy: window the data, compute its metrics, judge its conditions.

The policy says *what* must hold (`numeric logP: psi < 0.2, ks.p > 0.01`); the drift
package computes the numbers. This module maps the language's metric names onto the drift
metrics, applies the monitor's window, evaluates each condition (a value that could not be
computed never holds — missing evidence is a breach), and turns every result into a
`drift.evaluated` event so that monitoring and oversight rules decide on it like on any
other event.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from policyengine.compiler.monitors import Condition, MonitorSpec
from policyengine.drift.compare import MetricResult, MetricSpec
from policyengine.drift.config import ColumnConfig, DriftConfig
from policyengine.drift.errors import DriftError
from policyengine.drift.io import open_source
from policyengine.drift.profile import ColumnKind, DatasetProfile
from policyengine.drift.report import DriftReport, _Source, run_report
from policyengine.runtime.values import format_timestamp

__all__ = [
    "METRIC_MAP",
    "CheckResult",
    "MonitorRun",
    "drift_events",
    "run_monitor",
    "select_monitors",
]

#: Language metric → (drift metric, options, which number the condition reads).
METRIC_MAP: Mapping[str, tuple[str, Mapping[str, Any], str]] = {
    "psi": ("psi", {}, "value"),
    "ks": ("ks", {}, "value"),
    "ks.p": ("ks", {}, "p_value"),
    "wasserstein": ("wasserstein", {}, "raw"),
    "wasserstein_norm": ("wasserstein", {}, "value"),
    "js": ("js", {}, "value"),
    "kl": ("kl", {}, "value"),
    "hellinger": ("hellinger", {}, "value"),
    "tvd": ("tvd", {}, "value"),
    "ad": ("anderson_darling", {}, "value"),
    "ad.p": ("anderson_darling", {}, "p_value"),
    "cvm": ("cramer_von_mises", {}, "value"),
    "cvm.p": ("cramer_von_mises", {}, "p_value"),
    "mean_shift": ("mean_shift", {}, "value"),
    "std_shift": ("std_shift", {}, "value"),
    "chi2": ("chi2", {}, "value"),
    "chi2.p": ("chi2", {}, "p_value"),
    "new_categories": ("new_categories", {}, "value"),
    "missing_categories": ("missing_categories", {}, "value"),
    "missing_rate_change": ("missing_rate", {}, "value"),
    "out_of_range": ("out_of_range", {}, "value"),
}

Input = str | Path | pl.DataFrame | DatasetProfile


@dataclass(frozen=True)
class CheckResult:
    """One condition on one feature."""

    feature: str
    kind: str
    condition: Condition
    value: float | None
    p_value: float | None
    holds: bool
    note: str | None = None

    @property
    def breached(self) -> bool:
        return not self.holds

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "metric": self.condition.metric,
            "condition": str(self.condition),
            "threshold": self.condition.threshold,
            "value": _finite(self.value),
            "p_value": _finite(self.p_value),
            "breached": self.breached,
            "note": self.note,
        }


@dataclass(frozen=True)
class MonitorRun:
    """What one monitor concluded about one window."""

    monitor: MonitorSpec
    model_version: str | None
    baseline: str | None
    window: str
    reference_rows: int
    current_rows: int
    checks: tuple[CheckResult, ...]
    report: DriftReport = field(repr=False, compare=False)

    @property
    def breaches(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.breached)

    @property
    def breached(self) -> bool:
        return bool(self.breaches)

    def actions(self) -> dict[str, Any]:
        """What the monitor's `on breach` asks for, when it breached."""
        if not self.breached:
            return {}
        spec = self.monitor
        out: dict[str, Any] = {}
        if spec.alert is not None:
            out["alert"] = {"severity": spec.alert, "title": spec.title or spec.id}
        if spec.review is not None:
            out["review"] = {
                "roles": list(spec.review.roles),
                "within_seconds": int(spec.review.within.total_seconds()),
            }
        if spec.triggers:
            out["triggers"] = list(spec.triggers)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.id,
            "title": self.monitor.title,
            "model_version": self.model_version,
            "baseline": self.baseline,
            "window": self.window,
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "breached": self.breached,
            "checks": [c.to_dict() for c in self.checks],
            "actions": self.actions(),
        }


def _finite(v: float | None) -> float | str | None:
    if v is None or math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _windowed(spec: MonitorSpec, current: Input) -> tuple[Input, str]:
    if spec.window_rows is None and spec.window_duration is None:
        return current, "all rows"
    if isinstance(current, DatasetProfile):
        raise DriftError(
            f"monitor `{spec.id}` has a window, so the current data must be rows, not a profile"
        )
    frame = current if isinstance(current, pl.DataFrame) else _read(current)
    if spec.window_rows is not None:
        return frame.tail(spec.window_rows), f"last {spec.window_rows} rows"
    assert spec.window_duration is not None
    column = spec.time_column
    if column is None:
        raise DriftError(
            f"monitor `{spec.id}` has a time window but no `time_column`",
            'add `time_column "…"` naming the timestamp column',
        )
    if column not in frame.columns:
        raise DriftError(f"the current data has no time column `{column}` (monitor `{spec.id}`)")
    times = frame.get_column(column)
    if not isinstance(times.dtype, pl.Datetime | pl.Date):
        try:
            times = times.str.to_datetime(time_zone="UTC")
        except Exception:
            raise DriftError(
                f"column `{column}` does not hold timestamps", "use ISO 8601 / RFC 3339 text"
            ) from None
        frame = frame.with_columns(times.alias(column))
    end = times.max()
    if end is None:
        return frame.head(0), f"{spec.window_duration} (empty)"
    assert isinstance(end, datetime)
    start = end - spec.window_duration
    kept = frame.filter(pl.col(column) > start)
    return kept, f"{format_timestamp(start)}..{format_timestamp(end)}"


def _read(path: str | Path) -> pl.DataFrame:
    source = open_source(path)
    return source.read(list(source.schema()))


def run_monitor(
    spec: MonitorSpec,
    reference: Input,
    current: Input,
    *,
    model_version: str | None = None,
    threads: int | None = None,
    plots: bool = False,
) -> MonitorRun:
    """Judge `current` against `reference` with the monitor's checks."""
    current, window = _windowed(spec, current)
    kinds = {
        name: kind
        for name, kind in _Source(reference, "reference").kinds().items()
        if kind is not None and name != spec.time_column
    }
    missing = [f for f in spec.named_features() if f not in kinds]
    if missing:
        shown = ", ".join(f"`{f}`" for f in missing)
        raise DriftError(
            f"monitor `{spec.id}` names {shown}, which the reference does not have",
            "a feature a monitor names must exist; fix the policy or the data",
        )
    plan = spec.plan(kinds)
    if not plan:
        raise DriftError(f"monitor `{spec.id}` matches no column of the reference")
    columns: dict[str, ColumnConfig] = {}
    for column, kind, conditions in plan:
        specs: dict[str, MetricSpec] = {}
        for c in conditions:
            metric, options, _ = METRIC_MAP[c.metric]
            specs.setdefault(metric, MetricSpec(metric, None, dict(options)))
        columns[column] = ColumnConfig(_kind(kind), tuple(specs.values()))
    report = run_report(
        reference,
        current,
        columns=[c for c, _, _ in plan],
        config=DriftConfig(columns=columns),
        threads=threads,
        plots=plots,
    )
    by_column = {c.column: c for c in report.columns}
    checks: list[CheckResult] = []
    for column, kind, conditions in plan:
        col = by_column.get(column)
        results = {r.metric: r for r in col.metrics} if col is not None else {}
        for cond in conditions:
            checks.append(_judge(column, kind, cond, results))
    return MonitorRun(
        monitor=spec,
        model_version=model_version,
        baseline=spec.baseline or report.reference.digest or report.reference.source,
        window=window,
        reference_rows=report.reference.rows,
        current_rows=report.current.rows,
        checks=tuple(checks),
        report=report,
    )


def _kind(kind: str) -> ColumnKind:
    if kind == "numeric":
        return "numeric"
    return "categorical"


def _judge(
    column: str, kind: str, cond: Condition, results: Mapping[str, MetricResult]
) -> CheckResult:
    metric, _, reads = METRIC_MAP[cond.metric]
    result = results.get(metric)
    if result is None:
        return CheckResult(column, kind, cond, None, None, False, "not computed")
    if reads == "p_value":
        value = result.p_value
    elif reads == "raw":
        raw = result.details.get("raw")
        value = float(raw) if isinstance(raw, int | float) else None
    else:
        value = result.value
    note = None
    if result.verdict == "no_data":
        note = str(result.details.get("reason") or "no data to compare")
    holds = value is not None and cond.holds(value)
    if value is not None and not math.isfinite(value):
        note = note or "the statistic is not finite (e.g. a constant reference)"
    return CheckResult(column, kind, cond, value, result.p_value, holds, note)


def drift_events(
    run: MonitorRun, *, time: datetime, actor: str = "policyengine-drift"
) -> list[dict[str, Any]]:
    """One `drift.evaluated` event per check, about the monitored model version, with ids
    derived from (monitor, model version, feature, condition, time) so a re-run of the
    same evaluation yields the same events."""
    if run.model_version is None:
        raise DriftError(
            "drift events are about a model version",
            "pass --model-version (the registered model version the window was scored by)",
        )
    stamp = format_timestamp(time)
    out: list[dict[str, Any]] = []
    for check in run.checks:
        key = "|".join(
            (run.monitor.id, run.model_version, check.feature, str(check.condition), stamp)
        )
        value = check.value if check.value is not None and math.isfinite(check.value) else None
        p_value = (
            check.p_value if check.p_value is not None and math.isfinite(check.p_value) else None
        )
        out.append(
            {
                "id": "drift-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24],
                "type": "drift.evaluated",
                "time": stamp,
                "actor": {"id": actor, "roles": ["monitoring"]},
                "subject": {"kind": "model_version", "id": run.model_version},
                "attributes": {
                    "monitor": run.monitor.id,
                    "feature": check.feature,
                    "metric": check.condition.metric,
                    "value": value,
                    "threshold": check.condition.threshold,
                    "breached": check.breached,
                    "baseline": run.baseline,
                    "condition": str(check.condition),
                    "p_value": p_value,
                },
            }
        )
    return out


def select_monitors(
    monitors: Mapping[str, MonitorSpec], *, monitor: str | None, model: str | None
) -> list[MonitorSpec]:
    """Monitors by id (or unique bare name), else all that watch `model`, else all."""
    if monitor is not None:
        if monitor in monitors:
            return [monitors[monitor]]
        hits = [m for m in monitors.values() if m.name == monitor]
        if len(hits) == 1:
            return hits
        known = ", ".join(f"`{m}`" for m in sorted(monitors)) or "none"
        raise DriftError(f"no monitor `{monitor}` in the policies", f"monitors: {known}")
    chosen = [m for m in monitors.values() if model is None or m.applies_to(model)]
    if not chosen:
        raise DriftError(
            f"no monitor in the policies watches model `{model}`"
            if model
            else "the policies define no `monitor`",
            "add a `monitor` block (see spec/language.md §20)",
        )
    return sorted(chosen, key=lambda m: m.id)
