"""`diff`: what a proposed policy bundle would have decided on the events already logged.

The impact analysis for a policy change: every logged event is judged again under the new
bundle, in log order, at its logged evaluation time, against the entity state of its
session — with the engine's usual semantics, so an approval the new bundle would deny no
longer counts for the deployment after it. Each decision is compared with the logged one
by outcome and by each rule's status; the report groups the changes (allow→deny, rule
pass→fail, …) with the first few examples of each, for a terminal, for scripts (JSON) and
for a pull request (Markdown).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from policyengine.audit._common import (
    LoggedDecision,
    NotReplayable,
    RuleChange,
    SkippedRecord,
    human_status,
    rule_changes,
    walk,
)
from policyengine.compiler.bundle import Bundle
from policyengine.events import MemoryStateStore
from policyengine.log.tlog import TransparencyLog
from policyengine.reports._common import OUTCOME_STYLE
from policyengine.reports._console import DEFAULT_WIDTH, to_text
from policyengine.runtime.decision import OUTCOME_RANK, Outcome
from policyengine.runtime.engine import judge

__all__ = [
    "DiffReport",
    "Example",
    "TransitionGroup",
    "diff",
    "diff_headline",
    "diff_json",
    "diff_markdown",
    "diff_text",
]

DIFF_FORMAT = "policyengine.diff/1"
# Decision fields that always differ under another bundle and are not part of the verdict.
_PROVENANCE = ("bundle_digest", "engine_version")


@dataclass(frozen=True, slots=True)
class Example:
    """One decision that would change."""

    index: int
    event_id: str
    event_type: str
    subject_kind: str
    subject_id: str
    outcome_before: str
    outcome_after: str
    rules: tuple[RuleChange, ...]

    @property
    def subject(self) -> str:
        return f"{self.subject_kind}/{self.subject_id}"


@dataclass
class TransitionGroup:
    """How many decisions made one transition, and the first few of them in log order."""

    count: int = 0
    examples: list[Example] = field(default_factory=list)

    def add(self, example: Example, keep: int) -> None:
        self.count += 1
        if len(self.examples) < keep:
            self.examples.append(example)


@dataclass
class DiffReport:
    """What `diff` found. `changed + unchanged == replayed`.

    A decision *changed* when its outcome or any rule's status (including whether the rule
    was triggered at all) differs. `detail_only` counts unchanged decisions whose messages or
    explanation values differ nonetheless (e.g. a reworded message).
    """

    bundle_digest: str
    engine_version: str
    examples: int
    log_origin: str | None = None
    leaves: int = 0
    replayed: int = 0
    unchanged: int = 0
    changed: int = 0
    detail_only: int = 0
    #: The bundles the replayed decisions were logged under, with how many each.
    logged_bundles: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    not_replayable: list[NotReplayable] = field(default_factory=list)
    #: (outcome before, outcome after) → group; only outcomes that changed.
    outcomes: dict[tuple[str, str], TransitionGroup] = field(default_factory=dict)
    #: (rule, status before, status after) → group; `not_triggered` when absent.
    rules: dict[tuple[str, str, str], TransitionGroup] = field(default_factory=dict)

    @property
    def any_changed(self) -> bool:
        return self.changed > 0

    def outcome_groups(self) -> list[tuple[tuple[str, str], TransitionGroup]]:
        """Outcome transitions, most frequent first, then by severity of the new outcome."""
        return sorted(
            self.outcomes.items(),
            key=lambda kv: (-kv[1].count, -_rank(kv[0][1]), _rank(kv[0][0])),
        )

    def rule_groups(self) -> list[tuple[tuple[str, str, str], TransitionGroup]]:
        """Rule transitions by rule id, then status before and after."""
        return sorted(self.rules.items(), key=lambda kv: kv[0])


def _rank(outcome: str) -> int:
    try:
        return OUTCOME_RANK[Outcome(outcome)]
    except ValueError:
        return -1


def diff(log: TransparencyLog, new_bundle: Bundle, *, examples: int = 3) -> DiffReport:
    """Judge every logged event under `new_bundle` and compare with what was logged.

    Ordering, state and clock follow `replay`: log order, one shared state store that the
    *new* decisions commit to (so the new bundle's denials shape later state), and each
    decision's logged `evaluated_at` as `now`. `examples` caps the examples kept per group.
    """
    report = DiffReport(
        bundle_digest=new_bundle.digest,
        engine_version=new_bundle.engine_version,
        examples=max(0, examples),
        log_origin=log.origin,
    )
    state = MemoryStateStore()
    for item in walk(log):
        report.leaves += 1
        if isinstance(item, SkippedRecord):
            report.skipped[item.kind] += 1
            if item.kind == "session":  # an engine started here from empty state
                state = MemoryStateStore()
            continue
        if isinstance(item, NotReplayable):
            report.not_replayable.append(item)
            continue
        decision = judge(new_bundle, state, item.event, item.evaluated_at)
        report.replayed += 1
        report.logged_bundles[item.bundle_digest] += 1
        _compare(report, item, decision.to_dict())
    return report


def _compare(report: DiffReport, item: LoggedDecision, new: dict[str, Any]) -> None:
    old = item.decision
    before, after = item.outcome, str(new["outcome"])
    changes = rule_changes(old, new)
    if before == after and not changes:
        report.unchanged += 1
        strip = [{k: v for k, v in d.items() if k not in _PROVENANCE} for d in (old, new)]
        if strip[0] != strip[1]:
            report.detail_only += 1
        return
    report.changed += 1
    subject = item.event["subject"]
    example = Example(
        index=item.index,
        event_id=item.event_id,
        event_type=str(item.event["type"]),
        subject_kind=str(subject["kind"]),
        subject_id=str(subject["id"]),
        outcome_before=before,
        outcome_after=after,
        rules=changes,
    )
    if before != after:
        report.outcomes.setdefault((before, after), TransitionGroup()).add(example, report.examples)
    for c in changes:
        report.rules.setdefault((c.rule, c.before, c.after), TransitionGroup()).add(
            example, report.examples
        )


# ---------------------------------------------------------------- rendering


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _short(digest: str) -> str:
    algo, _, hexa = digest.partition(":")
    return f"{algo}:{hexa[:12]}" if hexa else digest[:19]


def diff_headline(report: DiffReport) -> str:
    """`5 of 59 logged decisions would change under sha256:…`."""
    target = _short(report.bundle_digest)
    if not report.changed:
        return f"no logged decision would change under {target} ({report.replayed} replayed)"
    total = _plural(report.replayed, "logged decision")
    return f"{report.changed} of {total} would change under {target}"


def _example_lines(examples: list[Example]) -> Text:
    text = Text()
    for e in examples:
        text.append(f"  leaf {e.index} ", style="dim")
        text.append(f"{e.event_id} ({e.event_type}) on {e.subject}: ")
        text.append(e.outcome_before, style=OUTCOME_STYLE.get(e.outcome_before, ""))
        text.append(" → ")
        text.append(e.outcome_after, style=OUTCOME_STYLE.get(e.outcome_after, ""))
        text.append("\n")
        for r in e.rules:
            text.append(f"    {r.rule} {human_status(r.before)} → {human_status(r.after)}\n")
    text.rstrip()
    return text


def diff_text(report: DiffReport, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """A terminal report: headline, outcome and rule transition tables, then examples."""
    parts: list[Any] = [
        Text(diff_headline(report), style="bold yellow" if report.changed else "green")
    ]
    summary = (
        f"{_plural(report.leaves, 'leaf', 'leaves')} read: {report.replayed} replayed"
        f" ({report.changed} changed, {report.unchanged} unchanged"
        + (f", of which {report.detail_only} reworded only" if report.detail_only else "")
        + f"), {len(report.not_replayable)} not replayable"
    )
    parts.append(Text(summary))
    if report.outcomes:
        table = Table(box=box.SIMPLE_HEAD, title="outcome changes", title_justify="left")
        table.add_column("before")
        table.add_column("after")
        table.add_column("decisions", justify="right")
        for (before, after), group in report.outcome_groups():
            table.add_row(
                Text(before, style=OUTCOME_STYLE.get(before, "")),
                Text(after, style=OUTCOME_STYLE.get(after, "")),
                str(group.count),
            )
        parts.append(table)
    if report.rules:
        table = Table(box=box.SIMPLE_HEAD, title="rule status changes", title_justify="left")
        table.add_column("rule")
        table.add_column("before")
        table.add_column("after")
        table.add_column("decisions", justify="right")
        for (rule, before, after), group in report.rule_groups():
            table.add_row(rule, human_status(before), human_status(after), str(group.count))
        parts.append(table)
    if report.examples and report.changed:
        labels = [
            (f"{before} → {after}", group) for (before, after), group in report.outcome_groups()
        ] + [
            (f"{rule} {human_status(before)} → {human_status(after)}", group)
            for (rule, before, after), group in report.rule_groups()
        ]
        for i, (label, group) in enumerate(labels):
            # Tables end with a blank line; separate the groups after the first likewise.
            gap = "\n" if i else ""
            parts.append(Text(f"{gap}examples: {label} ({group.count})", style="bold"))
            parts.append(_example_lines(group.examples))
    for n in report.not_replayable:
        parts.append(
            Text(f"not replayable: leaf {n.index} ({n.event_id or '?'}): {n.reason}", style="dim")
        )
    return to_text(*parts, color=color, width=width)


def _example_json(e: Example) -> dict[str, Any]:
    return {
        "index": e.index,
        "event_id": e.event_id,
        "event_type": e.event_type,
        "subject": {"kind": e.subject_kind, "id": e.subject_id},
        "outcome": {"before": e.outcome_before, "after": e.outcome_after},
        "rules": [{"rule": r.rule, "before": r.before, "after": r.after} for r in e.rules],
    }


def diff_json(report: DiffReport) -> dict[str, Any]:
    """The report as JSON data. Keys (stable):

    `format` (`policyengine.diff/1`), `changed` (bool: would any decision change),
    `bundle` {`digest`, `engine_version`}, `log` {`origin`, `bundles` {logged digest: n}},
    `totals` {`leaves`, `replayed`, `changed`, `unchanged`, `detail_only`, `not_replayable`,
    `skipped` {kind: n}}, `outcomes` [{`before`, `after`, `count`, `examples`}],
    `rules` [{`rule`, `before`, `after`, `count`, `examples`}], `not_replayable`
    [{`index`, `event_id`, `code`, `reason`}]. Rule statuses are `pass`, `fail`, `error`,
    `not_applicable` or `not_triggered`. An example is {`index`, `event_id`, `event_type`,
    `subject` {`kind`, `id`}, `outcome` {`before`, `after`}, `rules` [{`rule`, `before`,
    `after`}]}. Lists are in the order of `outcome_groups` / `rule_groups`.
    """
    return {
        "format": DIFF_FORMAT,
        "changed": report.any_changed,
        "bundle": {"digest": report.bundle_digest, "engine_version": report.engine_version},
        "log": {
            "origin": report.log_origin,
            "bundles": dict(sorted(report.logged_bundles.items())),
        },
        "totals": {
            "leaves": report.leaves,
            "replayed": report.replayed,
            "changed": report.changed,
            "unchanged": report.unchanged,
            "detail_only": report.detail_only,
            "not_replayable": len(report.not_replayable),
            "skipped": dict(sorted(report.skipped.items())),
        },
        "outcomes": [
            {
                "before": before,
                "after": after,
                "count": g.count,
                "examples": [_example_json(e) for e in g.examples],
            }
            for (before, after), g in report.outcome_groups()
        ],
        "rules": [
            {
                "rule": rule,
                "before": before,
                "after": after,
                "count": g.count,
                "examples": [_example_json(e) for e in g.examples],
            }
            for (rule, before, after), g in report.rule_groups()
        ],
        "not_replayable": [
            {"index": n.index, "event_id": n.event_id, "code": n.code, "reason": n.reason}
            for n in report.not_replayable
        ],
    }


def _md(text: str) -> str:
    """Escape text for a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_example(e: Example) -> str:
    rules = "; ".join(
        f"`{r.rule}` {human_status(r.before)} → {human_status(r.after)}" for r in e.rules
    )
    line = (
        f"- leaf {e.index} · `{_md(e.event_id)}` ({_md(e.event_type)}) on"
        f" `{_md(e.subject)}`: {e.outcome_before} → {e.outcome_after}"
    )
    return line + (f"; {rules}" if rules else "")


def diff_markdown(report: DiffReport) -> str:
    """A pull-request comment: headline, tables of outcome and rule changes, examples
    folded in a `<details>` block so the comment stays short."""
    lines = [f"### Policy impact: {_md(diff_headline(report))}", ""]
    lines.append(
        f"Replayed {_plural(report.replayed, 'logged decision')} under `{report.bundle_digest}`"
        f" (engine {report.engine_version}): **{report.changed} changed**,"
        f" {report.unchanged} unchanged"
        + (f" ({report.detail_only} reworded only)" if report.detail_only else "")
        + (f", {len(report.not_replayable)} not replayable" if report.not_replayable else "")
        + "."
    )
    if report.outcomes:
        lines += ["", "| Outcome before | Outcome after | Decisions |", "|---|---|---:|"]
        for (before, after), g in report.outcome_groups():
            lines.append(f"| {_md(before)} | {_md(after)} | {g.count} |")
    if report.rules:
        lines += ["", "| Rule | Before | After | Decisions |", "|---|---|---|---:|"]
        for (rule, before, after), g in report.rule_groups():
            lines.append(
                f"| `{_md(rule)}` | {human_status(before)} | {human_status(after)} | {g.count} |"
            )
    if report.changed and report.examples:
        lines += ["", "<details>", "<summary>Examples</summary>", ""]
        for (before, after), g in report.outcome_groups():
            lines.append(f"**{before} → {after}** ({g.count})")
            lines.append("")
            lines += [_md_example(e) for e in g.examples]
            lines.append("")
        for (rule, before, after), g in report.rule_groups():
            lines.append(f"**`{rule}` {human_status(before)} → {human_status(after)}** ({g.count})")
            lines.append("")
            lines += [_md_example(e) for e in g.examples]
            lines.append("")
        lines.append("</details>")
    if report.not_replayable:
        lines += ["", "<details>", "<summary>Not replayable</summary>", ""]
        lines += [
            f"- leaf {n.index} (`{_md(n.event_id or '?')}`): {_md(n.reason)}"
            for n in report.not_replayable
        ]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
