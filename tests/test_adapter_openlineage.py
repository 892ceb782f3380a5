"""OpenLineage adapter: validation against the 2-0-2 schemas, the mapping to canonical events,
`eventTime` strictness, sources (files, JSON Lines, folders) and deterministic ids.

Inputs are the spec's published example events (`tests/fixtures/openlineage/examples`) and
events built and serialised by the real `openlineage-python` client
(`tests/openlineage_scenario.py`)."""

from __future__ import annotations

import copy
import filecmp
import json
from pathlib import Path
from typing import Any

import openlineage_scenario as S
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.file import FileConfig, FileTransport
from policyengine_openlineage import (
    FACETS_ENV,
    NAIVE_TIME_ENV,
    SCHEMA_DIR,
    OpenLineageAdapter,
    OpenLineageError,
    Options,
    Translator,
    dataset_id,
    parse_event_time,
)

from policyengine.adapter import AdapterError, Located, get_adapter
from policyengine.events import parse_event

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openlineage"
EXAMPLES = FIXTURES / "examples"

EHR_ID = f"{S.DB}/{S.EHR}@{S.EHR_VERSION}"
FEATURES_ID = f"{S.DB}/{S.FEATURES}"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def translate(event: Any, **options: Any) -> list[dict[str, Any]]:
    out = Translator(Options(**options)).translate(event)
    for e in out:
        parse_event(e)  # every translation is a valid canonical event
    return out


def failure(event: Any, **options: Any) -> OpenLineageError:
    with pytest.raises(OpenLineageError) as info:
        Translator(Options(**options)).translate(event)
    return info.value


def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        found.setdefault(e["type"], []).append(e)
    return found


# ------------------------------------------------------------------------ schemas and examples


def test_shipped_schemas_are_the_published_ones() -> None:
    assert filecmp.cmp(SCHEMA_DIR / "OpenLineage.json", FIXTURES / "OpenLineage.json", False)
    shipped = sorted(p.name for p in (SCHEMA_DIR / "facets").glob("*.json"))
    published = sorted(p.name for p in (FIXTURES / "facets").glob("*.json"))
    assert shipped == published and len(shipped) == 38
    for name in shipped:
        assert filecmp.cmp(SCHEMA_DIR / "facets" / name, FIXTURES / "facets" / name, False)
    assert filecmp.cmp(SCHEMA_DIR / "LICENSE", FIXTURES / "LICENSE", False)


INVALID = [
    ("event_no_run_id", "run.runId", "field required"),
    ("event_invalid_run_facet", "run.facets.parent.run.runId", "field required"),
    ("event_invalid_job_facet", "job.facets.ownership.owners[0].name", "field required"),
    ("event_invalid_dataset_facet", "outputs[0].facets.ownership.owners[0].name", "required"),
    (
        "event_invalid_input_dataset_facet",
        "inputs[0].inputFacets.dataQualityMetrics.columnMetrics",
        "field required",
    ),
    (
        "event_invalid_output_dataset_facet",
        "outputs[0].outputFacets.outputStatistics.rowCount",
        'expected an integer, got `"wrong"`',
    ),
]


@pytest.mark.parametrize(("name", "field", "message"), INVALID)
def test_invalid_spec_examples_name_the_field(name: str, field: str, message: str) -> None:
    err = failure(example(name))
    assert err.field == field
    assert message in err.message
    located = err.at(f"{name}.json")
    assert located.render() == f"{name}.json: `{field}`: {err.message}"


def test_simple_example_is_an_etl_run_whose_output_derives_from_its_inputs() -> None:
    (event,) = translate(example("event_simple"))
    assert event["type"] == "dataset.registered"
    assert event["time"] == "2020-12-28T09:52:00.001Z"  # +10:00 normalised to UTC
    output = "my-datasource-namespace/instance.schema.output-1"
    assert event["subject"] == {"kind": "dataset", "id": output}
    assert event["actor"] == {"id": "https://github.com/OpenLineage/OpenLineage/blob/v1-0-0/client"}
    attrs = event["attributes"]
    assert attrs["derived_from"] == [
        "my-datasource-namespace/instance.schema.input-1",
        "my-datasource-namespace/instance.schema.input-2",
    ]
    assert attrs["labels"] == {
        "openlineage.job": "my-scheduler-namespace/myjob",
        "openlineage.run": "41fb5137-f0fd-4ee5-ba5c-56f8571d1bd7",
    }


