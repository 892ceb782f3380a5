"""Decisions: what the engine concluded about one event, and why.

Plain slotted classes rather than pydantic models: one is built per event on
the hot path. `to_dict` / `to_json` give the canonical (RFC 8785) form that
is hashed, signed and compared byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from policyengine.canonical import dumps as canonical_dumps
from policyengine.runtime.values import format_timestamp, to_jsonable


class Outcome(StrEnum):
    ALLOW = "allow"
    ALLOW_WITH_WARNINGS = "allow_with_warnings"
    REVIEW_REQUIRED = "review_required"
    DENY = "deny"

    @property
    def blocking(self) -> bool:
        """Whether the outcome stops the action until a person or a fix intervenes."""
        return self in (Outcome.DENY, Outcome.REVIEW_REQUIRED)


OUTCOME_RANK = {
    Outcome.ALLOW: 0,
    Outcome.ALLOW_WITH_WARNINGS: 1,
    Outcome.REVIEW_REQUIRED: 2,
    Outcome.DENY: 3,
}


class RequirementResult:
    __slots__ = ("error", "expr", "message", "status", "values")

    def __init__(
        self,
        expr: str,
        status: str,
        values: tuple[tuple[str, Any], ...] = (),
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        self.expr = expr
        self.status = status
        self.values = values
        self.error = error
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "expr": self.expr,
            "status": self.status,
            "values": [{"expr": t, "value": to_jsonable(v)} for t, v in self.values],
        }
        if self.error is not None:
            d["error"] = self.error
        if self.message is not None and self.status != "pass":
            d["message"] = self.message
        return d


class RuleResult:
    __slots__ = (
        "enforcement",
        "layer",
        "message",
        "override",
        "refs",
        "requirements",
        "review",
        "rule",
        "severity",
        "status",
    )

    def __init__(
        self,
        rule: str,
        layer: str,
        severity: str,
        enforcement: str,
        status: str,
        message: str | None = None,
        requirements: tuple[RequirementResult, ...] = (),
        refs: tuple[str, ...] = (),
        override: dict[str, Any] | None = None,
        review: dict[str, Any] | None = None,
    ) -> None:
        self.rule = rule
        self.layer = layer
        self.severity = severity
        self.enforcement = enforcement
        self.status = status
        self.message = message
        self.requirements = requirements
        self.refs = refs
        self.override = override
        self.review = review

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule,
            "layer": self.layer,
            "severity": self.severity,
            "enforcement": self.enforcement,
            "status": self.status,
            "message": self.message,
            "requirements": [r.to_dict() for r in self.requirements],
            "refs": list(self.refs),
        }
        if self.override is not None:
            d["override"] = to_jsonable(self.override)
        if self.review is not None:
            d["review"] = to_jsonable(self.review)
        return d


class Decision:
    """One event's decision. `results` are built lazily from the raw tuples the
    evaluator records, so deciding stays cheap while nothing is lost."""

    __slots__ = (
        "_raw",
        "_results",
        "bundle_digest",
        "engine_version",
        "evaluated_at",
        "event_id",
        "event_time",
        "event_type",
        "outcome",
        "subject_id",
        "subject_kind",
    )

    def __init__(
        self,
        event_id: str,
        event_type: str,
        event_time: datetime,
        subject_kind: str,
        subject_id: str,
        outcome: Outcome,
        raw_results: tuple[Any, ...],
        bundle_digest: str,
        engine_version: str,
        evaluated_at: datetime,
    ) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.event_time = event_time
        self.subject_kind = subject_kind
        self.subject_id = subject_id
        self.outcome = outcome
        self._raw = raw_results
        self._results: tuple[RuleResult, ...] | None = None
        self.bundle_digest = bundle_digest
        self.engine_version = engine_version
        self.evaluated_at = evaluated_at

    @property
    def results(self) -> tuple[RuleResult, ...]:
        """Each triggered rule's result, in evaluation (dependency) order."""
        if self._results is None:
            self._results = tuple(raw[0].view(raw, self.event_time) for raw in self._raw)
        return self._results

    def result(self, rule: str) -> RuleResult | None:
        """The result for a rule by qualified id, or by bare name when that is unique."""
        for r in self.results:
            if r.rule == rule:
                return r
        hits = [r for r in self.results if r.rule.rsplit(".", 1)[-1] == rule]
        return hits[0] if len(hits) == 1 else None

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.failed)

    @property
    def reviews(self) -> tuple[RuleResult, ...]:
        """Failed rules that ask people to review (`review by`), each with its `review`
        (roles, within, deadline); empty unless the outcome waits on a review."""
        if self.outcome is not Outcome.REVIEW_REQUIRED:
            return ()
        return tuple(r for r in self.results if r.review is not None and r.status == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": {
                "id": self.event_id,
                "type": self.event_type,
                "time": format_timestamp(self.event_time),
                "subject": {"kind": self.subject_kind, "id": self.subject_id},
            },
            "outcome": self.outcome.value,
            "results": [r.to_dict() for r in self.results],
            "bundle_digest": self.bundle_digest,
            "engine_version": self.engine_version,
            "evaluated_at": format_timestamp(self.evaluated_at),
        }

    def to_json(self) -> bytes:
        """Canonical JSON (RFC 8785): the bytes that are hashed and signed."""
        return canonical_dumps(self.to_dict())

    def __repr__(self) -> str:
        return f"Decision({self.event_id!r}, {self.outcome.value!r}, {len(self.results)} rules)"
