"""Tests for the `policyengine` CLI: every command, every output format, every exit code.

Most run in-process through click's CliRunner (from inside tests/fixtures/cli, so paths
in the output are short and relative); a few run the installed console script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_reports import assert_valid_sarif

import policyengine as pe
from policyengine.cli import _common
from policyengine.cli.main import cli
from policyengine.language.ast import Span
from policyengine.language.diagnostics import Code, CompileError, Diagnostic, Severity

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY = "7 events: 4 allow, 1 allow_with_warnings, 1 review_required, 1 deny"
CLEAN_ENV: dict[str, str | None] = {
    "NO_COLOR": None,
    "FORCE_COLOR": None,
    "COLUMNS": None,
    "POLICYENGINE_DEBUG": None,
}


@pytest.fixture(autouse=True)
def in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def run(
    args: Sequence[str], *, env: dict[str, str] | None = None, stdin: str | None = None
) -> Result:
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    result = runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected_decisions(events: str = "events.jsonl", **engine: Any) -> list[pe.Decision]:
    eng = pe.Engine(pe.load_bundle("policies"), **engine)
    out = []
    for _line, event in pe.read_jsonl(Path(events).read_text().splitlines()):
        if not isinstance(event, pe.EventError):
            out.append(eng.evaluate(event, validated=True))
    return out


def write_events(path: Path, ids: Sequence[str]) -> Path:
    """A stream made of the fixture events with these ids, in this order."""
    lines = {
        json.loads(line)["id"]: line
        for line in (FIXTURES / "events.jsonl").read_text().splitlines()
    }
    path.write_text("".join(lines[i] + "\n" for i in ids))
    return path


# ---------------------------------------------------------------- global


def test_help_lists_every_command() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    for command in ("check", "eval", "test", "explain", "fmt", "version"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    for command in ("check", "eval", "test", "explain", "fmt"):
        sub = run([command, "--help"])
        assert sub.exit_code == 0 and "Exit codes:" in sub.stdout


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version(args: list[str]) -> None:
    result = run(args)
    assert result.exit_code == 0
    assert result.stdout == f"policyengine {pe.__version__}\n"


def test_usage_errors_exit_2() -> None:
    assert run(["nonsense"]).exit_code == 2
    assert run(["check"]).exit_code == 2  # PATH is required
    assert run(["eval", "--events", "events.jsonl"]).exit_code == 2  # --policies is required
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.stderr


def test_internal_errors_exit_3_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr("policyengine.cli.check.load_bundle", boom)
    result = run(["check", "policies"])
    assert result.exit_code == 3
    assert "error: internal error: RuntimeError: something broke" in result.stderr
    assert "second line" not in result.stderr
    assert "please report it" in result.stderr
    debug = CliRunner(env={**CLEAN_ENV, "POLICYENGINE_DEBUG": "1"}).invoke(
        cli, ["check", "policies"]
    )
    assert debug.exit_code == 3 and "Traceback" in debug.stderr


def test_os_errors_with_a_file_name_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "Permission denied", "policies/deploy.policy")

    monkeypatch.setattr("policyengine.cli.check.load_bundle", denied)
    result = run(["check", "policies"])
    assert result.exit_code == 2
    assert "error: cannot access `policies/deploy.policy`: Permission denied" in result.stderr


def test_color_is_controlled_by_flags_and_environment() -> None:
    args = ["eval", "-p", "policies", "-e", "events.jsonl"]
    forced = run(args, env={"FORCE_COLOR": "1"})
    assert ANSI.search(forced.stdout)
    assert not ANSI.search(run(args).stdout)  # not a terminal
    assert not ANSI.search(run(args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout)
    assert not ANSI.search(run(["--no-color", *args], env={"FORCE_COLOR": "1"}).stdout)
    after = run([*args, "--no-color"], env={"FORCE_COLOR": "1"})
    assert not ANSI.search(after.stdout)
    assert after.stdout == run(args).stdout


# ---------------------------------------------------------------- check


def test_check_clean() -> None:
    result = run(["check", "policies"])
    assert result.exit_code == 0
    digest = pe.load_bundle("policies").digest
    assert result.stdout == f"ok: 2 files, 3 rules, 3 tests; bundle {digest}\n"
    assert result.stderr == ""
    files = run(["check", "policies/deploy.policy", "policies/deploy_test.policy"])
    assert files.exit_code == 0 and files.stdout.startswith("ok: 2 files, 3 rules, 3 tests")


def test_check_reports_every_diagnostic() -> None:
    result = run(["check", "broken"])
    assert result.exit_code == 1
    out = result.stdout
    assert "error[E0406]: unknown layer `oversite`" in out
    assert " --> broken/broken.policy:5:9" in out
    assert "5 |   layer oversite\n  |         ^^^^^^^^" in out
    assert "= help: did you mean `oversight`?" in out
    assert "error[E0204]" in out and "broken/broken.policy:7:23" in out
    assert "broken/syntax.policy:7:1" in out
    assert out.rstrip().endswith("3 errors")


def test_check_json() -> None:
    bad = run(["check", "broken", "--format", "json"])
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False and data["bundle"] is None and data["errors"] == 3
    assert [(d["code"], d["file"], d["line"]) for d in data["diagnostics"]][:2] == [
        ("E0406", "broken/broken.policy", 5),
        ("E0204", "broken/broken.policy", 7),
    ]
    assert bad.stderr.strip() == "3 errors"
    good = run(["check", "policies", "--format", "json"])
    assert good.exit_code == 0
    assert json.loads(good.stdout)["bundle"]["rules"] == 3


def test_check_sarif() -> None:
    result = run(["check", "broken", "--format", "sarif"])
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert_valid_sarif(log)
    run_ = log["runs"][0]
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == FIXTURES.as_uri() + "/"
    assert {r["id"] for r in run_["tool"]["driver"]["rules"]} == {c.value for c in Code}
    first = run_["results"][0]
    assert first["ruleId"] == "E0406"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "broken/broken.policy", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 5, "startColumn": 9, "endLine": 5, "endColumn": 17},
    }
    clean = json.loads(run(["check", "policies", "--format", "sarif"]).stdout)
    assert_valid_sarif(clean)
    assert clean["runs"][0]["results"] == []


def test_check_path_errors_exit_2() -> None:
    missing = run(["check", "policies", "nope"])
    assert missing.exit_code == 2
    assert missing.stderr == (
        "error: no such file or directory `nope`\n"
        "hint: check the path, relative to the current directory\n"
    )
    empty = run(["check", "empty_dir", "--format", "sarif"])
    assert empty.exit_code == 2 and empty.stdout == ""
    assert "error: no `*.policy` files found in `empty_dir`" in empty.stderr


def test_check_output_file(tmp_path: Path) -> None:
    target = tmp_path / "check.sarif"
    result = run(["check", "broken", "--format", "sarif", "--output", str(target)])
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"
    unwritable = run(["check", "policies", "-o", str(tmp_path / "no" / "such" / "dir.txt")])
    assert unwritable.exit_code == 2 and "error: cannot write" in unwritable.stderr


def test_check_warnings_and_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pe.load_bundle
    warning = Diagnostic(
        Code.SHADOWED_NAME,
        "variable `now` hides the built-in `now`",
        Span("policies/deploy.policy", 0, 7, 1, 1, 1, 8),
        severity=Severity.WARNING,
    )

    def with_warning(*paths: str) -> pe.Bundle:
        return replace(real(*paths), warnings=(warning,))

    monkeypatch.setattr("policyengine.cli.check.load_bundle", with_warning)
    lenient = run(["check", "policies"])
    assert lenient.exit_code == 0
    assert "warning[E0208]: variable `now` hides the built-in `now`" in lenient.stdout
    assert lenient.stdout.rstrip().splitlines()[-1].startswith("ok: 2 files")
    assert run(["check", "policies", "--strict"]).exit_code == 1
    sarif = json.loads(run(["check", "policies", "--format", "sarif"]).stdout)
    assert sarif["runs"][0]["results"][0]["level"] == "warning"


# ---------------------------------------------------------------- eval


def test_eval_text() -> None:
    result = run(["eval", "--policies", "policies", "--events", "events.jsonl"])
    assert result.exit_code == 1  # evt-0003 is denied, evt-0005 needs review
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["event", "type", "subject", "outcome", "failing", "rules"]
    row = next(line for line in lines if line.startswith("evt-0003"))
    assert row.split()[:4] == [
        "evt-0003",
        "model.deploy_requested",
        "model_version/mv-tox-3",
        "deny",
    ]
    assert "gxp.deployment.two_person_deploy_approval (hard)" in row
    assert "tox-predictor v3 needs 2 approvals" in result.stdout
    assert lines[-1] == SUMMARY
    assert result.stderr == ""


def test_eval_json_is_canonical_decisions() -> None:
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--format", "json"])
    assert result.exit_code == 1
    expected = b"".join(d.to_json() + b"\n" for d in expected_decisions())
    assert result.stdout_bytes == expected
    assert result.stderr.strip() == SUMMARY


def test_eval_junit() -> None:
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--format", "junit"])
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == sum(len(d.results) for d in expected_decisions())
    failures = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname", "").split()[0], c.get("name")) for c in failures] == [
        ("evt-0003", "gxp.deployment.two_person_deploy_approval"),
        ("evt-0004", "gxp.deployment.artifact_digest_recorded"),
        ("evt-0005", "gxp.deployment.intended_use_documented"),
    ]


def test_eval_sarif() -> None:
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--format", "sarif"])
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert_valid_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["properties"]["eventId"] for r in results] == ["evt-0003", "evt-0004", "evt-0005"]
    bundle = pe.load_bundle("policies")
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        span = bundle.rules[r["ruleId"]].span
        assert loc["artifactLocation"] == {
            "uri": "policies/deploy.policy",
            "uriBaseId": "%SRCROOT%",
        }
        assert loc["region"]["startLine"] == span.line


@pytest.mark.parametrize(
    ("ids", "fail_on", "code"),
    [
        (["evt-0001", "evt-0004"], "deny", 0),  # allow + allow_with_warnings
        (["evt-0001", "evt-0004"], "review", 0),
        (["evt-0001", "evt-0004"], "warn", 1),
        (["evt-0004", "evt-0005"], "deny", 0),  # + review_required
        (["evt-0004", "evt-0005"], "review", 1),
        (["evt-0001", "evt-0002", "evt-0003"], "deny", 1),  # deny
        ([], "warn", 0),
    ],
)
def test_eval_fail_on_thresholds(tmp_path: Path, ids: list[str], fail_on: str, code: int) -> None:
    events = write_events(tmp_path / "stream.jsonl", ids)
    result = run(["eval", "-p", "policies", "-e", str(events), "--fail-on", fail_on])
    assert result.exit_code == code, result.output
    assert result.stdout.splitlines()[-1].startswith(f"{len(ids)} event")


def test_eval_default_threshold_is_review(tmp_path: Path) -> None:
    events = write_events(tmp_path / "stream.jsonl", ["evt-0004", "evt-0005"])
    assert run(["eval", "-p", "policies", "-e", str(events)]).exit_code == 1


def test_eval_bad_lines_are_reported_and_the_rest_is_decided() -> None:
    result = run(["eval", "-p", "policies", "-e", "bad.jsonl", "--format", "json"])
    assert result.exit_code == 2
    assert [d["event"]["id"] for d in json_lines(result.stdout)] == ["evt-0001", "evt-0004"]
    err = result.stderr
    assert "error: bad.jsonl:2: invalid JSON: expecting value (column 24)" in err
    assert "error: bad.jsonl:4: `attributes.target`: field required" in err
    assert "error: 2 lines of `bad.jsonl` could not be decided" in err


def test_eval_reports_every_problem_of_a_line(tmp_path: Path) -> None:
    events = tmp_path / "two-problems.jsonl"
    event = json.loads((FIXTURES / "events.jsonl").read_text().splitlines()[2])
    event["time"] = "2026-03-01T11:00:00"
    del event["attributes"]["target"]
    events.write_bytes(json.dumps(event).encode() + b"\n\xff\xfe not utf-8\n")
    result = run(["eval", "-p", "policies", "-e", str(events)])
    assert result.exit_code == 2
    assert f"{events}:1: `time`: timestamp" in result.stderr
    assert f"{events}:1: `attributes.target`: field required" in result.stderr
    assert f"{events}:2: line is not valid UTF-8" in result.stderr


def test_eval_now() -> None:
    base = ["eval", "-p", "policies", "-e", "events.jsonl", "--format", "json"]
    fixed = json_lines(run([*base, "--now", "2030-01-02T03:04:05+01:00"]).stdout)
    assert {d["evaluated_at"] for d in fixed} == {"2030-01-02T02:04:05Z"}
    default = json_lines(run(base).stdout)
    assert [d["evaluated_at"] for d in default] == [d["event"]["time"] for d in default]
    before = datetime.now(UTC) - timedelta(seconds=1)
    wall = json_lines(run([*base, "--now", "wall"]).stdout)
    for d in wall:
        assert datetime.fromisoformat(d["evaluated_at"]) >= before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "`--now` must be an RFC 3339 timestamp or `wall`, got `yesterday`"),
        ("2026-03-01T12:00:00", "`--now 2026-03-01T12:00:00` has no timezone"),
    ],
)
def test_eval_bad_now(value: str, message: str) -> None:
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--now", value])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}\nhint: ")


def test_eval_input_errors_exit_2() -> None:
    broken = run(["eval", "-p", "broken", "-e", "events.jsonl"])
    assert broken.exit_code == 2 and broken.stdout == ""
    assert "error[E0406]" in broken.stderr and "broken/broken.policy:5:9" in broken.stderr
    assert "error: the policies do not compile" in broken.stderr
    missing = run(["eval", "-p", "policies", "-e", "missing.jsonl"])
    assert missing.exit_code == 2 and "`missing.jsonl` is missing" in missing.stderr
    directory = run(["eval", "-p", "policies", "-e", "policies"])
    assert directory.exit_code == 2 and "is a directory" in directory.stderr
    no_policies = run(["eval", "-p", "empty_dir", "-e", "events.jsonl"])
    assert no_policies.exit_code == 2 and "no `*.policy` files" in no_policies.stderr


def test_eval_stdin_and_output_file(tmp_path: Path) -> None:
    out = tmp_path / "decisions.jsonl"
    stream = (FIXTURES / "events.jsonl").read_text()
    result = run(
        ["eval", "-p", "policies", "-e", "-", "--format", "json", "-o", str(out)], stdin=stream
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == SUMMARY
    assert out.read_bytes() == b"".join(d.to_json() + b"\n" for d in expected_decisions())


def test_eval_only_failing() -> None:
    result = run(["eval", "-p", "policies", "-e", "events.jsonl", "--only-failing"])
    rows = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("evt-")]
    assert rows == ["evt-0003", "evt-0004", "evt-0005"]


class RecordingProgress(_common.Progress):
    instances: list[RecordingProgress] = []  # noqa: RUF012 - test bookkeeping

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingProgress.instances.append(self)


def test_eval_progress_bar_only_for_long_streams_on_a_tty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "Progress", RecordingProgress)
    RecordingProgress.instances.clear()
    long = tmp_path / "long.jsonl"
    events = (FIXTURES / "events.jsonl").read_text().splitlines()
    first = json.loads(events[0])
    lines = [json.dumps({**first, "id": f"evt-r{i}"}) for i in range(1100)]
    long.write_text("\n".join(lines) + "\n")
    # Not a TTY: no progress bar at all.
    assert run(["eval", "-p", "policies", "-e", str(long)]).exit_code == 0
    assert RecordingProgress.instances == []
    monkeypatch.setattr(_common, "stderr_is_tty", lambda: True)
    # A TTY but a short stream: still none.
    assert run(["eval", "-p", "policies", "-e", "events.jsonl"]).exit_code == 1
    assert RecordingProgress.instances == []
    # A TTY and more than 1000 lines: one bar, advanced once per line.
    result = run(["eval", "-p", "policies", "-e", str(long), "--format", "json"])
    assert result.exit_code == 0
    assert len(json_lines(result.stdout)) == 1100
    (bar,) = RecordingProgress.instances
    (task,) = bar.tasks
    assert task.total == 1100 and task.completed == 1100


# ---------------------------------------------------------------- test


def test_test_passing() -> None:
    result = run(["test", "policies"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:3]] == ["PASS"] * 3
    assert re.search(
        r"PASS gxp\.deployment › one approval is not enough  \(policies/deploy_test\.policy:3\)",
        result.stdout,
    )
    assert lines[-1] == "3 passed, 0 failed"


def test_test_failing() -> None:
    result = run(["test", "failing_tests"])
    assert result.exit_code == 1
    out = result.stdout
    title = "FAIL gxp.deployment › wrong expectation about staging"
    assert f"{title}  (failing_tests/deploy_test.policy:10)" in out
    assert (
        "failing_tests/deploy_test.policy:13:3: expected `allow` but got `review_required`" in out
    )
    assert "FAIL gxp.deployment › broken fixture" in out
    assert out.splitlines()[-1] == "1 passed, 2 failed"


def test_test_coverage_and_filter() -> None:
    result = run(["test", "policies", "--coverage"])
    assert result.exit_code == 0
    assert "coverage" in result.stdout
    assert "rules triggered 3/3 · requirements observed 3/3" in result.stdout
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"
    one = run(["test", "policies", "--run", "two approvals", "--coverage"])
    assert one.exit_code == 0 and one.stdout.splitlines()[-1] == "1 passed, 0 failed"
    assert "rules triggered 2/3" in one.stdout
    only_failing = run(["test", "failing_tests", "--run", "one approval"])
    assert only_failing.exit_code == 0


def test_test_json_and_junit(tmp_path: Path) -> None:
    result = run(["test", "failing_tests", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["counts"] == {"passed": 1, "failed": 2, "total": 3}
    assert "coverage" in data and data["coverage"]["summary"]["rules"] == 3
    assert result.stderr.strip() == "1 passed, 2 failed"
    target = tmp_path / "junit.xml"
    junit = run(["test", "failing_tests", "--format", "junit", "--output", str(target)])
    assert junit.exit_code == 1 and junit.stdout == ""
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    assert [s.tag for s in root] == ["testsuite"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    case = root.find("./testsuite/testcase[@name='wrong expectation about staging']")
    assert case is not None and case.find("failure") is not None


def test_test_exit_2_cases() -> None:
    none = run(["test", "no_tests"])
    assert none.exit_code == 2 and "error: no tests found" in none.stderr
    unmatched = run(["test", "policies", "--run", "zzz"])
    assert unmatched.exit_code == 2
    assert "error: no test name contains `zzz`" in unmatched.stderr
    assert "`one approval is not enough`" in unmatched.stderr
    broken = run(["test", "broken"])
    assert broken.exit_code == 2 and "error[E0406]" in broken.stderr
    missing = run(["test", "nope"])
    assert missing.exit_code == 2 and "no such file or directory `nope`" in missing.stderr


# ---------------------------------------------------------------- explain


def test_explain_uses_state_from_earlier_events() -> None:
    denied = run(["explain", "-p", "policies", "-e", "events.jsonl", "evt-0003"])
    assert denied.exit_code == 0
    out = denied.stdout
    assert out.startswith("event evt-0003 (line 3)  model.deploy_requested  model_version/mv-tox-3")
    assert "outcome: deny" in out
    assert (
        "✗ gxp.deployment.two_person_deploy_approval  fail  Two-person rule for production" in out
    )
    assert "layer oversight · severity critical · enforce hard" in out
    assert "refs: 21 CFR 11.10(g); EU GMP Annex 11 §14" in out
    assert "doc: Production deployments need two independent QA sign-offs" in out
    assert "defined at: policies/deploy.policy:6:6" in out
    assert re.search(r"subject\.created_by\) = 1$", out, re.M)  # one approval so far
    # evt-0007 comes after the second approval (evt-0006): the replayed state has both.
    allowed = run(["explain", "-p", "policies", "-e", "events.jsonl", "evt-0007"])
    assert allowed.exit_code == 0
    assert "outcome: allow" in allowed.stdout
    assert re.search(r"subject\.created_by\) = 2$", allowed.stdout, re.M)


def test_explain_json() -> None:
    result = run(
        ["explain", "-p", "policies", "-e", "events.jsonl", "evt-0005", "--format", "json"]
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["line"] == 5
    assert data["decision"]["outcome"] == "review_required"
    reqs = data["decision"]["results"][0]["requirements"]
    assert reqs == [
        {
            "expr": "has(subject.intended_use)",
            "status": "fail",
            "message": "intended use is missing",
            "values": [{"expr": "has(subject.intended_use)", "value": False}],
        }
    ]
    assert data["rules"]["gxp.deployment.intended_use_documented"]["override_by"] == ["qa_lead"]


def test_explain_now_is_applied() -> None:
    result = run(
        [
            "explain",
            "-p",
            "policies",
            "-e",
            "events.jsonl",
            "evt-0001",
            "--format",
            "json",
            "--now",
            "2031-01-01T00:00:00Z",
        ]
    )
    assert json.loads(result.stdout)["decision"]["evaluated_at"] == "2031-01-01T00:00:00Z"


def test_explain_unknown_id_suggests_close_ids() -> None:
    result = run(["explain", "-p", "policies", "-e", "events.jsonl", "evt-003"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "error: no event with id `evt-003` in `events.jsonl`" in result.stderr
    assert re.search(r"hint: did you mean `evt-0003`", result.stderr)
    far = run(["explain", "-p", "policies", "-e", "events.jsonl", "zzzzzzzz"])
    assert (
        far.exit_code == 2 and "the stream has 7 events, e.g. `evt-0001` … `evt-0007`" in far.stderr
    )


def test_explain_after_bad_lines_exits_2_but_explains() -> None:
    result = run(["explain", "-p", "policies", "-e", "bad.jsonl", "evt-0004"])
    assert result.exit_code == 2
    assert "outcome: allow_with_warnings" in result.stdout
    assert "bad.jsonl:2" in result.stderr and "may be incomplete" in result.stderr


def test_explain_stops_at_the_first_event_with_the_id(tmp_path: Path) -> None:
    # Lines after the event are never read: a later bad line or a later duplicate is moot.
    assert run(["explain", "-p", "policies", "-e", "bad.jsonl", "evt-0001"]).exit_code == 0
    events = write_events(tmp_path / "dup.jsonl", ["evt-0001", "evt-0002", "evt-0003", "evt-0003"])
    result = run(["explain", "-p", "policies", "-e", str(events), "evt-0003", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["line"] == 3


# ---------------------------------------------------------------- fmt

MESSY = (FIXTURES / "unformatted" / "messy.policy").read_text()


@pytest.fixture
def fake_formatter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A stand-in for `policyengine.language.formatter` with trivially checkable output:
    trailing blanks stripped, `SYNTAX ERROR` is a syntax error."""
    module = types.ModuleType("policyengine.language.formatter")

    def format_source(text: str, path: str = "<string>") -> str:
        if "SYNTAX ERROR" in text:
            line = text[: text.index("SYNTAX ERROR")].count("\n") + 1
            span = Span(path, 0, 1, line, 1, line, 13)
            raise CompileError([Diagnostic(Code.SYNTAX, "fake syntax error", span)], {path: text})
        return "".join(line.rstrip() + "\n" for line in text.splitlines())

    module.format_source = format_source  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "policyengine.language.formatter", module)
    yield


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "clean.policy").write_text("package a\n")
    (tmp_path / "sub" / "dirty.policy").write_text("package b   \nrule x {}  \n")
    (tmp_path / "notes.txt").write_text("not a policy   \n")
    return tmp_path


