"""The MLflow adapter without a server: SOURCE parsing, translation of records in the shape
MLflow serialises them (`Run.to_dictionary()`), the sync state, bad sources, and webhook
signatures checked against MLflow's own signing code. The real server is in `_e2e`."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from policyengine_mlflow import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MLflowAdapter,
    Source,
    SyncState,
    Translated,
    Translator,
    WebhookError,
    sign_webhook,
    verify_webhook,
    webhook_events,
)

from policyengine.adapter import AdapterError, available_adapters
from policyengine.cli.main import cli
from policyengine.events import parse_event

SHA = "sha256:" + "ab" * 32
COMMON = str(Path(__file__).resolve().parent.parent / "policies" / "common.policy")


def run_record(**over: Any) -> dict[str, Any]:
    """A run as `Run.to_dictionary()` returns it (copied from a real MLflow 3.17 run)."""
    record: dict[str, Any] = {
        "info": {
            "artifact_uri": "/srv/mlflow/artifacts/1/5f6e/artifacts",
            "end_time": 1795750264913,
            "experiment_id": "1",
            "lifecycle_stage": "active",
            "run_id": "5f6eda0bdd2b4d2b805338ac0cf08114",
            "run_name": "train",
            "start_time": 1795750264773,
            "status": "FINISHED",
            "user_id": "priya",
        },
        "data": {
            "metrics": {"auc": 0.9},
            "params": {"depth": "6"},
            "tags": {
                "mlflow.user": "priya",
                "mlflow.source.name": "train.py",
                "mlflow.source.type": "LOCAL",
                "mlflow.source.git.commit": "abc1234",
                "mlflow.runName": "train",
                "policyengine.purpose": "research",
            },
        },
        "inputs": {
            "model_inputs": [],
            "dataset_inputs": [
                {
                    "dataset": {
                        "name": "ehr",
                        "digest": "244437a9",
                        "source_type": "s3",
                        "source": '{"uri": "s3://bucket/ehr.parquet"}',
                        "schema": '{"mlflow_colspec": [{"type": "long", "name": "a", '
                        '"required": true}, {"type": "double", "name": "b", "required": true}]}',
                        "profile": '{"num_rows": 3, "num_elements": 6}',
                    },
                    "tags": {
                        "mlflow.data.context": "training",
                        "policyengine.classification": "PHI",
                        "policyengine.allowed_purposes": "research, qa",
                    },
                }
            ],
        },
        "outputs": {"model_outputs": []},
    }
    for path, value in over.items():
        target = record
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    return record


def version_record(**over: Any) -> dict[str, Any]:
    record = {
        "name": "tox",
        "version": "3",
        "creation_timestamp": 1795750265007,
        "last_updated_timestamp": 1795750266000,
        "user_id": "",
        "current_stage": "None",
        "description": "",
        "source": "runs:/5f6eda0bdd2b4d2b805338ac0cf08114/model",
        "run_id": "5f6eda0bdd2b4d2b805338ac0cf08114",
        "status": "READY",
        "tags": {},
    }
    record.update(over)
    return record


def translate(items: Any) -> tuple[list[dict[str, Any]], list[AdapterError]]:
    items = list(items)
    events = [i.event for i in items if isinstance(i, Translated)]
    for event in events:
        parse_event(event)  # every translated event is a valid canonical event
    return events, [i for i in items if isinstance(i, AdapterError)]


# --------------------------------------------------------------------------- source


def test_source_options_are_parsed_and_removed_from_the_uri(tmp_path: Path) -> None:
    src = Source.parse(
        "http://127.0.0.1:5000?experiment=a&experiment=b,c&model=m&since=2026-01-01T00:00:00Z"
        f"&state={tmp_path / 's.json'}&alias=champion:production"
    )
    assert src.tracking_uri == "http://127.0.0.1:5000"
    assert src.experiments == ("a", "b,c")  # names may contain commas; repeat the option
    assert src.models == ("m",)
    assert src.since == "2026-01-01T00:00:00Z"
    assert src.state == tmp_path / "s.json"
    assert src.aliases == {"champion": "production"}
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"")
    assert Source.parse(str(db)).tracking_uri == f"sqlite:///{db}"
    assert Source.parse(str(tmp_path)).tracking_uri == tmp_path.as_uri()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "empty source"),
        ("ftp://host/x", "unsupported tracking URI scheme `ftp`"),
        ("http://h:5000?colour=red", "unknown option `colour`"),
        ("http://h:5000?experiment=", "option `experiment` needs a value"),
        ("http://h:5000?alias=champion", "`alias=champion` is not `ALIAS:STAGE`"),
        ("http://h:5000?since=yesterday", "`since`: `yesterday` is not a timestamp"),
        ("http://h:5000?state=a&state=b", "option `state` is given 2 times"),
        ("no/such/thing", "is not a tracking URI, a `.db` file or an `mlruns` folder"),
    ],
)
def test_bad_sources_are_refused(source: str, message: str) -> None:
    with pytest.raises(AdapterError, match="") as err:
        Source.parse(source)
    assert message in err.value.render()


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(AdapterError, match="no MLflow database"):
        list(MLflowAdapter().events(f"sqlite:///{missing}"))
    assert not missing.exists()  # MLflow would have created an empty one


def test_unreachable_server_fails_fast_without_traceback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, ["ingest", "-a", "mlflow", f"http://127.0.0.1:{port}", "-p", COMMON]
    )
    assert time.monotonic() - started < 10
    assert result.exit_code == 2
    assert f"cannot reach the MLflow tracking server at `http://127.0.0.1:{port}`" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_listed_without_mlflow_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    adapter = available_adapters()["mlflow"]()
    assert adapter.name == "mlflow" and "MLflow" in adapter.summary
    with pytest.raises(AdapterError, match="needs the `mlflow` package") as err:
        list(adapter.events("http://127.0.0.1:5000"))
    assert err.value.hint is not None and "policyengine[mlflow]" in err.value.hint


def test_sync_state_belongs_to_one_server(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = SyncState("http://a:5000", {"mlflow-run-1"})
    state.save(path)
    assert SyncState.load(path, "http://a:5000").emitted == {"mlflow-run-1"}
    with pytest.raises(AdapterError, match="belongs to `http://a:5000`"):
        SyncState.load(path, "http://b:5000")
    path.write_text("{not json")
    with pytest.raises(AdapterError, match="cannot read the sync state"):
        SyncState.load(path, "http://a:5000")


# --------------------------------------------------------------------------- runs


def test_run_with_a_dataset_input() -> None:
    events, errors = translate(Translator().run(run_record(), {"name": "tox-train", "tags": {}}))
    assert errors == []
    assert [e["type"] for e in events] == ["dataset.registered", "run.started", "run.completed"]
    ds, start, done = events
    assert ds["subject"] == {"kind": "dataset", "id": "ehr@244437a9"}
    assert ds["attributes"]["classification"] == "PHI"
    assert ds["attributes"]["allowed_purposes"] == ["research", "qa"]
    assert (
        ds["attributes"]["row_count"] == 3 and ds["attributes"]["uri"] == "s3://bucket/ehr.parquet"
    )
    assert "digest" not in ds["attributes"]  # MLflow's digest pins a sample, not the bytes
    assert ds["attributes"]["labels"]["mlflow.digest"] == "244437a9"
    assert ds["attributes"]["labels"]["mlflow.columns"] == "a,b"
    assert start["time"] == "2026-11-27T03:31:04.773Z"
    assert start["actor"] == {"id": "priya"}
    assert start["attributes"]["inputs"] == ["ehr@244437a9"]
    assert start["attributes"]["code_commit"] == "abc1234"
    assert start["attributes"]["parameters"] == {"depth": "6"}
    assert start["attributes"]["labels"]["mlflow.experiment"] == "tox-train"
    assert done["attributes"] == {
        "status": "completed",
        "metrics": {"auc": 0.9},
        "labels": {"mlflow.status": "FINISHED"},
    }
    # Same record, same ids; a changed start changes the completion's id too.
    again, _ = translate(Translator().run(run_record(), {"name": "tox-train", "tags": {}}))
    assert [e["id"] for e in again] == [e["id"] for e in events]
    renamed, _ = translate(Translator().run(run_record(info__run_name="train-2")))
    assert renamed[2]["id"] != done["id"]


@pytest.mark.parametrize(
    ("status", "outcome"), [("FAILED", "failed"), ("KILLED", "failed"), ("RUNNING", None)]
)
def test_run_status(status: str, outcome: str | None) -> None:
    events, _ = translate(Translator().run(run_record(info__status=status)))
    done = [e for e in events if e["type"] == "run.completed"]
    assert [e["attributes"]["status"] for e in done] == ([outcome] if outcome else [])


def test_purpose_comes_from_the_run_or_its_experiment() -> None:
    tags = dict(run_record()["data"]["tags"])
    del tags["policyengine.purpose"]
    exp = {"name": "x", "tags": {"policyengine.purpose": "qa"}}
    events, _ = translate(Translator().run(run_record(data__tags=tags), exp))
    assert events[1]["attributes"]["purpose"] == "qa"
    events, errors = translate(Translator().run(run_record(data__tags=tags)))
    assert [e.render() for e in errors] == [
        "run 5f6eda0bdd2b4d2b805338ac0cf08114: `data.tags.policyengine.purpose`: "
        "the run declares no purpose"
    ]
    assert [e["type"] for e in events] == ["dataset.registered", "run.completed"]


def test_nonfinite_metrics_never_reach_a_policy() -> None:
    events, _ = translate(Translator().run(run_record(data__metrics={"a": 1, "b": float("nan")})))
    assert events[-1]["attributes"]["metrics"] == {"a": 1.0}
    assert events[-1]["attributes"]["labels"]["mlflow.nonfinite_metrics"] == "b"


def test_dataset_governance_tags() -> None:
    record = run_record()
    item = record["inputs"]["dataset_inputs"][0]
    item["tags"].update({"policyengine.digest": SHA, "policyengine.deidentified": "True"})
    events, errors = translate(Translator().run(record))
    assert errors == []
    assert events[0]["attributes"]["digest"] == SHA
    assert events[0]["attributes"]["deidentified"] is True
    item["tags"]["policyengine.deidentified"] = "yes"
    events, errors = translate(Translator().run(record))
    assert [e.field for e in errors] == ["inputs.dataset_inputs[0].tags.policyengine.deidentified"]
    assert events[0]["attributes"]["inputs"] == []  # the run is still read


def test_an_untagged_reuse_does_not_clear_governance() -> None:
    tr = Translator()
    first, _ = translate(tr.run(run_record()))
    reuse = run_record(info__run_id="b" * 32)
    reuse["inputs"]["dataset_inputs"][0]["tags"] = {"mlflow.data.context": "training"}
    second, _ = translate(tr.run(reuse))
    assert first[0]["type"] == "dataset.registered"
    assert [e["type"] for e in second] == ["run.started", "run.completed"]
    assert second[0]["attributes"]["inputs"] == ["ehr@244437a9"]


def test_a_sha256_mlflow_digest_is_the_content_digest() -> None:
    record = run_record()
    record["inputs"]["dataset_inputs"][0]["dataset"]["digest"] = SHA
    events, _ = translate(Translator().run(record))
    assert events[0]["attributes"]["digest"] == SHA


# --------------------------------------------------------------------------- registry


def approval_tag(**over: Any) -> str:
    value = {
        "signer": "elena@example.com",
        "signer_name": "Elena Varga",
        "role": "qa",
        "meaning": "approved",
        "time": "2026-11-28T10:00:00Z",
        "comment": "VR-0311",
    }
    value.update(over)
    return json.dumps({k: v for k, v in value.items() if v is not None})


def test_model_version_with_approvals_and_a_legacy_stage() -> None:
    tr = Translator()
    list(tr.run(run_record()))  # the run's user becomes the author when MLflow names none
    tags = {
        "policyengine.approval.elena": approval_tag(),
        "policyengine.artifact_digest": SHA,
        "team": "tox",
    }
    events, errors = translate(
        tr.model_version(version_record(tags=tags, current_stage="Production"))
    )
    assert errors == []
    assert [e["type"] for e in events] == [
        "model.registered",
        "approval.recorded",
        "model.promotion_requested",
    ]
    reg, appr, promo = events
    assert reg["subject"] == {"kind": "model_version", "id": "models:/tox/3"}
    assert reg["actor"] == {"id": "priya"}
    assert reg["attributes"]["training_run"] == "5f6eda0bdd2b4d2b805338ac0cf08114"
    assert reg["attributes"]["artifact_digest"] == SHA
    assert reg["attributes"]["labels"]["team"] == "tox"
    assert appr["actor"] == {"id": "elena@example.com", "name": "Elena Varga", "roles": ["qa"]}
    assert appr["time"] == "2026-11-28T10:00:00Z"
    assert appr["attributes"]["comment"] == "VR-0311"
    assert promo["attributes"]["to_stage"] == "production"
    assert promo["time"] == "2026-11-27T03:31:06Z"  # the transition's last_updated_timestamp


def test_created_by_tag_wins() -> None:
    tags = {"policyengine.created_by": "author@example.com"}
    events, _ = translate(Translator().model_version(version_record(tags=tags, run_id=None)))
    assert events[0]["actor"] == {"id": "author@example.com"}
    assert "training_run" not in events[0]["attributes"]


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("{", "tags.policyengine.approval.x", "invalid JSON"),
        ("[]", "tags.policyengine.approval.x", "an approval must be a JSON object"),
        (approval_tag(signer=None), "tags.policyengine.approval.x.signer", "required field"),
        (
            approval_tag(time="2026-11-28T10:00:00"),
            "tags.policyengine.approval.x.time",
            "has no timezone",
        ),
        (approval_tag(sign="x"), "tags.policyengine.approval.x.sign", "unknown field `sign`"),
    ],
)
def test_bad_approval_tags_name_the_field(value: str, field: str, message: str) -> None:
    tags = {"policyengine.approval.x": value}
    events, errors = translate(Translator().model_version(version_record(tags=tags)))
    assert [e["type"] for e in events] == ["model.registered"]
    assert [e.field for e in errors] == [field]
    assert message in errors[0].message


def test_alias_maps_to_a_stage_with_an_id_independent_of_time() -> None:
    tr = Translator(aliases={"champion": "production"})
    a = tr.alias("tox", "champion", "3", "2026-11-28T00:00:00Z", "here")
    b = tr.alias("tox", "champion", "3", "2026-12-28T00:00:00Z", "here")
    assert a.event["attributes"] == {
        "to_stage": "production",
        "labels": {"mlflow.alias": "champion"},
    }
    assert a.event["id"] == b.event["id"]
    parse_event(a.event)


# --------------------------------------------------------------------------- webhooks


def signed_delivery(
    payload: dict[str, Any], secret: str, stamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Headers and body exactly as `mlflow.webhooks.delivery._send_webhook_request` builds
    them, signed by MLflow's own function (so this test fails if we disagree with it)."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps(payload)
    delivery = "0b7c5f1e-7a53-4d59-9c3e-2f0a4c1d8e21"
    ts = str(stamp if stamp is not None else int(time.time()))
    headers = {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: _generate_hmac_signature(secret, delivery, ts, body),
    }
    return body.encode(), headers


def envelope(entity: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity": entity,
        "action": action,
        "timestamp": "2026-11-28T09:00:00.123456+00:00",
        "data": data,
    }


def test_signature_matches_mlflows_and_verifies() -> None:
    pytest.importorskip("mlflow")
    from mlflow.webhooks.delivery import _generate_hmac_signature

    assert sign_webhook("s3cret", "id-1", "1700000000", '{"a": 1}') == _generate_hmac_signature(
        "s3cret", "id-1", "1700000000", '{"a": 1}'
    )
    payload = envelope(
        "model_version_alias", "created", {"name": "tox", "alias": "production", "version": "3"}
    )
    body, headers = signed_delivery(payload, "s3cret")
    assert verify_webhook(body, headers, "s3cret") == payload
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_webhook(body, lowered, "s3cret") == payload
    # Key rotation: several space-separated signatures, one of them valid.
    rotated = dict(headers)
    rotated[SIGNATURE_HEADER] = (
        "v1," + base64.b64encode(b"x" * 32).decode() + " " + headers[SIGNATURE_HEADER]
    )
    assert verify_webhook(body, rotated, "s3cret") == payload


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("secret", "the signature does not match"),
        ("body", "the signature does not match"),
        ("stale", "is more than 300 s from now"),
        ("no-signature", "missing `X-MLflow-Signature` header"),
        ("v2", "has no `v1,` signature"),
        ("empty-secret", "no webhook secret is configured"),
    ],
)
def test_bad_deliveries_are_refused(change: str, message: str) -> None:
    pytest.importorskip("mlflow")
    stamp = int(time.time()) - (3600 if change == "stale" else 0)
    body, headers = signed_delivery(envelope("model_version", "created", {}), "s3cret", stamp)
    secret = {"secret": "other", "empty-secret": ""}.get(change, "s3cret")
    if change == "body":
        body = body.replace(b"created", b"deleted")
    if change == "no-signature":
        del headers[SIGNATURE_HEADER]
    if change == "v2":
        headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].replace("v1,", "v2,")
    with pytest.raises(WebhookError) as err:
        verify_webhook(body, headers, secret)
    assert message in err.value.message
    assert err.value.status == 401


def test_every_mlflow_webhook_event_is_translated_or_ignored() -> None:
    pytest.importorskip("mlflow")
    from mlflow.entities.webhook import WebhookAction, WebhookEntity, WebhookEvent
    from mlflow.webhooks.types import get_example_payload_for_event

    seen = {}
    for entity in WebhookEntity:
        for action in WebhookAction:
            try:
                event = WebhookEvent(entity, action)
                example = get_example_payload_for_event(event)
            except Exception:
                continue  # not a valid combination in MLflow
            events = webhook_events(envelope(entity.value, action.value, dict(example)))
            for e in events:
                parse_event(e)
            seen[f"{entity.value}.{action.value}"] = [e["type"] for e in events]
    assert seen["model_version.created"] == ["model.registered"]
    assert seen["model_version_alias.created"] == ["model.promotion_requested"]
    assert seen["model_version_tag.set"] == []  # not an approval tag
    assert seen["registered_model.created"] == []


def test_webhook_approval_and_bad_payloads() -> None:
    data = {
        "name": "tox",
        "version": "3",
        "key": "policyengine.approval.elena",
        "value": approval_tag(),
    }
    (event,) = webhook_events(envelope("model_version_tag", "set", data))
    assert event["type"] == "approval.recorded"
    # The same tag read by polling gives the same event.
    polled, _ = translate(
        Translator().model_version(
            version_record(tags={"policyengine.approval.elena": approval_tag()})
        )
    )
    assert event == polled[1]
    with pytest.raises(
        WebhookError, match=r"unknown MLflow webhook event `model_version\.exploded`"
    ):
        webhook_events(envelope("model_version", "exploded", {}))
    with pytest.raises(WebhookError) as err:
        webhook_events(envelope("model_version", "created", {"name": "tox"}))
    assert err.value.field == "data.version"
    data["value"] = "{"
    with pytest.raises(WebhookError, match="invalid JSON") as err:
        webhook_events(envelope("model_version_tag", "set", data))
    assert err.value.field == "data.tags.policyengine.approval.elena"
