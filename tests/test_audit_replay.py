"""Tests for `policyengine.audit.replay` and `policyengine audit replay`.

Logs are real: the shipped policies decide the biotech example stream through `Engine`, and
`DecisionRecorder` logs the decisions in batches into a signed SQLite log. Tampered, partial
and multi-bundle logs are built by appending hand-made records, as an attacker or an old
engine would have.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from pseudonyms import pseudonymised

from policyengine.audit import Difference, ReplayReport, replay, replay_json, replay_text
from policyengine.audit._common import COMPILE_ERROR, MISSING_BUNDLE, NO_EVENT
from policyengine.cli.audit import audit_group
from policyengine.cli.diff import diff_cmd
from policyengine.compiler.bundle import Bundle, canonical_sources, compile_sources, load_bundle
from policyengine.events import EventError, MemoryStateStore, StateStore, read_jsonl
from policyengine.log import DecisionRecorder, Signer, TransparencyLog, decision_record
from policyengine.log.records import record
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import Engine
from policyengine.runtime.values import to_jsonable

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
EVENTS = ROOT / "examples" / "biotech.jsonl"
ORIGIN = "test.example/log"

Pair = tuple[dict[str, Any], Decision]


# ---------------------------------------------------------------- shared helpers


def biotech_events() -> list[dict[str, Any]]:
    out = []
    for _line, item in read_jsonl(EVENTS.read_text(encoding="utf-8").splitlines()):
        assert not isinstance(item, EventError), item
        out.append(item)
    return pseudonymised(out)


def decide(
    bundle: Bundle, events: Sequence[dict[str, Any]], state: StateStore | None = None
) -> list[Pair]:
    """Decide through a stateful engine, as `policyengine eval` does."""
    engine = Engine(bundle, state=state)
    return [(ev, engine.evaluate(ev, validated=True)) for ev in events]


def open_log(path: Path) -> TransparencyLog:
    return TransparencyLog.open(path, Signer.generate(ORIGIN), create=True)


_RECORDERS: weakref.WeakKeyDictionary[TransparencyLog, DecisionRecorder] = (
    weakref.WeakKeyDictionary()
)


def log_pairs(log: TransparencyLog, pairs: Sequence[Pair], bundle: Bundle, batch: int = 20) -> None:
    """Log as one running engine would: every call on the same log continues its session."""
    recorder = _RECORDERS.setdefault(log, DecisionRecorder(log))
    for start in range(0, len(pairs), batch):
        recorder.record(pairs[start : start + batch], bundle)


def policy_copy(tmp: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of the shipped policies, optionally edited."""
    target = tmp / "policies-copy"
    shutil.copytree(POLICIES, target)
    if edit is not None:
        edit(target)
    return target


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"`{old}` must occur once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def stricter_two_person(root: Path) -> None:
    """Production deployments (not promotions) need three approvals instead of two."""
    replace_in(
        root / "oversight.policy",
        'APPROVAL_VALIDITY) >= 2\n    else "needs two independent, current approvals"',
        'APPROVAL_VALIDITY) >= 3\n    else "needs two independent, current approvals"',
    )


def cli_group() -> click.Group:
    group = click.Group()
    group.add_command(audit_group)
    group.add_command(diff_cmd)
    return group


def invoke(args: Sequence[str]) -> Result:
    runner = CliRunner(env={"NO_COLOR": "1", "FORCE_COLOR": None, "COLUMNS": "120"})
    result = runner.invoke(cli_group(), list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return load_bundle(POLICIES)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    evs = biotech_events()
    assert len(evs) == 59
    return evs


@pytest.fixture(scope="module")
def pairs(bundle: Bundle, events: list[dict[str, Any]]) -> list[Pair]:
    return decide(bundle, events)


@pytest.fixture
def honest_log(tmp_path: Path, bundle: Bundle, pairs: list[Pair]) -> Iterator[Path]:
    path = tmp_path / "log.db"
    with open_log(path) as log:
        log_pairs(log, pairs, bundle)
    yield path


def edited_record(event: Mapping[str, Any], decision: Mapping[str, Any]) -> bytes:
    """A decision leaf as `decision_record` writes it, with a hand-edited decision."""
    return record(
        "decision", str(decision["evaluated_at"]), event=to_jsonable(dict(event)), decision=decision
    )


# ---------------------------------------------------------------- replay


def test_honest_log_reproduces_every_decision(honest_log: Path) -> None:
    with TransparencyLog.open(honest_log) as log:
        report = replay(log)
    assert report.replayed == report.reproduced == 59
    assert report.leaves == 61
    assert dict(report.skipped) == {"bundle": 1, "session": 1}
    assert report.differences == [] and report.not_replayable == []
    assert not report.other_engine_versions
    assert report.ok


def test_edited_outcome_is_reported_at_its_index(
    tmp_path: Path, bundle: Bundle, pairs: list[Pair]
) -> None:
    k = next(i for i, (_e, d) in enumerate(pairs) if d.outcome.value == "allow" and i > 10)
    event, decision = pairs[k]
    forged = decision.to_dict()
    forged["outcome"] = "deny"
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, pairs[:k], bundle)
        (index,) = log.append([edited_record(event, forged)])
        log_pairs(log, pairs[k + 1 :], bundle)
        report = replay(log)
    assert report.replayed == 59 and report.reproduced == 58
    assert report.differences == [
        Difference(
            index=index,
            event_id=event["id"],
            outcome_before="deny",
            outcome_after="allow",
            rules=(),
            fields=("outcome",),
        )
    ]
    assert not report.ok


