"""Human review end to end, through the CLI, on the shipped policies and example stream:
a production deploy with one approval opens a review; a signed approval from a registered
domain expert closes it; the log replays byte for byte; forged, moved, self- and
wrong-role signatures are refused; overdue reviews escalate once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policyengine.cli.main import cli
from policyengine.log import TransparencyLog
from policyengine.log.records import parse_record

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")
EXAMPLE = ROOT / "examples" / "biotech.jsonl"
MODEL = "mv-hepatox-1.0.0"
PASSPHRASE = "correct horse battery staple"
KENJI = "kenji.mori@helixbio.example"
ELENA = "elena.varga@helixbio.example"
PRIYA = "priya.raman@helixbio.example"  # the model's author


def run(*args: str, code: int | None = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, (result.output + result.stderr)[-3000:]
    return result


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A signer registry with three people and their passphrase-protected keys."""
    d = tmp_path_factory.mktemp("people")
    secret = d / "passphrase"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o600)
    registry = d / "signers.json"
    keys = {}
    for who, name, role in (
        (KENJI, "Kenji Mori", "domain_expert"),
        (ELENA, "Elena Varga", "qa"),
        (PRIYA, "Priya Raman", "domain_expert"),
    ):
        key = d / f"{who.split('@')[0]}.key"
        run("signers", "keygen", "--out", str(key), "--passphrase-file", str(secret))
        run(
            "signers", "add", who, "--name", name, "--role", role, "--key-file",
            f"{key}.pub", "--registry", str(registry), "--at", "2026-01-01T00:00:00Z",
        )  # fmt: skip
        keys[who] = key
    log_key = d / "log.key"
    run("keys", "generate", "--out", str(log_key), "--name", "reviews.example")
    pseudonyms = d / "pseudonym.key"
    run("keys", "pseudonym", "--out", str(pseudonyms))
    return {
        "registry": registry,
        "keys": keys,
        "secret": secret,
        "log_key": log_key,
        "pseudonyms": pseudonyms,
    }


@pytest.fixture
def waiting(tmp_path: Path, people: dict[str, Any]) -> dict[str, Any]:
    """The example stream up to the first production deploy request, decided into a log."""
    events = tmp_path / "events.jsonl"
    events.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:25]))
    db = tmp_path / "decisions.db"
    result = run(
        "eval", "--policies", POLICIES, "--events", str(events), "--log", str(db),
        "--key", str(people["log_key"]), "--signers", str(people["registry"]),
        "--pseudonym-key", str(people["pseudonyms"]), "--format", "json", code=1,
    )  # fmt: skip
    last = json.loads(result.stdout.splitlines()[-1])
    assert (last["event"]["id"], last["outcome"]) == ("evt-025", "review_required")
    return {**people, "db": db, "events": events}


def acting(env: dict[str, Any], who: str, now: str) -> list[str]:
    return [
        "--log", str(env["db"]), "--key", str(env["log_key"]), "--policies", POLICIES,
        "--signers", str(env["registry"]), "--signer", who, "--signing-key",
        str(env["keys"][who]), "--passphrase-file", str(env["secret"]), "--now", now,
        "--format", "json",
    ]  # fmt: skip


def the_item(env: dict[str, Any]) -> dict[str, Any]:
    listed = json.loads(
        run("review", "list", "--log", str(env["db"]), "--format", "json",
            "--now", "2026-02-10T10:00:00Z").stdout
    )  # fmt: skip
    assert len(listed) == 1
    item: dict[str, Any] = listed[0]
    return item


def logged_events(db: Path) -> list[dict[str, Any]]:
    with TransparencyLog.open(db) as log:
        records = [parse_record(bytes(data), i) for i, data in log.leaves()]
    return [r["event"] for r in records if r["kind"] == "decision" and "event" in r]


