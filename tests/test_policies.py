"""The shipped GxP policy library (`policies/`) compiles cleanly, its policy tests
pass, and every rule is exercised both ways — the library is the product's
reference content, so a regression in it is a regression in the product."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import policyengine
from policyengine import Bundle, MemoryStateStore, parse_event
from policyengine import testing as policy_testing
from policyengine.compiler.bundle import LAYERS
from policyengine.events.catalog import entity_from_attributes

POLICIES = Path(__file__).resolve().parents[1] / "policies"

# Citation formats the library may use; a typo in a reference would otherwise
# ship silently into every decision record.
CITATION = re.compile(
    r"^(21 CFR 11\.\d+(\([a-z]\)(\(\d+\))?)?"
    r"|EU GMP Annex 11 §\d+(\.\d+)?"
    r"|GDPR Art\. \d+(\(\d+\)(\([a-z]\))?)?"
    r"|HIPAA 45 CFR 164\.\d+(\([a-z]\))?"
    r"|ICH E6\(R3\)( [a-z ]+)?"
    r"|GMLP Guiding Principle \d+)$"
)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return policyengine.load_bundle(POLICIES)


@pytest.fixture(scope="module")
def report(bundle: Bundle) -> policy_testing.TestReport:
    return policy_testing.run_tests(bundle)


def test_library_compiles_without_diagnostics(bundle: Bundle) -> None:
    assert bundle.warnings == ()
    packages = {info.package for info in bundle.rules.values()}
    assert packages == {"gxp.privacy", "gxp.monitoring", "gxp.audit", "gxp.oversight"}


def test_library_compiles_deterministically(bundle: Bundle) -> None:
    assert policyengine.load_bundle(POLICIES).digest == bundle.digest


def test_every_layer_has_at_least_three_rules(bundle: Bundle) -> None:
    per_layer = Counter(info.layer for info in bundle.rules.values())
    assert {layer: per_layer[layer] >= 3 for layer in LAYERS} == dict.fromkeys(LAYERS, True)


def test_layer_matches_package(bundle: Bundle) -> None:
    for info in bundle.rules.values():
        assert info.package == f"gxp.{info.layer}", info.id


def test_policy_tests_all_pass(report: policy_testing.TestReport) -> None:
    problems = [
        f"{r.file}:{r.line} {r.name}: " + (r.error or "; ".join(f.message for f in r.failures))
        for r in report.results
        if not r.passed
    ]
    assert problems == []
    assert len(report.results) >= 60


def test_every_rule_seen_passing_and_failing(report: policy_testing.TestReport) -> None:
    rules = report.coverage.to_dict()["rules"]
    missing = {
        rule: entry["statuses"]
        for rule, entry in rules.items()
        if not {"pass", "fail"} <= set(entry["statuses"])
    }
    assert missing == {}


def test_every_requirement_observed_both_ways(report: policy_testing.TestReport) -> None:
    summary = report.coverage.summary()
    assert summary["rules_covered"] == summary["rules"]
    assert summary["requirements_both_ways"] == summary["requirements"]


def test_rules_are_documented_and_cited(bundle: Bundle) -> None:
    for info in bundle.rules.values():
        assert info.doc.strip(), f"{info.id} has no `///` doc comment"
        assert info.title, f"{info.id} has no title"
        assert info.refs, f"{info.id} has no refs"
        bad = [ref for ref in info.refs if not CITATION.match(ref)]
        assert bad == [], f"{info.id} has unrecognised citations {bad}"


def test_enforcement_matches_severity(bundle: Bundle) -> None:
    # Critical rules protect things that must never happen; they may not be waivable.
    for info in bundle.rules.values():
        if info.severity == "critical":
            assert info.enforcement == "hard", info.id
        if info.enforcement == "advisory":
            assert info.severity in ("info", "low"), info.id
        assert bool(info.override_by) == (info.enforcement == "soft"), info.id


def test_rule_dependency_is_used(bundle: Bundle) -> None:
    deps = {info.id: info.depends_on for info in bundle.rules.values() if info.depends_on}
    assert deps == {
        "gxp.audit.training_lineage_pinned": ("gxp.audit.model_has_training_run",),
        "gxp.audit.upstream_lineage_registered": ("gxp.audit.model_has_training_run",),
    }


def _override_decision(bundle: Bundle, rule: str, role: str) -> Any:
    """Decide an otherwise valid `override.recorded` event naming `rule` in `role`."""
    state = MemoryStateStore()
    model = {"name": "tox", "version": "1", "created_by": "dev"}
    state.put("model_version", "mv-1", entity_from_attributes("model_version", "mv-1", model))
    event = parse_event(
        {
            "id": "ovr-1",
            "type": "override.recorded",
            "time": "2026-03-01T00:00:00Z",
            "actor": {"id": "lead", "roles": [role]},
            "subject": {"kind": "model_version", "id": "mv-1"},
            "attributes": {
                "rule": rule,
                "role": role,
                "justification": "a justification long enough to be meaningful",
                "expires_at": "2026-03-10T00:00:00Z",
            },
        }
    )
    return bundle.evaluate(event, state, datetime(2026, 3, 1, tzinfo=UTC))


def test_overridable_rules_are_exactly_the_soft_rules(bundle: Bundle) -> None:
    """`gxp.oversight.OVERRIDABLE_RULES` is maintained by hand; it must name every soft
    rule, and only soft rules, or overrides would be refused or accepted wrongly."""
    for info in bundle.rules.values():
        role = info.override_by[0] if info.override_by else "qa_lead"
        result = _override_decision(bundle, info.id, role).result(
            "gxp.oversight.override_authorised"
        )
        assert result is not None
        expected = "pass" if info.enforcement == "soft" else "fail"
        assert result.status == expected, f"{info.id}: {result.message}"


def test_soft_rules_are_overridable_by_an_override_role(bundle: Bundle) -> None:
    """Every role in a soft rule's `override by` must also be allowed to record an override."""
    soft = [info for info in bundle.rules.values() if info.enforcement == "soft"]
    assert len(soft) >= 2
    for info in soft:
        for role in info.override_by:
            decision = _override_decision(bundle, info.id, role)
            assert decision.outcome.value == "allow", (info.id, role)


def test_library_is_in_canonical_format() -> None:
    """The shipped library is what `policyengine fmt` writes, so users' `fmt --check` on a
    copy of it stays quiet."""
    from policyengine.language.formatter import format_source

    for path in sorted(POLICIES.glob("*.policy")):
        text = path.read_text(encoding="utf-8")
        assert format_source(text, str(path)) == text, f"{path} is not formatted"
