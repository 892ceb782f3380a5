"""Evaluation: run the rules indexed for one event and fold their results into
a decision. Pure with respect to the bundle — everything mutable lives in the
per-event `Frame` — so one bundle serves any number of threads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policyengine.language.ast import Span
from policyengine.runtime.decision import (
    Decision,
    Outcome,
    RequirementResult,
    RuleResult,
)
from policyengine.runtime.errors import EvalError
from policyengine.runtime.frame import Frame, StateReader
from policyengine.runtime.values import format_value

Fn = Callable[[Frame], Any]
ExplainFn = Callable[[Frame], tuple[Any, tuple[tuple[str, Any], ...]]]


@dataclass(frozen=True, slots=True)
class RequirementProgram:
    run: ExplainFn
    text: str
    message: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class RuleProgram:
    """One rule compiled for one concrete event type."""

    rule: str
    layer: str
    severity: str
    enforcement: str
    refs: tuple[str, ...]
    override_by: tuple[str, ...]
    guard: Fn | None
    guard_span: Span | None
    requirements: tuple[RequirementProgram, ...]
    message: tuple[str | Fn, ...] | None

    def not_applicable(self) -> RuleResult:
        return RuleResult(
            self.rule, self.layer, self.severity, self.enforcement, "not_applicable", refs=self.refs
        )

    def run(self, f: Frame) -> RuleResult:
        if self.guard is not None:
            try:
                g = self.guard(f)
            except EvalError as err:
                return self._error(f"`when` could not be evaluated: {err.message}", ())
            if g is False:
                return self.not_applicable()
            if g is not True:
                return self._error(f"`when` must be a boolean, got `{format_value(g)}`", ())
        results: list[RequirementResult] = []
        failed = errored = False
        first_error: str | None = None
        for req in self.requirements:
            try:
                v, values = req.run(f)
            except EvalError as err:
                errored = True
                first_error = first_error or err.message
                results.append(RequirementResult(req.text, "error", (), err.message, req.message))
                continue
            if v is True:
                results.append(RequirementResult(req.text, "pass", values))
            elif v is False:
                failed = True
                results.append(RequirementResult(req.text, "fail", values, None, req.message))
            else:
                errored = True
                msg = f"requirement must be a boolean, got `{format_value(v)}`"
                first_error = first_error or msg
                results.append(RequirementResult(req.text, "error", values, msg, req.message))
        reqs = tuple(results)
        if errored:
            return self._error(f"could not be evaluated: {first_error}", reqs, f)
        if not failed:
            return RuleResult(
                self.rule, self.layer, self.severity, self.enforcement, "pass", None, reqs,
                self.refs,
            )
        return RuleResult(
            self.rule,
            self.layer,
            self.severity,
            self.enforcement,
            "fail",
            self._message(f, reqs),
            reqs,
            self.refs,
            self._override(f) if self.enforcement == "soft" else None,
        )

    def _error(
        self, detail: str, reqs: tuple[RequirementResult, ...], f: Frame | None = None
    ) -> RuleResult:
        message = detail
        if f is not None and self.message is not None:
            message = f"{self._message(f, reqs)} ({detail})"
        return RuleResult(
            self.rule, self.layer, self.severity, self.enforcement, "error", message, reqs,
            self.refs,
        )

    def _message(self, f: Frame, reqs: tuple[RequirementResult, ...]) -> str:
        if self.message is not None:
            out: list[str] = []
            for part in self.message:
                if isinstance(part, str):
                    out.append(part)
                    continue
                try:
                    out.append(format_value(part(f)))
                except EvalError as err:
                    out.append(f"<{err.message}>")
            return "".join(out)
        for r in reqs:
            if r.status != "pass" and r.message:
                return r.message
        failing = [r.expr for r in reqs if r.status != "pass"]
        return "requirement not met: " + "; ".join(failing)

    def _override(self, f: Frame) -> dict[str, Any] | None:
        """A soft rule's failure stands unless the subject carries an override for
        this rule, from an authorised role, in force at the event's time."""
        subject = f.subject()
        if not subject:
            return None
        when: datetime = f.event["time"]
        for o in subject.get("overrides") or ():
            if (
                o.get("rule") == self.rule
                and o.get("role") in self.override_by
                and o.get("time") is not None
                and o["time"] <= when
                and (o.get("expires_at") is None or o["expires_at"] > when)
            ):
                return {
                    "signer": o.get("signer"),
                    "role": o.get("role"),
                    "justification": o.get("justification"),
                    "time": o.get("time"),
                    "expires_at": o.get("expires_at"),
                }
        return None


def fold_outcome(results: tuple[RuleResult, ...]) -> Outcome:
    """hard failure → deny; soft failure → review required unless overridden;
    advisory failure or an override in use → allow with warnings."""
    outcome = Outcome.ALLOW
    for r in results:
        if r.status not in ("fail", "error"):
            continue
        if r.enforcement == "hard":
            return Outcome.DENY
        if r.enforcement == "soft" and r.override is None:
            outcome = Outcome.REVIEW_REQUIRED
        elif outcome is Outcome.ALLOW:
            outcome = Outcome.ALLOW_WITH_WARNINGS
    return outcome


def evaluate(
    event: dict[str, Any],
    state: StateReader,
    now: datetime,
    index: Mapping[str, tuple[RuleProgram, ...]],
    nvars: int,
    bundle_digest: str,
    engine_version: str,
) -> Decision:
    """Decide one validated event (the plain-dict form from `parse_event`)."""
    programs = index.get(event["type"], ())
    frame = Frame(event, state, now, nvars)
    rs = frame.results
    out: list[RuleResult] = []
    for p in programs:
        res = p.run(frame)
        rs[p.rule] = res.status
        out.append(res)
    results = tuple(out)
    subject = event["subject"]
    return Decision(
        event["id"],
        event["type"],
        event["time"],
        subject["kind"],
        subject["id"],
        fold_outcome(results),
        results,
        bundle_digest,
        engine_version,
        now,
    )
