"""The decision API against the ASGI app in-process (httpx over ASGITransport): decisions,
problem details, limits, auth, the log endpoints, idempotency, metrics, logs and OpenAPI."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from pseudonyms import PSEUDONYMS, pseudonym_key_file
from test_server_support import (
    GATE,
    ROOT,
    app_client,
    approval,
    deploy,
    key_file,
    registered,
    write_policies,
)

import policyengine as pe
from policyengine.log import TransparencyLog, load_verifier, parse_record, verify_proof
from policyengine.server import JsonFormatter, ServerSettings, create_app

EVENTS = [
    json.loads(line) for line in (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()
]
PROBLEM = "application/problem+json"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def settings(tmp_path: Path, *, log: bool = True, **kw: Any) -> ServerSettings:
    policies = kw.pop("policies", None) or str(write_policies(tmp_path / "policies"))
    if log:
        kw.setdefault("log_path", str(tmp_path / "log.db"))
        kw.setdefault("key_path", str(key_file(tmp_path)))
    kw.setdefault("reload_interval_s", 0)
    return ServerSettings(policies=(policies,), **kw)


def problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:policyengine:problem:{kind}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_server_decides_like_the_engine_and_logs_every_decision(tmp_path: Path) -> None:
    """The biotech stream through HTTP gives byte-identical decisions to the in-process
    engine (same clock), each response names the bundle, and each decision is in the log."""
    s = settings(
        tmp_path,
        policies=str(ROOT / "policies"),
        clock=pe.event_time,
        pseudonym_key_path=str(pseudonym_key_file(tmp_path)),
    )
    bundle = pe.load_bundle(ROOT / "policies")
    engine = pe.Engine(bundle, pseudonymiser=PSEUDONYMS)
    expected = [engine.evaluate(e).to_dict() for e in EVENTS]

    async def scenario() -> list[dict[str, Any]]:
        async with app_client(create_app(s)) as c:
            out = []
            for e in EVENTS[:30]:
                r = await c.post("/v1/evaluate", json=e)
                assert r.status_code == 200, r.text
                out.append(r.json())
            r = await c.post("/v1/evaluate/batch", json={"events": EVENTS[30:]})
            assert r.status_code == 200, r.text
            batch = r.json()
            assert batch["bundle_digest"] == bundle.digest and batch["recorded"] is True
            return out + batch["decisions"]

    got = run(scenario())
    assert [g["decision"] for g in got] == expected
    assert all(g.get("bundle_digest", bundle.digest) == bundle.digest for g in got)
    assert {g["outcome"] for g in got} >= {"allow", "deny"}
    log = TransparencyLog.open(tmp_path / "log.db")
    signer_key = log.verifier_key
    assert signer_key is not None
    assert log.audit(load_verifier(signer_key)).ok
    for g in got:
        index = g["log_index"]
        assert log.find(g["event_id"]) == [index]
        assert parse_record(log.leaf(index))["decision"] == g["decision"]
    raw = {p for e in EVENTS for p in e["attributes"].get("patient_ids", [])}
    assert raw and not any(r.encode() in (tmp_path / "log.db").read_bytes() for r in raw)
    log.close()


def test_identifiers_without_a_key_are_refused_when_recording(tmp_path: Path) -> None:
    s = settings(tmp_path, policies=str(ROOT / "policies"), clock=pe.event_time)
    with_ids = next(e for e in EVENTS if e["attributes"].get("patient_ids"))

    async def scenario() -> httpx.Response:
        async with app_client(create_app(s)) as c:
            return await c.post("/v1/evaluate", json=with_ids)

    body = problem(run(scenario()), 422, "invalid-event")
    assert "carries patient identifiers" in body["detail"]


def test_state_carries_across_requests_and_denials_do_not_count(tmp_path: Path) -> None:
    s = settings(tmp_path, log=False)

    async def scenario() -> list[str]:
        async with app_client(create_app(s)) as c:
            outcomes = []
            for e in [
                registered("mv-1", author="ann"),
                approval("mv-1", "ann"),  # the author: does not count
                approval("mv-1", "bob"),
                deploy("mv-1"),
                approval("mv-1", "cy"),
                deploy("mv-1"),
                deploy("mv-1", environment="staging"),
            ]:
                r = await c.post("/v1/evaluate", json=e)
                assert r.status_code == 200, r.text
                assert r.json()["recorded"] is False and r.json()["log_index"] is None
                outcomes.append(r.json()["outcome"])
            return outcomes

    assert run(scenario()) == ["allow", "allow", "allow", "deny", "allow", "allow", "allow"]


def test_batch_is_validated_whole_with_pointers_and_decided_in_order(tmp_path: Path) -> None:
    s = settings(tmp_path)
    bad = approval("mv-2", "bob")
    bad["attributes"]["meaning"] = 42
    del bad["time"]
    dup = registered("mv-2")

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            batch = [registered("mv-2"), bad, dup, dup]
            r = await c.post("/v1/evaluate/batch", json={"events": batch})
            body = problem(r, 422, "invalid-event")
            pointers = {e["pointer"] for e in body["errors"]}
            assert pointers == {"#/events/1/time", "#/events/1/attributes/meaning", "#/events/3/id"}
            assert "nothing was decided" in body["detail"]
            # nothing was decided or logged
            r = await c.get("/v1/log")
            assert r.json()["size"] == 0
            # shape errors point at the batch itself
            r = await c.post("/v1/evaluate/batch", json=[registered("x")])
            assert problem(r, 422, "invalid-request")["errors"][0]["pointer"] == "#"
            r = await c.post("/v1/evaluate/batch", json={"events": [], "extra": 1})
            assert problem(r, 422, "invalid-request")["errors"][0]["pointer"] == "#/extra"
            r = await c.post("/v1/evaluate/batch", json={"events": []})
            problem(r, 422, "invalid-request")
            # later events in a batch see what earlier ones did
            seq = [registered("mv-3"), approval("mv-3", "b"), approval("mv-3", "c"), deploy("mv-3")]
            r = await c.post("/v1/evaluate/batch", json={"events": seq})
            assert [d["outcome"] for d in r.json()["decisions"]] == ["allow"] * 4
            indices = [d["log_index"] for d in r.json()["decisions"]]
            assert indices == sorted(indices) and len(set(indices)) == 4

    run(scenario())


def test_malformed_requests_get_problem_details(tmp_path: Path) -> None:
    s = settings(tmp_path, log=False, max_body_bytes=2048, max_batch_events=3)

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            r = await c.post("/v1/evaluate", content=b'{"id": ')
            assert "not JSON" in problem(r, 400, "invalid-json")["detail"]
            r = await c.post("/v1/evaluate", content=b'{"x": NaN}')
            problem(r, 400, "invalid-json")
            r = await c.post("/v1/evaluate", content=b'{"x": 1e999}')
            problem(r, 400, "invalid-json")
            r = await c.post("/v1/evaluate", content=b"\xff\xfe")
            assert "UTF-8" in problem(r, 400, "invalid-json")["detail"]
            r = await c.post("/v1/evaluate", json=[1])
            assert problem(r, 422, "invalid-event")["errors"][0]["pointer"] == "#"
            e = registered("mv-4")
            e["attributes"]["name"] = 7
            r = await c.post("/v1/evaluate", json=e)
            body = problem(r, 422, "invalid-event")
            assert body["errors"] == [
                {"pointer": "#/attributes/name", "detail": body["errors"][0]["detail"]}
            ]
            assert "`attributes.name`" in body["detail"]
            # size limits: declared and streamed (chunked, no Content-Length)
            r = await c.post("/v1/evaluate", content=b" " * 4096)
            assert problem(r, 413, "body-too-large")["max_bytes"] == 2048
            r = await c.post("/v1/evaluate", content=chunks())
            problem(r, 413, "body-too-large")
            r = await c.post("/v1/evaluate/batch", json={"events": [registered("a")] * 4})
            problem(r, 422, "too-many-events")
            r = await c.get("/v1/nowhere")
            problem(r, 404, "not-found")
            r = await c.get("/v1/evaluate")
            problem(r, 405, "method-not-allowed")
            r = await c.get("/v1/decisions/x", params={"index": "-1"})
            assert problem(r, 422, "invalid-parameter")["errors"][0]["parameter"] == "index"
            r = await c.get("/v1/decisions/x")
            problem(r, 404, "no-log")

    run(scenario())


def test_write_endpoints_need_the_bearer_token(tmp_path: Path) -> None:
    s = settings(tmp_path, log=False, token="s3cret-token")

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            for path, body in [
                ("/v1/evaluate", registered("a")),
                ("/v1/evaluate/batch", {"events": [registered("b")]}),
                ("/v1/events", [registered("c")]),
            ]:
                r = await c.post(path, json=body)
                problem(r, 401, "unauthorized")
                assert r.headers["www-authenticate"] == 'Bearer realm="policyengine"'
                r = await c.post(path, json=body, headers={"authorization": "Bearer wrong"})
                problem(r, 401, "unauthorized")
                assert 'error="invalid_token"' in r.headers["www-authenticate"]
                r = await c.post(path, json=body, headers={"authorization": "Basic s3cret-token"})
                problem(r, 401, "unauthorized")
                r = await c.post(path, json=body, headers={"authorization": "Bearer s3cret-token"})
                assert r.status_code == 200, r.text
            # reads need no token
            for path in ("/v1/health", "/v1/ready", "/v1/bundle", "/metrics", "/v1/openapi.json"):
                assert (await c.get(path)).status_code == 200

    run(scenario())


def test_lineage_intake_accepts_one_an_array_or_json_lines(tmp_path: Path) -> None:
    s = settings(tmp_path)

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            r = await c.post("/v1/events", json=registered("mv-5"))
            assert r.json()["accepted"] == 1 and r.json()["recorded"] is True
            r = await c.post("/v1/events", json=[approval("mv-5", "b"), approval("mv-5", "c")])
            assert [x["outcome"] for x in r.json()["results"]] == ["allow", "allow"]
            lines = [deploy("mv-5"), deploy("mv-5", "staging")]
            text = "\n" + "\n".join(json.dumps(e) for e in lines) + "\n\n"
            r = await c.post(
                "/v1/events", content=text, headers={"content-type": "application/x-ndjson"}
            )
            results = r.json()["results"]
            assert [x["event_id"] for x in results] == [e["id"] for e in lines]
            assert [x["outcome"] for x in results] == ["allow", "allow"]
            assert "decision" not in results[0]  # intake answers are compact
            bad = deploy("mv-5")
            bad["attributes"]["target"] = "prod"
            text = json.dumps(deploy("mv-5")) + "\n" + json.dumps(bad) + "\n{oops\n"
            r = await c.post(
                "/v1/events", content=text, headers={"content-type": "application/x-ndjson"}
            )
            body = problem(r, 400, "invalid-json")
            assert body["errors"][0]["line"] == 3
            text = json.dumps(deploy("mv-5")) + "\n" + json.dumps(bad) + "\n"
            r = await c.post(
                "/v1/events", content=text, headers={"content-type": "application/x-ndjson"}
            )
            body = problem(r, 422, "invalid-event")
            assert body["errors"][0]["line"] == 2
            assert body["errors"][0]["pointer"] == "#/attributes/target"

    run(scenario())


def test_decisions_proofs_and_checkpoints_come_from_the_log(tmp_path: Path) -> None:
    s = settings(tmp_path)
    first = registered("mv-6")

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            r = await c.get("/v1/log/checkpoint")
            problem(r, 404, "no-checkpoint")
            r = await c.get("/v1/decisions/" + first["id"])
            problem(r, 404, "decision-not-found")
            answer = (await c.post("/v1/evaluate", json=first)).json()
            await c.post("/v1/evaluate", json=approval("mv-6", "b"))
            info = (await c.get("/v1/log")).json()
            assert info["origin"] == "test.example/decisions" and info["checkpoint"]["size"] == 4
            verifier = load_verifier(info["verifier_key"])
            r = await c.get("/v1/decisions/" + first["id"])
            stored = r.json()
            assert stored["decision"] == answer["decision"]
            assert stored["log_index"] == answer["log_index"] and stored["indices"] == [2]
            r = await c.get(f"/v1/decisions/{first['id']}/proof")
            assert r.headers["content-type"].startswith("text/plain")
            checkpoint, leaf = verify_proof(r.text, verifier)
            assert checkpoint.size == 4
            assert parse_record(leaf)["decision"] == answer["decision"]
            r = await c.get(f"/v1/decisions/{first['id']}/proof", params={"index": 3})
            problem(r, 404, "decision-not-found")
            r = await c.get("/v1/log/checkpoint")
            assert r.text.startswith("test.example/decisions\n4\n")

    run(scenario())


def test_event_ids_are_idempotency_keys(tmp_path: Path) -> None:
    """A retried event gets the recorded decision back; nothing is decided twice, so an
    approval retried after a lost answer still counts once. A different event under a used
    id is a conflict."""
    s = settings(tmp_path)
    reg, appr = registered("mv-7"), approval("mv-7", "bob")

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            one = (await c.post("/v1/evaluate", json=reg)).json()
            await c.post("/v1/evaluate", json=appr)
            again = (await c.post("/v1/evaluate", json=appr)).json()
            assert again["already_recorded"] is True
            r = await c.post("/v1/evaluate/batch", json={"events": [reg, approval("mv-7", "bob")]})
            decisions = r.json()["decisions"]
            assert decisions[0]["already_recorded"] is True
            assert decisions[0]["decision"] == one["decision"]
            assert decisions[1]["already_recorded"] is False
            # bob's approval twice is still one distinct signer: deny
            assert (await c.post("/v1/evaluate", json=deploy("mv-7"))).json()["outcome"] == "deny"
            changed = {**appr, "attributes": {**appr["attributes"], "signer": "eve"}}
            r = await c.post("/v1/evaluate/batch", json={"events": [registered("z"), changed]})
            body = problem(r, 409, "event-id-conflict")
            assert body["errors"][0]["pointer"] == "#/events/1/id"
            assert (await c.get("/v1/decisions/" + registered("z")["id"])).status_code == 404

    run(scenario())


def test_an_unrecordable_event_fails_alone(tmp_path: Path) -> None:
    """Canonical JSON cannot hold integers beyond 2**53; such an event is refused with a
    pointer, and requests decided in the same group are unaffected."""
    s = settings(tmp_path)
    huge = event_with_huge_int()

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            results = await asyncio.gather(
                c.post("/v1/evaluate", json=registered("mv-8")),
                c.post("/v1/evaluate", json=huge),
                c.post("/v1/evaluate", json=registered("mv-9")),
            )
            assert [r.status_code for r in results] == [200, 422, 200]
            body = problem(results[1], 422, "unrecordable-event")
            assert body["errors"][0]["pointer"] == "#"
            r = await c.get("/v1/decisions/" + huge["id"])
            problem(r, 404, "decision-not-found")

    run(scenario())


def event_with_huge_int() -> dict[str, Any]:
    e = registered("mv-huge")
    e["type"] = "dataset.registered"
    e["subject"] = {"kind": "dataset", "id": "ds-huge"}
    e["attributes"] = {"name": "huge", "classification": "internal", "row_count": 2**60}
    return e


def test_a_failing_log_acknowledges_nothing_and_changes_no_state(tmp_path: Path) -> None:
    s = settings(tmp_path)
    app = create_app(s)
    service = app.state.service

    async def scenario() -> None:
        async with app_client(app) as c:
            await c.post("/v1/evaluate", json=registered("mv-10"))
            await c.post("/v1/evaluate", json=approval("mv-10", "b"))
            writer = service._writer
            real = writer.append

            def broken(*args: Any, **kwargs: Any) -> Any:
                raise OSError(28, "No space left on device")

            writer.append = broken
            r = await c.post("/v1/evaluate", json=approval("mv-10", "c"))
            problem(r, 503, "log-unavailable")
            assert r.headers["retry-after"] == "1"
            problem(await c.get("/v1/ready"), 503, "not-ready")
            writer.append = real
            # c's approval never counted: one approval, deny
            assert (await c.post("/v1/evaluate", json=deploy("mv-10"))).json()["outcome"] == (
                "deny"
            )
            assert (await c.get("/v1/ready")).status_code == 200
            metrics = (await c.get("/metrics")).text
            assert "policyengine_log_append_failures_total 1.0" in metrics

    run(scenario())


def test_concurrent_requests_share_durable_group_commits(tmp_path: Path) -> None:
    s = settings(tmp_path)
    app = create_app(s)
    events = [registered(f"mv-g{i}") for i in range(120)]

    async def scenario() -> list[dict[str, Any]]:
        async with app_client(app) as c:
            rs = await asyncio.gather(*(c.post("/v1/evaluate", json=e) for e in events))
            assert all(r.status_code == 200 for r in rs)
            metrics = (await c.get("/metrics")).text
            groups = _sample(metrics, "policyengine_group_commit_events_count")
            assert groups < len(events)  # some requests shared an append
            return [r.json() for r in rs]

    answers = run(scenario())
    log = TransparencyLog.open(tmp_path / "log.db")
    assert sorted(a["log_index"] for a in answers) == list(range(2, 122))
    for a in answers:
        assert log.find(a["event_id"]) == [a["log_index"]]
    log.close()


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample `{name}`")


def test_metrics_count_decisions_by_outcome_rule_and_layer(tmp_path: Path) -> None:
    s = settings(tmp_path)

    async def scenario() -> str:
        async with app_client(create_app(s)) as c:
            for e in [registered("mv-11", name="abc"), deploy("mv-11"), deploy("mv-11")]:
                await c.post("/v1/evaluate", json=e)
            text: str = (await c.get("/metrics")).text
            return text

    text = run(scenario())
    assert 'policyengine_decisions_total{outcome="deny"} 2.0' in text
    assert 'policyengine_decisions_total{outcome="allow_with_warnings"} 1.0' in text
    assert (
        'policyengine_denials_total{layer="oversight",rule="test.gate.two_approvals"} 2.0' in text
    )
    assert (
        'policyengine_rule_results_total{enforcement="advisory",layer="audit",'
        'rule="test.gate.named_model",status="fail"} 1.0'
    ) in text
    assert "policyengine_evaluation_duration_seconds_count 3.0" in text
    assert "policyengine_log_leaves 5.0" in text
    assert _sample(text, "policyengine_log_checkpoint_age_seconds") < 60
    assert (
        'policyengine_http_requests_total{code="200",method="POST",route="/v1/evaluate"} 3.0'
        in text
    )
    assert 'policyengine_bundle_reloads_total{result="failure"} 0.0' in text


def test_request_logs_are_json_lines_without_payloads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings(tmp_path, log=False)
    secret = "SECRET-DONOR-NAME-7731"
    e = registered("mv-12", name=secret)

    async def scenario() -> None:
        async with app_client(create_app(s)) as c:
            r = await c.post("/v1/evaluate", json=e, headers={"x-request-id": "req-42"})
            assert r.headers["x-request-id"] == "req-42"
            bad = {**e, "attributes": {"name": 5, "version": secret}}
            await c.post("/v1/evaluate", json=bad)

    with caplog.at_level(logging.INFO, logger="policyengine.server"):
        run(scenario())
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    requests = [x for x in lines if x.get("event") == "http_request"]
    assert [(x["route"], x["status"]) for x in requests] == [
        ("/v1/evaluate", 200),
        ("/v1/evaluate", 422),
    ]
    assert requests[0]["request_id"] == "req-42" and requests[0]["bytes_in"] > 0
    assert any(x.get("event") == "no_log" for x in lines)  # said at start-up
    assert all(secret not in formatter.format(r) for r in caplog.records)


def test_openapi_documents_every_route_and_responses_match_it(tmp_path: Path) -> None:
    s = settings(tmp_path, token="t")
    auth = {"authorization": "Bearer t"}
    reg = registered("mv-13")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with app_client(create_app(s)) as c:
            doc = (await c.get("/v1/openapi.json")).json()
            bodies = {
                "EvaluateResponse": (await c.post("/v1/evaluate", json=reg, headers=auth)).json(),
                "BatchResponse": (
                    await c.post(
                        "/v1/evaluate/batch", json={"events": [deploy("mv-13")]}, headers=auth
                    )
                ).json(),
                "IntakeResponse": (
                    await c.post("/v1/events", json=[approval("mv-13", "b")], headers=auth)
                ).json(),
                "StoredDecision": (await c.get("/v1/decisions/" + reg["id"])).json(),
                "LogInfo": (await c.get("/v1/log")).json(),
                "BundleInfo": (await c.get("/v1/bundle")).json(),
                "Ready": (await c.get("/v1/ready")).json(),
                "Health": (await c.get("/v1/health")).json(),
                "Problem": (await c.post("/v1/evaluate", json={}, headers=auth)).json(),
            }
            return doc, bodies

    doc, bodies = run(scenario())
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths) == {
        "/v1/evaluate",
        "/v1/evaluate/batch",
        "/v1/events",
        "/v1/drift",
        "/v1/decisions/{event_id}",
        "/v1/decisions/{event_id}/proof",
        "/v1/log",
        "/v1/log/checkpoint",
        "/v1/bundle",
        "/v1/health",
        "/v1/ready",
        "/metrics",
        "/v1/reviews",
        "/v1/reviews/escalate",
        "/v1/reviews/{review_id}",
        "/v1/reviews/{review_id}/signatures",
        "/v1/models/{model_version}/drift-responses",
    }
    assert paths["/v1/evaluate"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/v1/decisions/{event_id}"]["get"]
    assert {p["name"] for p in paths["/v1/decisions/{event_id}"]["get"]["parameters"]} == {
        "event_id",
        "index",
    }
    assert paths["/v1/evaluate"]["post"]["responses"]["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    components = doc["components"]
    for name, body in bodies.items():
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        jsonschema.Draft202012Validator(schema).validate(body)
    # the request schema is the event catalogue's own: real events validate against it
    event_schema = {"$ref": "#/components/schemas/Event", "components": components}
    for e in EVENTS[:20]:
        jsonschema.Draft202012Validator(event_schema).validate(e)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(event_schema).validate({"id": "x"})


def test_the_core_package_does_not_import_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, policyengine, policyengine.cli.main;"
        "bad = [m for m in ('fastapi', 'starlette', 'uvicorn', 'prometheus_client', 'httpx')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_pointers_and_loopback_helpers() -> None:
    from policyengine.server import is_loopback
    from policyengine.server.problems import json_pointer

    assert json_pointer("#", "attributes.inputs[0]") == "#/attributes/inputs/0"
    assert json_pointer("#/events/3", "a.b[2][1].c") == "#/events/3/a/b/2/1/c"
    assert json_pointer("#/events/3", None) == "#/events/3"
    assert json_pointer("#", "x/y.z~w") == "#/x~1y/z~0w"
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.1.2.3", "example.org"))


def test_gate_policy_is_what_the_tests_assume() -> None:
    bundle = pe.compile_sources({"gate.policy": GATE})
    assert set(bundle.rules) == {"test.gate.two_approvals", "test.gate.named_model"}
