"""`replay`: would we decide the same today, from the same inputs?

Every logged decision that carries its event is judged again with the bundle it names
(loaded from the sources stored beside the log, checked against the digest and compiled
once per digest), at the logged evaluation time, against the entity state built up in log
order since the latest `session` record (where an engine started from empty state) — the
state the original engine had. The replayed decision must match the logged one byte for byte
(canonical JSON), which is the GxP reproducibility check done mechanically.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from policyengine import __version__
from policyengine.audit._common import (
    BundleCache,
    BundleUnavailable,
    LoggedDecision,
    NotReplayable,
    RuleChange,
    SkippedRecord,
    canonical_or_none,
    commit_as_logged,
    field_paths,
    human_status,
    rule_changes,
    walk,
)
from policyengine.events import MemoryStateStore
from policyengine.log.records import canonical
from policyengine.log.tlog import TransparencyLog
from policyengine.reports._console import DEFAULT_WIDTH, to_text
from policyengine.runtime.engine import judge

__all__ = [
    "Difference",
    "ReplayReport",
    "replay",
    "replay_json",
    "replay_summary",
    "replay_text",
]

REPLAY_FORMAT = "policyengine.audit.replay/1"


@dataclass(frozen=True, slots=True)
class Difference:
    """A logged decision that did not reproduce: where, and a compact account of how."""

    index: int
    event_id: str
    outcome_before: str
    outcome_after: str
    rules: tuple[RuleChange, ...]
    #: Paths in the decision where the bytes differ, e.g. `results[gxp.x].message` (capped).
    fields: tuple[str, ...]


@dataclass
class ReplayReport:
    """What `replay` found. `ok` is the answer to "do all replayable decisions reproduce?"."""

    leaves: int = 0
    replayed: int = 0
    reproduced: int = 0
    differences: list[Difference] = field(default_factory=list)
    not_replayable: list[NotReplayable] = field(default_factory=list)
    #: Non-decision leaves by kind (`bundle`, `event`).
    skipped: Counter[str] = field(default_factory=Counter)
    engine_version: str = __version__
    #: Logged engine versions other than `engine_version`, with how many replayed decisions
    #: carry each; such decisions are compared as if they named `engine_version`.
    other_engine_versions: Counter[str] = field(default_factory=Counter)

    @property
    def differing(self) -> int:
        return len(self.differences)

    @property
    def failed_replays(self) -> list[NotReplayable]:
        """Decisions that carried their event but could not be judged again."""
        return [n for n in self.not_replayable if not n.by_design]

    @property
    def ok(self) -> bool:
        """No decision differs and every decision logged with its event was replayed.

        Decisions logged without their event cannot be replayed by construction and do
        not make a replay fail; a missing or no longer compiling bundle does, because then
        the question "would we decide the same?" has no answer.
        """
        return not self.differences and not self.failed_replays


def replay(log: TransparencyLog) -> ReplayReport:
    """Re-judge every logged decision that carries its event under its own bundle.

    Each decision is judged with `judge(bundle, state, event, evaluated_at)`: the bundle it
    names, its logged evaluation time and one state store per session (reset at each
    `session` record), so approvals and overrides logged earlier count exactly as they did.
    The replayed decision is compared byte for byte with the logged one, except that a different
    `engine_version` alone is not a non-reproduction: the bundle digest pins the policies,
    and an engine upgrade that still decides identically is exactly what a replay should
    confirm. Such decisions are compared with the version set to the logged one and counted
    in `other_engine_versions` so the upgrade stays visible.

    Events whose decision cannot be replayed (missing or broken bundle) are still folded
    into state as the logged decision did, so later decisions are judged on the history
    they were made on. `bundle` and `event` records are skipped (and counted).
    """
    report = ReplayReport()
    bundles = BundleCache(log.store)
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
        try:
            bundle = bundles.get(item.bundle_digest)
        except BundleUnavailable as exc:
            report.not_replayable.append(
                NotReplayable(item.index, item.event_id, exc.code, exc.reason)
            )
            commit_as_logged(state, item)
            continue
        decision = judge(bundle, state, item.event, item.evaluated_at)
        report.replayed += 1
        _compare(report, item, decision.to_dict(), decision.to_json())
    return report


def _compare(
    report: ReplayReport, item: LoggedDecision, replayed: dict[str, Any], replayed_bytes: bytes
) -> None:
    logged = item.decision
    logged_version = logged.get("engine_version")
    if logged_version != replayed["engine_version"]:
        report.other_engine_versions[str(logged_version)] += 1
        replayed["engine_version"] = logged_version
        replayed_bytes = canonical(replayed)
    if canonical_or_none(logged) == replayed_bytes:
        report.reproduced += 1
        return
    report.differences.append(
        Difference(
            index=item.index,
            event_id=item.event_id,
            outcome_before=item.outcome,
            outcome_after=str(replayed["outcome"]),
            rules=rule_changes(logged, replayed),
            fields=field_paths(logged, replayed),
        )
    )


# ---------------------------------------------------------------- rendering


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def replay_summary(report: ReplayReport) -> str:
    """One line: `59 decisions replayed: 59 reproduced, 0 differ, 0 not replayable`."""
    return (
        f"{_plural(report.replayed, 'decision')} replayed: {report.reproduced} reproduced,"
        f" {report.differing} differ{'s' if report.differing == 1 else ''},"
        f" {len(report.not_replayable)} not replayable"
    )


def _rules_text(rules: tuple[RuleChange, ...]) -> str:
    return "; ".join(f"{r.rule} {human_status(r.before)} → {human_status(r.after)}" for r in rules)


def replay_text(report: ReplayReport, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """A human report: summary, every difference, every record that could not be replayed."""
    parts: list[Any] = []
    style = "green" if report.ok else "bold red"
    parts.append(Text(replay_summary(report), style=style))
    skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(report.skipped.items()))
    parts.append(
        Text(
            f"{_plural(report.leaves, 'leaf', 'leaves')} read"
            + (f"; skipped {skipped}" if skipped else "")
        )
    )
    if report.other_engine_versions:
        versions = ", ".join(f"{v} ({n})" for v, n in sorted(report.other_engine_versions.items()))
        parts.append(
            Text(
                f"note: {_plural(sum(report.other_engine_versions.values()), 'decision')} were"
                f" logged by another engine version ({versions}; now {report.engine_version});"
                " they were compared as if logged by this one",
                style="yellow",
            )
        )
    if report.differences:
        table = Table(box=box.SIMPLE_HEAD, title="decisions that do not reproduce")
        table.add_column("leaf", justify="right")
        table.add_column("event")
        table.add_column("outcome")
        table.add_column("rules changed / fields")
        for d in report.differences:
            outcome = (
                d.outcome_before
                if d.outcome_before == d.outcome_after
                else f"{d.outcome_before} → {d.outcome_after}"
            )
            detail = _rules_text(d.rules) or ", ".join(d.fields)
            table.add_row(str(d.index), d.event_id, outcome, detail, style="red")
        parts.append(table)
    if report.not_replayable:
        table = Table(box=box.SIMPLE_HEAD, title="decisions that could not be replayed")
        table.add_column("leaf", justify="right")
        table.add_column("event")
        table.add_column("reason")
        for n in report.not_replayable:
            table.add_row(
                str(n.index),
                n.event_id or "?",
                n.reason,
                style="dim" if n.by_design else "yellow",
            )
        parts.append(table)
    return to_text(*parts, color=color, width=width)


def replay_json(report: ReplayReport) -> dict[str, Any]:
    """The report as JSON data. Keys (stable):

    `format` (`policyengine.audit.replay/1`), `ok`, `counts` {`leaves`, `replayed`,
    `reproduced`, `differing`, `not_replayable`, `skipped` {kind: n}}, `engine_version`
    {`current`, `other_logged` {version: n}}, `differences` [{`index`, `event_id`,
    `outcome` {`before`, `after`}, `rules` [{`rule`, `before`, `after`}], `fields`}],
    `not_replayable` [{`index`, `event_id`, `code`, `reason`}].
    """
    return {
        "format": REPLAY_FORMAT,
        "ok": report.ok,
        "counts": {
            "leaves": report.leaves,
            "replayed": report.replayed,
            "reproduced": report.reproduced,
            "differing": report.differing,
            "not_replayable": len(report.not_replayable),
            "skipped": dict(sorted(report.skipped.items())),
        },
        "engine_version": {
            "current": report.engine_version,
            "other_logged": dict(sorted(report.other_engine_versions.items())),
        },
        "differences": [
            {
                "index": d.index,
                "event_id": d.event_id,
                "outcome": {"before": d.outcome_before, "after": d.outcome_after},
                "rules": [{"rule": r.rule, "before": r.before, "after": r.after} for r in d.rules],
                "fields": list(d.fields),
            }
            for d in report.differences
        ],
        "not_replayable": [
            {"index": n.index, "event_id": n.event_id, "code": n.code, "reason": n.reason}
            for n in report.not_replayable
        ],
    }
