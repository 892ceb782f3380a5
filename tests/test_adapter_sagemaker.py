"""SageMaker adapter: documented EventBridge shapes, time formats, bad input, Model Monitor."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from policyengine_sagemaker import (
    EndpointInfo,
    Identity,
    SageMakerAdapter,
    SageMakerConfig,
    drift_results,
    normalise_time,
    read_baseline,
    read_report,
)

from policyengine.adapter import AdapterError, Located, get_adapter
from policyengine.adapter_kit import BadField
from policyengine.events import parse_event

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sagemaker"
DOCS = FIXTURES / "docs"
SCENARIO = FIXTURES / "scenario"
REPORT = SCENARIO / "11-monitoring-execution"
PACKAGE = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/hepatox-screen/3"
JOB = (
    "arn:aws:sagemaker:eu-west-1:111122223333:training-job/"
    "pipelines-k3x9q2m7ab1c-trainhepatox-qw3rty5uio"
)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def run(source: Path | str, config: SageMakerConfig | None = None) -> list[Any]:
    return list(SageMakerAdapter(config or SageMakerConfig()).events(str(source)))


def events_of(items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        assert not isinstance(item, AdapterError), item.render()
        event = item.event if isinstance(item, Located) else item
        parse_event(event)  # every produced event is valid in the catalogue
        out.append(event)
    return out


def errors_of(items: list[Any]) -> list[AdapterError]:
    return [i for i in items if isinstance(i, AdapterError)]


def write(tmp_path: Path, obj: Any, name: str = "event.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- time formats


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-02-24T17:00:14Z", "2021-02-24T17:00:14Z"),  # EventBridge `time`
        ("2019-12-23T16:42:09.117Z", "2019-12-23T16:42:09.117Z"),  # fractional seconds
        ("2019-10-02T17:04:40.989+0000", "2019-10-02T17:04:40.989Z"),  # CloudWatch offsets
        ("2026-03-02T08:00:00+01:00", "2026-03-02T07:00:00Z"),  # other offsets → UTC
        ("2021-02-24 17:00:14.123456+00:00", "2021-02-24T17:00:14.123456Z"),  # str(datetime)
        (1583831889050, "2020-03-10T09:18:09.050Z"),  # epoch ms, number
        ("1583831889050", "2020-03-10T09:18:09.050Z"),  # epoch ms, string (envelope `time`)
        (1592411994287.0, "2020-06-17T16:39:54.287Z"),  # epoch ms, float
        (1773223200.0, "2026-03-11T10:00:00Z"),  # epoch seconds (API JSON)
    ],
)
def test_time_formats_normalise_to_rfc3339_utc(value: Any, expected: str) -> None:
    assert normalise_time(value, "t") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2021-02-24T17:00:14", "has no timezone"),
        ("yesterday", "is not a timestamp"),
        (True, "expected a timestamp"),
        (None, "expected a timestamp"),
        (-5, "is not an epoch timestamp"),
        ({"t": 1}, "expected a timestamp"),
    ],
)
def test_unreadable_times_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(BadField) as err:
        normalise_time(value, "detail.CreationTime")
    assert err.value.field == "detail.CreationTime"
    assert message in err.value.message


def test_each_format_is_exercised_by_a_real_fixture() -> None:
    # The documented endpoint example really carries string and float epoch milliseconds.
    example = load(DOCS / "endpoint-state-change.json")
    assert example["time"] == "1583831889050"
    assert example["detail"]["LastModifiedTime"] == 1592411994287.0
    alarm = load(SCENARIO / "09-drift-alarm.json")
    assert alarm["detail"]["state"]["timestamp"].endswith("+0000")


# --------------------------------------------------------------------------- documented shapes


def test_documented_model_package_event_registers_and_reports_missing_signer() -> None:
    items = run(DOCS / "model-package-state-change.json")
    (event,) = events_of([i for i in items if not isinstance(i, AdapterError)])
    (error,) = errors_of(items)
    assert event["type"] == "model.registered"
    assert event["subject"] == {
        "kind": "model_version",
        "id": "arn:aws:sagemaker:us-east-2:123456789012:model-package/versionedmp-p-idy6c3e1fiqj/2",
    }
    assert event["time"] == "2021-02-24T17:00:14Z"
    attrs = event["attributes"]
    assert (attrs["name"], attrs["version"]) == ("versionedmp-p-idy6c3e1fiqj", "2")
    # The artifact path <output>/<job>/output/model.tar.gz names the training job (lower case in
    # its ARN, like every SageMaker ARN).
    assert attrs["training_run"] == (
        "arn:aws:sagemaker:us-east-2:123456789012:training-job/"
        "pipelines-4r83jejmhorv-trainabalonemodel-xw869y8c4a"
    )
    # No CreatedBy in the documented example: the generating pipeline execution is the actor.
    assert event["actor"]["id"].endswith(
        "pipeline/versionedmp-p-idy6c3e1fiqj/execution/4r83jejmhorv"
    )
    # `Rejected` without LastModifiedBy cannot become a signature, and says so.
    assert error.field == "detail.LastModifiedBy"
    assert "Rejected" in error.message
    assert error.location == str(DOCS / "model-package-state-change.json")


def test_rejection_with_a_signer_is_recorded(tmp_path: Path) -> None:
    obj = load(DOCS / "model-package-state-change.json")
    obj["detail"]["LastModifiedBy"] = {"UserProfileName": "qa-reviewer", "DomainId": "d-1"}
    obj["detail"]["ApprovalDescription"] = "evaluation metrics below the acceptance criterion"
    events = events_of(run(write(tmp_path, obj)))
    approval = events[1]
    assert approval["type"] == "approval.recorded"
    assert approval["attributes"]["meaning"] == "rejected"
    assert approval["attributes"]["comment"] == "evaluation metrics below the acceptance criterion"
    # Unmapped identity: recorded, but with no printed name and a role that never counts.
    assert approval["attributes"]["signer"] == "qa-reviewer"
    assert approval["attributes"]["role"] == "unassigned"
    assert "signer_name" not in approval["attributes"]
    assert approval["actor"] == {"id": "qa-reviewer"}


def test_documented_endpoint_event_deploys_with_configured_facts() -> None:
    config = SageMakerConfig(
        endpoints={
            "MyEndpoint": EndpointInfo(
                environment="staging", model_package="versionedmp-p-idy6c3e1fiqj/2"
            )
        }
    )
    (event,) = events_of(run(DOCS / "endpoint-state-change.json", config))
    assert event["type"] == "model.deployed"
    assert event["subject"]["id"] == (
        "arn:aws:sagemaker:us-west-2:123456789012:model-package/versionedmp-p-idy6c3e1fiqj/2"
    )
    assert event["attributes"]["target"] == {
        "environment": "staging",
        "endpoint": "MyEndpoint",
        "region": "us-west-2",
    }
    assert event["time"] == "2020-06-17T16:39:54.287Z"  # LastModifiedTime, float epoch ms


def test_documented_endpoint_without_environment_names_the_tags() -> None:
    (error,) = errors_of(run(DOCS / "endpoint-state-change.json"))
    assert error.field == "detail.Tags"
    assert "policyengine:environment" in error.message and error.hint


@pytest.mark.parametrize(
    "name",
    [
        "endpoint-deployment-state-change.json",  # UPDATING: nothing serves the new config yet
        "pipeline-execution-status-change.json",  # an execution is not a training run
        "pipeline-step-status-change.json",  # a Processing step
        "cloudwatch-alarm-single-metric.json",  # an EC2 metric, not Model Monitor
    ],
)
def test_documented_events_without_governance_meaning_produce_nothing(name: str) -> None:
    assert run(DOCS / name) == []


def test_documented_training_job_event_starts_and_completes_a_run() -> None:
    items = run(
        DOCS / "training-job-state-change.json",
        SageMakerConfig(default_purpose="clustering-research"),
    )
    started, completed = events_of(items)
    run_arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/kmeans-1"
    assert started["type"] == "run.started" and completed["type"] == "run.completed"
    assert started["subject"] == completed["subject"] == {"kind": "training_run", "id": run_arn}
    assert started["time"] == "2020-03-10T09:18:09.050Z"  # "1583831889050" as a string
    assert started["attributes"]["image"] == "TrainingImage"
    assert started["attributes"]["parameters"] == {"Hyper": "Parameters"}
    assert started["actor"] == {"id": "arn:aws:iam::123456789012:role/SMRole"}
    assert completed["attributes"]["status"] == "completed"


def test_training_job_without_purpose_still_records_its_completion() -> None:
    items = run(DOCS / "training-job-state-change.json")
    (error,) = errors_of(items)
    assert error.field == "detail.Tags" and "purpose" in error.message
    (completed,) = events_of([i for i in items if not isinstance(i, AdapterError)])
    assert completed["type"] == "run.completed"


def test_failed_training_step_completes_the_run_as_failed(tmp_path: Path) -> None:
    obj = load(SCENARIO / "03-training-step-succeeded.json")
    obj["detail"]["currentStepStatus"] = "Failed"
    obj["detail"]["failureReason"] = "ClientError: out of memory"
    config = SageMakerConfig(purposes={"hepatox-train": "hepatotoxicity-screening"})
    started, completed = events_of(run(write(tmp_path, obj), config))
    assert started["type"] == "run.started"  # first sight of a finished step starts it too
    assert started["time"] == "2026-03-02T08:00:03Z"
    assert completed["attributes"]["status"] == "failed"
    assert completed["attributes"]["labels"]["sagemaker.failure_reason"].startswith("ClientError")


# --------------------------------------------------------------------------- the scenario


def test_scenario_translates_every_record_in_order() -> None:
    events = events_of(
        run(SCENARIO, SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json"))
    )
    kinds = [e["type"] for e in events]
    assert kinds[:8] == [
        "run.started",  # training step executing
        "run.started",  # training job (image, commit, parameters)
        "run.completed",
        "run.completed",  # training step succeeded
        "model.registered",
        "approval.recorded",  # Elena; the re-delivered copy adds nothing
        "approval.recorded",  # Grace
        "model.deployed",
    ]
    assert kinds[8:10] == ["drift.evaluated", "drift.evaluated"]  # alarm, then OK
    assert set(kinds[10:]) == {"drift.evaluated"}  # the Model Monitor report
    registered = events[4]
    assert registered["subject"]["id"] == PACKAGE
    assert registered["attributes"]["training_run"] == JOB
    assert registered["attributes"]["artifact_digest"].startswith("sha256:c0ffee")
    assert registered["actor"]["id"] == "priya.raman@helix.example"
    assert registered["time"] == "2026-03-02T09:15:42.117Z"
    assert registered["attributes"]["labels"]["sagemaker.commit_id"].startswith("4be1d07")
    job = events[1]["attributes"]
    assert job["code_commit"] == "4be1d07c9a3e5f8b2d6a1c0e7f9b3d5a8c2e4f60"
    assert job["image"].endswith(
        "@sha256:" + "9a6f0f1c5e3d2b4a8c7e6d5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b"
    )
    assert events[2]["attributes"]["metrics"] == {"validation:auc": 0.912, "train:auc": 0.947}
    elena, grace = events[5], events[6]
    assert elena["attributes"] | {"labels": None} == {
        "signer": "elena.varga@helix.example",
        "signer_name": "Elena Varga",
        "role": "qa",
        "meaning": "approved",
        "comment": "validation report VR-0311 reviewed; QA release",
        "labels": None,
    }
    assert elena["actor"] == {"id": "elena.varga@helix.example", "name": "Elena Varga",
                              "roles": ["qa"]}  # fmt: skip
    assert grace["attributes"]["signer"] == "grace.liu@helix.example"
    assert grace["actor"]["roles"] == ["qa_lead", "qa"]
    deployed = events[7]
    assert deployed["subject"]["id"] == PACKAGE
    assert deployed["attributes"]["target"] == {
        "environment": "production",
        "endpoint": "hepatox-screen-prod",
        "region": "eu-west-1",
    }
    alarm, ok = events[8]["attributes"], events[9]["attributes"]
    assert (alarm["monitor"], alarm["feature"], alarm["metric"]) == (
        "hepatox-screen-prod-drift-alt_u_per_l",
        "alt_u_per_l",
        "baseline_drift",
    )
    assert (alarm["value"], alarm["threshold"], alarm["breached"]) == (0.2734, 0.1, True)
    assert (ok["value"], ok["breached"]) == (0.0412, False)
    # The alarm's schedule is mapped to its baseline in the configuration.
    assert alarm["baseline"] == "s3://helix-ml-monitoring/hepatox-screen/baseline/constraints.json"
    assert events[8]["time"] == "2026-03-09T12:04:40.989Z"


def test_ids_are_deterministic_and_unique() -> None:
    config = SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json")
    first = [e["id"] for e in events_of(run(SCENARIO, config))]
    second = [e["id"] for e in events_of(run(SCENARIO, config))]
    assert first == second
    assert len(set(first)) == len(first)
    assert all(i.startswith("sagemaker-") for i in first)


def test_single_file_array_and_jsonl_sources_agree(tmp_path: Path) -> None:
    config = SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json")
    records = [load(p) for p in sorted(SCENARIO.glob("0*.json"))]
    array = write(tmp_path, records, "all.json")
    lines = tmp_path / "all.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    from_dir = [e["id"] for e in events_of(run(SCENARIO, config))][:9]  # through 09
    assert [e["id"] for e in events_of(run(array, config))] == from_dir
    located = run(lines, config)
    assert [e["id"] for e in events_of(located)] == from_dir
    assert located[0].location == f"{lines}:1"


def test_adapter_is_discoverable_and_reads_config_beside_the_events() -> None:
    adapter = get_adapter("sagemaker")
    assert adapter.name == "sagemaker"
    events = events_of(list(adapter.events(str(SCENARIO))))
    approvals = [e for e in events if e["type"] == "approval.recorded"]
    assert {a["attributes"]["signer_name"] for a in approvals} == {"Elena Varga", "Grace Liu"}


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, {"default_role": "reviewer"}, "cfg.json")
    monkeypatch.setenv("POLICYENGINE_SAGEMAKER_CONFIG", str(path))
    assert SageMakerConfig.discover(str(SCENARIO)).default_role == "reviewer"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"identites": {}}, "unknown configuration key `identites`"),
        ({"identities": {"x": {"name": "No Id"}}}, "expected a non-empty string"),
        ({"endpoints": {"e": {"environment": "prod", "owner": "me"}}}, "unknown key `owner`"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_configuration_is_refused(config: Any, message: str) -> None:
    with pytest.raises(AdapterError) as err:
        SageMakerConfig.from_dict(config)
    assert message in err.value.render()


def test_signatures_are_counted_once_per_person_and_status(tmp_path: Path) -> None:
    config = SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json")
    names = ["04-model-package-registered.json", "05-approved-by-elena.json",
             "07-approved-by-grace.json"]  # fmt: skip
    stream = [load(SCENARIO / n) for n in names]
    later_edit = copy.deepcopy(stream[1])  # Elena edits metadata after Grace signed
    later_edit["detail"]["LastModifiedTime"] = "2026-03-05T12:00:00.000Z"
    rejected = copy.deepcopy(later_edit)  # then Elena rejects: a new status, a new signature
    rejected["detail"]["ModelApprovalStatus"] = "Rejected"
    rejected["detail"]["LastModifiedTime"] = "2026-03-05T13:00:00.000Z"
    reapproved = copy.deepcopy(rejected)  # and approves again after the deviation closed
    reapproved["detail"]["ModelApprovalStatus"] = "Approved"
    reapproved["detail"]["LastModifiedTime"] = "2026-03-06T09:00:00.000Z"
    events = events_of(run(write(tmp_path, [*stream, later_edit, rejected, reapproved]), config))
    signatures = [
        (e["attributes"]["signer"].split(".")[0], e["attributes"]["meaning"])
        for e in events
        if e["type"] == "approval.recorded"
    ]
    assert signatures == [
        ("elena", "approved"),
        ("grace", "approved"),
        ("elena", "rejected"),
        ("elena", "approved"),
    ]


def test_identity_keys_match_any_user_context_identifier(tmp_path: Path) -> None:
    obj = load(SCENARIO / "05-approved-by-elena.json")
    iam = obj["detail"]["LastModifiedBy"]["IamIdentity"]
    del obj["detail"]["LastModifiedBy"]["UserProfileName"]
    del obj["detail"]["LastModifiedBy"]["UserProfileArn"]
    iam["SourceIdentity"] = "evarga"
    config = SageMakerConfig(identities={"evarga": Identity(id="elena@x", name="E V", role="qa")})
    approval = events_of(run(write(tmp_path, obj), config))[1]
    assert approval["attributes"]["signer"] == "elena@x"
    assert approval["attributes"]["role"] == "qa"


# --------------------------------------------------------------------------- malformed input


def _mutate(path: Path, change: Any) -> dict[str, Any]:
    obj = copy.deepcopy(load(path))
    change(obj)
    return obj


@pytest.mark.parametrize(
    ("path", "change", "field", "message"),
    [
        (SCENARIO / "04-model-package-registered.json", lambda o: o.pop("detail-type"),
         "detail-type", "required field is missing"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o.update({"detail-type": "SageMaker Cluster State Change"}),
         "detail-type", "unsupported event"),
        (SCENARIO / "04-model-package-registered.json", lambda o: o.pop("detail"),
         "detail", "required field is missing"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o["detail"].update(ModelPackageVersion="three"),
         "detail.ModelPackageVersion", "expected an integer"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o["detail"].update(CreationTime="last tuesday"),
         "detail.CreationTime", "not a timestamp"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o["detail"].update(ModelApprovalStatus="Approvd"),
         "detail.ModelApprovalStatus", "unknown approval status"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o["detail"].pop("ModelPackageGroupName"),
         "detail.ModelPackageGroupName", "unversioned model package"),
        (SCENARIO / "04-model-package-registered.json",
         lambda o: o["detail"]["CustomerMetadataProperties"].update({"k": 5}),
         "detail.CustomerMetadataProperties.k", "expected a string"),
        (SCENARIO / "04-model-package-registered.json", lambda o: o.update(time="2026-03-02"),
         "time", "has no timezone"),
        (SCENARIO / "08-endpoint-deployment-in-service.json",
         lambda o: o["detail"]["Tags"].pop("policyengine:model-package"),
         "detail.Tags", "cannot tell which model package"),
        (SCENARIO / "08-endpoint-deployment-in-service.json",
         lambda o: o["detail"]["Tags"].update({"policyengine:model-package": "not-a-package"}),
         "detail.Tags", "is not a model package ARN"),
        (SCENARIO / "01-training-step-executing.json",
         lambda o: o["detail"]["metadata"].pop("trainingJob"),
         "detail.metadata.trainingJob", "required field is missing"),
        (SCENARIO / "09-drift-alarm.json",
         lambda o: o["detail"]["state"].update(reasonData="{not json"),
         "detail.state.reasonData", "invalid JSON"),
        (SCENARIO / "09-drift-alarm.json",
         lambda o: o["detail"]["state"].update(reasonData='{"recentDatapoints": []}'),
         "detail.state.reasonData.recentDatapoints", "at least one number"),
        (SCENARIO / "09-drift-alarm.json",
         lambda o: o["detail"]["configuration"]["metrics"].append(
             copy.deepcopy(o["detail"]["configuration"]["metrics"][0])),
         "detail.configuration.metrics", "several Model Monitor metrics"),
    ],
)  # fmt: skip
def test_malformed_records_name_the_field(
    tmp_path: Path, path: Path, change: Any, field: str, message: str
) -> None:
    # An alarm needs a deployment to know its model version: deploy first.
    config = SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json")
    before = (
        []
        if "alarm" not in path.name
        else [load(SCENARIO / "08-endpoint-deployment-in-service.json")]
    )
    bad = write(tmp_path, [*before, _mutate(path, change)], "batch.json")
    items = run(bad, config)
    errors = errors_of(items)
    assert [e.field for e in errors] == [field], [e.render() for e in errors]
    assert message in errors[0].message
    assert errors[0].location == f"{bad}[{len(before)}]"


def test_a_new_endpoint_config_is_not_assumed_to_serve_the_old_model(tmp_path: Path) -> None:
    config = SageMakerConfig.from_file(SCENARIO / "policyengine-sagemaker.json")
    first = load(SCENARIO / "08-endpoint-deployment-in-service.json")
    rescaled = copy.deepcopy(first)  # same config, no tags: a capacity change
    rescaled["detail"]["Tags"] = {"policyengine:environment": "production"}
    rescaled["detail"]["LastModifiedTime"] += 60_000
    redeployed = copy.deepcopy(rescaled)  # a new endpoint config, no tags
    redeployed["detail"]["EndpointConfigName"] = "hepatox-screen-prod-config-v4"
    items = run(write(tmp_path, [first, rescaled, redeployed]), config)
    assert [e["subject"]["id"] for e in events_of(items[:2])] == [PACKAGE, PACKAGE]
    (error,) = errors_of(items)
    assert error.field == "detail.Tags" and "cannot tell which model package" in error.message


def test_alarm_on_an_endpoint_nobody_deployed_names_the_dimension(tmp_path: Path) -> None:
    (error,) = errors_of(run(SCENARIO / "09-drift-alarm.json"))
    assert error.field == "detail.configuration.metrics[0].metricStat.metric.dimensions.Endpoint"


def test_bad_json_is_reported_per_line_and_reading_goes_on(tmp_path: Path) -> None:
    good = json.dumps(load(SCENARIO / "04-model-package-registered.json"))
    path = tmp_path / "events.jsonl"
    path.write_text(f"{good}\n{{oops\n[1, 2]\n", encoding="utf-8")
    items = run(path)
    assert [type(i).__name__ for i in items] == ["Located", "AdapterError", "AdapterError"]
    assert items[1].location == f"{path}:2" and "invalid JSON" in items[1].message
    assert items[2].location == f"{path}:3" and "must be a JSON object" in items[2].message


def test_missing_source_is_an_error_for_the_whole_source(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="no such file or directory"):
        run(tmp_path / "absent.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterError, match=r"no `\.json` or `\.jsonl` files"):
        run(tmp_path / "empty")


# --------------------------------------------------------------------------- Model Monitor


def test_baseline_reads_documented_constraints_and_statistics() -> None:
    base = read_baseline(REPORT / "baseline" / "constraints.json",
                         REPORT / "baseline" / "statistics.json")  # fmt: skip
    assert [f.name for f in base.features] == ["alt_u_per_l", "ast_u_per_l", "compound_class"]
    alt = base.feature("alt_u_per_l")
    assert alt is not None and alt.is_non_negative and alt.mean == 42.7 and alt.num_present == 20480
    cls = base.feature("compound_class")
    assert cls is not None and cls.domains == ("kinase_inhibitor", "nsaid", "statin")
    assert cls.distinct_count == 3
    assert base.item_count == 20480
    assert (base.comparison_threshold, base.comparison_method) == (0.1, "Robust")
    assert base.reference == base.digest and base.digest.startswith("sha256:")
    described = base.describe()
    assert described["monitoring_config"]["perform_comparison"] is True
    assert described["features"][0]["inferred_type"] == "Fractional"


def test_baseline_digest_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    original = read_baseline(REPORT / "baseline" / "constraints.json")
    data = load(REPORT / "baseline" / "constraints.json")
    compact = write(tmp_path, data, "compact.json")
    assert read_baseline(compact).digest == original.digest
    data["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.2
    assert read_baseline(write(tmp_path, data, "changed.json")).digest != original.digest


def test_report_maps_violations_to_breaches_and_passed_checks_to_closures() -> None:
    report = read_report(REPORT)
    assert (report.schedule, report.endpoint, report.status) == (
        "hepatox-screen-prod-data-quality",
        "hepatox-screen-prod",
        "CompletedWithViolations",
    )
    assert report.time == "2026-03-11T10:15:05.093Z"  # LastModifiedTime, epoch seconds
    assert report.item_count == 1440
    results = {(r.feature, r.metric): r for r in drift_results(report)}
    drift = results[("alt_u_per_l", "baseline_drift")]
    assert (drift.value, drift.threshold, drift.breached) == (0.2914, 0.1, True)
    categorical = results[("compound_class", "categorical_values_check")]
    assert (categorical.value, categorical.threshold, categorical.breached) == (1.0, 0.0, True)
    # No violation reported: closes, with the threshold as the known upper bound.
    calm = results[("ast_u_per_l", "baseline_drift")]
    assert (calm.value, calm.threshold, calm.breached) == (0.1, 0.1, False)
    assert calm.labels["sagemaker.value"].startswith("upper bound")
    assert results[("ast_u_per_l", "completeness_check")].breached is False
    assert ("alt_u_per_l", "categorical_values_check") not in results  # numeric feature
    # 2 violations; closures: alt 2 (its drift is a violation), ast 3, compound_class 3.
    assert len(results) == 2 + 2 + 3 + 3


def test_report_events_carry_schedule_baseline_and_model(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    shutil.copytree(REPORT, folder)
    config = SageMakerConfig(endpoints={"hepatox-screen-prod": EndpointInfo(model_package=PACKAGE)})
    events = events_of(run(folder, config))
    assert {e["type"] for e in events} == {"drift.evaluated"}
    assert {e["subject"]["id"] for e in events} == {PACKAGE}
    assert {e["attributes"]["monitor"] for e in events} == {"hepatox-screen-prod-data-quality"}
    baseline = read_baseline(REPORT / "baseline" / "constraints.json",
                             REPORT / "baseline" / "statistics.json")  # fmt: skip
    assert {e["attributes"]["baseline"] for e in events} == {baseline.digest}


@pytest.mark.parametrize("status", ["InProgress", "Failed", "Stopped", "Pending"])
def test_unfinished_executions_evaluate_nothing(tmp_path: Path, status: str) -> None:
    folder = tmp_path / "report"
    shutil.copytree(REPORT, folder)
    summary = load(folder / "monitoring_execution.json")
    summary["MonitoringExecutionStatus"] = status
    write(folder, summary, "monitoring_execution.json")
    assert drift_results(read_report(folder)) == []


def test_report_errors_name_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "report"
    shutil.copytree(REPORT, folder)
    (folder / "monitoring_execution.json").unlink()
    with pytest.raises(AdapterError, match=r"no `monitoring_execution\.json`") as err:
        read_report(folder)
    assert err.value.hint and "MonitoringExecutionSummary" in err.value.hint
    shutil.copy(REPORT / "monitoring_execution.json", folder)
    violations = load(folder / "constraint_violations.json")
    violations["violations"][0]["description"] = "drift is high"
    write(folder, violations, "constraint_violations.json")
    with pytest.raises(AdapterError) as err:
        drift_results(read_report(folder))
    assert err.value.field == "violations[0].description"
    violations["violations"][1].pop("feature_name")
    write(folder, violations, "constraint_violations.json")
    with pytest.raises(AdapterError) as err:
        read_report(folder)
    assert err.value.field == "violations[1].feature_name"
    assert err.value.location == str(folder / "constraint_violations.json")
    (folder / "constraint_violations.json").unlink()
    with pytest.raises(AdapterError, match="completed with violations"):
        read_report(folder)
