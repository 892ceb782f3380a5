"""SageMaker model registry poller against moto's SageMaker API server (real boto3 HTTP calls).

The poll must give exactly the events that the EventBridge path gives for a `Model Package
State Change` whose `detail` is the same `DescribeModelPackage` response, and fail with a clear
message (no traceback) when the registry cannot be read.
"""

from __future__ import annotations

import copy
import json
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer
from policyengine_sagemaker import (
    RegistrySource,
    SageMakerAdapter,
    SageMakerConfig,
    as_eventbridge,
    poll_registry,
    registry_events,
)

from policyengine.adapter import AdapterError, Located
from policyengine.cli.main import cli
from policyengine.events import parse_event
from policyengine.lineage import SQLiteLineageStore, trace

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
FIXTURES = ROOT / "tests" / "fixtures" / "sagemaker"
# A documented EventBridge `Model Package State Change` (envelope) and the scenario's package
# (registration fields as a pipeline writes them), both already used by the EventBridge tests.
ENVELOPE = FIXTURES / "docs" / "model-package-state-change.json"
SCENARIO_PACKAGE = FIXTURES / "scenario" / "05-approved-by-elena.json"
REGION = "eu-west-1"
# moto records every change as made by this Studio user profile.
MOTO_USER = "fake-user-profile-name"
QA_COMMENT = "validation report VR-0311 reviewed; QA release"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, no AWS files, no instance metadata, one attempt per call."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "POLICYENGINE_SAGEMAKER_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "policyengine-sagemaker.json"
    identity = {"id": "elena.varga@helix.example", "name": "Elena Varga", "role": "qa"}
    path.write_text(json.dumps({"identities": {MOTO_USER: identity}}), encoding="utf-8")
    return path


def client(url: str) -> Any:
    return boto3.client("sagemaker", region_name=REGION, endpoint_url=url)


def make_group(url: str, group: str) -> list[str]:
    """A group with two packages registered like the scenario's, the second one approved."""
    sm = client(url)
    detail = json.loads(SCENARIO_PACKAGE.read_text(encoding="utf-8"))["detail"]
    sm.create_model_package_group(ModelPackageGroupName=group)
    arns = []
    for n in (1, 2):
        time.sleep(0.01)  # distinct creation times
        metadata = dict(detail["CustomerMetadataProperties"])
        if n == 1:  # the first has no artifact digest: the audit policy refuses it
            del metadata["policyengine:artifact-digest"]
        arns.append(
            sm.create_model_package(
                ModelPackageGroupName=group,
                ModelPackageDescription=detail["ModelPackageDescription"],
                InferenceSpecification=detail["InferenceSpecification"],
                MetadataProperties=detail["MetadataProperties"],
                CustomerMetadataProperties=metadata,
                ModelApprovalStatus="PendingManualApproval",
            )["ModelPackageArn"]
        )
    time.sleep(0.01)  # the approval is strictly later than both registrations
    # moto (5.2) drops CustomerMetadataProperties on an update that does not restate them,
    # unlike SageMaker; restating them is harmless on both.
    sm.update_model_package(
        ModelPackageArn=arns[1],
        ModelApprovalStatus="Approved",
        ApprovalDescription=QA_COMMENT,
        CustomerMetadataProperties=metadata,
    )
    return arns


def source(url: str, group: str, **options: str) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in {"region": REGION, "endpoint_url": url, **options}.items()
    )
    return f"sagemaker-registry:{group}?{query}"


