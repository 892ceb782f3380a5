"""Policy unit tests: run the `test` blocks of a bundle and measure rule coverage.

Each test gets a fresh state store. Its steps run in order: `given` seeds
entity state, `event` goes through the same validation and reducers as a real
event and is decided, and `expect` checks the most recent decision. Coverage
records which rules were triggered and which requirements were seen to pass
and to fail, like `opa test --coverage` but per requirement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from policyengine.compiler.bundle import Bundle
from policyengine.compiler.resolve import ResolvedTest
from policyengine.events import EventError, MemoryStateStore, parse_event
from policyengine.events.catalog import entity_from_attributes
from policyengine.language import ast
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import judge
from policyengine.runtime.values import format_timestamp

__all__ = ["Coverage", "Failure", "TestReport", "TestResult", "run_tests"]


@dataclass(frozen=True, slots=True)
class Failure:
    message: str
    span: ast.Span


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str
    package: str
    file: str
    line: int
    failures: tuple[Failure, ...]
    events: int
    error: str | None = None  # set when the test itself is broken (bad fixture, bad event)

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


@dataclass(slots=True)
class Coverage:
    """Per rule: was it triggered, and which requirement outcomes were observed."""

    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, decision: Decision) -> None:
        for r in decision.results:
            entry = self.rules[r.rule]
            entry["statuses"].add(r.status)
            for i, req in enumerate(r.requirements):
                entry["requirements"][i].add(req.status)

    def summary(self) -> dict[str, Any]:
        rules_total = len(self.rules)
        triggered = sum(1 for e in self.rules.values() if e["statuses"] - {"not_applicable"})
        reqs_total = sum(len(e["requirements"]) for e in self.rules.values())
        reqs_hit = sum(1 for e in self.rules.values() for s in e["requirements"] if s)
        both = sum(
            1 for e in self.rules.values() for s in e["requirements"] if {"pass", "fail"} <= s
        )
        return {
            "rules": rules_total,
            "rules_covered": triggered,
            "requirements": reqs_total,
            "requirements_covered": reqs_hit,
            "requirements_both_ways": both,
            "percent": round(100.0 * (reqs_hit / reqs_total), 1) if reqs_total else 100.0,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "rules": {
                rule: {
                    "file": e["file"],
                    "line": e["line"],
                    "statuses": sorted(e["statuses"]),
                    "covered": bool(e["statuses"] - {"not_applicable"}),
                    "requirements": [
                        {"expr": text, "observed": sorted(s)}
                        for text, s in zip(e["texts"], e["requirements"], strict=True)
                    ],
                }
                for rule, e in sorted(self.rules.items())
            },
        }


@dataclass(frozen=True, slots=True)
class TestReport:
    results: tuple[TestResult, ...]
    coverage: Coverage

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def counts(self) -> tuple[int, int]:
        ok = sum(1 for r in self.results if r.passed)
        return ok, len(self.results) - ok


def _new_coverage(bundle: Bundle) -> Coverage:
    cov = Coverage()
    for rid, info in bundle.rules.items():
        cov.rules[rid] = {
            "file": info.span.file,
            "line": info.span.line,
            "statuses": set(),
            "texts": list(info.requirements),
            "requirements": [set() for _ in info.requirements],
        }
    return cov


def run_tests(bundle: Bundle, name_filter: str | None = None) -> TestReport:
    """Run every test in the bundle (optionally only those whose name contains the filter)."""
    coverage = _new_coverage(bundle)
    results: list[TestResult] = []
    for t in bundle.tests:
        if name_filter and name_filter not in t.decl.name:
            continue
        results.append(_run_one(bundle, t, coverage))
    return TestReport(tuple(results), coverage)


def _run_one(bundle: Bundle, t: ResolvedTest, coverage: Coverage) -> TestResult:
    decl = t.decl
    state = MemoryStateStore()
    failures: list[Failure] = []
    last: Decision | None = None
    events = 0
    refs = iter(t.rule_refs)

    def result(error: str | None = None) -> TestResult:
        return TestResult(
            decl.name, t.package, t.module.path, decl.span.line, tuple(failures), events, error
        )

    for step in decl.steps:
        if isinstance(step, ast.GivenEntity):
            try:
                state.put(
                    step.kind.value,
                    step.id,
                    entity_from_attributes(step.kind.value, step.id, step.attributes),
                )
            except EventError as err:
                return result(f"{step.span}: invalid `given {step.kind.value}`: {err}")
        elif isinstance(step, ast.TestEvent):
            events += 1
            raw = _event_json(t, step, events, decl.at)
            try:
                ev = parse_event(raw)
            except EventError as err:
                return result(f"{step.span}: invalid event `{step.type.value}`: {err}")
            last = judge(bundle, state, ev, decl.at if decl.at is not None else ev["time"])
            coverage.record(last)
        elif isinstance(step, ast.ExpectOutcome):
            if last is None:
                failures.append(Failure("`expect` comes before any `event`", step.span))
            elif last.outcome.value != step.outcome:
                why = (
                    "; ".join(f"{r.rule} {r.status}: {r.message}" for r in last.failures)
                    or "no rule failed"
                )
                failures.append(
                    Failure(
                        f"expected `{step.outcome}` but got `{last.outcome.value}` ({why})",
                        step.span,
                    )
                )
        elif isinstance(step, ast.ExpectRule):
            rule = next(refs, None)
            if last is None:
                failures.append(Failure("`expect` comes before any `event`", step.span))
                continue
            if rule is None:
                continue
            failures.extend(_check_rule(last, rule, step))
    return result()


def _check_rule(decision: Decision, rule: str, step: ast.ExpectRule) -> Iterable[Failure]:
    result = decision.result(rule)
    status = result.status if result is not None else "not_applicable"
    if status != step.status:
        detail = f": {result.message}" if result is not None and result.message else ""
        if result is None:
            detail = f" (`{rule}` is not triggered by `{decision.event_type}`)"
        yield Failure(
            f"expected `{rule}` to be `{step.status}` but it was `{status}`{detail}", step.span
        )
        return
    if step.message_contains is not None:
        message = (result.message if result is not None else None) or ""
        if step.message_contains not in message:
            yield Failure(
                f"expected the message of `{rule}` to contain `{step.message_contains}`, "
                f"got `{message}`",
                step.span,
            )


def _event_json(
    t: ResolvedTest, step: ast.TestEvent, n: int, at: datetime | None
) -> dict[str, Any]:
    from policyengine.events import EVENT_TYPES

    spec = EVENT_TYPES.get(step.type.value)
    when = step.time or at
    return {
        "id": f"{_slug(t.decl.name)}-{n}",
        "type": step.type.value,
        "time": format_timestamp(when) if when is not None else "1970-01-01T00:00:00Z",
        "actor": {"id": step.actor or "test-actor", "roles": list(step.actor_roles or ())},
        "subject": {"kind": spec.subject_kind if spec else "", "id": step.subject_id},
        "attributes": step.attributes,
    }


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40] or "test"
