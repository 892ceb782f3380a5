"""Tests for the pure report renderers in `policyengine.reports` (no CLI involved)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import policyengine as pe
from policyengine.language.ast import Span
from policyengine.language.diagnostics import Code, CompileError, Diagnostic, Severity
from policyengine.reports import (
    CODE_DESCRIPTIONS,
    BundleStats,
    OutcomeTally,
    check_json,
    check_text,
    coverage_text,
    decision_json_line,
    decisions_junit,
    decisions_sarif,
    decisions_text,
    diagnostics_sarif,
    diagnostics_text,
    explain_json,
    explain_text,
    failure_reason,
    policy_tests_json,
    policy_tests_junit,
    policy_tests_text,
)
from policyengine.reports import junit as junit_xml
from policyengine.reports._console import to_text
from policyengine.reports.sarif import artifact_uri, information_uri
from policyengine.testing import run_tests

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
POLICIES = FIXTURES / "policies"
EVENTS = FIXTURES / "events.jsonl"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sarif_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES / "sarif-2.1.0-subset.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def assert_valid_sarif(log: dict[str, Any]) -> None:
    """Schema subset plus the cross-references a schema cannot express."""
    errors = sorted(sarif_validator().iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert re.match(r"^https?://", driver["informationUri"])
        ids = [r["id"] for r in driver["rules"]]
        assert len(ids) == len(set(ids)), "rule ids must be unique"
        bases = set(run.get("originalUriBaseIds", {}))
        for result in run["results"]:
            assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
            for loc in result.get("locations", []):
                art = loc["physicalLocation"]["artifactLocation"]
                assert " " not in art["uri"] and "\\" not in art["uri"]
                if "uriBaseId" in art:
                    assert art["uriBaseId"] in bases
                    assert not art["uri"].startswith("/")
                region = loc["physicalLocation"].get("region")
                if region:
                    assert (region["endLine"], region["endColumn"]) > (
                        region["startLine"],
                        region["startColumn"],
                    )


@pytest.fixture(scope="module")
def bundle() -> pe.Bundle:
    return pe.load_bundle(POLICIES)


@pytest.fixture(scope="module")
def decisions(bundle: pe.Bundle) -> list[pe.Decision]:
    engine = pe.Engine(bundle)
    out = []
    for _line, event in pe.read_jsonl(EVENTS.read_text().splitlines()):
        assert not isinstance(event, pe.EventError)
        out.append(engine.evaluate(event, validated=True))
    return out


def by_id(decisions: list[pe.Decision], event_id: str) -> pe.Decision:
    return next(d for d in decisions if d.event_id == event_id)


# ---------------------------------------------------------------- console


def test_to_text_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "20")
    from rich.text import Text

    plain = to_text(Text("x" * 50, style="red"), color=False, width=100)
    assert plain == "x" * 50 + "\n"
    colored = to_text(Text("hello", style="red"), color=True, width=100)
    assert ANSI.search(colored) and ANSI.sub("", colored) == "hello\n"


# ---------------------------------------------------------------- decisions


def test_outcome_tally_counts_and_summarises(decisions: list[pe.Decision]) -> None:
    tally = OutcomeTally()
    assert list(tally.watch(decisions)) == decisions
    assert tally.total == 7
    assert tally.summary() == "7 events: 4 allow, 1 allow_with_warnings, 1 review_required, 1 deny"
    assert tally.any_of([pe.Outcome.DENY]) and not OutcomeTally().any_of(list(pe.Outcome))
    single = OutcomeTally()
    single.add(decisions[0])
    assert single.summary().startswith("1 event: ")


def test_failure_reason_prefers_message_then_requirements() -> None:
    req_fail = pe.RequirementResult("x > 1", "fail", message="x must exceed one")
    req_bare = pe.RequirementResult("y", "fail")
    req_err = pe.RequirementResult("z.w", "error", error="`z` is missing")
    base = ("pkg.r", "audit", "low", "hard")
    assert failure_reason(pe.RuleResult(*base, "fail", "custom", (req_fail,))) == "custom"
    assert failure_reason(pe.RuleResult(*base, "fail", None, (req_fail,))) == "x must exceed one"
    assert failure_reason(pe.RuleResult(*base, "fail", None, (req_bare,))) == "`y` is false"
    assert (
        failure_reason(pe.RuleResult(*base, "error", None, (req_err,)))
        == "cannot evaluate `z.w`: `z` is missing"
    )
    assert failure_reason(pe.RuleResult(*base, "error", None, ())) == "rule error"


def test_decisions_text_wide_layout(decisions: list[pe.Decision]) -> None:
    text = decisions_text(decisions, width=160)
    header = text.splitlines()[0].split()
    assert header == ["event", "type", "subject", "outcome", "failing", "rules"]
    row = next(line for line in text.splitlines() if line.startswith("evt-0003"))
    assert "model.deploy_requested" in row and "model_version/mv-tox-3" in row
    assert "deny" in row and "gxp.deployment.two_person_deploy_approval (hard)" in row
    assert "tox-predictor v3 needs 2 approvals" in text
    assert text.rstrip().splitlines()[-1] == (
        "7 events: 4 allow, 1 allow_with_warnings, 1 review_required, 1 deny"
    )
    assert not ANSI.search(text)
    assert all(line == line.rstrip() for line in text.splitlines())


def test_decisions_text_compact_layout_keeps_every_field(decisions: list[pe.Decision]) -> None:
    text = decisions_text(decisions, width=80)
    assert text.splitlines()[0].startswith("event / type / subject")
    assert all(len(line) <= 80 for line in text.splitlines())
    for field in (
        "evt-0005",
        "model.deploy_requested",
        "model_version/mv-sol-1",
        "review_required",
    ):
        assert field in text
    assert "intended-use" in text


def test_decisions_text_only_failing_and_color(decisions: list[pe.Decision]) -> None:
    text = decisions_text(decisions, width=160, only_failing=True)
    rows = [line.split()[0] for line in text.splitlines() if line.startswith("evt-")]
    assert rows == ["evt-0003", "evt-0004", "evt-0005"]
    assert "7 events" in text  # the summary still counts everything
    allowed = [d for d in decisions if d.outcome is pe.Outcome.ALLOW]
    assert "no failing events" in decisions_text(allowed, only_failing=True)
    assert "no events" in decisions_text([])
    colored = decisions_text(decisions, width=160, color=True)
    assert "\x1b[" in colored and ANSI.sub("", colored).split() == text_all(decisions).split()


def text_all(decisions: list[pe.Decision]) -> str:
    return decisions_text(decisions, width=160)


def test_decision_json_line_is_canonical(decisions: list[pe.Decision]) -> None:
    line = decision_json_line(decisions[2])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line[:-1] == decisions[2].to_json()
    assert json.loads(line)["outcome"] == "deny"


def test_decisions_junit(decisions: list[pe.Decision]) -> None:
    xml = decisions_junit(decisions, duration=0.5)
    root = ET.fromstring(xml)
    assert root.tag == "testsuites" and root.get("time") == "0.500"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == sum(len(d.results) for d in decisions)
    failed = [c for c in cases if c.find("failure") is not None]
    assert sorted(c.get("name") for c in failed) == [
        "gxp.deployment.artifact_digest_recorded",
        "gxp.deployment.intended_use_documented",
        "gxp.deployment.two_person_deploy_approval",
    ]
    deny = next(c for c in failed if c.get("classname", "").startswith("evt-0003"))
    failure = deny.find("failure")
    assert failure is not None
    assert failure.get("type") == "hard rule fail"
    assert failure.get("message") == "tox-predictor v3 needs 2 approvals"
    assert "21 CFR 11.10(g)" in (failure.text or "")
    assert root.get("tests") == str(len(cases)) and root.get("failures") == "3"
    assert root.get("skipped") == "1"  # the two-person rule's guard is false for staging


def test_junit_strips_characters_xml_cannot_hold() -> None:
    suite = junit_xml.Suite(
        "s", [junit_xml.Case("c\x01", "n\x00", failure=("t", "m\x1b", "d\x07"))]
    )
    root = ET.fromstring(junit_xml.render("x", [suite]))
    case = root.find("./testsuite/testcase")
    assert case is not None and case.get("classname") == "c\ufffd"
    assert root.get("failures") == "1" and root.get("errors") == "0"


# ---------------------------------------------------------------- SARIF


def test_code_descriptions_cover_every_code() -> None:
    assert set(CODE_DESCRIPTIONS) == set(Code)
    assert all(d and d == d.lower() for d in CODE_DESCRIPTIONS.values())


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("policies/a.policy", "/repo", ("policies/a.policy", "%SRCROOT%")),
        ("/repo/policies/a b.policy", "/repo", ("policies/a%20b.policy", "%SRCROOT%")),
        ("../elsewhere/x.policy", "/repo/sub", ("file:///repo/elsewhere/x.policy", None)),
        ("/other/x.policy", "/repo", ("file:///other/x.policy", None)),
        ("rel/x.policy", None, ("rel/x.policy", None)),
        ("<string>", "/repo", None),
        ("", "/repo", None),
    ],
)
def test_artifact_uri(path: str, base: str | None, expected: tuple[str, str | None] | None) -> None:
    assert artifact_uri(path, base) == expected


def test_information_uri_is_absolute() -> None:
    assert re.match(r"^https?://[^/\s]+/", information_uri())


def compile_error(sources: dict[str, str]) -> CompileError:
    with pytest.raises(CompileError) as info:
        pe.compile_sources(sources)
    return info.value


BROKEN = {
    "p/bad.policy": (
        "package t\n\nrule r {\n  layer oversite\n  on model.registered\n"
        "  require has(subject.artefact_digest)\n}\n"
    )
}


def test_diagnostics_sarif_shape() -> None:
    err = compile_error(BROKEN)
    log = diagnostics_sarif(err.diagnostics, base="/repo")
    assert_valid_sarif(log)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [c.value for c in Code]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///repo/"
    codes = [r["ruleId"] for r in run["results"]]
    assert codes == [d.code.value for d in err.diagnostics]
    assert "E0406" in codes and "E0204" in codes
    first = run["results"][codes.index("E0406")]
    assert first["level"] == "error"
    assert (
        "oversite" in first["message"]["text"] and "help: did you mean" in first["message"]["text"]
    )
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "p/bad.policy", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 4, "startColumn": 9, "endLine": 4, "endColumn": 17}


def test_diagnostics_sarif_edge_cases() -> None:
    unknown = Diagnostic(Code.FILE_ERROR, "cannot read", Span.unknown())
    empty = Diagnostic(
        Code.SYNTAX,
        "zero width",
        Span("a.policy", 5, 5, 2, 3, 2, 3),
        severity=Severity.WARNING,
        notes=(("first defined here", Span("b.policy", 0, 4, 1, 1, 1, 5)),),
    )
    log = diagnostics_sarif([unknown, empty], base="/repo")
    assert_valid_sarif(log)
    r0, r1 = log["runs"][0]["results"]
    assert "locations" not in r0
    assert r1["level"] == "warning"
    assert r1["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2,
        "startColumn": 3,
        "endLine": 2,
        "endColumn": 4,
    }
    related = r1["relatedLocations"][0]
    assert related["message"]["text"] == "first defined here"
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "b.policy"
    assert diagnostics_sarif([], base=None)["runs"][0]["results"] == []


def test_decisions_sarif(bundle: pe.Bundle, decisions: list[pe.Decision]) -> None:
    log = decisions_sarif(decisions, bundle.rules, base=None, bundle_digest=bundle.digest)
    assert_valid_sarif(log)
    run = log["runs"][0]
    assert run["properties"]["bundleDigest"] == bundle.digest
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == sorted(bundle.rules)
    results = run["results"]
    failed = [(d.event_id, r.rule) for d in decisions for r in d.results if r.failed]
    assert [(r["properties"]["eventId"], r["ruleId"]) for r in results] == failed
    levels = {r["ruleId"].rsplit(".", 1)[1]: r["level"] for r in results}
    assert levels == {
        "two_person_deploy_approval": "error",
        "artifact_digest_recorded": "note",
        "intended_use_documented": "warning",
    }
    for r in results:
        span = bundle.rules[r["ruleId"]].span
        region = r["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (span.line, span.column)
    prints = [next(iter(r["partialFingerprints"].values())) for r in results]
    assert len(set(prints)) == len(prints)
    descriptor = run["tool"]["driver"]["rules"][
        sorted(bundle.rules).index("gxp.deployment.two_person_deploy_approval")
    ]
    assert descriptor["shortDescription"]["text"] == "Two-person rule for production"
    assert "two independent QA sign-offs" in descriptor["fullDescription"]["text"]
    assert "EU GMP Annex 11 §14" in descriptor["help"]["text"]


# ---------------------------------------------------------------- check


def test_check_text_and_json_on_success(bundle: pe.Bundle) -> None:
    stats = BundleStats.of(bundle)
    text = check_text([], bundle.sources, stats)
    assert text == f"ok: 2 files, 3 rules, 3 tests; bundle {bundle.digest}\n"
    data = json.loads(check_json([], stats))
    assert data == {
        "ok": True,
        "errors": 0,
        "warnings": 0,
        "diagnostics": [],
        "bundle": {"files": 2, "rules": 3, "tests": 3, "digest": bundle.digest},
    }
    assert BundleStats(1, 1, 0, "d").summary() == "ok: 1 file, 1 rule, 0 tests; bundle d"


def test_check_text_and_json_on_errors() -> None:
    err = compile_error(BROKEN)
    text = check_text(err.diagnostics, err.sources, None)
    assert text == diagnostics_text(err.diagnostics, err.sources) == err.render() + "\n"
    assert "--> p/bad.policy:4:9" in text and "^^^^^^^^" in text
    data = json.loads(check_json(err.diagnostics, None))
    assert data["ok"] is False and data["errors"] == len(err.diagnostics) and data["bundle"] is None
    assert {d["code"] for d in data["diagnostics"]} >= {"E0406", "E0204"}
    colored = diagnostics_text(err.diagnostics, err.sources, color=True)
    assert "\x1b[" in colored
    assert ANSI.sub("", colored).rstrip() == err.render().rstrip()
    assert diagnostics_text([], {}) == ""


def test_check_text_shows_warnings_above_the_summary(bundle: pe.Bundle) -> None:
    warning = Diagnostic(
        Code.SHADOWED_NAME, "a warning", Span.unknown("x.policy"), severity=Severity.WARNING
    )
    text = check_text([warning], {}, BundleStats.of(bundle))
    assert text.index("warning[E0208]: a warning") < text.index("ok: 2 files")
    assert json.loads(check_json([warning], BundleStats.of(bundle)))["warnings"] == 1


# ---------------------------------------------------------------- explain


def test_explain_text_shows_the_whole_trace(
    bundle: pe.Bundle, decisions: list[pe.Decision]
) -> None:
    text = explain_text(by_id(decisions, "evt-0003"), bundle.rules, line=3, width=200)
    assert text.startswith(
        "event evt-0003 (line 3)  model.deploy_requested  model_version/mv-tox-3"
    )
    assert "outcome: deny" in text
    for expected in (
        "✗ gxp.deployment.two_person_deploy_approval  fail  Two-person rule for production",
        "layer oversight · severity critical · enforce hard",
        "refs: 21 CFR 11.10(g); EU GMP Annex 11 §14",
        "doc: Production deployments need two independent QA sign-offs",
        "message: tox-predictor v3 needs 2 approvals",
        "→ fail: needs two independent approvals",
        "defined at: ",
        "✓ gxp.deployment.intended_use_documented  pass",
        "override by: qa_lead",
        "has(subject.intended_use) = true",
    ):
        assert expected in text, expected
    assert re.search(r"a\.signer != subject\.created_by\) = 1$", text, re.M)


def test_explain_text_not_applicable_and_untriggered(
    bundle: pe.Bundle, decisions: list[pe.Decision]
) -> None:
    text = explain_text(by_id(decisions, "evt-0005"), bundle.rules, width=200)
    assert "- gxp.deployment.two_person_deploy_approval  not_applicable" in text
    assert "the `when` guard is false" in text
    text = explain_text(by_id(decisions, "evt-0002"), bundle.rules)
    assert "no rule is triggered by `approval.recorded`" in text


def test_explain_json(bundle: pe.Bundle, decisions: list[pe.Decision]) -> None:
    d = by_id(decisions, "evt-0003")
    data = json.loads(explain_json(d, bundle.rules, line=3))
    assert data["line"] == 3
    assert data["decision"] == json.loads(d.to_json())
    info = data["rules"]["gxp.deployment.two_person_deploy_approval"]
    assert info["title"] == "Two-person rule for production"
    assert info["doc"].startswith("Production deployments")
    assert info["location"]["file"].endswith("deploy.policy") and info["location"]["line"] > 0
    assert set(data["rules"]) == {r.rule for r in d.results}


# ---------------------------------------------------------------- test runs


@pytest.fixture(scope="module")
def failing_report() -> Iterator[Any]:
    yield run_tests(pe.load_bundle(FIXTURES / "failing_tests"))


def test_policy_tests_text(bundle: pe.Bundle, failing_report: Any) -> None:
    text = policy_tests_text(run_tests(bundle))
    lines = text.splitlines()
    assert lines[-1] == "3 passed, 0 failed"
    assert sum(line.startswith("PASS ") for line in lines) == 3
    text = policy_tests_text(failing_report, width=300)
    lines = text.splitlines()
    assert lines[-1] == "1 passed, 2 failed"
    assert "FAIL gxp.deployment › wrong expectation about staging" in text
    assert re.search(r"deploy_test\.policy:13:3: expected `allow` but got `review_required`", text)
    assert re.search(r"error: .*deploy_test\.policy:\d+:\d+: invalid event", text)
    assert "coverage" not in text


def test_policy_tests_text_with_coverage(bundle: pe.Bundle) -> None:
    report = run_tests(bundle)
    text = policy_tests_text(report, coverage=True, width=200)
    assert text.splitlines()[-1] == "3 passed, 0 failed"
    assert "rules triggered 3/3 · requirements observed 3/3 (2 both passing and failing)" in text
    row = next(line for line in text.splitlines() if "artifact_digest_recorded" in line)
    assert row.split()[1:3] == ["pass", "pass"]
    # A filtered run leaves rules untriggered, and says so.
    partial = coverage_text(run_tests(bundle, "one approval").coverage, width=200)
    assert re.search(r"artifact_digest_recorded\s+never\s+never", partial)
    assert "rules triggered 2/3" in partial


def test_policy_tests_json(failing_report: Any) -> None:
    data = json.loads(policy_tests_json(failing_report))
    assert data["passed"] is False
    assert data["counts"] == {"passed": 1, "failed": 2, "total": 3}
    broken = next(t for t in data["tests"] if t["name"] == "broken fixture")
    assert broken["error"] and broken["passed"] is False
    wrong = next(t for t in data["tests"] if t["name"] == "wrong expectation about staging")
    assert [f["line"] for f in wrong["failures"]] == [13, 14]
    assert data["coverage"]["summary"]["rules"] == 3


def test_policy_tests_junit(failing_report: Any) -> None:
    root = ET.fromstring(policy_tests_junit(failing_report, duration=1.25))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name", "").endswith("deploy_test.policy")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["one approval is not enough"].find("failure") is None
    assert cases["wrong expectation about staging"].find("failure") is not None
    assert cases["broken fixture"].find("error") is not None
    assert all(c.get("classname") == "gxp.deployment" and c.get("line") for c in cases.values())