def events_of(items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        assert not isinstance(item, AdapterError), item.render()
        assert isinstance(item, Located)
        parse_event(item.event)
        out.append(item.event)
    return out


def ingest(*args: str) -> Result:
    return CliRunner().invoke(cli, ["ingest", "--adapter", "sagemaker", *args],
                              catch_exceptions=False)  # fmt: skip


# --------------------------------------------------------------------------- same events


def test_poll_gives_the_events_of_the_equivalent_eventbridge_events(
    moto_url: str, config_file: Path, tmp_path: Path
) -> None:
    arns = make_group(moto_url, "hepatox-screen")
    config = SageMakerConfig.from_file(config_file)
    polled = list(SageMakerAdapter(config).events(source(moto_url, "hepatox-screen")))
    assert [i.location for i in polled if isinstance(i, Located)] == [arns[0], arns[1], arns[1]]
    events = events_of(polled)
    assert [(e["type"], e["subject"]["id"]) for e in events] == [
        ("model.registered", arns[0]),
        ("model.registered", arns[1]),
        ("approval.recorded", arns[1]),
    ]
    # The same package states as EventBridge would deliver them, read from a file: the
    # documented envelope around each DescribeModelPackage response (JSON, as in events).
    sm = client(moto_url)
    archive = []
    for arn in arns:
        described = sm.describe_model_package(ModelPackageName=arn)
        described.pop("ResponseMetadata")
        detail = json.loads(json.dumps(described, default=lambda t: t.isoformat()))
        envelope = copy.deepcopy(json.loads(ENVELOPE.read_text(encoding="utf-8")))
        envelope.update(region=REGION, resources=[arn], detail=detail)
        envelope["time"] = detail.get("LastModifiedTime", detail["CreationTime"])
        archive.append(envelope)
    path = tmp_path / "events" / "model-package-state-changes.json"
    path.parent.mkdir()
    path.write_text(json.dumps(archive), encoding="utf-8")
    assert events_of(list(SageMakerAdapter(config).events(str(path)))) == events

    registered, approval = events[1], events[2]
    attrs = registered["attributes"]
    assert (attrs["name"], attrs["version"]) == ("hepatox-screen", "2")
    assert attrs["artifact_digest"].startswith("sha256:c0ffee")
    assert attrs["training_run"].endswith(
        ":training-job/pipelines-k3x9q2m7ab1c-trainhepatox-qw3rty5uio"
    )
    assert approval["attributes"]["signer"] == "elena.varga@helix.example"
    assert approval["attributes"]["role"] == "qa"
    assert approval["attributes"]["meaning"] == "approved"
    assert approval["attributes"]["comment"] == QA_COMMENT
    # Polling again gives the same ids (the lineage store is idempotent per id).
    again = events_of(list(SageMakerAdapter(config).events(source(moto_url, "hepatox-screen"))))
    assert again == events


def test_as_eventbridge_wraps_a_describe_response_like_the_documented_event() -> None:
    documented = json.loads(ENVELOPE.read_text(encoding="utf-8"))
    wrapped = as_eventbridge(documented["detail"])
    assert wrapped["detail"] == documented["detail"]
    for key in ("detail-type", "account", "region", "time", "resources"):
        assert wrapped[key] == documented[key], key


# --------------------------------------------------------------------------- incremental


def test_since_keeps_packages_changed_at_or_after_it(moto_url: str, config_file: Path) -> None:
    arns = make_group(moto_url, "since-group")
    sm = client(moto_url)
    first = sm.describe_model_package(ModelPackageName=arns[0])
    second = sm.describe_model_package(ModelPackageName=arns[1])
    assert "LastModifiedTime" not in first  # never updated: its creation is its last change
    approved_at = second["LastModifiedTime"].isoformat()
    config = SageMakerConfig.from_file(config_file)

    def poll(**options: str) -> list[tuple[str, str]]:
        items = registry_events(source(moto_url, "since-group", **options), config)
        return [(e["type"], e["subject"]["id"]) for e in events_of(list(items))]

    # Package 1 last changed before the approval of package 2; package 2 was created before
    # it too, but its approval is a change at that time, so it is read (registration again,
    # with the same id, and the approval).
    assert poll(since=approved_at) == [
        ("model.registered", arns[1]),
        ("approval.recorded", arns[1]),
    ]
    assert len(poll(since=first["CreationTime"].isoformat())) == 3
    assert poll(since="2999-01-01T00:00:00Z") == []
    # created_after= filters on the server (CreationTimeAfter): approvals of older packages
    # are not seen, which is why `since=` is the incremental option.
    between = first["CreationTime"] + (second["CreationTime"] - first["CreationTime"]) / 2
    assert poll(created_after=between.isoformat()) == [
        ("model.registered", arns[1]),
        ("approval.recorded", arns[1]),
    ]


# --------------------------------------------------------------------------- end to end


def test_ingest_decides_and_records_lineage(
    moto_url: str, config_file: Path, tmp_path: Path
) -> None:
    arns = make_group(moto_url, "ingest-group")
    store = tmp_path / "lineage.db"
    src = source(moto_url, "ingest-group", config=str(config_file))
    args = [src, "--policies", str(POLICIES), "--store", str(store), "--format", "json"]
    result = ingest(*args)
    assert result.exit_code in (0, 1), result.stderr
    assert "could not be ingested" not in result.stderr
    decided = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["event"]["type"], d["event"]["subject"]["id"]) for d in decided] == [
        ("model.registered", arns[0]),
        ("model.registered", arns[1]),
        ("approval.recorded", arns[1]),
    ]
    failed = [
        sorted(r["rule"] for r in d["results"] if r["status"] in ("fail", "error")) for d in decided
    ]
    assert [d["outcome"] for d in decided] == ["deny", "allow", "deny"]
    # Version 1 has no artifact digest: the audit library refuses its registration.
    assert failed[0] == ["gxp.audit.artifact_digest_pinned"]
    # moto records one user as both the package's creator and its approver: the oversight
    # library refuses a self-approval.
    assert failed[2] == ["gxp.oversight.independent_approval"]
    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "ingest-group@2", "upstream")
        keys = {str(n.key) for n in up.nodes}
        assert f"model_version:{arns[1]}" in keys
        approvals = [n for n in up.nodes if n.key.kind == "approval"]
        assert len(approvals) == 1
        assert approvals[0].attrs["signer"] == "elena.varga@helix.example"
    again = ingest(*args)
    assert again.stdout == result.stdout
    assert "recorded before with other content" not in again.stderr