def test_full_example_fails_its_input_facet_schema_unless_only_read_facets_are_checked() -> None:
    # `dataQualityMetrics` lacks `columnMetrics`, which its 2-0-2 schema requires.
    err = failure(example("event_full"))
    assert err.field == "inputs[0].inputFacets.dataQualityMetrics.columnMetrics"
    assert err.hint is not None and f"{FACETS_ENV}=interpreted" in err.hint
    (event,) = translate(example("event_full"), facets="interpreted")
    attrs = event["attributes"]
    # Reads from itself (the same table in and out): no self-derivation.
    assert event["subject"]["id"] == "my-datasource-namespace/instance.schema.table"
    assert "derived_from" not in attrs
    assert attrs["uri"] == "string"  # dataSource.uri, as the example has it
    assert attrs["labels"]["openlineage.datasource"] == "string"
    assert attrs["labels"]["openlineage.parent_run"] == "3f5e83fa-3480-44ff-99c5-ff943904e5e8"
    assert attrs["labels"]["openlineage.parent_job"] == "my-scheduler-namespace/myjob.mytask"


def test_interpreted_mode_still_checks_the_facets_it_reads() -> None:
    for name, field, _message in INVALID:
        facet = field.split(".")[2] if "acets." in field else None
        if facet in ("ownership", "dataQualityMetrics") and field.startswith(("job", "inputs")):
            assert translate(example(name), facets="interpreted") == []  # not read, not checked
        else:
            assert failure(example(name), facets="interpreted").field == field


@pytest.mark.parametrize("name", ["serde_example_run_event", "serde_example_job_event",
                                  "serde_example_dataset_event"])  # fmt: skip
def test_event_time_without_offset_is_rejected_with_a_hint(name: str) -> None:
    err = failure(example(name))
    assert err.field == "eventTime"
    assert "no UTC offset" in err.message
    assert err.hint is not None and f"{NAIVE_TIME_ENV}=utc" in err.hint


def test_event_time_without_offset_reads_as_utc_on_request_and_says_so() -> None:
    (dataset,) = translate(example("serde_example_dataset_event"), naive_time="utc")
    assert dataset["time"] == "2021-11-03T10:53:52.427343Z"
    assert dataset["subject"]["id"] == "openlineage/name"
    assert dataset["attributes"]["labels"] == {
        "openlineage.naive_event_time": "2021-11-03T10:53:52.427343"
    }
    (job_output,) = translate(example("serde_example_job_event"), naive_time="utc")
    assert job_output["subject"]["id"] == "openlineage/dataset_b"
    assert job_output["attributes"]["derived_from"] == ["openlineage/dataset_a"]
    # A START of a job that is not a training job registers nothing.
    assert translate(example("serde_example_run_event"), naive_time="utc") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-03T10:00:00Z", "2024-05-03T10:00:00Z"),
        ("2024-05-03t12:00:00.5+02:00", "2024-05-03T10:00:00.500Z"),
        ("2024-05-03T10:00:00.123456789Z", "2024-05-03T10:00:00.123456Z"),  # Java nanos
        ("2024-05-03 05:30:00-04:30", "2024-05-03T10:00:00Z"),
    ],
)
def test_event_times_are_normalised_to_utc(text: str, expected: str) -> None:
    assert parse_event_time(text) == (expected, False)


BAD_TIMES = [
    "2024-05-03",
    "2024-05-03T10:00Z",
    "2024-02-30T10:00:00Z",
    "2024-05-03T10:00:00+0200",
    "2024-05-03T10:00:00+24:00",
    "0001-01-01T00:00:00+02:00",
]


@pytest.mark.parametrize("text", BAD_TIMES)
def test_malformed_event_times_are_errors(text: str) -> None:
    event = example("event_simple")
    event["eventTime"] = text
    assert failure(event, naive_time="utc").field == "eventTime"


def test_non_events_and_ambiguous_events_are_refused() -> None:
    assert failure([1, 2]).message == "an OpenLineage event must be a JSON object"
    assert "not an OpenLineage event" in failure({"eventTime": "x"}).message
    both = {**example("serde_example_dataset_event"), "eventTime": "2021-11-03T10:53:52Z"}
    both["job"] = {"namespace": "n", "name": "j"}  # a JobEvent and a DatasetEvent at once
    assert "more than one" in failure(both).message
    bad_uuid = example("event_simple")
    bad_uuid["run"]["runId"] = "run-1"
    err = failure(bad_uuid)
    assert (err.field, err.message) == ("run.runId", 'expected a UUID (got `"run-1"`)')


