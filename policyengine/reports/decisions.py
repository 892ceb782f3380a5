"""`eval` reports: decisions as a table, canonical JSON lines, or JUnit XML.

Renderers take any iterable of decisions and consume it once, so the CLI can
feed them straight from a stream it is still evaluating.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.table import Table
from rich.text import Text

from policyengine.reports import junit
from policyengine.reports._common import (
    OUTCOME_STYLE,
    OutcomeTally,
    failure_reason,
    requirement_reason,
    subject_label,
)
from policyengine.reports._console import DEFAULT_WIDTH, to_text
from policyengine.runtime.decision import Decision, Outcome, RuleResult
from policyengine.runtime.values import format_timestamp

__all__ = ["decision_json_line", "decisions_junit", "decisions_text"]


def decision_json_line(decision: Decision) -> bytes:
    """One canonical (RFC 8785) decision plus a newline: the JSON Lines output."""
    return decision.to_json() + b"\n"


def _failing_cell(results: Iterable[RuleResult]) -> Text:
    cell = Text()
    for r in results:
        if not r.failed:
            continue
        if cell:
            cell.append("\n")
        style = "red" if r.enforcement == "hard" else "yellow"
        cell.append(r.rule, style=style)
        tag = r.enforcement if r.status == "fail" else f"{r.enforcement}, error"
        if r.override is not None:
            tag += ", overridden"
        cell.append(f" ({tag})", style="dim")
        cell.append(f"\n  {failure_reason(r)}")
    return cell


WIDE_LAYOUT = 130


def decisions_text(
    decisions: Iterable[Decision],
    *,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
    only_failing: bool = False,
) -> str:
    """A table (event id, type, subject, outcome, failing rules with messages) and a
    summary line counting every outcome. From `WIDE_LAYOUT` columns up each field has
    its own column; narrower, id/type/subject stack in one column so the failing rules
    keep room. `only_failing` drops rows whose outcome is `allow`."""
    wide = width >= WIDE_LAYOUT
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_lines=not wide)
    if wide:
        table.add_column("event", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("subject", no_wrap=True)
    else:
        table.add_column("event / type / subject", overflow="fold", max_width=max(24, width // 3))
    table.add_column("outcome", no_wrap=True)
    table.add_column("failing rules", overflow="fold", ratio=1)
    tally = OutcomeTally()
    for d in tally.watch(decisions):
        if only_failing and d.outcome is Outcome.ALLOW:
            continue
        outcome = Text(d.outcome.value, style=OUTCOME_STYLE[d.outcome.value])
        if wide:
            table.add_row(
                d.event_id, d.event_type, subject_label(d), outcome, _failing_cell(d.results)
            )
        else:
            who = Text(d.event_id)
            who.append(f"\n{d.event_type}\n{subject_label(d)}", style="dim")
            table.add_row(who, outcome, _failing_cell(d.results))
    summary = Text(tally.summary(), style="bold")
    if table.row_count:
        return to_text(table, Text(""), summary, color=color, width=width)
    empty = "no events" if not tally.total else "no failing events"
    return to_text(Text(empty, style="dim"), summary, color=color, width=width)


def _rule_details(r: RuleResult) -> str:
    lines = [f"{r.rule}: {r.status} ({r.layer}, {r.severity}, {r.enforcement})"]
    if r.message:
        lines.append(f"message: {r.message}")
    for q in r.requirements:
        line = f"require {q.expr}: {q.status}"
        if q.status != "pass":
            line += f" — {requirement_reason(q)}"
        lines.append(line)
    if r.refs:
        lines.append("refs: " + "; ".join(r.refs))
    if r.override is not None:
        lines.append(f"overridden: {r.override}")
    return "\n".join(lines)


def decisions_junit(
    decisions: Iterable[Decision],
    *,
    name: str = "policyengine eval",
    duration: float | None = None,
) -> str:
    """One testsuite for the stream; one testcase per (event, triggered rule):
    `fail`/`error` rules are failures, rules whose `when` guard was false are skipped.
    The classname is the event (id, type, subject) so CI groups rules by event."""
    suite = junit.Suite(name)
    for d in decisions:
        classname = f"{d.event_id} {d.event_type} {subject_label(d)}"
        for r in d.results:
            case = junit.Case(classname=classname, name=r.rule)
            if r.failed:
                reason = failure_reason(r)
                details = (
                    f"event {d.event_id} at {format_timestamp(d.event_time)}: {d.outcome.value}\n"
                    + _rule_details(r)
                )
                case.failure = (f"{r.enforcement} rule {r.status}", reason, details)
            elif r.status == "not_applicable":
                case.skipped = "not applicable: the `when` guard is false"
            suite.cases.append(case)
    return junit.render(name, [suite], duration=duration)
