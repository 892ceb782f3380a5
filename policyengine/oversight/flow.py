"""Acting on reviews: sign, record, judge again, close; escalate what is overdue.

One `Oversight` object holds what every action needs — the bundle, the engine state
restored from the decision log, the log itself (signed), the review store and the signer
registry — so the CLI, the HTTP service and embedders run the same code:

1. A signature (approval, rejection, override, drift response) is built as an event whose
   `record_digest` is the digest of the record as the engine holds it now, signed with the
   signer's passphrase-protected key, then judged and logged like any event. The engine
   checks the signature against the registry on the way in (`attest`).
2. The pending event the review waits on is judged again, as a new event
   `<pending id>~recheck-<n>` at the signature's time, and logged. `allow` or
   `allow_with_warnings` closes the item as approved (or overridden), `deny` as rejected;
   `review_required` leaves it open for more signatures.
3. `escalate(now)` turns each open item past its deadline into a `review.escalated` event
   (judged and logged once) and marks the item escalated.

Steps 1 (after judging) to 3 are module functions over a `Judge` — whatever judges and logs
one event and returns the event as judged (its signature attested) with its decision — so the
HTTP service, which decides through its own group-commit writer, closes items exactly as the
CLI does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyengine.compiler.bundle import Bundle
from policyengine.events import StateStore, parse_event
from policyengine.events.models import EventError
from policyengine.log.records import DecisionRecorder
from policyengine.log.tlog import TransparencyLog
from policyengine.oversight.attest import event_manifest, signed_digest
from policyengine.oversight.esign import sign
from policyengine.oversight.registry import SignerRegistry
from policyengine.oversight.reviews import ReviewError, ReviewItem, ReviewStatus, ReviewStore
from policyengine.runtime.decision import Decision, Outcome
from policyengine.runtime.engine import Engine
from policyengine.runtime.values import format_timestamp, to_jsonable

__all__ = [
    "ActionResult",
    "Judge",
    "Oversight",
    "SignerIdentity",
    "check_role",
    "escalation_event",
    "recheck",
    "record_signature",
    "signature_action",
]

#: Judges and logs one validated event; returns the event as judged (signature attested)
#: and its decision.
Judge = Callable[[dict[str, Any]], tuple[dict[str, Any], Decision]]


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """Who signs, as the registry knows them, and the key they sign with."""

    id: str
    name: str
    role: str
    key: Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What one action did: the signed event's decision, the recheck's (if any) and the
    item as it now stands."""

    signature: Decision
    recheck: Decision | None
    item: ReviewItem | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": {
                "event": self.signature.event_id,
                "outcome": self.signature.outcome.value,
                "failures": [r.to_dict() for r in self.signature.failures],
            },
            "recheck": None
            if self.recheck is None
            else {
                "event": self.recheck.event_id,
                "outcome": self.recheck.outcome.value,
                "failures": [r.to_dict() for r in self.recheck.failures],
            },
            "review": None if self.item is None else self.item.to_dict(),
        }