# --------------------------------------------------------------------------- clear errors


def assert_clean_failure(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_unknown_group_is_a_clear_error(moto_url: str) -> None:
    result = ingest(source(moto_url, "no-such-group"), "--policies", str(POLICIES))
    assert_clean_failure(result, "model package group `no-such-group` does not exist", "region")


def test_unreachable_endpoint_is_a_clear_error() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = ingest(source(url, "hepatox-screen"), "--policies", str(POLICIES))
    assert_clean_failure(result, f"cannot reach the SageMaker API at `{url}`")


def test_missing_credentials_are_a_clear_error(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = ingest(source(moto_url, "hepatox-screen"), "--policies", str(POLICIES))
    assert_clean_failure(result, "no AWS credentials found", "AWS_ACCESS_KEY_ID")


def test_missing_region_is_a_clear_error() -> None:
    result = ingest("sagemaker-registry:hepatox-screen", "--policies", str(POLICIES))
    assert_clean_failure(result, "no AWS region", "?region=")


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("boto3", "botocore", "botocore.exceptions"):
        monkeypatch.setitem(sys.modules, module, None)  # `import boto3` raises ImportError
    result = ingest("sagemaker-registry:hepatox-screen", "--policies", str(POLICIES))
    assert_clean_failure(result, "needs boto3", "install policyengine[sagemaker]")
    # File sources never need boto3.
    files = ingest(str(FIXTURES / "scenario"), "--policies", str(POLICIES), "--format", "json")
    assert "boto3" not in files.stderr
    assert files.stdout.count('"model.registered"') >= 1


def test_a_package_that_cannot_be_described_is_reported_and_the_rest_read() -> None:
    # A package deleted between the listing and its description (botocore's Stubber: moto
    # cannot delete between two calls of one poll).
    documented = json.loads(ENVELOPE.read_text(encoding="utf-8"))["detail"]
    gone = documented["ModelPackageArn"].replace("/2", "/1")
    sm = boto3.client("sagemaker", region_name="us-east-2")
    group = documented["ModelPackageGroupName"]
    summaries = [
        {"ModelPackageArn": arn, "ModelPackageGroupName": group, "ModelPackageVersion": v,
         "CreationTime": datetime.fromisoformat("2021-02-24T17:00:14+00:00"),
         "ModelPackageStatus": "Completed"}
        for v, arn in ((1, gone), (2, documented["ModelPackageArn"]))
    ]  # fmt: skip
    described = dict(documented, ModelPackageName=group)  # required in the API's output
    for key in ("CreationTime", "LastModifiedTime"):
        described[key] = datetime.fromisoformat(documented[key].replace("Z", "+00:00"))
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package_group", {
            "ModelPackageGroupName": group, "ModelPackageGroupArn": "arn:aws:sagemaker:us-east-2:"
            f"123456789012:model-package-group/{group}", "CreationTime": described["CreationTime"],
            "CreatedBy": {}, "ModelPackageGroupStatus": "Completed"})  # fmt: skip
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": summaries})
        stub.add_client_error(
            "describe_model_package", "ValidationException", f"Model Package {gone} not found"
        )
        stub.add_response("describe_model_package", described)
        items = list(registry_events(RegistrySource(group=group), SageMakerConfig(), sm))
    missing, registered, unsigned = items
    assert isinstance(missing, AdapterError) and missing.location == gone
    assert "DescribeModelPackage failed: ValidationException" in missing.message
    assert isinstance(registered, Located) and registered.event["type"] == "model.registered"
    # The documented package is `Rejected` without LastModifiedBy: the error names the
    # DescribeModelPackage field (not the EventBridge `detail.` one).
    assert isinstance(unsigned, AdapterError)
    assert unsigned.field == "LastModifiedBy"
    assert unsigned.location == documented["ModelPackageArn"]
    assert [i for i in poll_registry(RegistrySource(group=group), _stubbed_empty(group))] == []


