"""`explain` reports: the full trace behind one decision — every triggered rule,
each requirement with the values it saw, and the rule's documentation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from policyengine.compiler.bundle import RuleInfo
from policyengine.reports._common import (
    OUTCOME_STYLE,
    STATUS_MARK,
    STATUS_STYLE,
    dumps,
    subject_label,
)
from policyengine.reports._console import DEFAULT_WIDTH, to_text
from policyengine.runtime.decision import Decision, RuleResult
from policyengine.runtime.values import format_timestamp, to_jsonable

__all__ = ["explain_json", "explain_text", "rule_info_dict"]

_MAX_VALUE = 240


def _value(v: Any) -> str:
    text = json.dumps(to_jsonable(v), ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _kv(label: str, value: str, indent: int = 4) -> Text:
    t = Text(" " * indent)
    t.append(f"{label}: ", style="dim")
    t.append(value)
    return t


def _rule_block(r: RuleResult, info: RuleInfo | None) -> list[RenderableType]:
    head = Text(f"{STATUS_MARK.get(r.status, '?')} ", style=STATUS_STYLE.get(r.status, ""))
    head.append(r.rule, style="bold")
    head.append("  ")
    head.append(r.status, style=STATUS_STYLE.get(r.status, ""))
    if info is not None and info.title:
        head.append(f"  {info.title}", style="italic")
    out: list[RenderableType] = [head]
    out.append(_kv("policy", f"layer {r.layer} · severity {r.severity} · enforce {r.enforcement}"))
    if info is not None:
        out.append(_kv("defined at", str(info.span)))
        if info.override_by:
            out.append(_kv("override by", ", ".join(info.override_by)))
        if info.depends_on:
            out.append(_kv("depends on", ", ".join(info.depends_on)))
    if r.refs:
        out.append(_kv("refs", "; ".join(r.refs)))
    if info is not None and info.doc:
        doc_lines = info.doc.splitlines() or [""]
        out.append(_kv("doc", doc_lines[0]))
        out.extend(Text("         " + line) for line in doc_lines[1:])
    if r.message:
        out.append(_kv("message", r.message))
    if r.override is not None:
        o = r.override
        text = f"{o.get('signer')} as {o.get('role')}"
        if o.get("justification"):
            text += f": {o['justification']}"
        if o.get("expires_at") is not None:
            text += f" (expires {to_jsonable(o['expires_at'])})"
        out.append(_kv("overridden by", text))
    if r.status == "not_applicable":
        out.append(
            Text("    the `when` guard is false, so no requirement was checked", style="dim")
        )
    for q in r.requirements:
        line = Text("    require ", style="dim")
        line.append(q.expr)
        out.append(line)
        st = Text("      → ")
        st.append(q.status, style=STATUS_STYLE.get(q.status, ""))
        if q.status == "error" and q.error:
            st.append(f": {q.error}")
        elif q.status != "pass" and q.message:
            st.append(f": {q.message}")
        out.append(st)
        for expr, value in q.values:
            v = Text("        ")
            v.append(expr, style="cyan")
            v.append(" = ")
            v.append(_value(value))
            out.append(v)
    out.append(Text(""))
    return out


def explain_text(
    decision: Decision,
    rules: Mapping[str, RuleInfo],
    *,
    line: int | None = None,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
) -> str:
    """Human-readable trace of one decision; `line` is the event's line in its stream."""
    d = decision
    head = Text("event ", style="dim")
    head.append(d.event_id, style="bold")
    if line is not None:
        head.append(f" (line {line})", style="dim")
    head.append(f"  {d.event_type}  {subject_label(d)}")
    meta = Text(
        f"time {format_timestamp(d.event_time)} · evaluated at "
        f"{format_timestamp(d.evaluated_at)} · bundle {d.bundle_digest}",
        style="dim",
    )
    outcome = Text("outcome: ")
    outcome.append(d.outcome.value, style=OUTCOME_STYLE[d.outcome.value])
    parts: list[RenderableType] = [head, meta, outcome, Text("")]
    if not d.results:
        parts.append(Text(f"no rule is triggered by `{d.event_type}`", style="dim"))
    for r in d.results:
        parts.extend(_rule_block(r, rules.get(r.rule)))
    return to_text(Group(*parts), color=color, width=width)


def rule_info_dict(info: RuleInfo) -> dict[str, Any]:
    """The event-independent facts about a rule that reports show next to results."""
    return {
        "id": info.id,
        "title": info.title,
        "doc": info.doc,
        "layer": info.layer,
        "severity": info.severity,
        "enforcement": info.enforcement,
        "refs": list(info.refs),
        "on": list(info.on),
        "override_by": list(info.override_by),
        "depends_on": list(info.depends_on),
        "requirements": list(info.requirements),
        "location": {
            "file": info.span.file,
            "line": info.span.line,
            "column": info.span.column,
        },
    }


def explain_json(
    decision: Decision, rules: Mapping[str, RuleInfo], *, line: int | None = None
) -> str:
    """`{"line": n, "decision": <canonical decision>, "rules": {id: rule facts}}`."""
    triggered = {r.rule: rule_info_dict(rules[r.rule]) for r in decision.results if r.rule in rules}
    return dumps({"line": line, "decision": decision.to_dict(), "rules": triggered})
