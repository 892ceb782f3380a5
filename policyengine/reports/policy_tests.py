"""`test` reports: policy unit-test results as pytest-like text, JSON, or JUnit
XML, and rule coverage (which rules fired, which requirements were seen to
pass and to fail)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from policyengine.reports import junit
from policyengine.reports._common import dumps
from policyengine.reports._console import DEFAULT_WIDTH, to_text
from policyengine.testing import Coverage, TestReport, TestResult

__all__ = [
    "coverage_text",
    "policy_tests_json",
    "policy_tests_junit",
    "policy_tests_text",
    "result_dict",
]


def _title(t: TestResult) -> str:
    return f"{t.package} › {t.name}"


def _failure_lines(t: TestResult) -> list[str]:
    lines = [f"{f.span}: {f.message}" for f in t.failures]
    if t.error is not None:
        lines.append(f"error: {t.error}")
    return lines


def closing_line(report: TestReport) -> str:
    """`N passed, N failed` — the last line of the text report, stable for scripts."""
    ok, bad = report.counts
    return f"{ok} passed, {bad} failed"


def _coverage_renderables(coverage: Coverage) -> list[RenderableType]:
    data = coverage.to_dict()
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, title=None)
    table.add_column("rule", overflow="fold")
    table.add_column("triggered", no_wrap=True)
    table.add_column("observed", no_wrap=True)
    table.add_column("requirement", overflow="fold", ratio=1)
    for rule, entry in data["rules"].items():
        statuses = [s for s in entry["statuses"] if s != "not_applicable"]
        triggered = (
            Text(", ".join(statuses), style="green")
            if statuses
            else Text("never" if not entry["statuses"] else "guard only", style="red")
        )
        reqs = entry["requirements"] or [{"expr": "", "observed": []}]
        for i, req in enumerate(reqs):
            observed = req["observed"]
            if not observed:
                obs = Text("never", style="red")
            elif {"pass", "fail"} <= set(observed):
                obs = Text(", ".join(observed), style="green")
            else:
                obs = Text(", ".join(observed), style="yellow")
            table.add_row(
                Text(rule, style="bold") if i == 0 else "",
                triggered if i == 0 else "",
                obs if req["expr"] else "",
                req["expr"],
            )
    s = data["summary"]
    total = Text(
        f"rules triggered {s['rules_covered']}/{s['rules']} · requirements observed "
        f"{s['requirements_covered']}/{s['requirements']} ({s['requirements_both_ways']} "
        f"both passing and failing) · {s['percent']}%",
        style="bold",
    )
    return [Text("coverage", style="bold underline"), table, total]


def coverage_text(coverage: Coverage, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """Per-rule coverage table plus a totals line."""
    return to_text(*_coverage_renderables(coverage), color=color, width=width)


def policy_tests_text(
    report: TestReport,
    *,
    coverage: bool = False,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
) -> str:
    """One PASS/FAIL line per test, failure details with file:line:col, optional
    coverage, and a closing `N passed, N failed` line (never styled)."""
    parts: list[RenderableType] = []
    for t in report.results:
        line = Text(
            "PASS " if t.passed else "FAIL ", style="bold green" if t.passed else "bold red"
        )
        line.append(_title(t))
        line.append(f"  ({t.file}:{t.line})", style="dim")
        parts.append(line)
    failed = [t for t in report.results if not t.passed]
    if failed:
        parts.append(Text(""))
        parts.append(Text("failures", style="bold underline"))
        for t in failed:
            parts.append(Text(""))
            parts.append(Text(f"--- {_title(t)} ({t.file}:{t.line})", style="bold red"))
            parts.extend(Padding(Text(line), (0, 0, 0, 4)) for line in _failure_lines(t))
    if coverage:
        parts.append(Text(""))
        parts.extend(_coverage_renderables(report.coverage))
    parts.append(Text(""))
    body = to_text(*parts, color=color, width=width)
    return body + closing_line(report) + "\n"


def result_dict(t: TestResult) -> dict[str, Any]:
    return {
        "name": t.name,
        "package": t.package,
        "file": t.file,
        "line": t.line,
        "passed": t.passed,
        "events": t.events,
        "error": t.error,
        "failures": [
            {
                "message": f.message,
                "file": f.span.file,
                "line": f.span.line,
                "column": f.span.column,
            }
            for f in t.failures
        ],
    }


def policy_tests_json(report: TestReport) -> str:
    """Counts, every test result, and coverage (always included: it is cheap)."""
    ok, bad = report.counts
    return dumps(
        {
            "passed": report.passed,
            "counts": {"passed": ok, "failed": bad, "total": ok + bad},
            "tests": [result_dict(t) for t in report.results],
            "coverage": report.coverage.to_dict(),
        }
    )


def policy_tests_junit(
    report: TestReport, *, name: str = "policyengine test", duration: float | None = None
) -> str:
    """One testsuite per policy file, one testcase per test (classname = package).
    Failed expectations are `<failure>`; a broken test (bad fixture) is `<error>`."""
    suites: dict[str, junit.Suite] = {}
    for t in report.results:
        suite = suites.setdefault(t.file, junit.Suite(t.file, file=t.file))
        case = junit.Case(classname=t.package, name=t.name, file=t.file, line=t.line)
        if t.failures:
            first = t.failures[0].message
            case.failure = ("expectation", first, "\n".join(_failure_lines(t)))
        if t.error is not None:
            case.error = ("broken test", t.error, "\n".join(_failure_lines(t)))
        suite.cases.append(case)
    return junit.render(name, list(suites.values()), duration=duration)