def _stubbed_empty(group: str) -> Any:
    sm = boto3.client("sagemaker", region_name="us-east-2")
    stub = Stubber(sm)
    stub.add_response("describe_model_package_group", {
        "ModelPackageGroupName": group, "ModelPackageGroupArn": "arn:aws:sagemaker:us-east-2:"
        f"123456789012:model-package-group/{group}",
        "CreationTime": datetime.fromisoformat("2021-02-24T17:00:14+00:00"),
        "CreatedBy": {}, "ModelPackageGroupStatus": "Completed"})  # fmt: skip
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
    stub.activate()
    return sm


# --------------------------------------------------------------------------- source syntax


def test_source_options_parse_and_round_trip() -> None:
    src = RegistrySource.parse(
        "sagemaker-registry:hepatox-screen?region=eu-west-1&profile=qa"
        "&endpoint_url=http%3A%2F%2F127.0.0.1%3A5000&since=2026-03-02T10:00:00+01:00"
    )
    assert src == RegistrySource(
        group="hepatox-screen",
        region="eu-west-1",
        profile="qa",
        endpoint_url="http://127.0.0.1:5000",
        since="2026-03-02T09:00:00Z",  # `+` kept (not a space), normalised to UTC
    )
    assert RegistrySource.parse(str(src)) == src
    arn = "arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/hepatox-screen"
    assert RegistrySource.parse(f"sagemaker-registry:{arn}").group == arn


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sagemaker-registry:hepatox-screen?regoin=eu-west-1", "unknown registry source option"),
        ("sagemaker-registry:g?region=a&region=b", "option `region` is given twice"),
        ("sagemaker-registry:g?since", "option `since` needs a value"),
        ("sagemaker-registry:g?since=yesterday", "`yesterday` is not a timestamp"),
        ("sagemaker-registry:g?since=2026-03-02T10:00:00", "has no timezone"),
        ("sagemaker-registry:", "is not a model package group name or ARN"),
        ("sagemaker-registry:bad_name!", "is not a model package group name or ARN"),
    ],
)
def test_bad_sources_are_named(text: str, message: str) -> None:
    with pytest.raises(AdapterError) as err:
        RegistrySource.parse(text)
    assert message in err.value.render()
    result = ingest(text, "--policies", str(POLICIES))
    assert_clean_failure(result, message)