def test_every_problem_is_reported_first_one_leading() -> None:
    event = example("event_simple")
    del event["producer"]
    event["job"]["name"] = 7
    err = failure(event)
    assert [p.path for p in err.problems] == ["job.name", "producer"]
    assert err.field == "job.name" and "and 1 more problem: `producer`" in err.message


# ------------------------------------------------------------------------ the client's events


def test_dataset_event_registers_governance_metadata() -> None:
    (event,) = translate(S.as_dict(S.ehr_registered()))
    assert event["type"] == "dataset.registered"
    assert event["subject"] == {"kind": "dataset", "id": EHR_ID}
    assert event["actor"] == {"id": S.PRODUCER}
    attrs = event["attributes"]
    assert attrs == {
        "name": f"{S.DB}/{S.EHR}",
        "version": S.EHR_VERSION,
        "uri": S.DB,
        "owner": "user:alice@example.com",
        "classification": "PHI",
        "allowed_purposes": [S.PURPOSE],
        "consent_scope": ["research"],
        "region": "eu-west-1",
        "deidentified": False,
        "quasi_identifiers": ["zip3", "birth_year"],
        "digest": S.EHR_DIGEST,
        "labels": {
            "openlineage.datasource": "clinical-db",
            "openlineage.owners": "user:alice@example.com (DATA_OWNER),"
            " team:clinical-data (MAINTAINER)",
        },
    }


def test_etl_run_registers_its_output_derived_from_input_and_column_lineage() -> None:
    assert translate(S.as_dict(S.deidentify_run(RunState.START, "2024-05-02T08:00:00Z"))) == []
    (event,) = translate(S.as_dict(S.deidentify_run(RunState.COMPLETE, "2024-05-02T08:40:00Z")))
    attrs = event["attributes"]
    assert event["subject"]["id"] == FEATURES_ID
    # The input is versioned; column lineage names the same table without a version and is
    # resolved to the input's versioned id, so there is one parent, not two.
    assert attrs["derived_from"] == [EHR_ID]
    assert attrs["deidentified"] is True
    assert attrs["deidentification_method"] == "hipaa-safe-harbor"
    assert attrs["owner"] == "alice@example.com"
    assert attrs["row_count"] == 182340
    assert attrs["labels"] == {
        "openlineage.job": "airflow/clinical.deidentify_cardio",
        "openlineage.run": S.RUN_ETL,
    }


def test_training_start_becomes_run_started() -> None:
    events = by_type(translate(S.as_dict(S.training_start())))
    assert [e["subject"]["id"] for e in events["dataset.registered"]] == [FEATURES_ID]
    (started,) = events["run.started"]
    assert started["subject"] == {"kind": "training_run", "id": S.RUN_TRAIN}
    assert started["actor"] == {"id": "svc-training@example.com"}
    attrs = started["attributes"]
    assert attrs["name"] == "ml/cardio_risk.train"
    assert attrs["inputs"] == [FEATURES_ID]
    assert attrs["purpose"] == S.PURPOSE  # from the job facet
    assert attrs["code_commit"] == S.COMMIT
    assert attrs["image"] == S.IMAGE
    assert attrs["parameters"] == {
        "seed": "42",
        "max_depth": "6",
        "learning_rate": "0.05",
        "early_stopping": "true",
    }
    assert attrs["labels"] == {
        "openlineage.job": "ml/cardio_risk.train",
        "openlineage.parent_job": "airflow/cardio_risk_dag",
        "openlineage.parent_run": S.PARENT,
        "openlineage.repo": "https://git.example.com/helix/cardio-risk.git",
        "openlineage.source_url": "https://git.example.com/helix/cardio-risk/blob/main/train.py",
    }


def test_training_complete_becomes_run_completed_model_and_derived_outputs() -> None:
    events = translate(S.as_dict(S.training_complete()))
    types = [e["type"] for e in events]
    assert types == ["run.completed", "dataset.registered", "model.registered"]
    completed, evaluation, model = events
    assert completed["time"] == "2024-05-03T11:25:00Z"
    metrics = {"auroc": 0.87, "brier": 0.11}
    assert completed["attributes"] == {"status": "completed", "metrics": metrics}
    assert evaluation["subject"]["id"] == f"{S.LAKE}/reports/cardio-risk/1.0.0/eval.parquet"
    assert evaluation["attributes"]["derived_from"] == [FEATURES_ID]
    assert model["subject"] == {"kind": "model_version", "id": "cardio-risk@1.0.0"}
    assert model["actor"] == {"id": "svc-training@example.com"}
    assert model["attributes"] == {
        "name": "cardio-risk",
        "version": "1.0.0",
        "training_run": S.RUN_TRAIN,
        "artifact_digest": S.MODEL_DIGEST,
        "intended_use": "decision support for cardiology triage; not for diagnosis",
        "labels": {
            "openlineage.artifact": f"{S.LAKE}/models/cardio-risk/1.0.0/model.pkl",
            "openlineage.job": "ml/cardio_risk.train",
        },
    }


