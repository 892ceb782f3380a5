"""The OpenLineage HTTP receiver, driven by the real `openlineage-python` client's HTTP
transport against a uvicorn server on a free loopback port."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openlineage_scenario as S
import pytest
import requests
import uvicorn
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from policyengine_openlineage import Options, Translator
from policyengine_openlineage.receiver import OpenLineageReceiver

TOKEN = "s3cret-token"
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "openlineage" / "examples"


class Sink:
    """The `on_events` callback: collects every batch; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = False

    def __call__(self, events: list[dict[str, Any]]) -> None:
        if self.fail:
            raise RuntimeError("store unavailable")
        self.batches.append(events)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


class Server:
    def __init__(self, receiver: OpenLineageReceiver) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(receiver, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def sink() -> Sink:
    return Sink()


@pytest.fixture(scope="module")
def server(sink: Sink) -> Iterator[Server]:
    receiver = OpenLineageReceiver(sink, token=TOKEN, translator=Translator(Options()))
    with Server(receiver) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(sink: Sink) -> None:
    sink.batches.clear()
    sink.fail = False


def client(url: str, token: str | None = TOKEN, *, gzip_body: bool = False) -> OpenLineageClient:
    config = HttpConfig(
        url=url,
        auth=ApiKeyTokenProvider({"apiKey": token}) if token else HttpConfig(url=url).auth,
        compression=HttpCompression.GZIP if gzip_body else None,
        retry={"total": 0},
    )
    return OpenLineageClient(
        transport=HttpTransport(config),
        config={"facets": {"source_code_location": {"disabled": True}}},
    )


def test_client_http_transport_events_reach_the_callback_translated(
    server: Server, sink: Sink
) -> None:
    ol = client(server.url)
    ol.emit(S.ehr_registered())
    ol.emit(S.etl_job_definition())
    ol.emit(S.training_start())
    ol.emit(S.training_complete())
    assert len(sink.batches) == 4  # one request, one call
    assert [(e["type"], e["subject"]["id"]) for e in sink.events] == [
        ("dataset.registered", f"{S.DB}/{S.EHR}@{S.EHR_VERSION}"),
        ("dataset.registered", f"{S.DB}/{S.FEATURES}"),
        ("dataset.registered", f"{S.DB}/{S.FEATURES}"),
        ("run.started", S.RUN_TRAIN),
        ("run.completed", S.RUN_TRAIN),
        ("dataset.registered", f"{S.LAKE}/reports/cardio-risk/1.0.0/eval.parquet"),
        ("model.registered", "cardio-risk@1.0.0"),
    ]
    # The same translation as reading the events from a file; only the ids differ, as the
    # client adds a `tags` run facet (its version) to what it sends.
    expected = [e for ev in (S.training_start(), S.training_complete())
                for e in Translator().translate(S.as_dict(ev))]  # fmt: skip
    assert [{**e, "id": None} for e in sink.events[2:]] == [{**e, "id": None} for e in expected]


def test_gzip_bodies_are_accepted(server: Server, sink: Sink) -> None:
    client(server.url, gzip_body=True).emit(S.misuse_start())
    (event,) = sink.events
    assert event["type"] == "run.started"
    assert event["attributes"]["purpose"] == "marketing-analytics"


def test_missing_or_wrong_token_is_401(server: Server, sink: Sink) -> None:
    for token in (None, "wrong"):
        with pytest.raises(requests.HTTPError) as info:
            client(server.url, token).emit(S.ehr_registered())
        assert info.value.response.status_code == 401
        assert info.value.response.headers["www-authenticate"].startswith("Bearer")
    assert sink.batches == []


def post(server: Server, body: Any, **headers: str) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        server.url + "/api/v1/lineage",
        content=data,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers},
    )


def test_invalid_event_is_a_problem_naming_the_json_path(server: Server, sink: Sink) -> None:
    bad = json.loads((EXAMPLES / "event_no_run_id.json").read_text())
    response = post(server, bad)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:policyengine:problem:invalid-openlineage-event"
    assert problem["detail"] == "`run.runId`: field required"
    assert problem["errors"] == [
        {"pointer": "#/run/runId", "field": "run.runId", "detail": "field required"}
    ]
    assert problem["instance"] == "/api/v1/lineage"
    # A batch is all or nothing; pointers start with the index.
    good = S.as_dict(S.ehr_registered())
    response = post(server, [good, bad])
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["#/1/run/runId"]
    assert sink.batches == []
    naive = json.loads((EXAMPLES / "serde_example_dataset_event.json").read_text())
    problem = post(server, naive).json()
    assert problem["errors"][0]["field"] == "eventTime"
    assert "hint: add `Z`" in problem["detail"]