def test_a_signed_approval_closes_the_review_and_the_log_replays(waiting: dict[str, Any]) -> None:
    item = the_item(waiting)
    assert item["subject"] == {"kind": "model_version", "id": MODEL}
    assert item["rule"] == "gxp.oversight.production_deploy_two_person"
    assert item["roles"] == ["qa", "domain_expert"]
    assert item["deadline"] == "2026-02-13T09:00:00Z"  # the request's time + 3 days
    assert item["status"] == "open" and item["overdue"] is False

    out = run("review", "approve", item["id"], *acting(waiting, KENJI, "2026-02-11T11:40:00Z"))
    result = json.loads(out.stdout)
    assert result["signature"]["outcome"] == "allow"
    assert result["recheck"] == {"event": "evt-025~recheck-1", "outcome": "allow", "failures": []}
    assert result["review"]["status"] == "approved"

    signed = next(e for e in logged_events(waiting["db"]) if e["id"] == "evt-025~sig-1")
    attrs = signed["attributes"]
    assert attrs["signature_status"] == "verified", attrs["signature_problem"]
    assert attrs["signer_name"] == "Kenji Mori"  # workforce identity stays readable (11.50)
    assert attrs["record_digest"].startswith("sha256:") and attrs["review"] == item["id"]

    shown = run("review", "show", item["id"], "--log", str(waiting["db"])).stdout
    assert "approved" in shown and "evt-025~sig-1" in shown and "evt-025~recheck-1" in shown
    # A closed item takes no more signatures.
    again = run(
        "review", "approve", item["id"], *acting(waiting, ELENA, "2026-02-11T12:00:00Z"), code=2
    )
    assert "already approved" in again.stderr

    replay = run("audit", "replay", "--log", str(waiting["db"]), "--format", "json")
    report = json.loads(replay.stdout)
    assert report["ok"] and report["counts"]["differing"] == 0
    # The 25 events of the stream, the signature and the recheck.
    assert report["counts"]["replayed"] == report["counts"]["reproduced"] == 27
    run("log", "verify", "--log", str(waiting["db"]))


def test_the_authors_signature_is_refused_and_the_review_stays_open(
    waiting: dict[str, Any],
) -> None:
    item = the_item(waiting)
    out = run(
        "review", "approve", item["id"], *acting(waiting, PRIYA, "2026-02-11T11:40:00Z"), code=1
    )
    result = json.loads(out.stdout)
    assert result["signature"]["outcome"] == "deny"
    assert "gxp.oversight.independent_approval" in {
        f["rule"] for f in result["signature"]["failures"]
    }
    assert result["recheck"] is None and result["review"]["status"] == "open"


def test_a_role_the_signer_does_not_hold_makes_the_signature_invalid(
    waiting: dict[str, Any],
) -> None:
    item = the_item(waiting)
    out = run(
        "review", "approve", item["id"], *acting(waiting, ELENA, "2026-02-11T11:40:00Z"),
        "--role", "domain_expert", code=1,
    )  # fmt: skip
    result = json.loads(out.stdout)
    [failure] = result["signature"]["failures"]
    assert failure["rule"] == "gxp.oversight.signature_valid"
    assert "did not hold role `domain_expert`" in failure["message"]
    assert result["review"]["status"] == "open"