def test_failed_run_is_completed_as_failed_and_registers_no_outputs() -> None:
    (failed,) = translate(S.as_dict(S.misuse_failed()))
    assert failed["type"] == "run.completed"
    assert failed["attributes"]["status"] == "failed"
    assert failed["attributes"]["labels"] == {
        "openlineage.error": "access to ehr.cardiology_visits revoked",
        "openlineage.event_type": "FAIL",
    }
    aborted = S.as_dict(S.training_complete())
    aborted["eventType"] = "ABORT"
    (event,) = translate(aborted)
    assert event["attributes"]["status"] == "failed"


def test_a_rewritten_input_keeps_its_governance() -> None:
    # An incremental job: reads the governed feature table and rewrites it, the output
    # stating no governance of its own.
    event = S.as_dict(S.deidentify_run(RunState.COMPLETE, "2024-05-02T08:40:00Z"))
    (table,) = event["outputs"]
    event["inputs"] = [{"namespace": S.DB, "name": S.FEATURES, "facets": table["facets"]}]
    event["outputs"] = [{"namespace": S.DB, "name": S.FEATURES, "facets": {}}]
    (registered,) = translate(event)  # the input is registered once, as the output
    attrs = registered["attributes"]
    assert registered["subject"]["id"] == FEATURES_ID and "derived_from" not in attrs
    assert (attrs["classification"], attrs["deidentified"]) == ("PHI", True)
    event["inputs"][0]["facets"]["policyengine_governance"]["quasi_identifiers"] = ["zip9"]
    assert failure(event).field == "inputs[0].facets.policyengine_governance.quasi_identifiers[0]"


def test_job_event_registers_outputs_derived_from_inputs() -> None:
    (event,) = translate(S.as_dict(S.etl_job_definition()))
    assert event["subject"]["id"] == FEATURES_ID
    assert event["attributes"]["derived_from"] == [EHR_ID]
    job = "airflow/clinical.deidentify_cardio"
    assert event["attributes"]["labels"] == {"openlineage.job": job}


def test_training_run_needs_a_purpose() -> None:
    event = S.as_dict(S.misuse_start())
    del event["run"]["facets"]["policyengine_training"]["purpose"]
    err = failure(event)
    assert err.field == "run.facets.policyengine_training.purpose"
    assert err.hint is not None and "allowed purposes" in err.hint
    # A run writing a model is a training run even without the facet.
    start = S.as_dict(S.training_complete())
    start["eventType"] = "START"
    start["job"]["facets"].pop("policyengine_training")
    start["run"]["facets"].pop("policyengine_training")
    err = failure(start)
    assert err.field == "run.facets.policyengine_training"
    assert "writes a model" in err.message


def test_custom_facets_are_checked_field_by_field() -> None:
    event = S.as_dict(S.ehr_registered())
    governance = event["dataset"]["facets"]["policyengine_governance"]
    governance["clasification"] = governance.pop("classification")
    err = failure(event)
    assert [(p.path, p.message) for p in err.problems] == [
        (
            "dataset.facets.policyengine_governance.clasification",
            "unknown field; did you mean `classification`?",
        ),
        ("dataset.facets.policyengine_governance.classification", "field required"),
    ]
    governance["classification"] = "secret"
    del governance["clasification"]
    assert "must be one of `public`" in failure(event).message
    training = S.as_dict(S.training_start())
    training["run"]["facets"]["policyengine_training"]["parameters"]["layers"] = [64, 32]
    err = failure(training)
    assert err.field == "run.facets.policyengine_training.parameters.layers"


def test_quasi_identifiers_must_be_schema_fields() -> None:
    event = S.as_dict(S.ehr_registered())
    event["dataset"]["facets"]["policyengine_governance"]["quasi_identifiers"] = ["zip3", "zip5"]
    err = failure(event)
    assert err.field == "dataset.facets.policyengine_governance.quasi_identifiers[1]"
    assert err.hint is not None and "`zip3`" in err.hint


