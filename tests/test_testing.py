"""The policy test runner: steps, actor roles, state semantics and coverage."""

from __future__ import annotations

import policyengine
from policyengine.testing import run_tests

POLICY = """
package p

rule override_by_lead {
  layer oversight
  on override.recorded
  require "qa_lead" in event.actor.roles
}

rule deploy_needs_approval {
  layer oversight
  on model.deploy_requested
  require count(a in subject.approvals where a.meaning == "approved") >= 1
}

test "roles come from `by ... roles [...]`" {
  at 2026-01-01T00:00:00Z
  event override.recorded "mv-1" by "u9" roles ["qa_lead"] { rule: "p.x", role: "qa_lead",
    justification: "accepted variance after review" }
  expect pass override_by_lead
  event override.recorded "mv-1" by "u9" { rule: "p.x", role: "qa_lead",
    justification: "accepted variance after review" }
  expect fail override_by_lead
  expect deny
}

test "state carries between steps" {
  given model_version "mv-1" { name: "tox", version: "1", created_by: "u1" }
  event model.deploy_requested "mv-1" at 2026-01-02T00:00:00Z { target: { environment: "prod" } }
  expect deny
  event approval.recorded "mv-1" by "u2" at 2026-01-03T00:00:00Z {
    signer: "u2", role: "qa", meaning: "approved" }
  event model.deploy_requested "mv-1" at 2026-01-04T00:00:00Z { target: { environment: "prod" } }
  expect allow
}

test "a wrong expectation is reported" {
  event model.deploy_requested "mv-2" at 2026-01-02T00:00:00Z { target: { environment: "x" } }
  expect allow
}
"""


def test_runner_results_and_coverage() -> None:
    bundle = policyengine.compile_sources({"p.policy": POLICY})
    report = run_tests(bundle)
    by_name = {r.name: r for r in report.results}
    assert by_name["roles come from `by ... roles [...]`"].passed
    assert by_name["state carries between steps"].passed
    wrong = by_name["a wrong expectation is reported"]
    assert not wrong.passed
    # mv-2 was never registered: the rule errors (fails closed), so the outcome is deny.
    assert "expected `allow` but got `deny`" in wrong.failures[0].message
    assert report.counts == (2, 1)
    summary = report.coverage.summary()
    assert summary["rules_covered"] == 2
    assert summary["requirements_both_ways"] == 2


def test_name_filter() -> None:
    bundle = policyengine.compile_sources({"p.policy": POLICY})
    report = run_tests(bundle, "state")
    assert [r.name for r in report.results] == ["state carries between steps"]
