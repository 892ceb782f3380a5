"""The event catalogue: every event type, the entity kind it is about, and its reducer.

This registry is the single source of truth that the parser, the reducers, the compiler's
type environment, the JSON Schema and `spec/events.md` are all derived from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from . import reducers
from .models import (
    ApprovalRecorded,
    CodeCommit,
    CodeCommitted,
    Dataset,
    DatasetAccessed,
    DatasetPrivacyAssessed,
    DatasetRegistered,
    DatasetReleased,
    DriftEvaluated,
    DriftResponseRecorded,
    Event,
    EventError,
    FeatureSet,
    FeaturesMaterialized,
    ModelDeployed,
    ModelDeployRequested,
    ModelPromotionRequested,
    ModelRegistered,
    ModelVersion,
    OverrideRecorded,
    PredictionBatch,
    PredictionBatchCompleted,
    ReviewEscalated,
    RunCompleted,
    RunStarted,
    TrainingRun,
    suggestion,
    validation_problems,
)

__all__ = [
    "ENTITY_KINDS",
    "EVENT_TYPES",
    "EventSpec",
    "entity_from_attributes",
    "new_entity",
    "parse_event",
]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its subject kind, attribute model, state effect and an example."""

    name: str
    subject_kind: str
    attributes: type[BaseModel]
    doc: str
    """When a system emits it."""
    reducer: reducers.Reducer | None
    """State effect on the subject; `None` for events that only request or observe."""
    example: Mapping[str, Any]
    """A valid event in JSON form, used by the docs, the schema and the tests."""


ENTITY_KINDS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "dataset": Dataset,
        "feature_set": FeatureSet,
        "training_run": TrainingRun,
        "model_version": ModelVersion,
        "prediction_batch": PredictionBatch,
        "code_commit": CodeCommit,
    }
)

_MODEL = "mv-cardio-risk-3.1.0"
_RUN = "run-2024-05-0042"
_DATASET = "ds-ehr-cardio-2024q1"
_COMMIT = "4be1d07c9a3e5f8b2d6a1c0e7f9b3d5a8c2e4f60"
_STEWARD = {"id": "alice@example.com", "name": "Alice Meyer", "roles": ["data_steward"]}
_PIPELINE = {"id": "svc-training", "roles": ["pipeline"]}
_QA = {"id": "bob@example.com", "name": "Bob Ito", "roles": ["qa"]}
_MLOPS = {"id": "svc-deployer", "roles": ["mlops"]}


def _example(
    n: int, type_: str, time: str, actor: dict[str, Any], kind: str, id_: str, **attributes: Any
) -> dict[str, Any]:
    return {
        "id": f"evt-{n:04d}",
        "type": type_,
        "time": time,
        "actor": actor,
        "subject": {"kind": kind, "id": id_},
        "attributes": attributes,
    }