def test_deleted_facets_are_ignored() -> None:
    event = S.as_dict(S.ehr_registered())
    event["dataset"]["facets"]["policyengine_governance"] = {
        "_producer": S.PRODUCER,
        "_schemaURL": S.CUSTOM + "GovernanceDatasetFacet",
        "_deleted": True,
    }
    (registered,) = translate(event)
    assert "classification" not in registered["attributes"]


def test_ids_are_deterministic_and_distinct() -> None:
    events = [S.as_dict(e) for e in S.scenario()]
    first = [translate(e) for e in events]
    second = [translate(copy.deepcopy(e)) for e in events]
    assert first == second
    ids = [e["id"] for batch in first for e in batch]
    assert len(ids) == len(set(ids)) and all(i.startswith("ol-") for i in ids)
    # A different event (here: a later time) gives different ids.
    moved = S.as_dict(S.ehr_registered("2024-05-01T09:00:01Z"))
    assert translate(moved)[0]["id"] != first[0][0]["id"]
    assert dataset_id("ns", "t") == "ns/t" and dataset_id("ns", "t", "3") == "ns/t@3"


# ------------------------------------------------------------------------ sources


def test_reads_the_client_file_transport_output(tmp_path: Path) -> None:
    log = tmp_path / "lineage.json"
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(log), append=True)),
        config={"facets": {"source_code_location": {"disabled": True}}},
    )
    for event in S.scenario():
        client.emit(event)
    items = list(OpenLineageAdapter(Options()).events(str(log)))
    assert all(isinstance(i, Located) for i in items)
    located = [i for i in items if isinstance(i, Located)]
    assert [i.location for i in located][:2] == [f"{log}:1", f"{log}:3"]
    assert [i.event["type"] for i in located] == [
        "dataset.registered",  # the EHR extract
        "dataset.registered",  # the de-identified features (ETL COMPLETE)
        "dataset.registered",  # the features again, as a governed training input
        "run.started",
        "run.completed",
        "dataset.registered",  # the evaluation table
        "model.registered",
        "run.started",  # the misuse run
        "run.completed",
    ]


def test_reads_arrays_folders_and_reports_bad_records(tmp_path: Path) -> None:
    events = [S.as_dict(e) for e in S.scenario()]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "01-ehr.json").write_text(json.dumps(events[0], indent=2))
    (tmp_path / "a" / "02-runs.json").write_text(json.dumps(events[1:3]))
    lines = [json.dumps(e) for e in events[3:]]
    lines.insert(1, "{not json")
    lines.insert(2, json.dumps(example("event_no_run_id")))
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "notes.txt").write_text("ignored")
    items = list(get_adapter("openlineage").events(str(tmp_path)))
    errors = [i for i in items if isinstance(i, AdapterError)]
    assert [e.render() for e in errors] == [
        f"{tmp_path / 'b.jsonl'}:2: invalid JSON: Expecting property name enclosed in double"
        " quotes (column 2)",
        f"{tmp_path / 'b.jsonl'}:3: `run.runId`: field required",
    ]
    located = [i for i in items if isinstance(i, Located)]
    assert located[0].location == str(tmp_path / "a" / "01-ehr.json")
    assert located[1].location == str(tmp_path / "a" / "02-runs.json") + "[1]"
    assert len(located) == 9


def test_missing_and_empty_sources_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="no such file"):
        list(OpenLineageAdapter().events(str(tmp_path / "nope.json")))
    with pytest.raises(AdapterError, match=r"no `\.json` or `\.jsonl` files"):
        list(OpenLineageAdapter().events(str(tmp_path)))


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Options.from_env({}) == Options()
    assert Options.from_env({NAIVE_TIME_ENV: "UTC", FACETS_ENV: "interpreted"}) == Options(
        naive_time="utc", facets="interpreted"
    )
    with pytest.raises(AdapterError, match=NAIVE_TIME_ENV):
        Options.from_env({NAIVE_TIME_ENV: "local"})
    with pytest.raises(ValueError, match="facets"):
        Options(facets="some")  # type: ignore[arg-type]
    monkeypatch.setenv(NAIVE_TIME_ENV, "utc")
    items = list(OpenLineageAdapter().events(str(EXAMPLES / "serde_example_dataset_event.json")))
    assert isinstance(items[0], Located)
