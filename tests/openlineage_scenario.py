"""OpenLineage events made with the real `openlineage-python` client (its event and facet
classes, serialised by its own `Serde`), for the OpenLineage adapter's tests.

A synthetic clinical-ML pipeline: a data steward registers identifiable cardiology EHR data
(PHI); an ETL job de-identifies it into a feature table; a training run reads the features
for an allowed purpose and writes a model and an evaluation table; a second run tries to
train on the raw EHR data for a purpose nobody allowed. The custom facets are defined the
way a producer would define them: attrs subclasses of the client's facet base classes.
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    RunFacet,
    column_lineage_dataset,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    execution_parameters_run,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    schema_dataset,
    source_code_location_job,
)
from openlineage.client.serde import Serde

CUSTOM = "urn:policyengine:openlineage-facets:1-0-0#/$defs/"

PRODUCER = "https://github.com/example/helix-pipelines/tree/2.3.0/lineage"
DB = "postgres://clinical-db.example:5432"
LAKE = "s3://helix-ml"
EHR = "ehr.cardiology_visits"
FEATURES = "features.cardio_deid"
EHR_VERSION = "2024q1"
COMMIT = "4be1d07c9a3e5f8b2d6a1c0e7f9b3d5a8c2e4f60"
IMAGE = "registry.example.com/train@sha256:" + "77aa01" * 10 + "abcd"
MODEL_DIGEST = "sha256:" + "c0ffee" * 10 + "abcd"
EHR_DIGEST = "sha256:" + "9f2c4e" * 10 + "0123"
FEATURES_DIGEST = "sha256:" + "5eed00" * 10 + "4567"

RUN_ETL = "0190a0f0-0000-7000-8000-000000000001"
RUN_TRAIN = "0190a0f0-0000-7000-8000-000000000002"
RUN_BAD = "0190a0f0-0000-7000-8000-000000000003"
PARENT = "0190a0f0-0000-7000-8000-0000000000ff"

PURPOSE = "cardiac-risk-research"


@attr.define(kw_only=True)
class GovernanceFacet(DatasetFacet):
    """`policyengine_governance`: classification and the limits on use."""

    classification: str
    allowed_purposes: list[str] | None = None
    consent_scope: list[str] | None = None
    region: str | None = None
    deidentified: bool | None = None
    deidentification_method: str | None = None
    quasi_identifiers: list[str] | None = None
    digest: str | None = None
    owner: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return CUSTOM + "GovernanceDatasetFacet"


@attr.define(kw_only=True)
class TrainingRunFacet(RunFacet):
    """`policyengine_training` on a run."""

    purpose: str | None = None
    parameters: dict[str, Any] | None = None
    image: str | None = None
    started_by: str | None = None
    metrics: dict[str, float] | None = None

    @staticmethod
    def _get_schema() -> str:
        return CUSTOM + "TrainingRunFacet"


@attr.define(kw_only=True)
class TrainingJobFacet(JobFacet):
    """`policyengine_training` on a job: defaults for all its runs."""

    purpose: str | None = None
    image: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return CUSTOM + "TrainingJobFacet"


@attr.define(kw_only=True)
class ModelFacet(DatasetFacet):
    """`policyengine_model` on an output: this output is a model artifact."""

    name: str
    version: str
    artifact_digest: str | None = None
    intended_use: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return CUSTOM + "ModelDatasetFacet"


def _fields(*names: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="VARCHAR") for n in names]
    )


def ehr_facets() -> dict[str, Any]:
    return {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=EHR_VERSION),
        "schema": _fields("patient_id", "zip3", "birth_year", "systolic_bp", "outcome"),
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name="clinical-db", uri=DB),
        "ownership": ownership_dataset.OwnershipDatasetFacet(
            owners=[
                ownership_dataset.Owner(name="user:alice@example.com", type="DATA_OWNER"),
                ownership_dataset.Owner(name="team:clinical-data", type="MAINTAINER"),
            ]
        ),
        "policyengine_governance": GovernanceFacet(
            classification="PHI",
            allowed_purposes=[PURPOSE],
            consent_scope=["research"],
            region="eu-west-1",
            deidentified=False,
            quasi_identifiers=["zip3", "birth_year"],
            digest=EHR_DIGEST,
        ),
    }


def features_facets() -> dict[str, Any]:
    source = column_lineage_dataset.InputField
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            column: column_lineage_dataset.Fields(
                inputFields=[source(namespace=DB, name=EHR, field=column)]
            )
            for column in ("zip3", "birth_year", "systolic_bp", "outcome")
        }
    )
    return {
        "schema": _fields("zip3", "birth_year", "systolic_bp", "outcome"),
        "columnLineage": lineage,
        "policyengine_governance": GovernanceFacet(
            classification="PHI",
            allowed_purposes=[PURPOSE],
            consent_scope=["research"],
            region="eu-west-1",
            deidentified=True,
            deidentification_method="hipaa-safe-harbor",
            quasi_identifiers=["zip3", "birth_year"],
            digest=FEATURES_DIGEST,
            owner="alice@example.com",
        ),
    }


def ehr_registered(time: str = "2024-05-01T09:00:00Z") -> DatasetEvent:
    """The data steward's catalogue registers the raw EHR extract."""
    dataset = StaticDataset(namespace=DB, name=EHR, facets=ehr_facets())
    return DatasetEvent(eventTime=time, producer=PRODUCER, dataset=dataset)


def ehr_input() -> InputDataset:
    version = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=EHR_VERSION)
    return InputDataset(namespace=DB, name=EHR, facets={"version": version})


