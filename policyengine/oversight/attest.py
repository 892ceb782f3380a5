"""Checking electronic signatures as events arrive (21 CFR 11.70: signatures are linked
to their records so they cannot be copied or moved).

A signed event (`approval.recorded`, `override.recorded`, `drift.response_recorded`)
carries a `record_digest` and an Ed25519 signature over the e-signature manifest
(spec/esign.md). At intake the engine recomputes the digest of the record as it holds it
now — the subject, its lineage and the signed terms — rebuilds the manifest from the event,
and verifies the signature against the signer registry. The outcome is written into the
event (`signature_status`, `signature_problem`) before it is judged and logged, so rules can
count only verified signatures and a replay sees exactly what was decided on; whatever the
input said about its own status is replaced.

Pure functions: the state is read, never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from policyengine.oversight.esign import SignatureError, manifest, record_digest, verify
from policyengine.oversight.registry import SignerRegistry
from policyengine.runtime.values import format_timestamp, to_jsonable

__all__ = [
    "SIGNED_EVENT_TYPES",
    "attest",
    "meaning_of",
    "reviewed_record",
    "signed_digest",
    "signed_terms",
]

#: Event types whose records are electronic signatures.
SIGNED_EVENT_TYPES = frozenset(
    {"approval.recorded", "override.recorded", "drift.response_recorded"}
)


class StateReader(Protocol):
    def get(self, kind: str, id: str) -> dict[str, Any] | None: ...


_MODEL_FIELDS = (
    "name",
    "version",
    "artifact_digest",
    "training_run",
    "created_by",
    "intended_use",
)
_RUN_FIELDS = ("code_commit", "image", "purpose", "inputs", "feature_sets", "parameters")
_DATASET_FIELDS = ("digest", "classification", "deidentified", "uri", "version")


def _pick(entity: Mapping[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any]:
    if entity is None:
        return {"registered": False}
    return {name: to_jsonable(entity.get(name)) for name in fields}


def reviewed_record(state: StateReader, kind: str, id: str) -> dict[str, Any]:
    """What a reviewer signs off: the subject's identifying fields and, for a model
    version, its lineage (training run, feature sets, every dataset with its digest).

    Only fields that pin *what* the model is are included — never approvals, stage or
    drift state, which change as the review proceeds — so the digest stays stable while
    signatures accumulate and changes when the artefact or its inputs change.
    """
    entity = state.get(kind, id)
    if kind != "model_version":
        return {"kind": kind, "id": id, "entity": to_jsonable(dict(entity or {}))}
    record: dict[str, Any] = {"kind": kind, "id": id, **_pick(entity, _MODEL_FIELDS)}
    run_id = (entity or {}).get("training_run")
    run = state.get("training_run", run_id) if isinstance(run_id, str) else None
    datasets: set[str] = set()
    feature_sets: dict[str, Any] = {}
    if run is not None:
        datasets.update(run.get("inputs") or ())
        for fs_id in run.get("feature_sets") or ():
            fs = state.get("feature_set", fs_id)
            feature_sets[fs_id] = _pick(fs, ("version", "inputs", "code_commit"))
            if fs is not None:
                datasets.update(fs.get("inputs") or ())
    record["lineage"] = {
        "training_run": None if run_id is None else {"id": run_id, **_pick(run, _RUN_FIELDS)},
        "feature_sets": feature_sets,
        "datasets": {d: _pick(state.get("dataset", d), _DATASET_FIELDS) for d in sorted(datasets)},
    }
    return record


def signed_terms(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The terms of a signed decision that are not in the manifest itself (the rule and
    expiry of an override, the decision on a drift breach): covered by the record digest."""
    a = event["attributes"]
    kind = event["type"]
    if kind == "override.recorded":
        return {
            "rule": a["rule"],
            "justification": a["justification"],
            "expires_at": _time(a.get("expires_at")),
        }
    if kind == "drift.response_recorded":
        return {
            "monitor": a["monitor"],
            "feature": a["feature"],
            "metric": a["metric"],
            "decision": a["decision"],
            "justification": a["justification"],
            "expires_at": _time(a.get("expires_at")),
        }
    return None