def test_edited_rule_status_is_a_rule_change(
    tmp_path: Path, bundle: Bundle, pairs: list[Pair]
) -> None:
    k, result_pos = next(
        (i, j)
        for i, (_e, d) in enumerate(pairs)
        for j, r in enumerate(d.results)
        if r.status == "pass"
    )
    event, decision = pairs[k]
    forged = decision.to_dict()
    rule = forged["results"][result_pos]["rule"]
    forged["results"][result_pos]["status"] = "fail"
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, pairs[:k], bundle)
        (index,) = log.append([edited_record(event, forged)])
        log_pairs(log, pairs[k + 1 :], bundle)
        report = replay(log)
    (diff,) = report.differences
    assert (diff.index, diff.event_id) == (index, event["id"])
    assert [(c.rule, c.before, c.after) for c in diff.rules] == [(rule, "fail", "pass")]
    assert diff.fields == (f"results[{rule}].status",)


def test_each_decision_replays_under_its_own_bundle(
    tmp_path: Path, bundle: Bundle, events: list[dict[str, Any]]
) -> None:
    stricter = load_bundle(policy_copy(tmp_path, stricter_two_person))
    assert stricter.digest != bundle.digest
    # One service, one state: the policy is upgraded half-way through the stream.
    state = MemoryStateStore()
    first = decide(bundle, events[:20], state)
    second = decide(stricter, events[20:], state)
    # The upgrade matters: the old bundle decides some later event differently.
    under_old = decide(bundle, events)[20:]
    assert any(a.outcome != b.outcome for (_e, a), (_f, b) in zip(under_old, second, strict=True))
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, first, bundle)
        log_pairs(log, second, stricter)
        assert {bundle.digest, stricter.digest} == {d for d, _b in log.store.bundles()}
        report = replay(log)
    assert report.replayed == report.reproduced == 59
    assert dict(report.skipped) == {"bundle": 2, "session": 1}
    assert report.ok


def test_missing_bundle_is_not_replayable_but_its_event_still_counts(
    tmp_path: Path, bundle: Bundle, events: list[dict[str, Any]], pairs: list[Pair]
) -> None:
    k = next(
        i
        for i, (e, d) in enumerate(pairs)
        if e["type"] == "approval.recorded" and d.outcome.value == "allow"
    )
    # Without this approval in state, some later decision would be different.
    without = decide(bundle, events[:k] + events[k + 1 :])
    assert any(
        a.outcome != b.outcome for (_e, a), (_f, b) in zip(pairs[k + 1 :], without[k:], strict=True)
    )
    # The same policies with a comment added: another digest, never published in the log.
    files = dict(bundle.files)
    files["common.policy"] += "\n// unpublished edit\n"
    unpublished = compile_sources(files)
    state = MemoryStateStore()
    before = decide(bundle, events[:k], state)
    (lost,) = decide(unpublished, events[k : k + 1], state)
    after = decide(bundle, events[k + 1 :], state)
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, before, bundle)
        (index,) = log.append([decision_record(*lost)])
        log_pairs(log, after, bundle)
        report = replay(log)
    assert report.replayed == report.reproduced == 58
    (missing,) = report.not_replayable
    assert (missing.index, missing.event_id, missing.code) == (
        index,
        events[k]["id"],
        MISSING_BUNDLE,
    )
    assert unpublished.digest in missing.reason
    assert not report.ok