class Oversight:
    """Review actions over one decision log. Actions are serialised (one lock): each
    reads the state the previous one left."""

    def __init__(
        self,
        bundle: Bundle,
        state: StateStore,
        log: TransparencyLog,
        reviews: ReviewStore,
        signers: SignerRegistry,
        *,
        continuing: bool = True,
    ) -> None:
        self.bundle = bundle
        self.reviews = reviews
        self.signers = signers
        self.log = log
        recorder = DecisionRecorder(log, session=not continuing)
        self.engine = Engine(bundle, state=state, recorder=recorder, signers=signers)
        self._lock = threading.Lock()

    @property
    def state(self) -> StateStore:
        return self.engine.state

    # ----------------------------------------------------------------- events in

    def decide(self, event: Mapping[str, Any]) -> Decision:
        """Judge and log an event, opening the review items its decision asks for."""
        with self._lock:
            judged, decision = self.engine.decide(event)
            self.reviews.open_for(judged, decision)
            return decision

    # ----------------------------------------------------------------- signing

    def sign_event(
        self,
        event_type: str,
        subject: tuple[str, str],
        signer: SignerIdentity,
        attributes: Mapping[str, Any],
        at: datetime,
        event_id: str,
    ) -> dict[str, Any]:
        """A signed event of `event_type` on `subject`, ready to judge: the digest is taken
        from the current state, the manifest rebuilt exactly as `attest` will rebuild it."""
        attrs = dict(attributes)
        if event_type == "approval.recorded":
            attrs.setdefault("signer", signer.id)
            attrs.setdefault("signer_name", signer.name)
        attrs["role"] = signer.role
        raw = {
            "id": event_id,
            "type": event_type,
            "time": format_timestamp(at),
            "actor": {"id": signer.id, "name": signer.name, "roles": [signer.role]},
            "subject": {"kind": subject[0], "id": subject[1]},
            "attributes": to_jsonable(attrs),
        }
        event = parse_event(raw)
        digest = signed_digest(self.engine.state, event)
        event["attributes"]["record_digest"] = digest
        signature = sign(signer.key, event_manifest(event, digest))
        event["attributes"]["signature"] = signature.model_dump()
        return event

    def _judge(self, event: dict[str, Any]) -> tuple[dict[str, Any], Decision]:
        return self.engine.decide(event, validated=True)

    def _taken(self, event_id: str) -> bool:
        return bool(self.log.find(event_id))

    def _signed(
        self,
        item: ReviewItem,
        event_type: str,
        signer: SignerIdentity,
        attributes: Mapping[str, Any],
        at: datetime,
        action: str,
    ) -> ActionResult:
        if item.status != "open":
            raise ReviewError(f"review `{item.id}` is already {item.status}")
        n = sum(1 for h in item.history if h.event_id and "~sig-" in h.event_id) + 1
        event = self.sign_event(
            event_type,
            (item.subject_kind, item.subject_id),
            signer,
            {**attributes, "review": item.id},
            at,
            f"{item.pending_event['id']}~sig-{n}",
        )
        return record_signature(
            self.reviews, item, event, self._judge, at, action, taken=self._taken
        )

    # ----------------------------------------------------------------- actions

    def approve(
        self, rid: str, signer: SignerIdentity, at: datetime, comment: str | None = None
    ) -> ActionResult:
        with self._lock:
            item = self.reviews.get(rid)
            check_role(item, signer.id, signer.role)
            attrs = {"meaning": "approved", "comment": comment}
            return self._signed(item, "approval.recorded", signer, attrs, at, "approved-by")

    def reject(self, rid: str, signer: SignerIdentity, at: datetime, reason: str) -> ActionResult:
        if not reason.strip():
            raise ReviewError("a rejection must state its reason")
        with self._lock:
            item = self.reviews.get(rid)
            check_role(item, signer.id, signer.role)
            attrs = {"meaning": "rejected", "comment": reason}
            return self._signed(item, "approval.recorded", signer, attrs, at, "rejected-by")

    def override(
        self,
        rid: str,
        signer: SignerIdentity,
        at: datetime,
        rule: str,
        justification: str,
        expires_at: datetime,
    ) -> ActionResult:
        with self._lock:
            item = self.reviews.get(rid)
            attrs = {"rule": rule, "justification": justification, "expires_at": expires_at}
            return self._signed(item, "override.recorded", signer, attrs, at, "overridden-by")

    def respond_to_drift(
        self,
        model_version: str,
        signer: SignerIdentity,
        at: datetime,
        *,
        monitor: str,
        decision: str,
        justification: str,
        feature: str = "*",
        metric: str = "*",
        expires_at: datetime | None = None,
        event_id: str | None = None,
    ) -> Decision:
        """A signed drift response (accept with an expiry, or retrain) on a model version;
        items open for the model are judged again afterwards."""
        with self._lock:
            attrs = {
                "monitor": monitor,
                "feature": feature,
                "metric": metric,
                "decision": decision,
                "justification": justification,
                "expires_at": expires_at,
            }
            eid = event_id or f"drift-response-{model_version}-{format_timestamp(at)}"
            event = self.sign_event(
                "drift.response_recorded", ("model_version", model_version), signer, attrs, at, eid
            )
            result = self.engine.evaluate(event, validated=True)
            if result.outcome is not Outcome.DENY:
                for item in self.reviews.items("open", ("model_version", model_version)):
                    recheck(self.reviews, item, at, self._judge, taken=self._taken)
            return result

    def escalate(self, now: datetime) -> list[tuple[ReviewItem, Decision | None]]:
        """Escalate every open item past its deadline that was not escalated yet: a
        `review.escalated` event (model versions; other subjects are marked only)."""
        out: list[tuple[ReviewItem, Decision | None]] = []
        with self._lock:
            for item in self.reviews.overdue(now):
                if item.escalated_at is not None:
                    continue
                decision: Decision | None = None
                event = escalation_event(item, now)
                if event is not None:
                    try:
                        decision = self.engine.evaluate(event)
                    except EventError as exc:  # pragma: no cover - built from valid parts
                        raise ReviewError(f"cannot escalate `{item.id}`: {exc}") from None
                detail = None if decision is None else decision.outcome.value
                self.reviews.note(
                    item.id, now, "escalated", "policyengine", f"{item.id}~escalated", detail
                )
                out.append((self.reviews.get(item.id), decision))
        return out