def test_a_rejection_by_a_required_role_closes_the_review_as_rejected(
    waiting: dict[str, Any],
) -> None:
    item = the_item(waiting)
    out = run(
        "review", "reject", item["id"], *acting(waiting, KENJI, "2026-02-11T11:40:00Z"),
        "--reason", "applicability domain excludes the production cohort", code=1,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["signature"]["outcome"] == "allow"  # a valid rejection is itself accepted
    assert result["recheck"]["outcome"] == "deny"
    assert result["review"]["status"] == "rejected"


def test_a_signature_moved_to_another_record_is_invalid(
    waiting: dict[str, Any], tmp_path: Path
) -> None:
    item = the_item(waiting)
    run("review", "approve", item["id"], *acting(waiting, KENJI, "2026-02-11T11:40:00Z"))
    signed = next(e for e in logged_events(waiting["db"]) if e["id"] == "evt-025~sig-1")
    # Replay the signed approval onto another model version of the example stream.
    moved = json.loads(json.dumps(signed))
    moved["id"] = "evt-moved"
    moved["subject"]["id"] = "mv-hepatox-1.1.0"
    for name in ("signature_status", "signature_problem"):
        moved["attributes"].pop(name)
    forged = json.loads(json.dumps(signed))
    forged["id"] = "evt-forged"
    forged["attributes"]["comment"] = "a different remark than the one signed"
    stream = tmp_path / "moved.jsonl"
    stream.write_text(
        EXAMPLE.read_text() + json.dumps(signed) + "\n" + json.dumps(moved) + "\n"
        + json.dumps(forged) + "\n"
    )  # fmt: skip
    out = run(
        "eval", "--policies", POLICIES, "--events", str(stream), "--signers",
        str(waiting["registry"]), "--format", "json", code=1,
    )  # fmt: skip
    decided = {d["event"]["id"]: d for d in map(json.loads, out.stdout.splitlines())}
    assert decided["evt-moved"]["outcome"] == "deny"
    assert decided["evt-forged"]["outcome"] == "deny"
    for eid in ("evt-moved", "evt-forged"):
        failed = {r["rule"] for r in decided[eid]["results"] if r["status"] == "fail"}
        assert "gxp.oversight.signature_valid" in failed


def test_without_a_registry_a_signature_is_unverified_and_does_not_count(
    waiting: dict[str, Any], tmp_path: Path
) -> None:
    item = the_item(waiting)
    run("review", "approve", item["id"], *acting(waiting, KENJI, "2026-02-11T11:40:00Z"))
    signed = next(e for e in logged_events(waiting["db"]) if e["id"] == "evt-025~sig-1")
    signed["attributes"]["signature_status"] = "verified"  # a claim in the input is ignored
    stream = tmp_path / "claimed.jsonl"
    lines = EXAMPLE.read_text().splitlines(keepends=True)[:25]
    deploy = json.loads(lines[-1])
    deploy["id"] = "evt-again"
    stream.write_text("".join(lines) + json.dumps(signed) + "\n" + json.dumps(deploy) + "\n")
    out = run("eval", "--policies", POLICIES, "--events", str(stream), "--format", "json", code=1)
    decided = {d["event"]["id"]: d for d in map(json.loads, out.stdout.splitlines())}
    assert decided["evt-again"]["outcome"] == "review_required"


def test_overdue_reviews_escalate_once(waiting: dict[str, Any]) -> None:
    item = the_item(waiting)
    base = [
        "review", "escalate", "--log", str(waiting["db"]), "--key", str(waiting["log_key"]),
        "--policies", POLICIES, "--format", "json",
    ]  # fmt: skip
    early = run(*base, "--now", "2026-02-12T00:00:00Z")
    assert json.loads(early.stdout) == []
    late = run(*base, "--now", "2026-02-14T00:00:00Z", code=1)
    [escalated] = json.loads(late.stdout)
    assert escalated["review"]["id"] == item["id"]
    assert escalated["review"]["escalated_at"] == "2026-02-14T00:00:00Z"
    assert escalated["decision"]["event"]["type"] == "review.escalated"
    assert escalated["decision"]["outcome"] == "deny"
    assert json.loads(run(*base, "--now", "2026-02-15T00:00:00Z").stdout) == []
    overdue = run(
        "review", "list", "--log", str(waiting["db"]), "--overdue", "--now",
        "2026-02-15T00:00:00Z", "--format", "json",
    )  # fmt: skip
    assert [i["id"] for i in json.loads(overdue.stdout)] == [item["id"]]


def test_review_history_is_append_only(waiting: dict[str, Any]) -> None:
    with sqlite3.connect(waiting["db"]) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("DELETE FROM review_history")


def test_bad_input_is_a_clear_error(waiting: dict[str, Any], tmp_path: Path) -> None:
    missing = run("review", "list", "--log", str(tmp_path / "none.db"), code=2)
    assert "no decision log" in missing.stderr
    unknown = run("review", "show", "rv-nope", "--log", str(waiting["db"]), code=2)
    assert "no review `rv-nope`" in unknown.stderr
    item = the_item(waiting)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    wrong.chmod(0o600)
    args = acting(waiting, KENJI, "2026-02-11T11:40:00Z")
    args[args.index("--passphrase-file") + 1] = str(wrong)
    bad = run("review", "approve", item["id"], *args, code=2)
    assert "wrong passphrase" in bad.stderr
    assert "Traceback" not in bad.output + bad.stderr


def test_a_signed_drift_acceptance_lets_the_review_close(
    people: dict[str, Any], tmp_path: Path
) -> None:
    breach = {
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
    events = tmp_path / "events.jsonl"
    lines = EXAMPLE.read_text().splitlines(keepends=True)[:25]
    events.write_text("".join(lines) + json.dumps(breach) + "\n")
    db = tmp_path / "decisions.db"
    run(
        "eval", "--policies", POLICIES, "--events", str(events), "--log", str(db),
        "--key", str(people["log_key"]), "--signers", str(people["registry"]),
        "--pseudonym-key", str(people["pseudonyms"]), code=1,
    )  # fmt: skip
    env = {**people, "db": db}
    out = run(
        "review", "drift", MODEL, *acting(env, ELENA, "2026-02-11T09:00:00Z"),
        "--monitor", "weekly-psi", "--feature", "logp", "--decision", "accept",
        "--justification", "seasonal shift in logp within the validated range; DEV-031",
        "--expires-at", "2026-03-11T00:00:00Z",
    )  # fmt: skip
    response = json.loads(out.stdout)
    assert response["outcome"] == "allow"
    logged = next(e for e in logged_events(db) if e["type"] == "drift.response_recorded")
    assert logged["attributes"]["signature_status"] == "verified"
    item = the_item(env)
    assert item["status"] == "open"  # still one approval short
    done = json.loads(
        run("review", "approve", item["id"], *acting(env, KENJI, "2026-02-11T11:40:00Z")).stdout
    )
    assert done["recheck"]["outcome"] == "allow" and done["review"]["status"] == "approved"
    report = json.loads(run("audit", "replay", "--log", str(db), "--format", "json").stdout)
    assert report["ok"]


def strict_policies(tmp_path: Path) -> str:
    """The shipped library with Part 11 signatures required for every release."""
    import shutil

    target = tmp_path / "strict-policies"
    shutil.copytree(POLICIES, target)
    common = target / "common.policy"
    text = common.read_text()
    lenient = 'const COUNTED_SIGNATURES = {"verified", "unsigned"}'
    assert lenient in text
    common.write_text(text.replace(lenient, 'const COUNTED_SIGNATURES = {"verified"}'))
    return str(target)


def test_a_site_requiring_part_11_signatures_counts_only_verified_ones(
    people: dict[str, Any], tmp_path: Path
) -> None:
    policies = strict_policies(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(EXAMPLE.read_text().splitlines(keepends=True)[:25]))
    db = tmp_path / "decisions.db"
    run(
        "eval", "--policies", policies, "--events", str(events), "--log", str(db),
        "--key", str(people["log_key"]), "--signers", str(people["registry"]),
        "--pseudonym-key", str(people["pseudonyms"]), code=1,
    )  # fmt: skip
    env = {**people, "db": db}
    item = the_item(env)

    def act(who: str, now: str) -> dict[str, Any]:
        args = acting(env, who, now)
        args[args.index("--policies") + 1] = policies
        out: dict[str, Any] = json.loads(run("review", "approve", item["id"], *args).stdout)
        return out

    # Elena's earlier sign-off was unsigned: here it no longer counts, so Kenji's verified
    # signature alone does not release the model ...
    first = act(KENJI, "2026-02-11T11:40:00Z")
    assert first["recheck"]["outcome"] == "review_required"
    assert first["review"]["status"] == "open"
    # ... until Elena signs electronically too.
    second = act(ELENA, "2026-02-11T12:10:00Z")
    assert second["recheck"]["outcome"] == "allow"
    assert second["review"]["status"] == "approved"
    verified = json.loads(
        run("review", "verify", "--log", str(db), "--signers", str(people["registry"]),
            "--format", "json").stdout
    )  # fmt: skip
    assert verified == {
        "ok": True,
        "signatures": 2,
        "counts": {"verified": 2},
        "mismatches": [],
    }


def test_review_verify_finds_a_signature_the_registry_no_longer_vouches_for(
    waiting: dict[str, Any], tmp_path: Path
) -> None:
    item = the_item(waiting)
    run("review", "approve", item["id"], *acting(waiting, KENJI, "2026-02-11T11:40:00Z"))
    ok = run("review", "verify", "--log", str(waiting["db"]), "--signers", str(waiting["registry"]))
    assert "1 signatures: 1 verified" in ok.stdout
    # An inspector's registry in which Kenji's key was revoked before he signed.
    import shutil

    revoked = tmp_path / "signers-revoked.json"
    shutil.copy(waiting["registry"], revoked)
    [kenji] = [s for s in json.loads(revoked.read_text())["signers"] if s["id"] == KENJI]
    run(
        "signers", "revoke", kenji["keys"][0]["key_id"], "--reason", "laptop stolen",
        "--registry", str(revoked), "--at", "2026-02-01T00:00:00Z",
    )  # fmt: skip
    bad = run("review", "verify", "--log", str(waiting["db"]), "--signers", str(revoked), code=1)
    assert "MISMATCH" in bad.stdout and "evt-025~sig-1" in bad.stdout
    assert "logged verified, now invalid" in bad.stdout and "revoked" in bad.stdout