def test_records_that_cannot_or_need_not_be_replayed(
    tmp_path: Path, bundle: Bundle, pairs: list[Pair]
) -> None:
    event, decision = pairs[-1]
    broken_files = {"broken.policy": "package broken\nrule no_body {\n"}
    blob = canonical_sources(broken_files)
    broken_digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    broken_leaf = record("bundle", "2026-01-01T00:00:00Z", digest=broken_digest)
    under_broken = decision.to_dict()
    under_broken["bundle_digest"] = broken_digest
    old_engine = decision.to_dict()
    old_engine["engine_version"] = "0.0.1"
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, pairs[:-1], bundle)
        (no_event,) = log.append([record("decision", "2026-06-01T00:00:00Z", decision=old_engine)])
        (bare,) = log.append([record("event", "2026-06-01T00:00:00Z", event=to_jsonable(event))])
        (versioned,) = log.append([edited_record(event, old_engine)])
        (broken,) = log.append(
            [edited_record(event, under_broken)], bundles=[(broken_digest, blob, broken_leaf)]
        )
        report = replay(log)
    assert report.replayed == report.reproduced == 59
    assert dict(report.skipped) == {"bundle": 2, "event": 1, "session": 1}
    assert dict(report.other_engine_versions) == {"0.0.1": 1}
    codes = [(n.index, n.code) for n in report.not_replayable]
    assert codes == [(no_event, NO_EVENT), (broken, COMPILE_ERROR)]
    assert "no longer compiles" in report.not_replayable[1].reason
    assert [n.index for n in report.failed_replays] == [broken]
    assert bare not in codes and versioned not in [d.index for d in report.differences]
    assert not report.ok


def test_decision_only_records_do_not_fail_a_replay(
    tmp_path: Path, bundle: Bundle, pairs: list[Pair]
) -> None:
    _event, decision = pairs[0]
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, pairs, bundle)
        log.append([record("decision", "2026-06-01T00:00:00Z", decision=decision.to_dict())])
        report = replay(log)
    assert [n.code for n in report.not_replayable] == [NO_EVENT]
    assert report.ok


def test_replay_json_and_text(tmp_path: Path, bundle: Bundle, pairs: list[Pair]) -> None:
    event, decision = pairs[5]
    forged = decision.to_dict()
    forged["outcome"] = "allow" if decision.outcome.value != "allow" else "deny"
    with open_log(tmp_path / "log.db") as log:
        log_pairs(log, pairs[:5], bundle)
        (index,) = log.append([edited_record(event, forged)])
        log_pairs(log, pairs[6:], bundle)
        report: ReplayReport = replay(log)
    data = replay_json(report)
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "format",
        "ok",
        "counts",
        "engine_version",
        "differences",
        "not_replayable",
    }
    assert data["ok"] is False
    assert data["counts"] == {
        "leaves": 61,
        "replayed": 59,
        "reproduced": 58,
        "differing": 1,
        "not_replayable": 0,
        "skipped": {"bundle": 1, "session": 1},
    }
    (d,) = data["differences"]
    assert d["index"] == index and d["event_id"] == event["id"]
    assert d["outcome"] == {"before": forged["outcome"], "after": decision.outcome.value}
    assert "outcome" in d["fields"]
    text = replay_text(report)
    assert "58 reproduced, 1 differs" in text and event["id"] in text
    assert "\x1b[" not in text and "\x1b[" in replay_text(report, color=True)


# ---------------------------------------------------------------- CLI


def test_cli_replay_exit_codes(tmp_path: Path, honest_log: Path, bundle: Bundle) -> None:
    ok = invoke(["audit", "replay", "--log", str(honest_log)])
    assert ok.exit_code == 0, ok.output
    assert "59 decisions replayed: 59 reproduced, 0 differ, 0 not replayable" in ok.stdout

    as_json = invoke(["audit", "replay", "--log", str(honest_log), "--format", "json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["counts"]["reproduced"] == 59

    with TransparencyLog.open(honest_log) as log:
        event = json.loads(log.leaf(3))["event"]
        forged = json.loads(log.leaf(3))["decision"]
        forged["outcome"] = "review_required"
        log.append([edited_record(event, forged)])
    bad = invoke(["audit", "replay", "--log", str(honest_log), "--format", "json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["differences"][0]["index"] == 61

    missing = invoke(["audit", "replay", "--log", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no decision log at `")
    assert "hint:" in missing.stderr and missing.stdout == ""
    assert not (tmp_path / "nope.db").exists()

    not_a_log = tmp_path / "not-a-log.db"
    not_a_log.write_text("hello\n")
    wrong = invoke(["audit", "replay", "--log", str(not_a_log)])
    assert wrong.exit_code == 2 and "error: " in wrong.stderr

    usage = invoke(["audit", "replay", "--log", str(honest_log), "--format", "xml"])
    assert usage.exit_code == 2