def test_translation_the_catalogue_refuses_is_a_problem(server: Server, sink: Sink) -> None:
    event = S.as_dict(S.training_complete())
    body = json.dumps(event).replace('"auroc": 0.87', '"auroc": 1e400').encode()  # infinite
    problem = post(server, body).json()
    assert problem["status"] == 400
    assert problem["detail"].startswith("translated `run.completed`: `attributes.metrics.auroc`")
    assert problem["errors"][0]["field"] == "attributes.metrics.auroc"
    assert sink.batches == []


def test_arrays_are_accepted_all_at_once(server: Server, sink: Sink) -> None:
    events = [S.as_dict(S.deidentify_run(RunState.COMPLETE, "2024-05-02T08:40:00Z")),
              S.as_dict(S.misuse_failed())]  # fmt: skip
    response = post(server, events)
    assert response.status_code == 201
    body = response.json()
    assert body["received"] == 2 and body["events"] == [e["id"] for e in sink.events]
    assert len(sink.batches) == 1 and len(sink.events) == 2
    # The `/batch` endpoint clients that batch use takes arrays only.
    batch = httpx.post(server.url + "/api/v1/lineage/batch", json=events,
                       headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert batch.status_code == 201 and batch.json()["events"] == body["events"]
    single = httpx.post(server.url + "/api/v1/lineage/batch", json=events[0],
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert single.status_code == 400 and "JSON array" in single.json()["detail"]


def test_http_errors(server: Server, sink: Sink) -> None:
    assert httpx.get(server.url + "/api/v1/lineage").status_code == 405
    assert httpx.post(server.url + "/elsewhere").status_code == 404
    assert post(server, b"{oops").json()["type"] == "urn:policyengine:problem:invalid-json"
    assert post(server, b"{}", **{"Content-Type": "text/plain"}).status_code == 415
    assert post(server, b"{}", **{"Content-Encoding": "br"}).status_code == 415
    assert post(server, b"not gzip", **{"Content-Encoding": "gzip"}).status_code == 400
    assert post(server, b'{"eventTime": NaN}').status_code == 400
    sink.fail = True
    response = post(server, S.as_dict(S.ehr_registered()))
    assert response.status_code == 500  # the client retries on 5xx
    assert "retry" in response.json()["detail"]


def test_body_limits_hold_before_and_after_decompression(sink: Sink) -> None:
    receiver = OpenLineageReceiver(sink, max_body_bytes=2048)
    with Server(receiver) as small:
        big = json.dumps(S.as_dict(S.ehr_registered())).encode()
        assert len(big) > 2048
        plain = httpx.post(small.url + "/api/v1/lineage", content=big)
        assert plain.status_code == 413
        bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
        assert len(bomb) < 2048
        response = httpx.post(
            small.url + "/api/v1/lineage",
            content=bomb,
            headers={"Content-Encoding": "gzip"},
        )
        assert response.status_code == 413
        # No token configured: no authentication required.
        small_event = gzip.compress(json.dumps(S.as_dict(S.misuse_start())).encode())
        ok = httpx.post(
            small.url + "/api/v1/lineage", content=small_event, headers={"Content-Encoding": "gzip"}
        )
        assert ok.status_code == 201


def test_mounts_in_a_fastapi_app_with_an_async_callback() -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    received: list[list[dict[str, Any]]] = []

    async def on_events(events: list[dict[str, Any]]) -> None:
        received.append(events)

    app = FastAPI()
    app.add_route("/api/v1/lineage", OpenLineageReceiver(on_events), methods=["POST"])
    with TestClient(app) as http:
        response = http.post("/api/v1/lineage", json=S.as_dict(S.ehr_registered()))
    assert response.status_code == 201
    assert response.json()["events"] == [received[0][0]["id"]]