def _time(value: Any) -> str | None:
    return format_timestamp(value) if isinstance(value, datetime) else value


def signed_digest(state: StateReader, event: Mapping[str, Any]) -> str:
    """The `record_digest` a signature on `event` must carry, given the current state."""
    subject = event["subject"]
    doc: dict[str, Any] = {"record": reviewed_record(state, subject["kind"], subject["id"])}
    terms = signed_terms(event)
    if terms is not None:
        doc["terms"] = terms
    return record_digest(doc)


def meaning_of(event: Mapping[str, Any]) -> str:
    """The 11.50 meaning a signed event expresses."""
    kind = event["type"]
    if kind == "approval.recorded":
        return str(event["attributes"]["meaning"])
    if kind == "override.recorded":
        return "override"
    return "drift_" + str(event["attributes"]["decision"])


def _signer(event: Mapping[str, Any]) -> tuple[str, str | None]:
    a = event["attributes"]
    if event["type"] == "approval.recorded":
        return a["signer"], a.get("signer_name")
    actor = event["actor"]
    return actor["id"], actor.get("name")


def event_manifest(event: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """The manifest a signature on `event` covers (raises `ValueError` if it cannot be
    built, e.g. without a printed name)."""
    a = event["attributes"]
    signer, name = _signer(event)
    if not name:
        raise ValueError("the signer's printed name is missing")
    comment = a.get("comment") if event["type"] == "approval.recorded" else None
    return manifest(
        subject_kind=event["subject"]["kind"],
        subject_id=event["subject"]["id"],
        record_digest=digest,
        signer=signer,
        signer_name=name,
        role=a["role"],
        meaning=meaning_of(event),
        time=event["time"],
        comment=comment,
        review=a.get("review"),
    )


def attest(
    event: dict[str, Any], state: StateReader, registry: SignerRegistry | None
) -> dict[str, Any]:
    """`event` with `signature_status`/`signature_problem` set from verification.

    `verified` needs all of: a signature, a registry, the record digest the signature
    names equal to the digest of the record as held now, and `esign.verify` accepting the
    manifest rebuilt from the event. Events of other types are returned unchanged.
    """
    if event["type"] not in SIGNED_EVENT_TYPES:
        return event
    a = event["attributes"]
    status, problem = _check(event, state, registry)
    if a.get("signature_status") == status and a.get("signature_problem") == problem:
        return event
    return {**event, "attributes": {**a, "signature_status": status, "signature_problem": problem}}


def _check(
    event: Mapping[str, Any], state: StateReader, registry: SignerRegistry | None
) -> tuple[str, str | None]:
    a = event["attributes"]
    signature = a.get("signature")
    if signature is None:
        return "unsigned", None
    if registry is None:
        return "unverified", "no signer registry is configured"
    claimed = a.get("record_digest")
    if not claimed:
        return "invalid", "the signature does not name the record it covers (`record_digest`)"
    expected = signed_digest(state, event)
    if claimed != expected:
        return "invalid", (
            f"the signature covers record `{claimed}`, but the record is now `{expected}`"
            " (the subject, its lineage or the signed terms changed since signing)"
        )
    try:
        doc = event_manifest(event, claimed)
        verify(registry, doc, _Sig(signature))
    except SignatureError as exc:
        return "invalid", exc.reason
    except ValueError as exc:
        return "invalid", str(exc)
    return "verified", None


class _Sig:
    """A signature dict seen through `esign.SignatureLike`."""

    __slots__ = ("algorithm", "key_id", "value")

    def __init__(self, d: Mapping[str, Any]) -> None:
        self.algorithm = str(d.get("algorithm", "ed25519"))
        self.key_id = str(d.get("key_id", ""))
        self.value = str(d.get("value", ""))