def test_fmt_rewrites_in_place(fake_formatter: None, tree: Path) -> None:
    result = run(["fmt", str(tree)])
    assert result.exit_code == 0
    assert (tree / "sub" / "dirty.policy").read_text() == "package b\nrule x {}\n"
    assert (tree / "notes.txt").read_text() == "not a policy   \n"
    assert f"reformatted {(tree / 'sub' / 'dirty.policy').as_posix()}" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 file reformatted, 1 already formatted"
    again = run(["fmt", "--check", str(tree)])
    assert again.exit_code == 0


def test_fmt_check_lists_files_and_writes_nothing(fake_formatter: None, tree: Path) -> None:
    result = run(["fmt", "--check", str(tree)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"would reformat {(tree / 'sub' / 'dirty.policy').as_posix()}",
        "1 file would be reformatted, 1 already formatted",
    ]
    assert (tree / "sub" / "dirty.policy").read_text() == "package b   \nrule x {}  \n"


def test_fmt_diff(fake_formatter: None, tree: Path) -> None:
    dirty = (tree / "sub" / "dirty.policy").as_posix()
    result = run(["fmt", "--diff", str(tree)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"--- a/{dirty}",
        f"+++ b/{dirty}",
        "@@ -1,2 +1,2 @@",
        "-package b   ",
        "-rule x {}  ",
        "+package b",
        "+rule x {}",
    ]
    assert "1 file would be reformatted" in result.stderr
    assert (tree / "sub" / "dirty.policy").read_text() == "package b   \nrule x {}  \n"


def test_fmt_syntax_errors_exit_2_and_other_files_still_format(
    fake_formatter: None, tree: Path
) -> None:
    (tree / "bad.policy").write_text("package c\nSYNTAX ERROR\n")
    result = run(["fmt", str(tree)])
    assert result.exit_code == 2
    assert "error[E0101]: fake syntax error" in result.stderr
    assert f"{(tree / 'bad.policy').as_posix()}:2:1" in result.stderr
    assert (tree / "sub" / "dirty.policy").read_text() == "package b\nrule x {}\n"
    assert "1 with errors" in result.stdout


def test_fmt_stdin(fake_formatter: None) -> None:
    result = run(["fmt", "-"], stdin="package a   \n")
    assert result.exit_code == 0 and result.stdout == "package a\n"
    check = run(["fmt", "--check", "-"], stdin="package a   \n")
    assert check.exit_code == 1 and check.stdout == ""
    ok = run(["fmt", "--check", "-"], stdin="package a\n")
    assert ok.exit_code == 0
    bad = run(["fmt", "-"], stdin="SYNTAX ERROR\n")
    assert bad.exit_code == 2 and "<stdin>:1:1" in bad.stderr


def test_fmt_path_errors(fake_formatter: None, tmp_path: Path) -> None:
    assert run(["fmt", str(tmp_path / "nope")]).exit_code == 2
    empty = run(["fmt", str(tmp_path)])
    assert empty.exit_code == 2 and "no `*.policy` files found" in empty.stderr


def test_fmt_without_a_formatter_module_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "policyengine.language.formatter", None)
    result = run(["fmt", "policies"])
    assert result.exit_code == 3
    assert "no policy formatter" in result.stderr


def test_fmt_with_the_real_formatter(tmp_path: Path) -> None:
    """Depends on `policyengine.language.formatter` (written separately)."""
    formatter = pytest.importorskip("policyengine.language.formatter")
    target = tmp_path / "messy.policy"
    target.write_text(MESSY)
    expected = formatter.format_source(MESSY, target.as_posix())
    assert expected != MESSY  # the fixture really is unformatted
    assert run(["fmt", "--check", str(target)]).exit_code == 1
    assert run(["fmt", str(target)]).exit_code == 0
    assert target.read_text() == expected
    assert run(["fmt", "--check", str(target)]).exit_code == 0  # idempotent
    assert run(["check", str(target)]).exit_code == 0
    assert set(pe.load_bundle(target).rules) == set(pe.compile_sources({"m.policy": MESSY}).rules)


# ---------------------------------------------------------------- the installed script


def console_script() -> str:
    found = shutil.which("policyengine") or str(Path(sys.executable).parent / "policyengine")
    if not Path(found).exists():
        pytest.fail("the `policyengine` console script is not installed")
    return found


def script(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return subprocess.run(
        [console_script(), *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=FIXTURES,
        env=env,
        timeout=60,
        check=False,
    )


def test_console_script_check_and_eval() -> None:
    ok = script("check", "policies")
    assert ok.returncode == 0 and ok.stdout.startswith(
        "ok: 2 files, 3 rules, 3 tests; bundle sha256:"
    )
    decided = script("eval", "-p", "policies", "-e", "events.jsonl", "--format", "json")
    assert decided.returncode == 1
    assert [d["outcome"] for d in json_lines(decided.stdout)] == [
        "allow",
        "allow",
        "deny",
        "allow_with_warnings",
        "review_required",
        "allow",
        "allow",
    ]
    assert decided.stderr.strip() == SUMMARY


def test_console_script_user_errors_have_no_traceback() -> None:
    bad = script("eval", "-p", "policies", "-e", "bad.jsonl")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "error: bad.jsonl:4:" in bad.stderr
    broken = script("test", "broken")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert script("--version").stdout == f"policyengine {pe.__version__}\n"


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "policyengine.cli", "version"],
        capture_output=True,
        text=True,
        cwd=FIXTURES,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == f"policyengine {pe.__version__}\n"