_SPECS = (
    EventSpec(
        "dataset.registered",
        "dataset",
        DatasetRegistered,
        "A data catalogue registers a dataset version or updates its governance metadata.",
        reducers.upsert_dataset,
        _example(
            1,
            "dataset.registered",
            "2024-05-01T09:00:00Z",
            _STEWARD,
            "dataset",
            _DATASET,
            name="ehr-cardiology",
            version="2024q1",
            uri="s3://clinical-lake/ehr/cardiology/2024q1/",
            digest="sha256:9f2c4e",
            classification="PHI",
            deidentified=True,
            deidentification_method="hipaa-safe-harbor",
            allowed_purposes=["cardiac-risk-research"],
            consent_scope=["research"],
            region="eu-west-1",
            owner="alice@example.com",
            row_count=182340,
            quasi_identifiers=["zip3", "birth_year"],
        ),
    ),
    EventSpec(
        "dataset.accessed",
        "dataset",
        DatasetAccessed,
        "A job or user requests to read a dataset (emitted before the read is granted).",
        None,
        _example(
            2,
            "dataset.accessed",
            "2024-05-02T08:15:00Z",
            _PIPELINE,
            "dataset",
            _DATASET,
            purpose="cardiac-risk-research",
            region="eu-west-1",
            job="feature-build-118",
        ),
    ),
    EventSpec(
        "dataset.privacy_assessed",
        "dataset",
        DatasetPrivacyAssessed,
        "A privacy check (`policyengine privacy check`) records k-anonymity, l-diversity,"
        " direct identifiers and cell sizes computed on a dataset's bytes.",
        reducers.record_privacy_assessment,
        _example(
            16,
            "dataset.privacy_assessed",
            "2024-05-01T10:00:00Z",
            {"id": "svc-privacy-check", "roles": ["privacy"]},
            "dataset",
            _DATASET,
            data_digest="sha256:9f2c4e",
            source="ehr-cardiology-2024q1.parquet",
            rows=182340,
            quasi_identifiers=["zip3", "birth_year"],
            k=7,
            classes=2211,
            sensitive="diagnosis_group",
            l=3,
            entropy_l=2.41,
            direct_identifiers=[],
            aggregated=False,
        ),
    ),
    EventSpec(
        "dataset.released",
        "dataset",
        DatasetReleased,
        "A data steward or export job asks to share a dataset (a cohort extract or an"
        " aggregated table) outside the controlled environment (emitted before sharing).",
        None,
        _example(
            17,
            "dataset.released",
            "2024-05-01T11:00:00Z",
            _STEWARD,
            "dataset",
            _DATASET,
            recipient="cardiology-research-consortium",
            purpose="cardiac-risk-research",
            aggregated=False,
        ),
    ),
    EventSpec(
        "code.committed",
        "code_commit",
        CodeCommitted,
        "A source repository (read by the `git` adapter) records a commit: who wrote it,"
        " when, on which branch, and whether git verified its signature.",
        reducers.upsert,
        _example(
            18,
            "code.committed",
            "2024-05-02T07:55:00Z",
            {"id": "carol@example.com", "name": "Carol Diaz"},
            "code_commit",
            _COMMIT,
            repository="https://git.example.com/cardio/risk-model.git",
            author="carol@example.com",
            author_name="Carol Diaz",
            authored_at="2024-05-02T07:50:00Z",
            committer="carol@example.com",
            committer_name="Carol Diaz",
            committed_at="2024-05-02T07:55:00Z",
            summary="features: add eGFR trend window",
            parents=["9c1e7a4b2d0f5e3a8c6b1d9f7e2a4c0b8d6f3e1a"],
            tree="5d2f0c1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
            ref="refs/heads/main",
            signed=True,
            signature_verified=True,
            signature="good",
            signer="Carol Diaz <carol@example.com>",
        ),
    ),
    EventSpec(
        "features.materialized",
        "feature_set",
        FeaturesMaterialized,
        "A feature pipeline writes a feature set computed from one or more datasets.",
        reducers.upsert_feature_set,
        _example(
            3,
            "features.materialized",
            "2024-05-02T08:40:00Z",
            _PIPELINE,
            "feature_set",
            "fs-cardio-v3",
            name="cardio-features",
            version="3",
            inputs=[_DATASET],
            code_commit=_COMMIT,
        ),
    ),
    EventSpec(
        "run.started",
        "training_run",
        RunStarted,
        "A training orchestrator starts a training or fine-tuning run.",
        reducers.start_run,
        _example(
            4,
            "run.started",
            "2024-05-03T10:00:00Z",
            _PIPELINE,
            "training_run",
            _RUN,
            name="cardio-risk-gbm",
            inputs=[_DATASET],
            feature_sets=["fs-cardio-v3"],
            purpose="cardiac-risk-research",
            code_commit=_COMMIT,
            image="registry.example.com/train@sha256:77aa01",
            parameters={"max_depth": "6", "learning_rate": "0.05"},
        ),
    ),
    EventSpec(
        "run.completed",
        "training_run",
        RunCompleted,
        "A training run finishes, successfully or not, with its final metrics.",
        reducers.complete_run,
        _example(
            5,
            "run.completed",
            "2024-05-03T13:25:00Z",
            _PIPELINE,
            "training_run",
            _RUN,
            status="completed",
            metrics={"auroc": 0.87, "brier": 0.11},
        ),
    ),
    EventSpec(
        "model.registered",
        "model_version",
        ModelRegistered,
        "A model registry records a new model version and its artifact.",
        reducers.register_model,
        _example(
            6,
            "model.registered",
            "2024-05-03T14:00:00Z",
            _PIPELINE,
            "model_version",
            _MODEL,
            name="cardio-risk",
            version="3.1.0",
            training_run=_RUN,
            artifact_digest="sha256:c0ffee",
            intended_use="decision support for cardiology triage; not for diagnosis",
        ),
    ),
    EventSpec(
        "approval.recorded",
        "model_version",
        ApprovalRecorded,
        "An e-signature system records a sign-off (or rejection) on a model version.",
        reducers.record_approval,
        _example(
            7,
            "approval.recorded",
            "2024-05-06T11:30:00Z",
            _QA,
            "model_version",
            _MODEL,
            signer="bob@example.com",
            signer_name="Bob Ito",
            role="qa",
            meaning="approved",
            comment="validation report VR-311 reviewed",
        ),
    ),
    EventSpec(
        "override.recorded",
        "model_version",
        OverrideRecorded,
        "An authorised person grants a justified, signed exception to one rule.",
        reducers.record_override,
        _example(
            8,
            "override.recorded",
            "2024-05-06T12:00:00Z",
            _QA,
            "model_version",
            _MODEL,
            rule="gxp.deploy.requires_two_approvals",
            role="qa",
            justification="second approver on leave; CAPA-2024-17 tracks follow-up",
            expires_at="2024-05-20T00:00:00Z",
        ),
    ),
    EventSpec(
        "model.promotion_requested",
        "model_version",
        ModelPromotionRequested,
        "A user or pipeline asks the registry to move a model version to another stage.",
        None,
        _example(
            9,
            "model.promotion_requested",
            "2024-05-07T09:00:00Z",
            _MLOPS,
            "model_version",
            _MODEL,
            to_stage="production",
        ),
    ),
    EventSpec(
        "model.deploy_requested",
        "model_version",
        ModelDeployRequested,
        "A deployment tool asks to deploy a model version (emitted before deploying).",
        None,
        _example(
            10,
            "model.deploy_requested",
            "2024-05-07T09:05:00Z",
            _MLOPS,
            "model_version",
            _MODEL,
            target={"environment": "production", "endpoint": "cardio-risk", "region": "eu-west-1"},
        ),
    ),
    EventSpec(
        "model.deployed",
        "model_version",
        ModelDeployed,
        "A deployment tool reports that a model version is now serving in an environment.",
        reducers.record_deployment,
        _example(
            11,
            "model.deployed",
            "2024-05-07T09:20:00Z",
            _MLOPS,
            "model_version",
            _MODEL,
            target={"environment": "production", "endpoint": "cardio-risk", "region": "eu-west-1"},
        ),
    ),
    EventSpec(
        "prediction.batch_completed",
        "prediction_batch",
        PredictionBatchCompleted,
        "A batch-scoring job finishes scoring a dataset with a model version.",
        reducers.upsert,
        _example(
            12,
            "prediction.batch_completed",
            "2024-06-01T02:10:00Z",
            _MLOPS,
            "prediction_batch",
            "pb-2024-06-01-nightly",
            model_version=_MODEL,
            endpoint="cardio-risk",
            input_dataset=_DATASET,
            row_count=5120,
        ),
    ),
    EventSpec(
        "drift.evaluated",
        "model_version",
        DriftEvaluated,
        "A monitoring job computes a drift statistic for one feature of a deployed model.",
        reducers.record_drift,
        _example(
            13,
            "drift.evaluated",
            "2024-06-02T03:00:00Z",
            {"id": "svc-monitor", "roles": ["monitoring"]},
            "model_version",
            _MODEL,
            monitor="nightly-psi",
            feature="systolic_bp",
            metric="psi",
            value=0.27,
            threshold=0.2,
            breached=True,
            baseline="ds-ehr-cardio-2024q1",
        ),
    ),
    EventSpec(
        "drift.response_recorded",
        "model_version",
        DriftResponseRecorded,
        "A person records a signed decision on a drift breach: accept it as acceptable"
        " variance (justified, with an expiry) or require retraining.",
        reducers.record_drift_response,
        _example(
            14,
            "drift.response_recorded",
            "2024-06-03T09:00:00Z",
            _QA,
            "model_version",
            _MODEL,
            monitor="nightly-psi",
            feature="systolic_bp",
            metric="psi",
            decision="accept",
            justification="seasonal shift within the validated range; see DEV-2024-031",
            role="qa",
            expires_at="2024-07-03T00:00:00Z",
        ),
    ),
    EventSpec(
        "review.escalated",
        "model_version",
        ReviewEscalated,
        "A review item passed its deadline without enough signatures; the engine escalates"
        " it (`policyengine review escalate`).",
        None,
        _example(
            15,
            "review.escalated",
            "2024-05-09T12:00:00Z",
            {"id": "policyengine", "roles": ["system"]},
            "model_version",
            _MODEL,
            review="rv-3f2a9c1d",
            rule="gxp.oversight.production_deploy_two_person",
            roles=["qa", "domain_expert"],
            deadline="2024-05-09T11:30:00Z",
            pending_event="evt-0011",
        ),
    ),
)

