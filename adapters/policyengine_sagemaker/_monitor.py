"""SageMaker Model Monitor reports: `constraints.json`, `statistics.json` and
`constraint_violations.json` (the documented data-quality formats) read into drift results.

A monitoring execution writes `statistics.json` and `constraint_violations.json`; the schedule's
baseline is the `constraints.json` (+ `statistics.json`) of a baselining job. The files say
nothing about *which* execution they came from, so a report folder also holds
`monitoring_execution.json`: the execution's `MonitoringExecutionSummary` exactly as
`ListMonitoringExecutions` / `DescribeMonitoringSchedule` return it. See README.md for the
layout and the mapping to `drift.evaluated`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from policyengine.adapter import AdapterError
from policyengine.adapter_kit import BadField, Fields

__all__ = [
    "BASELINE_DIR",
    "EXECUTION_FILE",
    "STATISTICS_FILE",
    "VIOLATIONS_FILE",
    "Baseline",
    "BaselineFeature",
    "DriftResult",
    "MonitorReport",
    "Violation",
    "drift_results",
    "read_baseline",
    "read_report",
]

CONSTRAINTS_FILE = "constraints.json"
STATISTICS_FILE = "statistics.json"
VIOLATIONS_FILE = "constraint_violations.json"
EXECUTION_FILE = "monitoring_execution.json"
BASELINE_DIR = "baseline"
MONITOR_FILES = frozenset({CONSTRAINTS_FILE, STATISTICS_FILE, VIOLATIONS_FILE, EXECUTION_FILE})

# The documented violation description for drift: "... distance: 0.72 exceeds threshold: 0.1".
_DRIFT_DESCRIPTION = re.compile(
    r"distance:\s*(?P<value>[-+0-9.eE]+)\s+exceeds\s+threshold:\s*(?P<threshold>[-+0-9.eE]+)",
    re.IGNORECASE,
)
DRIFT_CHECK = "baseline_drift_check"
# Checks the pre-built container runs for every feature of the baseline.
_PER_FEATURE_CHECKS = ("data_type_check", "completeness_check")
_STRING_CHECKS = ("categorical_values_check",)
_FINISHED = {"Completed", "CompletedWithViolations"}


@dataclass(frozen=True)
class BaselineFeature:
    """One feature of the baseline: its constraints and (when given) baseline statistics."""

    name: str
    inferred_type: str
    completeness: float | None = None
    is_non_negative: bool | None = None
    domains: tuple[str, ...] = ()
    num_present: int | None = None
    num_missing: int | None = None
    mean: float | None = None
    std_dev: float | None = None
    min: float | None = None
    max: float | None = None
    distinct_count: int | None = None


@dataclass(frozen=True)
class Baseline:
    """The reference a monitoring schedule compares against, as a self-describing record.

    `digest` is `sha256:` + SHA-256 of the RFC 8785 canonical JSON of
    `{"constraints": …, "statistics": …}` (statistics `null` when absent), so formatting does
    not change it and any change of content does. `reference` is what drift events name as
    their `baseline`: a configured reference (e.g. the constraints' S3 URI) or the digest."""

    digest: str
    reference: str
    features: tuple[BaselineFeature, ...]
    item_count: int | None
    perform_comparison: bool
    comparison_threshold: float | None
    categorical_comparison_threshold: float | None
    comparison_method: str | None
    datatype_check_threshold: float | None
    domain_content_threshold: float | None

    def feature(self, name: str) -> BaselineFeature | None:
        return next((f for f in self.features if f.name == name), None)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the baseline (for reports and audit attachments)."""
        return {
            "digest": self.digest,
            "reference": self.reference,
            "item_count": self.item_count,
            "monitoring_config": {
                "perform_comparison": self.perform_comparison,
                "comparison_threshold": self.comparison_threshold,
                "categorical_comparison_threshold": self.categorical_comparison_threshold,
                "comparison_method": self.comparison_method,
                "datatype_check_threshold": self.datatype_check_threshold,
                "domain_content_threshold": self.domain_content_threshold,
            },
            "features": [
                {k: v for k, v in vars(f).items() if v not in (None, ())} for f in self.features
            ],
        }


@dataclass(frozen=True)
class Violation:
    feature: str
    check: str
    description: str
    field: str
    """JSON path of the violation in `constraint_violations.json`."""


@dataclass(frozen=True)
class MonitorReport:
    """One monitoring execution: its summary, violations and (optionally) baseline."""

    folder: Path
    schedule: str
    status: str
    time: str
    endpoint: str | None
    processing_job: str | None
    monitoring_type: str | None
    violations: tuple[Violation, ...]
    item_count: int | None
    baseline: Baseline | None


@dataclass(frozen=True)
class DriftResult:
    """One (feature, check) outcome of an execution, ready to become `drift.evaluated`."""

    feature: str
    metric: str
    value: float
    threshold: float
    breached: bool
    labels: dict[str, str]


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterError(f"no such file `{path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AdapterError(f"cannot read file: {exc}", location=str(path)) from None
    except json.JSONDecodeError as exc:
        raise AdapterError(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            location=str(path),
        ) from None


def _fields(path: Path) -> Fields:
    data = _load(path)
    if not isinstance(data, dict):
        raise AdapterError("expected a JSON object", location=str(path))
    return Fields(data, "")


def _bad(path: Path, err: BadField) -> AdapterError:
    return AdapterError(err.message, location=str(path), field=err.field, hint=err.hint)


def read_baseline(
    constraints: str | Path, statistics: str | Path | None = None, reference: str | None = None
) -> Baseline:
    """Read a baseline's `constraints.json` (and its `statistics.json`) into a `Baseline`."""
    cpath = Path(constraints)
    spath = Path(statistics) if statistics is not None else None
    craw = _load(cpath)
    sraw = _load(spath) if spath is not None else None
    try:
        if not isinstance(craw, dict):
            raise BadField("", "expected a JSON object")
        c = Fields(craw, "")
        stats: dict[str, Fields] = {}
        item_count = None
        if spath is not None:
            try:
                if not isinstance(sraw, dict):
                    raise BadField("", "expected a JSON object")
                s = Fields(sraw, "")
                dataset = s.obj("dataset", required=False)
                item_count = dataset.integer("item_count", required=False) if dataset else None
                for f in s.objects("features"):
                    stats[f.req_text("name")] = f
            except BadField as err:
                raise _bad(spath, err) from None
        features = tuple(
            _baseline_feature(f, stats.get(f.req_text("name"))) for f in c.objects("features")
        )
        config = c.obj("monitoring_config", required=False)
        dist = config.obj("distribution_constraints", required=False) if config else None
        perform = (dist.text("perform_comparison", required=False) if dist else None) or "Enabled"
        if perform not in ("Enabled", "Disabled"):
            where = dist.field("perform_comparison") if dist else "perform_comparison"
            raise BadField(where, "expected `Enabled` or `Disabled`")
        method = None
        if dist is not None:
            # The documentation spells the key both ways (`comparion_method` in older pages).
            method = dist.text("comparison_method", required=False) or dist.text(
                "comparion_method", required=False
            )
    except BadField as err:
        raise _bad(cpath, err) from None
    digest = (
        "sha256:"
        + hashlib.sha256(rfc8785.dumps({"constraints": craw, "statistics": sraw})).hexdigest()
    )
    return Baseline(
        digest=digest,
        reference=reference or digest,
        features=features,
        item_count=item_count,
        perform_comparison=perform == "Enabled",
        comparison_threshold=dist.number("comparison_threshold", required=False) if dist else None,
        categorical_comparison_threshold=(
            dist.number("categorical_comparison_threshold", required=False) if dist else None
        ),
        comparison_method=method,
        datatype_check_threshold=(
            config.number("datatype_check_threshold", required=False) if config else None
        ),
        domain_content_threshold=(
            config.number("domain_content_threshold", required=False) if config else None
        ),
    )


def _baseline_feature(c: Fields, s: Fields | None) -> BaselineFeature:
    num = c.obj("num_constraints", required=False)
    strings = c.obj("string_constraints", required=False)
    domains: tuple[str, ...] = ()
    if strings is not None:
        domains = tuple(str(d) for d in strings.array("domains", required=False) or [])
    extra: dict[str, Any] = {}
    if s is not None:
        numeric = s.obj("numerical_statistics", required=False)
        text = s.obj("string_statistics", required=False)
        block = numeric or text
        if block is not None:
            common = block.obj("common", required=False)
            if common is not None:
                extra["num_present"] = common.integer("num_present", required=False)
                extra["num_missing"] = common.integer("num_missing", required=False)
        if numeric is not None:
            for key in ("mean", "std_dev", "min", "max"):
                extra[key] = numeric.number(key, required=False)
        if text is not None:
            extra["distinct_count"] = text.integer("distinct_count", required=False)
    return BaselineFeature(
        name=c.req_text("name"),
        inferred_type=c.text("inferred_type", required=False) or "Unknown",
        completeness=c.number("completeness", required=False),
        is_non_negative=num.flag("is_non_negative", required=False) if num else None,
        domains=domains,
        **extra,
    )


def read_report(
    folder: str | Path, *, baseline: Baseline | None = None, reference: str | None = None
) -> MonitorReport:
    """Read one monitoring execution's folder (see the module docstring for its layout).

    The baseline is `baseline` if given, else `baseline/constraints.json` (+ statistics) in the
    folder when present; `reference` names it in drift events."""
    root = Path(folder)
    epath = root / EXECUTION_FILE
    if not epath.is_file():
        raise AdapterError(
            f"no `{EXECUTION_FILE}` in the report folder",
            location=str(root),
            hint="save the execution's MonitoringExecutionSummary (from ListMonitoringExecutions"
            " or DescribeMonitoringSchedule) beside the reports; it says which schedule,"
            " endpoint and time they belong to",
        )
    e = _fields(epath)
    try:
        schedule = e.req_text("MonitoringScheduleName")
        status = e.req_text("MonitoringExecutionStatus")
        when = e.time("LastModifiedTime", required=False) or e.time("ScheduledTime")
        assert when is not None
        endpoint = e.text("EndpointName", required=False)
        job = e.text("ProcessingJobArn", required=False)
        mtype = e.text("MonitoringType", required=False)
    except BadField as err:
        raise _bad(epath, err) from None
    violations: list[Violation] = []
    vpath = root / VIOLATIONS_FILE
    if vpath.is_file():
        v = _fields(vpath)
        try:
            for item in v.objects("violations"):
                violations.append(
                    Violation(
                        feature=item.req_text("feature_name"),
                        check=item.req_text("constraint_check_type"),
                        description=item.text("description", required=False) or "",
                        field=item.path,
                    )
                )
        except BadField as err:
            raise _bad(vpath, err) from None
    elif status == "CompletedWithViolations":
        raise AdapterError(
            f"the execution completed with violations but `{VIOLATIONS_FILE}` is missing",
            location=str(root),
        )
    item_count = None
    spath = root / STATISTICS_FILE
    if spath.is_file():
        s = _fields(spath)
        try:
            dataset = s.obj("dataset", required=False)
            item_count = dataset.integer("item_count", required=False) if dataset else None
        except BadField as err:
            raise _bad(spath, err) from None
    if baseline is None and (root / BASELINE_DIR / CONSTRAINTS_FILE).is_file():
        bstats = root / BASELINE_DIR / STATISTICS_FILE
        baseline = read_baseline(
            root / BASELINE_DIR / CONSTRAINTS_FILE,
            bstats if bstats.is_file() else None,
            reference,
        )
    return MonitorReport(
        folder=root,
        schedule=schedule,
        status=status,
        time=when,
        endpoint=endpoint,
        processing_job=job,
        monitoring_type=mtype,
        violations=tuple(violations),
        item_count=item_count,
        baseline=baseline,
    )


def drift_results(report: MonitorReport) -> list[DriftResult]:
    """The execution's outcome per (feature, check), in a stable order.

    Every violation is a breach. When the baseline is known and the execution finished, every
    check the pre-built container runs on a baseline feature that has *no* violation is a
    non-breach, which closes an earlier breach of the same (monitor, feature, metric)."""
    if report.status not in _FINISHED:
        return []
    out: list[DriftResult] = []
    seen: set[tuple[str, str]] = set()
    base = report.baseline
    for v in report.violations:
        seen.add((v.feature, v.check))
        labels = {
            "sagemaker.constraint_check_type": v.check,
            "sagemaker.description": v.description,
        }
        if v.check == DRIFT_CHECK:
            match = _DRIFT_DESCRIPTION.search(v.description)
            if match is None:
                raise AdapterError(
                    "cannot read the drift distance and threshold from the description",
                    location=str(report.folder / VIOLATIONS_FILE),
                    field=f"{v.field}.description",
                    hint="expected `... distance: X exceeds threshold: Y` as the pre-built"
                    " container writes it",
                )
            try:
                value, threshold = float(match["value"]), float(match["threshold"])
                if not (math.isfinite(value) and math.isfinite(threshold)):
                    raise ValueError
            except ValueError:
                raise AdapterError(
                    "the drift distance or threshold is not a number",
                    location=str(report.folder / VIOLATIONS_FILE),
                    field=f"{v.field}.description",
                ) from None
            out.append(DriftResult(v.feature, "baseline_drift", value, threshold, True, labels))
        else:
            out.append(DriftResult(v.feature, v.check, 1.0, 0.0, True, labels))
    if base is None:
        return out
    for feature in base.features:
        checks: list[str] = list(_PER_FEATURE_CHECKS)
        if feature.inferred_type == "String":
            checks += _STRING_CHECKS
        limit = (
            base.categorical_comparison_threshold
            if feature.inferred_type == "String"
            and base.categorical_comparison_threshold is not None
            else base.comparison_threshold
        )
        if base.perform_comparison and limit is not None:
            checks.insert(0, DRIFT_CHECK)
        for check in checks:
            if (feature.name, check) in seen:
                continue
            labels = {"sagemaker.constraint_check_type": check}
            if check == DRIFT_CHECK:
                assert limit is not None
                # The container reports only violations, so the distance is known to be at
                # most the threshold: the threshold is recorded as that upper bound.
                labels["sagemaker.value"] = "upper bound: no violation reported"
                out.append(DriftResult(feature.name, "baseline_drift", limit, limit, False, labels))
            else:
                out.append(DriftResult(feature.name, check, 0.0, 0.0, False, labels))
    return out