# --------------------------------------------------------------------------- shared steps


def check_role(item: ReviewItem, signer: str, role: str) -> None:
    """An approval or rejection answers an item only in one of the roles it asks for."""
    if item.roles and role not in item.roles:
        allowed = ", ".join(f"`{r}`" for r in item.roles)
        raise ReviewError(f"review `{item.id}` asks for {allowed}; `{signer}` signs as `{role}`")


def signature_action(event: Mapping[str, Any]) -> str:
    """The history action a signed event records (`approved-by`, `rejected-by`, …)."""
    if event["type"] == "override.recorded":
        return "overridden-by"
    meaning = str(event["attributes"].get("meaning", "signed"))
    return {"approved": "approved-by", "rejected": "rejected-by"}.get(meaning, f"{meaning}-by")


def record_signature(
    reviews: ReviewStore,
    item: ReviewItem,
    event: dict[str, Any],
    judge: Judge,
    at: datetime,
    action: str,
    *,
    taken: Callable[[str], bool] | None = None,
) -> ActionResult:
    """Judge and log the signed `event` answering the open `item`, note it in the item's
    history, then — unless the signature itself was refused — judge the pending event again
    (`recheck`). The caller serialises actions on one store."""
    if item.status != "open":
        raise ReviewError(f"review `{item.id}` is already {item.status}")
    judged, decision = judge(event)
    signer = str(judged["actor"]["id"])
    reviews.note(item.id, at, action, signer, judged["id"], _detail(judged, decision))
    if decision.outcome is Outcome.DENY:
        # The signature itself was refused (e.g. self-approval, an invalid signature):
        # it is logged, counts for nothing, and the item stays open.
        return ActionResult(decision, None, reviews.get(item.id))
    again = recheck(reviews, item, at, judge, taken=taken)
    return ActionResult(decision, again, reviews.get(item.id))


def recheck(
    reviews: ReviewStore,
    item: ReviewItem,
    at: datetime,
    judge: Judge,
    *,
    taken: Callable[[str], bool] | None = None,
) -> Decision:
    """Judge `item`'s pending event again as `<id>~recheck-<n>` at `at` and close the item
    by the outcome: `deny` rejects it; this rule satisfied (no longer waiting) approves it —
    or marks it overridden when an override made the difference; still waiting leaves it
    open. `taken` says whether an event id is already in the log (a recheck logged just
    before a crash), so a recheck never reuses an id."""
    current = reviews.get(item.id)
    pending = dict(item.pending_event)
    n = current.rechecks + 1
    while taken is not None and taken(f"{pending['id']}~recheck-{n}"):
        n += 1
    event = parse_event(
        {**pending, "id": f"{pending['id']}~recheck-{n}", "time": format_timestamp(at)}
    )
    _judged, decision = judge(event)
    reviews.note(item.id, at, "recheck", "policyengine", event["id"], decision.outcome.value)
    still = [r for r in decision.reviews if r.rule == item.rule]
    if decision.outcome is Outcome.DENY:
        reviews.close_item(item.id, "rejected", at, "policyengine", event["id"])
    elif not still and decision.outcome is not Outcome.REVIEW_REQUIRED:
        overridden = any(r.override is not None for r in decision.results)
        closed: ReviewStatus = "overridden" if overridden else "approved"
        reviews.close_item(item.id, closed, at, "policyengine", event["id"])
    elif not still:
        # This rule is satisfied, another still waits (e.g. a soft rule): the item for
        # this rule is done.
        reviews.close_item(item.id, "approved", at, "policyengine", event["id"])
    return decision


def escalation_event(item: ReviewItem, now: datetime) -> dict[str, Any] | None:
    """The `review.escalated` event for an overdue item (model versions only: other
    subjects are marked in the store without an event)."""
    if item.subject_kind != "model_version":
        return None
    return {
        "id": f"{item.id}~escalated",
        "type": "review.escalated",
        "time": format_timestamp(now),
        "actor": {"id": "policyengine", "roles": ["system"]},
        "subject": {"kind": item.subject_kind, "id": item.subject_id},
        "attributes": {
            "review": item.id,
            "rule": item.rule,
            "roles": list(item.roles),
            "deadline": format_timestamp(item.deadline),
            "pending_event": item.pending_event["id"],
        },
    }


def _detail(event: Mapping[str, Any], decision: Decision) -> str:
    status = event["attributes"].get("signature_status")
    problem = event["attributes"].get("signature_problem")
    text = f"{decision.outcome.value}; signature {status}"
    return text if not problem else f"{text}: {problem}"