def deidentify_run(state: RunState, time: str) -> RunEvent:
    """The ETL job that writes the de-identified feature table."""
    outputs = []
    if state == RunState.COMPLETE:
        stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=182340)
        outputs = [
            OutputDataset(
                namespace=DB,
                name=FEATURES,
                facets=features_facets(),
                outputFacets={"outputStatistics": stats},
            )
        ]
    return RunEvent(
        eventType=state,
        eventTime=time,
        producer=PRODUCER,
        run=Run(runId=RUN_ETL),
        job=Job(namespace="airflow", name="clinical.deidentify_cardio"),
        inputs=[ehr_input()],
        outputs=outputs,
    )


def training_job(purpose: str | None = None) -> Job:
    location = source_code_location_job.SourceCodeLocationJobFacet(
        type="git",
        url="https://git.example.com/helix/cardio-risk/blob/main/train.py",
        repoUrl="https://git.example.com/helix/cardio-risk.git",
        version=COMMIT,
    )
    facets: dict[str, Any] = {"sourceCodeLocation": location}
    if purpose is not None:
        facets["policyengine_training"] = TrainingJobFacet(purpose=purpose, image=IMAGE)
    return Job(namespace="ml", name="cardio_risk.train", facets=facets)


def training_start(time: str = "2024-05-03T10:00:00Z") -> RunEvent:
    """Training reads the de-identified features for the allowed purpose."""
    params = execution_parameters_run.ExecutionParametersRunFacet(
        parameters=[execution_parameters_run.ExecutionParameter(key="seed", value="42")]
    )
    training = TrainingRunFacet(
        parameters={"max_depth": 6, "learning_rate": 0.05, "early_stopping": True},
        started_by="svc-training@example.com",
    )
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=PARENT),
        job=parent_run.Job(namespace="airflow", name="cardio_risk_dag"),
    )
    return RunEvent(
        eventType=RunState.START,
        eventTime=time,
        producer=PRODUCER,
        run=Run(
            runId=RUN_TRAIN,
            facets={
                "executionParameters": params,
                "policyengine_training": training,
                "parent": parent,
            },
        ),
        job=training_job(PURPOSE),
        inputs=[InputDataset(namespace=DB, name=FEATURES, facets=features_facets())],
    )


def training_complete(time: str = "2024-05-03T13:25:00+02:00") -> RunEvent:
    """The run completes with a model artifact and an evaluation table."""
    training = TrainingRunFacet(
        metrics={"auroc": 0.87, "brier": 0.11}, started_by="svc-training@example.com"
    )
    model = ModelFacet(
        name="cardio-risk",
        version="1.0.0",
        artifact_digest=MODEL_DIGEST,
        intended_use="decision support for cardiology triage; not for diagnosis",
    )
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=time,
        producer=PRODUCER,
        run=Run(runId=RUN_TRAIN, facets={"policyengine_training": training}),
        job=training_job(PURPOSE),
        inputs=[InputDataset(namespace=DB, name=FEATURES)],
        outputs=[
            OutputDataset(
                namespace=LAKE,
                name="models/cardio-risk/1.0.0/model.pkl",
                facets={"policyengine_model": model},
            ),
            OutputDataset(namespace=LAKE, name="reports/cardio-risk/1.0.0/eval.parquet"),
        ],
    )


def misuse_start(time: str = "2024-05-04T08:00:00Z") -> RunEvent:
    """A run that would train on raw, identifiable EHR data for an unlisted purpose."""
    training = TrainingRunFacet(purpose="marketing-analytics", started_by="eve@example.com")
    return RunEvent(
        eventType=RunState.START,
        eventTime=time,
        producer=PRODUCER,
        run=Run(runId=RUN_BAD, facets={"policyengine_training": training}),
        job=Job(namespace="ml", name="upsell.train"),
        inputs=[ehr_input()],
    )


def misuse_failed(time: str = "2024-05-04T08:05:00Z") -> RunEvent:
    error = error_message_run.ErrorMessageRunFacet(
        message="access to ehr.cardiology_visits revoked", programmingLanguage="PYTHON"
    )
    training = TrainingRunFacet(purpose="marketing-analytics")
    return RunEvent(
        eventType=RunState.FAIL,
        eventTime=time,
        producer=PRODUCER,
        run=Run(runId=RUN_BAD, facets={"policyengine_training": training, "errorMessage": error}),
        job=Job(namespace="ml", name="upsell.train"),
        inputs=[ehr_input()],
    )


def etl_job_definition(time: str = "2024-05-01T08:00:00Z") -> JobEvent:
    """A JobEvent: the static lineage of the de-identification job."""
    return JobEvent(
        eventTime=time,
        producer=PRODUCER,
        job=Job(namespace="airflow", name="clinical.deidentify_cardio"),
        inputs=[ehr_input()],
        outputs=[OutputDataset(namespace=DB, name=FEATURES)],
    )


def scenario() -> list[Any]:
    """The whole pipeline, in the order the events happen."""
    return [
        ehr_registered(),
        deidentify_run(RunState.START, "2024-05-02T08:00:00Z"),
        deidentify_run(RunState.COMPLETE, "2024-05-02T08:40:00Z"),
        training_start(),
        training_complete(),
        misuse_start(),
        misuse_failed(),
    ]


def as_dict(event: Any) -> dict[str, Any]:
    """The event as the client serialises it (the JSON its transports send)."""
    return Serde.to_dict(event)
