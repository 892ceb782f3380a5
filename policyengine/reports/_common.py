"""Small helpers shared by the renderers: outcome styling, failure reasons, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from policyengine.runtime.decision import Decision, Outcome, RequirementResult, RuleResult

OUTCOME_ORDER = (
    Outcome.ALLOW,
    Outcome.ALLOW_WITH_WARNINGS,
    Outcome.REVIEW_REQUIRED,
    Outcome.DENY,
)

OUTCOME_STYLE: Mapping[str, str] = {
    "allow": "green",
    "allow_with_warnings": "yellow",
    "review_required": "magenta",
    "deny": "bold red",
}

STATUS_STYLE: Mapping[str, str] = {
    "pass": "green",
    "fail": "red",
    "error": "bold red",
    "not_applicable": "dim",
}

STATUS_MARK: Mapping[str, str] = {
    "pass": "✓",
    "fail": "✗",
    "error": "!",
    "not_applicable": "-",
}

# SARIF / code-scanning level per enforcement: only hard rules block on their own.
ENFORCEMENT_LEVEL: Mapping[str, str] = {"hard": "error", "soft": "warning", "advisory": "note"}


def dumps(obj: Any) -> str:
    """Indented JSON with a trailing newline: readable in logs, trivial to parse."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def requirement_reason(req: RequirementResult) -> str:
    """Why one requirement did not pass, in words."""
    if req.status == "error":
        return f"cannot evaluate `{req.expr}`: {req.error or 'error'}"
    return req.message or f"`{req.expr}` is false"


def failure_reason(result: RuleResult) -> str:
    """One line saying why a rule failed: its message, else its requirements' reasons."""
    if result.message:
        return result.message
    reasons = [requirement_reason(q) for q in result.requirements if q.status != "pass"]
    return "; ".join(reasons) or f"rule {result.status}"


def subject_label(decision: Decision) -> str:
    return f"{decision.subject_kind}/{decision.subject_id}"


class OutcomeTally:
    """Counts decisions by outcome as they stream past, for summaries and exit codes."""

    def __init__(self) -> None:
        self.counts: dict[Outcome, int] = dict.fromkeys(OUTCOME_ORDER, 0)

    def add(self, decision: Decision) -> Decision:
        self.counts[decision.outcome] += 1
        return decision

    def watch(self, decisions: Iterable[Decision]) -> Iterable[Decision]:
        """Pass decisions through unchanged, counting each."""
        for d in decisions:
            yield self.add(d)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def any_of(self, outcomes: Iterable[Outcome]) -> bool:
        return any(self.counts[o] for o in outcomes)

    def summary(self) -> str:
        """`7 events: 4 allow, 1 allow_with_warnings, 1 review_required, 1 deny`."""
        n = self.total
        parts = ", ".join(f"{self.counts[o]} {o.value}" for o in OUTCOME_ORDER)
        return f"{n} event{'s' if n != 1 else ''}: {parts}"
