"""Replays the biotech example stream (`examples/biotech.jsonl`) through the shipped
policy library and pins the decision for every notable event: the example is
documentation, so it must keep telling the truth as the library evolves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyengine
from policyengine import Bundle, Decision, Engine, EventError, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
STREAM = ROOT / "examples" / "biotech.jsonl"
BAD_INPUT = ROOT / "examples" / "bad-input.jsonl"

# event id -> (outcome, rules that fail); see examples/README.md for the story.
# Every event NOT listed here must be decided `allow` with no failing rule.
EXPECTED: dict[str, tuple[str, set[str]]] = {
    # data onboarding
    "evt-001": ("deny", {"privacy.sensitive_dataset_governed"}),  # PHI without region
    "evt-005": ("deny", {"privacy.deidentification_method_recognised"}),  # "column-drop"
    "evt-007": ("deny", {"privacy.sensitivity_inherited"}),  # raw-PHI extract as internal
    "evt-008": ("deny", {"privacy.access_within_consent"}),  # assay-qc not consented
    "evt-009": ("deny", {"privacy.processing_region_allowed"}),  # EU data read in us-east-1
    "evt-011": ("deny", {"privacy.access_purpose_allowed"}),  # marketing analytics
    # features and training
    "evt-013": (
        "deny",
        {"privacy.training_data_deidentified", "audit.training_environment_pinned"},
    ),  # features from raw PHI, `:latest` image
    "evt-014": ("deny", {"privacy.training_data_deidentified"}),  # raw PHI read directly
    "evt-016": ("deny", {"privacy.training_purpose_allowed"}),  # med-chem not allowed
    # registration and sign-off of 1.0.0
    "evt-019": ("deny", {"audit.artifact_digest_pinned"}),  # registered without digest
    "evt-021": ("deny", {"oversight.independent_approval"}),  # author approves own model
    "evt-025": ("review_required", {"oversight.production_deploy_two_person"}),  # one approval
    "evt-026": ("deny", {"oversight.signature_attributable"}),  # no printed name
    "evt-027": ("allow_with_warnings", {"oversight.approval_role_counts"}),  # PM approval
    # predictions
    "evt-033": ("allow_with_warnings", {"audit.prediction_input_pinned"}),  # unregistered plate
    "evt-034": ("deny", {"audit.prediction_traceable"}),  # unregistered rc model
    # drift
    "evt-036": ("deny", {"monitoring.drift_evaluation_has_baseline"}),
    "evt-037": ("review_required", {"monitoring.critical_drift_reviewed"}),  # output drift
    "evt-038": ("deny", {"monitoring.no_production_promotion_with_open_drift"}),
    "evt-039": ("deny", {"monitoring.no_production_deploy_with_open_drift"}),
    "evt-040": ("deny", {"oversight.override_authorised"}),  # override as `qa`
    "evt-042": ("deny", {"oversight.override_authorised"}),  # override of a hard rule
    "evt-043": ("allow_with_warnings", {"monitoring.critical_drift_reviewed"}),  # overridden
    # retrained 1.1.0
    "evt-050": ("deny", {"oversight.independent_approval"}),  # run starter approves
    "evt-053": ("deny", {"oversight.rejection_blocks_release"}),
    "evt-058": ("deny", {"audit.prediction_traceable"}),  # never deployed to prod
    # approvals expire
    "evt-059": ("review_required", {"oversight.production_deploy_two_person"}),
}

# Events that pass only because an earlier problem was fixed: pinned so that the
# "fixed" half of each story is tested as explicitly as the failing half.
FIXED = {
    "evt-002": "evt-001",  # region added
    "evt-006": "evt-005",  # HIPAA safe harbor
    "evt-010": "evt-009",  # processed in eu-west-1
    "evt-017": "evt-014",  # de-identified features, allowed purpose
    "evt-020": "evt-019",  # artifact digest added
    "evt-029": "evt-025",  # second independent approval
    "evt-041": "evt-040",  # override by a QA lead
    "evt-045": "evt-038",  # drift closed, promotion allowed
    "evt-055": "evt-053",  # rejecting signer approves after recalibration
}


def _events() -> list[dict[str, Any]]:
    with STREAM.open(encoding="utf-8") as f:
        parsed = list(read_jsonl(f))
    bad = [(n, str(e)) for n, e in parsed if isinstance(e, EventError)]
    assert bad == []
    return [e for _, e in parsed if not isinstance(e, EventError)]


def _replay(bundle: Bundle) -> Iterator[Decision]:
    engine = Engine(bundle)
    for event in _events():
        yield engine.evaluate(event, validated=True)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return policyengine.load_bundle(ROOT / "policies")


@pytest.fixture(scope="module")
def decisions(bundle: Bundle) -> dict[str, Decision]:
    return {d.event_id: d for d in _replay(bundle)}


def _short(rule: str) -> str:
    return rule.removeprefix("gxp.")


def test_stream_is_well_formed() -> None:
    events = _events()
    assert 40 <= len(events) <= 80
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    times = [e["time"] for e in events]
    assert times == sorted(times), "the stream must be in time order"
    lines = [ln for ln in STREAM.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) == len(events)


def test_expectation_table_names_real_events(decisions: dict[str, Decision]) -> None:
    assert set(EXPECTED) | set(FIXED) | set(FIXED.values()) <= set(decisions)


@pytest.mark.parametrize("event_id", sorted(EXPECTED))
def test_notable_event_outcome(decisions: dict[str, Decision], event_id: str) -> None:
    decision = decisions[event_id]
    outcome, failing = EXPECTED[event_id]
    got = {_short(r.rule) for r in decision.failures}
    assert (decision.outcome.value, got) == (outcome, failing)
    # Failures in the example are real rule failures, never evaluation errors.
    assert all(r.status == "fail" for r in decision.failures)


def test_every_other_event_is_allowed(decisions: dict[str, Decision]) -> None:
    unexpected = {
        eid: (d.outcome.value, sorted(_short(r.rule) for r in d.failures))
        for eid, d in decisions.items()
        if eid not in EXPECTED and (d.outcome.value != "allow" or d.failures)
    }
    assert unexpected == {}


@pytest.mark.parametrize(("fixed", "broken"), sorted(FIXED.items()))
def test_fixed_events_pass_after_their_failure(
    decisions: dict[str, Decision], fixed: str, broken: str
) -> None:
    assert decisions[broken].outcome.blocking
    assert decisions[fixed].outcome.value == "allow"
    assert decisions[fixed].results, "a fix must be judged by at least one rule"


def test_overridden_drift_records_the_override(decisions: dict[str, Decision]) -> None:
    result = decisions["evt-043"].result("gxp.monitoring.critical_drift_reviewed")
    assert result is not None and result.override is not None
    assert result.override["signer"] == "grace.liu@helixbio.example"
    assert result.override["role"] == "qa_lead"


def test_every_layer_decides_something_in_the_stream(decisions: dict[str, Decision]) -> None:
    layers = {r.layer for d in decisions.values() for r in d.failures}
    assert layers == {"privacy", "monitoring", "audit", "oversight"}


def test_replay_is_byte_identical(bundle: Bundle) -> None:
    first = [d.to_json() for d in _replay(bundle)]
    second = [d.to_json() for d in _replay(policyengine.load_bundle(ROOT / "policies"))]
    assert first == second


def test_bad_input_reports_every_malformed_line(bundle: Bundle) -> None:
    with BAD_INPUT.open(encoding="utf-8") as f:
        parsed = list(read_jsonl(f))
    errors = {n: str(e) for n, e in parsed if isinstance(e, EventError)}
    good = [e["id"] for _, e in parsed if not isinstance(e, EventError)]
    assert good == ["bad-001", "bad-010"]
    assert sorted(errors) == [2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert "invalid JSON" in errors[2]
    assert "unknown event type `model.retired`" in errors[3]
    assert "attributes.purpose" in errors[4]
    assert "no timezone" in errors[5]
    assert "`subject.kind`" in errors[6]
    assert "NaN" in errors[8]
    assert "duplicate key" in errors[9]
    assert "attributes.meaning" in errors[10]
    # The good lines are still decided; one bad line does not stop a replay.
    engine = Engine(bundle)
    outcomes = [
        engine.evaluate(e, validated=True).outcome.value
        for _, e in parsed
        if not isinstance(e, EventError)
    ]
    assert outcomes == ["allow", "allow"]
