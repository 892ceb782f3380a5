"""Tests for `policyengine.audit.diff` and `policyengine diff`.

Expected transitions are computed independently: the proposed bundle decides the example
stream from scratch through `Engine`, and its decisions are compared with the original
engine's, object by object — not read back from the log and not taken from `diff` itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from test_audit_replay import (
    Pair,
    biotech_events,
    cli_group,
    decide,
    invoke,
    log_pairs,
    open_log,
    policy_copy,
    replace_in,
    stricter_two_person,
)

from policyengine.audit import (
    NOT_TRIGGERED,
    DiffReport,
    diff,
    diff_json,
    diff_markdown,
    diff_text,
)
from policyengine.cli.check import check
from policyengine.compiler.bundle import Bundle, load_bundle
from policyengine.log import TransparencyLog
from policyengine.runtime.decision import Decision

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(POLICIES)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return biotech_events()


@pytest.fixture(scope="module")
def pairs(bundle: Bundle, events: list[dict[str, Any]]) -> list[Pair]:
    return decide(bundle, events)


@pytest.fixture
def log_path(tmp_path: Path, bundle: Bundle, pairs: list[Pair]) -> Path:
    """The example stream logged in three batches: leaf 0 is the bundle, event i is leaf i+1."""
    path = tmp_path / "log.db"
    with open_log(path) as log:
        log_pairs(log, pairs, bundle)
        assert log.size() == 61
    return path


def without_monitoring(root: Path) -> None:
    (root / "monitoring.policy").unlink()
    (root / "monitoring_test.policy").unlink()


def stricter_two_person_bundle(tmp_path: Path) -> Bundle:
    return load_bundle(policy_copy(tmp_path, stricter_two_person))


# ---------------------------------------------------------------- independent expectation


def statuses(d: Decision) -> dict[str, str]:
    return {r.rule: r.status for r in d.results}


class Expected:
    """Transitions between two independent decision sequences over the same events."""

    def __init__(self, old: list[Pair], new: list[Pair]) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.rules: Counter[tuple[str, str, str]] = Counter()
        self.outcome_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.rule_ids: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.changed: list[str] = []
        for (event, a), (_same, b) in zip(old, new, strict=True):
            sa, sb = statuses(a), statuses(b)
            rule_keys = [
                (rule, sa.get(rule, NOT_TRIGGERED), sb.get(rule, NOT_TRIGGERED))
                for rule in sorted(sa.keys() | sb.keys())
                if sa.get(rule) != sb.get(rule)
            ]
            if a.outcome == b.outcome and not rule_keys:
                continue
            self.changed.append(event["id"])
            if a.outcome != b.outcome:
                key = (a.outcome.value, b.outcome.value)
                self.outcomes[key] += 1
                self.outcome_ids[key].append(event["id"])
            for rk in rule_keys:
                self.rules[rk] += 1
                self.rule_ids[rk].append(event["id"])


def check_report(
    report: DiffReport, expected: Expected, events: list[dict[str, Any]], n: int
) -> None:
    position = {ev["id"]: i for i, ev in enumerate(events)}
    assert report.replayed == len(events)
    assert report.changed == len(expected.changed)
    assert report.unchanged == len(events) - len(expected.changed)
    assert {k: g.count for k, g in report.outcomes.items()} == dict(expected.outcomes)
    assert {k: g.count for k, g in report.rules.items()} == dict(expected.rules)
    groups: list[tuple[Any, Any, list[str]]] = [
        (k, g, expected.outcome_ids[k]) for k, g in report.outcomes.items()
    ] + [(k, g, expected.rule_ids[k]) for k, g in report.rules.items()]
    for _key, group, ids in groups:
        assert [e.event_id for e in group.examples] == ids[:n]
        assert [e.index for e in group.examples] == [position[i] + 2 for i in ids[:n]]


# ---------------------------------------------------------------- diff


def test_identical_bundle_changes_nothing(tmp_path: Path, log_path: Path, bundle: Bundle) -> None:
    same = load_bundle(policy_copy(tmp_path))
    assert same.digest == bundle.digest
    with TransparencyLog.open(log_path) as log:
        report = diff(log, same)
    assert (report.replayed, report.unchanged, report.changed, report.detail_only) == (59, 59, 0, 0)
    assert report.outcomes == {} and report.rules == {}
    assert dict(report.logged_bundles) == {bundle.digest: 59}
    assert not report.any_changed
    data = diff_json(report)
    assert data["changed"] is False and data["outcomes"] == [] and data["rules"] == []
    md = diff_markdown(report)
    assert md.startswith("### Policy impact: no logged decision would change")
    assert "|" not in md and "<details>" not in md


def test_stricter_threshold_reports_expected_transitions(
    tmp_path: Path, log_path: Path, events: list[dict[str, Any]], pairs: list[Pair]
) -> None:
    stricter = stricter_two_person_bundle(tmp_path)
    expected = Expected(pairs, decide(stricter, events))
    assert expected.outcomes, "the edit must change some outcome, or this test proves nothing"
    assert any(rule.endswith("production_deploy_two_person") for rule, *_ in expected.rules)
    with TransparencyLog.open(log_path) as log:
        report = diff(log, stricter, examples=2)
    check_report(report, expected, events, 2)
    assert report.bundle_digest == stricter.digest


def test_removed_rule_file_reports_untriggered_rules(
    tmp_path: Path, log_path: Path, events: list[dict[str, Any]], pairs: list[Pair]
) -> None:
    smaller = load_bundle(policy_copy(tmp_path, without_monitoring))
    expected = Expected(pairs, decide(smaller, events))
    assert any(after == NOT_TRIGGERED for _rule, _before, after in expected.rules)
    assert all(rule.startswith("gxp.monitoring.") for rule, *_ in expected.rules)
    with TransparencyLog.open(log_path) as log:
        report = diff(log, smaller)
    check_report(report, expected, events, 3)


@pytest.mark.parametrize("n", [0, 1])
def test_examples_are_capped(tmp_path: Path, log_path: Path, n: int) -> None:
    with TransparencyLog.open(log_path) as log:
        report = diff(log, stricter_two_person_bundle(tmp_path), examples=n)
    assert report.changed > 0
    for group in [*report.outcomes.values(), *report.rules.values()]:
        assert len(group.examples) == min(n, group.count)


def test_diff_json_structure(tmp_path: Path, log_path: Path) -> None:
    stricter = stricter_two_person_bundle(tmp_path)
    with TransparencyLog.open(log_path) as log:
        report = diff(log, stricter, examples=2)
    data = diff_json(report)
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "format",
        "changed",
        "bundle",
        "log",
        "totals",
        "outcomes",
        "rules",
        "not_replayable",
    }
    assert data["format"] == "policyengine.diff/1" and data["changed"] is True
    assert data["bundle"]["digest"] == stricter.digest
    assert data["log"]["origin"] == "test.example/log"
    totals = data["totals"]
    assert totals["replayed"] == totals["changed"] + totals["unchanged"] == 59
    assert totals["leaves"] == 61 and totals["skipped"] == {"bundle": 1, "session": 1}
    assert sum(o["count"] for o in data["outcomes"]) <= totals["changed"]
    counts = [o["count"] for o in data["outcomes"]]
    assert counts == sorted(counts, reverse=True)
    rule_keys = [(r["rule"], r["before"], r["after"]) for r in data["rules"]]
    assert rule_keys == sorted(rule_keys)
    statuses_seen = {s for _r, b, a in rule_keys for s in (b, a)}
    assert statuses_seen <= {"pass", "fail", "error", "not_applicable", NOT_TRIGGERED}
    for group in data["outcomes"] + data["rules"]:
        assert 1 <= len(group["examples"]) <= 2
        for ex in group["examples"]:
            assert set(ex) == {"index", "event_id", "event_type", "subject", "outcome", "rules"}
            assert set(ex["subject"]) == {"kind", "id"}
            assert set(ex["outcome"]) == {"before", "after"}
            assert ex["outcome"]["before"] != ex["outcome"]["after"] or ex["rules"]
        if "rule" in group:
            for ex in group["examples"]:
                assert {
                    "rule": group["rule"],
                    "before": group["before"],
                    "after": group["after"],
                } in ex["rules"]
        else:
            for ex in group["examples"]:
                assert ex["outcome"] == {"before": group["before"], "after": group["after"]}


def test_diff_markdown_structure(tmp_path: Path, log_path: Path) -> None:
    with TransparencyLog.open(log_path) as log:
        report = diff(log, stricter_two_person_bundle(tmp_path), examples=2)
    md = diff_markdown(report)
    lines = md.splitlines()
    short = report.bundle_digest[: len("sha256:") + 12]
    assert lines[0] == (
        f"### Policy impact: {report.changed} of 59 logged decisions would change under {short}"
    )
    assert f"**{report.changed} changed**" in md
    header = lines.index("| Outcome before | Outcome after | Decisions |")
    assert lines[header + 1] == "|---|---|---:|"
    rows = lines[header + 2 : header + 2 + len(report.outcomes)]
    for ((before, after), group), row in zip(report.outcome_groups(), rows, strict=True):
        assert row == f"| {before} | {after} | {group.count} |"
    rule_header = lines.index("| Rule | Before | After | Decisions |")
    rule_rows = lines[rule_header + 2 : rule_header + 2 + len(report.rules)]
    assert all(row.startswith("| `gxp.") for row in rule_rows)
    assert lines[rule_header + 2 + len(report.rules)] == ""
    assert md.count("<details>") == md.count("</details>") == 1
    assert lines.index("<details>") > rule_header
    example_lines = [ln for ln in lines if ln.startswith("- leaf ")]
    total = sum(len(g.examples) for g in [*report.outcomes.values(), *report.rules.values()])
    assert len(example_lines) == total


def test_diff_text(tmp_path: Path, log_path: Path) -> None:
    with TransparencyLog.open(log_path) as log:
        report = diff(log, stricter_two_person_bundle(tmp_path))
    text = diff_text(report)
    assert text.startswith(f"{report.changed} of 59 logged decisions would change under sha256:")
    assert "outcome changes" in text and "rule status changes" in text
    assert not ANSI.search(text)
    colored = diff_text(report, color=True)
    assert ANSI.search(colored) and ANSI.sub("", colored).split() == text.split()


# ---------------------------------------------------------------- CLI


def test_cli_diff_exit_codes_and_formats(tmp_path: Path, log_path: Path) -> None:
    same = invoke(["diff", "--policies", str(POLICIES), "--log", str(log_path)])
    assert same.exit_code == 0, same.output
    assert same.stdout.startswith("no logged decision would change")

    changed_dir = policy_copy(tmp_path, stricter_two_person)
    with TransparencyLog.open(log_path) as log:
        report = diff(log, load_bundle(changed_dir), examples=1)
    as_json = invoke(
        [
            "diff",
            "-p",
            str(changed_dir),
            "--log",
            str(log_path),
            "--format",
            "json",
            "--examples",
            "1",
        ]
    )
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == diff_json(report)

    out = tmp_path / "impact.md"
    md = invoke(
        [
            "diff",
            "-p",
            str(changed_dir),
            "--log",
            str(log_path),
            "--format",
            "markdown",
            "--examples",
            "1",
            "--output",
            str(out),
        ]
    )
    assert md.exit_code == 1 and md.stdout == ""
    assert out.read_text(encoding="utf-8") == diff_markdown(report)
    assert "would change" in md.stderr


def test_cli_diff_usage_and_compile_errors(tmp_path: Path, log_path: Path) -> None:
    broken = policy_copy(tmp_path)
    replace_in(broken / "common.policy", 'const APPROVED = "approved"', "const APPROVED = approved")
    result = invoke(["diff", "--policies", str(broken), "--log", str(log_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert "error: the policies do not compile" in result.stderr
    group = click.Group()
    group.add_command(check)
    checked = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "120"}).invoke(
        group, ["check", str(broken)]
    )
    assert checked.exit_code == 1
    headlines = [ln for ln in checked.stdout.splitlines() if ln.startswith("error[")]
    assert headlines and all(h in result.stderr for h in headlines)

    missing_log = invoke(["diff", "--policies", str(POLICIES), "--log", str(tmp_path / "x.db")])
    assert missing_log.exit_code == 2
    assert "error: no decision log at" in missing_log.stderr

    missing_dir = invoke(["diff", "--policies", str(tmp_path / "nope"), "--log", str(log_path)])
    assert missing_dir.exit_code == 2 and "error: no such file or directory" in missing_dir.stderr

    bad_examples = invoke(["diff", "-p", str(POLICIES), "--log", str(log_path), "--examples", "-1"])
    assert bad_examples.exit_code == 2


def test_cli_group_lists_both_commands() -> None:
    assert set(cli_group().commands) == {"audit", "diff"}
