"""Reviews over HTTP, end to end on the shipped policies and the example stream: a production
deploy request opens a review; clients sign with their own keys (the server holds none); a
signed approval closes the item through the same recheck as the CLI; forged, self- and
tampered signatures are refused; signatures posted anywhere are attested at intake; overdue
items escalate once; metrics count the backlog."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pseudonyms import pseudonym_key_file
from test_server_support import app_client, key_file

import policyengine as pe
from policyengine.cli.main import cli
from policyengine.log import TransparencyLog, parse_record
from policyengine.oversight import esign
from policyengine.oversight.registry import SignerRegistry, save_registry
from policyengine.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")
EVENTS = [json.loads(x) for x in (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()]
MODEL = "mv-hepatox-1.0.0"
RULE = "gxp.oversight.production_deploy_two_person"
TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
PROBLEM = "application/problem+json"

#: id → (printed name, role, key). Priya registered the model: her approval is refused.
PEOPLE = {
    "kenji.mori@helixbio.example": ("Kenji Mori", "domain_expert", Ed25519PrivateKey.generate()),
    "elena.varga@helixbio.example": ("Elena Varga", "qa", Ed25519PrivateKey.generate()),
    "priya.raman@helixbio.example": ("Priya Raman", "domain_expert", Ed25519PrivateKey.generate()),
}
KENJI, ELENA, PRIYA = PEOPLE


def registry(*who: str) -> SignerRegistry:
    reg = SignerRegistry()
    for signer in who:
        name, role, key = PEOPLE[signer]
        reg = reg.with_signer(
            signer,
            name,
            [role],
            at=datetime(2026, 1, 1, tzinfo=UTC),
            public_key=esign.public_key_raw(key),
        )
    return reg


def signed(
    signer: str,
    subject: dict[str, str],
    digest: str,
    at: str,
    event_id: str,
    *,
    review: str | None = None,
    comment: str | None = "reviewed VR-0203",
    meaning: str = "approved",
) -> dict[str, Any]:
    """A signed approval built the way docs/server.md tells a client to build one."""
    name, role, key = PEOPLE[signer]
    manifest = esign.manifest(
        subject_kind=subject["kind"],
        subject_id=subject["id"],
        record_digest=digest,
        signer=signer,
        signer_name=name,
        role=role,
        meaning=meaning,
        time=datetime.fromisoformat(at.replace("Z", "+00:00")),
        comment=comment,
        review=review,
    )
    attributes: dict[str, Any] = {
        "signer": signer,
        "signer_name": name,
        "role": role,
        "meaning": meaning,
        "comment": comment,
        "record_digest": digest,
        "signature": esign.sign(key, manifest).model_dump(),
    }
    if review is not None:
        attributes["review"] = review
    return {
        "id": event_id,
        "type": "approval.recorded",
        "time": at,
        "actor": {"id": signer, "name": name, "roles": [role]},
        "subject": subject,
        "attributes": attributes,
    }


def settings(tmp_path: Path, **kw: Any) -> ServerSettings:
    kw.setdefault("log_path", str(tmp_path / "decisions.db"))
    kw.setdefault("key_path", str(key_file(tmp_path)))
    return ServerSettings(
        policies=(POLICIES,),
        token=TOKEN,
        reload_interval_s=0,
        clock=pe.event_time,
        pseudonym_key_path=str(pseudonym_key_file(tmp_path)),
        **kw,
    )


Scenario = Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]


def serve(s: ServerSettings, scenario: Scenario) -> Any:
    async def main() -> Any:
        async with app_client(create_app(s)) as c:
            return await scenario(c)

    return asyncio.run(main())


def problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:policyengine:problem:{kind}"
    return body


async def waiting(c: httpx.AsyncClient) -> dict[str, Any]:
    """Decide the stream up to the first production deploy request; return its item."""
    r = await c.post("/v1/evaluate/batch", json={"events": EVENTS[:25]}, headers=AUTH)
    assert r.status_code == 200, r.text
    last = r.json()["decisions"][-1]
    assert (last["event_id"], last["outcome"]) == ("evt-025", "review_required")
    listed = (await c.get("/v1/reviews")).json()["reviews"]
    assert len(listed) == 1
    item: dict[str, Any] = (await c.get(f"/v1/reviews/{listed[0]['id']}")).json()
    return item


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"`{name}` not exported"
    return float(m.group(1))


def logged_event(db: Path, event_id: str) -> dict[str, Any]:
    with TransparencyLog.open(db) as log:
        [index] = log.find(event_id)
        event: dict[str, Any] = parse_record(log.leaf(index))["event"]
        return event


def validate(doc: dict[str, Any], model: str, body: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def test_a_signed_approval_closes_the_review_and_the_log_replays(tmp_path: Path) -> None:
    s = settings(tmp_path, signers_path=str(tmp_path / "signers.json"))
    save_registry(tmp_path / "signers.json", registry(*PEOPLE))
    moment = "2026-02-11T11:40:00Z"

    async def scenario(c: httpx.AsyncClient) -> dict[str, Any]:
        doc = (await c.get("/v1/openapi.json")).json()
        item = await waiting(c)
        rid, subject = item["id"], item["subject"]
        validate(doc, "ReviewDetail", item)
        assert subject == {"kind": "model_version", "id": MODEL}
        assert (item["rule"], item["status"]) == (RULE, "open")
        assert item["roles"] == ["qa", "domain_expert"]
        assert item["deadline"] == "2026-02-13T09:00:00Z" and item["pending_event"] == "evt-025"
        # the digest a client signs is the record it is shown, as the client can check
        assert item["record_digest"] == esign.record_digest({"record": item["record"]})
        digest = item["record_digest"]
        listed = (await c.get("/v1/reviews", params={"now": "2026-02-12T00:00:00Z"})).json()
        validate(doc, "ReviewList", listed)
        assert listed["reviews"][0]["overdue"] is False
        assert (await c.get("/v1/reviews", params={"status": "approved"})).json()["reviews"] == []

        metrics = (await c.get("/metrics")).text
        assert metric(metrics, "policyengine_reviews_open") == 1
        assert metric(metrics, "policyengine_reviews_overdue") == 1  # the wall clock is later
        assert metric(metrics, 'policyengine_review_actions_total{action="opened"}') == 1

        # writes need the token
        good = signed(KENJI, subject, digest, moment, "sig-kenji", review=rid)
        problem(await c.post(f"/v1/reviews/{rid}/signatures", json=good), 401, "unauthorized")
        problem(await c.post("/v1/reviews/escalate"), 401, "unauthorized")

        # events that do not answer this item
        other = signed(KENJI, {"kind": "model_version", "id": "mv-other"}, digest, moment,
                       "sig-x", review=rid)  # fmt: skip
        body = problem(
            await c.post(f"/v1/reviews/{rid}/signatures", json=other, headers=AUTH),
            422,
            "invalid-signature-event",
        )
        assert body["errors"][0]["pointer"] == "#/subject"
        unnamed = signed(KENJI, subject, digest, moment, "sig-y")  # no attributes.review
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=unnamed, headers=AUTH)
        assert problem(r, 422, "invalid-signature-event")["errors"][0]["pointer"] == (
            "#/attributes/review"
        )
        wrong_type = {**EVENTS[24], "id": "not-a-signature"}
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=wrong_type, headers=AUTH)
        assert problem(r, 422, "invalid-signature-event")["errors"][0]["pointer"] == "#/type"

        # the author's own approval is refused by the policies; the item stays open
        own = signed(PRIYA, subject, digest, moment, "sig-priya", review=rid)
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=own, headers=AUTH)
        assert r.status_code == 200, r.text
        validate(doc, "ReviewActionResponse", r.json())
        assert r.json()["signature"]["outcome"] == "deny" and r.json()["recheck"] is None
        assert r.json()["review"]["status"] == "open"

        # a tampered signature is invalid: denied by the shipped rule, the item stays open
        tampered = signed(KENJI, subject, digest, moment, "sig-tampered", review=rid)
        tampered["attributes"]["comment"] = "a remark the signer never signed"
        tampered["attributes"]["signature_status"] = "verified"  # a claim is overwritten
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=tampered, headers=AUTH)
        assert r.status_code == 200, r.text
        refused = r.json()
        assert refused["signature"]["outcome"] == "deny" and refused["recheck"] is None
        failed = {
            x["rule"] for x in refused["signature"]["decision"]["results"] if x["status"] == "fail"
        }
        assert "gxp.oversight.signature_valid" in failed
        assert refused["review"]["status"] == "open"

        # a good signature from a domain expert: the recheck allows, the item is approved
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=good, headers=AUTH)
        assert r.status_code == 200, r.text
        done = r.json()
        validate(doc, "ReviewActionResponse", done)
        assert done["signature"]["outcome"] in ("allow", "allow_with_warnings")
        assert done["signature"]["log_index"] is not None
        recheck = done["recheck"]
        assert recheck["event_id"] == "evt-025~recheck-1"
        assert recheck["outcome"] in ("allow", "allow_with_warnings")  # advisory rules aside
        two_person = [x for x in recheck["decision"]["results"] if x["rule"] == RULE]
        assert [x["status"] for x in two_person] == ["pass"]
        assert done["review"]["status"] == "approved"
        actions = [h["action"] for h in done["review"]["history"]]
        assert actions[0] == "opened" and actions[-3:] == ["approved-by", "recheck", "approved"]

        # a closed item takes no more signatures; an unknown one is not found
        again = signed(ELENA, subject, digest, "2026-02-11T12:00:00Z", "sig-elena", review=rid)
        body = problem(
            await c.post(f"/v1/reviews/{rid}/signatures", json=again, headers=AUTH),
            409,
            "review-closed",
        )
        assert "already approved" in body["detail"]
        problem(await c.get("/v1/reviews/rv-000000000000"), 404, "review-not-found")
        r = await c.post("/v1/reviews/rv-000000000000/signatures", json=again, headers=AUTH)
        problem(r, 404, "review-not-found")
        problem(await c.get("/v1/reviews", params={"status": "closed"}), 422, "invalid-parameter")

        approved = (await c.get("/v1/reviews", params={"status": "approved"})).json()["reviews"]
        assert [i["id"] for i in approved] == [rid]
        metrics = (await c.get("/metrics")).text
        assert metric(metrics, "policyengine_reviews_open") == 0
        assert metric(metrics, "policyengine_reviews_overdue") == 0
        for action, n in (("signed", 1), ("refused", 2), ("approved", 1), ("rejected", 0)):
            assert metric(metrics, f'policyengine_review_actions_total{{action="{action}"}}') == n
        return done

    run_result = serve(s, scenario)
    db = tmp_path / "decisions.db"
    good = logged_event(db, "sig-kenji")["attributes"]
    assert good["signature_status"] == "verified", good["signature_problem"]
    bad = logged_event(db, "sig-tampered")["attributes"]
    assert bad["signature_status"] == "invalid" and "signature" in bad["signature_problem"]
    assert run_result["review"]["closed_at"] == "2026-02-11T11:40:00Z"
    # the server's log replays byte for byte: 25 events, 3 signatures, 1 recheck
    replay = CliRunner().invoke(cli, ["audit", "replay", "--log", str(db), "--format", "json"])
    report = json.loads(replay.stdout)
    assert report["ok"] and report["counts"]["differing"] == 0, replay.output
    assert report["counts"]["reproduced"] == 29


def test_signatures_are_attested_at_intake_and_the_registry_is_reread(tmp_path: Path) -> None:
    """Any endpoint, not only the review one: a client's `signature_status` is replaced by
    what verification finds, with the registry file as it is now."""
    path = tmp_path / "signers.json"
    save_registry(path, registry(ELENA))  # Kenji is not registered yet
    s = settings(tmp_path, signers_path=str(path))

    async def scenario(c: httpx.AsyncClient) -> list[str]:
        item = await waiting(c)
        subject, digest = item["subject"], item["record_digest"]
        outcomes = []
        for n, register in enumerate((False, True)):
            if register:
                save_registry(path, registry(ELENA, KENJI))
            e = signed(KENJI, subject, digest, "2026-02-11T11:40:00Z", f"plain-{n}")
            e["attributes"]["signature_status"] = "verified"
            r = await c.post("/v1/evaluate", json=e, headers=AUTH)
            assert r.status_code == 200, r.text
            outcomes.append(r.json()["outcome"])
        return outcomes

    assert serve(s, scenario) == ["deny", "allow"]
    db = tmp_path / "decisions.db"
    unknown = logged_event(db, "plain-0")["attributes"]
    assert unknown["signature_status"] == "invalid" and "key" in unknown["signature_problem"]
    assert logged_event(db, "plain-1")["attributes"]["signature_status"] == "verified"


def test_without_a_registry_a_claimed_verification_is_unverified(tmp_path: Path) -> None:
    s = settings(tmp_path)

    async def scenario(c: httpx.AsyncClient) -> dict[str, Any]:
        item = await waiting(c)
        e = signed(KENJI, item["subject"], item["record_digest"], "2026-02-11T11:40:00Z", "k")
        e["attributes"]["signature_status"] = "verified"
        r = await c.post("/v1/evaluate", json=e, headers=AUTH)
        assert r.status_code == 200, r.text
        # a retry of the same event is the same event, whatever it claims about itself
        e["attributes"]["signature_status"] = "unsigned"
        retry = await c.post("/v1/evaluate", json=e, headers=AUTH)
        assert retry.status_code == 200 and retry.json()["already_recorded"], retry.text
        # the unverified signature does not count: a new deploy request still waits
        again = {**EVENTS[24], "id": "evt-again", "time": "2026-02-11T12:00:00Z"}
        deploy: dict[str, Any] = (await c.post("/v1/evaluate", json=again, headers=AUTH)).json()
        return deploy

    assert serve(s, scenario)["outcome"] == "review_required"
    attrs = logged_event(tmp_path / "decisions.db", "k")["attributes"]
    assert attrs["signature_status"] == "unverified"


def test_overdue_reviews_escalate_once(tmp_path: Path) -> None:
    s = settings(tmp_path)

    async def scenario(c: httpx.AsyncClient) -> None:
        item = await waiting(c)
        early = await c.post("/v1/reviews/escalate", json={"now": "2026-02-12T00:00:00Z"},
                             headers=AUTH)  # fmt: skip
        assert early.status_code == 200 and early.json()["escalated"] == [], early.text
        late = await c.post("/v1/reviews/escalate", json={"now": "2026-02-14T00:00:00Z"},
                            headers=AUTH)  # fmt: skip
        assert late.status_code == 200, late.text
        doc = (await c.get("/v1/openapi.json")).json()
        validate(doc, "EscalateResponse", late.json())
        [escalated] = late.json()["escalated"]
        assert escalated["review"]["id"] == item["id"]
        assert escalated["review"]["escalated_at"] == "2026-02-14T00:00:00Z"
        assert escalated["review"]["status"] == "open"
        assert escalated["decision"]["outcome"] == "deny"
        assert escalated["decision"]["decision"]["event"]["type"] == "review.escalated"
        again = await c.post("/v1/reviews/escalate", headers=AUTH)  # wall clock: later still
        assert again.json()["escalated"] == []
        overdue = await c.get("/v1/reviews", params={"overdue": "true"})
        assert [i["id"] for i in overdue.json()["reviews"]] == [item["id"]]
        bad = await c.post("/v1/reviews/escalate", json={"now": "tomorrow"}, headers=AUTH)
        assert problem(bad, 422, "invalid-parameter")["errors"][0]["pointer"] == "#/now"
        metrics = (await c.get("/metrics")).text
        assert metric(metrics, 'policyengine_review_actions_total{action="escalated"}') == 1

    serve(s, scenario)


def test_reviews_need_a_log(tmp_path: Path) -> None:
    s = settings(tmp_path, log_path=None, key_path=None)

    async def scenario(c: httpx.AsyncClient) -> None:
        problem(await c.get("/v1/reviews"), 404, "no-log")
        metrics = (await c.get("/metrics")).text
        assert not re.search(r"^policyengine_reviews_open ", metrics, re.M)  # no store

    serve(s, scenario)


@pytest.mark.parametrize("content", ["{not json", '{"version": 1, "signers": 3}'])
def test_a_bad_registry_stops_start_up(tmp_path: Path, content: str) -> None:
    path = tmp_path / "signers.json"
    path.write_text(content)
    result = CliRunner().invoke(
        cli,
        ["serve", "--policies", POLICIES, "--signers", str(path), "--port", "0"],
    )
    assert result.exit_code == 2, result.output
    assert "signer registry" in result.stderr and "Traceback" not in result.output


BREACH = {
    "id": "evt-drift-1",
    "type": "drift.evaluated",
    "time": "2026-02-10T10:00:00Z",
    "actor": {"id": "svc-monitor", "roles": ["monitoring"]},
    "subject": {"kind": "model_version", "id": MODEL},
    "attributes": {
        "monitor": "weekly-psi", "feature": "logp", "metric": "psi", "value": 0.31,
        "threshold": 0.2, "breached": True, "baseline": "ds-assay-2025q4",
    },
}  # fmt: skip


def drift_response(
    signer: str, record: dict[str, Any], at: str, event_id: str, *, model: str = MODEL
) -> dict[str, Any]:
    """A signed acceptance of the breach, built as docs/server.md tells a client to: the
    digest covers the model's record (from its review item) and the response's terms."""
    name, role, key = PEOPLE[signer]
    terms = {
        "monitor": "weekly-psi",
        "feature": "logp",
        "metric": "psi",
        "decision": "accept",
        "justification": "seasonal shift in logp within the validated range; DEV-031",
        "expires_at": "2026-03-11T00:00:00Z",
    }
    digest = esign.record_digest({"record": record, "terms": terms})
    manifest = esign.manifest(
        subject_kind="model_version",
        subject_id=model,
        record_digest=digest,
        signer=signer,
        signer_name=name,
        role=role,
        meaning="drift_accept",
        time=datetime.fromisoformat(at.replace("Z", "+00:00")),
        comment=None,
        review=None,
    )
    return {
        "id": event_id,
        "type": "drift.response_recorded",
        "time": at,
        "actor": {"id": signer, "name": name, "roles": [role]},
        "subject": {"kind": "model_version", "id": model},
        "attributes": {
            **terms,
            "role": role,
            "record_digest": digest,
            "signature": esign.sign(key, manifest).model_dump(),
        },
    }


def test_a_signed_drift_response_rechecks_the_models_open_reviews(tmp_path: Path) -> None:
    s = settings(tmp_path, signers_path=str(tmp_path / "signers.json"))
    save_registry(tmp_path / "signers.json", registry(*PEOPLE))
    path = f"/v1/models/{MODEL}/drift-responses"
    moment = "2026-02-11T09:00:00Z"

    async def scenario(c: httpx.AsyncClient) -> None:
        doc = (await c.get("/v1/openapi.json")).json()
        item = await waiting(c)
        rid = item["id"]
        r = await c.post("/v1/evaluate", json=BREACH, headers=AUTH)
        assert r.status_code == 200 and r.json()["outcome"] != "deny", r.text
        good = drift_response(ELENA, item["record"], moment, "drift-accept-1")

        problem(await c.post(path, json=good), 401, "unauthorized")
        wrong = drift_response(ELENA, item["record"], moment, "drift-x", model="mv-other")
        body = problem(await c.post(path, json=wrong, headers=AUTH), 422, "invalid-drift-response")
        assert [e["pointer"] for e in body["errors"]] == ["#/subject"]
        assert "mv-other" in body["detail"]
        not_a_response = {**EVENTS[24], "id": "not-a-response"}
        body = problem(
            await c.post(path, json=not_a_response, headers=AUTH), 422, "invalid-drift-response"
        )
        assert body["errors"][0]["pointer"] == "#/type"

        # a tampered response is denied by the signature rule; nothing is rechecked
        tampered = drift_response(ELENA, item["record"], moment, "drift-tampered")
        tampered["attributes"]["expires_at"] = "2026-05-01T00:00:00Z"  # not what was signed
        r = await c.post(path, json=tampered, headers=AUTH)
        assert r.status_code == 200, r.text
        validate(doc, "DriftResponseResult", r.json())
        refused = r.json()
        assert refused["decision"]["outcome"] == "deny" and refused["rechecks"] == []
        failed = {
            x["rule"] for x in refused["decision"]["decision"]["results"] if x["status"] == "fail"
        }
        assert "gxp.oversight.signature_valid" in failed
        shown = (await c.get(f"/v1/reviews/{rid}")).json()
        assert "recheck" not in [h["action"] for h in shown["history"]]

        # the signed acceptance is allowed; the waiting deploy is judged again, the breach
        # no longer blocks it and it still waits for a second approval
        r = await c.post(path, json=good, headers=AUTH)
        assert r.status_code == 200, r.text
        done = r.json()
        validate(doc, "DriftResponseResult", done)
        assert done["decision"]["outcome"] == "allow"
        assert done["decision"]["log_index"] is not None
        [again] = done["rechecks"]
        assert again["review"]["id"] == rid and again["review"]["status"] == "open"
        assert again["recheck"]["event_id"] == "evt-025~recheck-1"
        assert again["recheck"]["outcome"] == "review_required"
        statuses = {x["rule"]: x["status"] for x in again["recheck"]["decision"]["results"]}
        assert statuses["gxp.monitoring.no_production_deploy_with_open_drift"] == "pass"
        assert statuses[RULE] == "fail"
        assert [h["action"] for h in again["review"]["history"]][-1] == "recheck"
        # the same response again is refused: an event id is recorded once
        problem(await c.post(path, json=good, headers=AUTH), 409, "event-id-conflict")

        # a second approval now closes the item
        sig = signed(KENJI, item["subject"], item["record_digest"], "2026-02-11T11:40:00Z",
                     "sig-kenji", review=rid)  # fmt: skip
        r = await c.post(f"/v1/reviews/{rid}/signatures", json=sig, headers=AUTH)
        assert r.status_code == 200 and r.json()["review"]["status"] == "approved", r.text

        metrics = (await c.get("/metrics")).text
        for action, n in (("drift_response", 1), ("refused", 1), ("approved", 1)):
            assert metric(metrics, f'policyengine_review_actions_total{{action="{action}"}}') == n

    serve(s, scenario)
    db = tmp_path / "decisions.db"
    attrs = logged_event(db, "drift-accept-1")["attributes"]
    assert attrs["signature_status"] == "verified", attrs["signature_problem"]
    assert logged_event(db, "drift-tampered")["attributes"]["signature_status"] == "invalid"
    replay = CliRunner().invoke(cli, ["audit", "replay", "--log", str(db), "--format", "json"])
    assert json.loads(replay.stdout)["ok"], replay.output


def test_drift_responses_need_a_log(tmp_path: Path) -> None:
    s = settings(tmp_path, log_path=None, key_path=None)
    event = drift_response(ELENA, {"kind": "model_version", "id": MODEL}, "2026-02-11T09:00:00Z",
                           "drift-accept-1")  # fmt: skip

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.post(f"/v1/models/{MODEL}/drift-responses", json=event, headers=AUTH)
        problem(r, 404, "no-log")

    serve(s, scenario)