EVENT_TYPES: Mapping[str, EventSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def new_entity(kind: str, id: str) -> dict[str, Any]:
    """Default state of an entity no event has touched yet (every field present)."""
    return ENTITY_KINDS[kind](id=id).model_dump()


def parse_event(obj: Any) -> dict[str, Any]:
    """Validate a decoded JSON event and return the plain dict the evaluator consumes.

    The result is `{"id", "type", "time", "actor", "subject", "attributes"}` with `time` an
    aware UTC `datetime` and `attributes` holding every field of the type's model (defaults
    filled). All problems found are reported in one `EventError`.
    """
    if not isinstance(obj, Mapping):
        raise EventError(f"an event must be a JSON object, not {_json_type(obj)}")
    problems: list[tuple[str, str]] = []
    envelope: Event | None = None
    try:
        envelope = Event.model_validate(obj)
    except ValidationError as exc:
        problems += validation_problems(exc, Event)

    type_name = obj.get("type")
    spec = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if isinstance(type_name, str) and spec is None:
        hint = suggestion(type_name, EVENT_TYPES)
        # Most fundamental problem, so it leads: nothing else can be checked without a type.
        problems.insert(0, ("type", f"unknown event type `{type_name}`{hint}"))

    attributes: BaseModel | None = None
    if spec is not None:
        subject = obj.get("subject")
        kind = subject.get("kind") if isinstance(subject, Mapping) else None
        if isinstance(kind, str) and kind != spec.subject_kind:
            problems.append(
                (
                    "subject.kind",
                    f"`subject.kind`: `{spec.name}` events are about a `{spec.subject_kind}`, "
                    f"not a `{kind}`",
                )
            )
        raw = obj.get("attributes", {})
        if isinstance(raw, Mapping):  # otherwise the envelope already reported it
            try:
                attributes = spec.attributes.model_validate(raw)
            except ValidationError as exc:
                problems += validation_problems(exc, spec.attributes, "attributes")

    if problems:
        raise EventError.from_problems(problems)
    if envelope is None or attributes is None:  # unreachable: kept for the type checker
        raise EventError("invalid event")
    return {
        "id": envelope.id,
        "type": envelope.type,
        "time": envelope.time,
        "actor": envelope.actor.model_dump(),
        "subject": {"kind": envelope.subject.kind, "id": envelope.subject.id},
        "attributes": attributes.model_dump(),
    }


def entity_from_attributes(kind: str, id: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Validate fixture state such as `given dataset "ds-1" {...}` into a full state dict."""
    model = ENTITY_KINDS.get(kind)
    if model is None:
        raise EventError(f"unknown entity kind `{kind}`{suggestion(kind, ENTITY_KINDS)}")
    if "id" in attrs and attrs["id"] != id:
        raise EventError(f"`id`: conflicts with the entity id `{id}`", field="id")
    try:
        return model.model_validate({**attrs, "id": id}).model_dump()
    except ValidationError as exc:
        raise EventError.from_validation(exc, model) from None


def _json_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return f"a `{type(value).__name__}`"
