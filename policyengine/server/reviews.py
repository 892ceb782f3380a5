"""Review items over HTTP: list and read them, take signed decisions on them, escalate.

The server never holds a signer's private key. A client reads an item and the
`record_digest` its signature must carry (from the live state), signs the e-signature
manifest with the signer's own key (`policyengine.oversight.esign`), and posts the signed
event. The service then does exactly what `policyengine review approve` does
(`policyengine.oversight.flow.record_signature`): the signature is attested, judged and
logged; unless it was refused, the pending event is judged again and the item closed by that
outcome. A signed drift response on a model version (`respond_to_drift`) is recorded the same
way and every open item of that model judged again, as `policyengine review drift` does. Every
event goes through the service's one writer (`DecisionService.decide_blocking`),
and review actions are serialised on one lock, so each sees the state the previous one left.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from policyengine.events import EventError, parse_event
from policyengine.oversight.attest import reviewed_record, signed_digest
from policyengine.oversight.flow import (
    check_role,
    escalation_event,
    recheck,
    record_signature,
    signature_action,
)
from policyengine.oversight.reviews import REVIEW_STATUSES, ReviewError, ReviewItem, ReviewStore
from policyengine.runtime.decision import Decision, Outcome
from policyengine.server.problems import Problem
from policyengine.server.service import DecisionService, Verdict

__all__ = ["DRIFT_RESPONSE_TYPE", "SIGNABLE_TYPES", "ReviewDesk"]

#: Event types a client may post to answer an item.
SIGNABLE_TYPES = ("approval.recorded", "override.recorded")
#: The event type a client posts to answer a model's drift breaches.
DRIFT_RESPONSE_TYPE = "drift.response_recorded"


class ReviewDesk:
    """The review endpoints' logic, independent of HTTP (handlers call it off the event
    loop: every method may block on the commit thread or SQLite)."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading

    def store(self) -> ReviewStore:
        if self.service.reviews is None:
            raise Problem(
                404,
                "no-log",
                "No decision log",
                "review items live in the decision log's file; start the server with `--log`"
                " and `--key` to open and act on them",
            )
        return self.service.reviews

    def item(self, rid: str) -> ReviewItem:
        """The item with exactly this id (no prefix matching over HTTP)."""
        try:
            item = self.store().get(rid)
        except ReviewError:
            item = None
        if item is None or item.id != rid:
            raise Problem(
                404,
                "review-not-found",
                "Review not found",
                f"no review `{rid}`; `GET /v1/reviews?status=all` lists them",
            )
        return item

    def listing(self, status: str, overdue: bool, now: datetime) -> list[dict[str, Any]]:
        items = self.store().items(None if status == "all" else status)
        if overdue:
            items = [i for i in items if i.overdue(now)]
        return [i.to_dict(now) for i in items]

    def show(self, rid: str, now: datetime) -> dict[str, Any]:
        """The item and its history, plus what a signature on it must cover now."""
        item = self.item(rid)
        state = self.service.state
        subject = {"kind": item.subject_kind, "id": item.subject_id}
        probe = {"type": "approval.recorded", "subject": subject, "attributes": {}}
        return {
            **item.to_dict(now),
            "record_digest": signed_digest(state, probe),
            "record": reviewed_record(state, item.subject_kind, item.subject_id),
        }

    # ------------------------------------------------------------------ acting

    def sign(self, rid: str, event: dict[str, Any]) -> dict[str, Any]:
        """Record a signed approval or override (a validated event) answering item `rid`."""
        svc = self.service
        with self._lock:
            item = self.item(rid)
            if item.status != "open":
                raise Problem(
                    409,
                    "review-closed",
                    "Review closed",
                    f"review `{rid}` is already {item.status}; a closed item takes no more"
                    " signatures",
                    review_status=item.status,
                )
            _check_answer(item, event)
            if svc.find(str(event["id"])):
                raise _already_recorded(str(event["id"]), rid)
            verdicts: list[Verdict] = []

            def judge(ev: dict[str, Any]) -> tuple[dict[str, Any], Decision]:
                decided = svc.decide_blocking([ev], [("#", None)], open_reviews=False)
                verdict = decided.verdicts[0]
                if verdict.already_recorded or verdict.judged is None or verdict.event is None:
                    raise _already_recorded(verdict.event_id, rid)
                verdicts.append(verdict)
                return verdict.event, verdict.judged

            at = svc.settings.clock(event)
            try:
                result = record_signature(
                    self.store(),
                    item,
                    event,
                    judge,
                    at,
                    signature_action(event),
                    taken=lambda eid: bool(svc.find(eid)),
                )
            except ReviewError as exc:  # closed meanwhile by a recheck of another kind
                raise Problem(409, "review-closed", "Review closed", str(exc)) from None
            refused = result.signature.outcome is Outcome.DENY
            svc.metrics.review_action("refused" if refused else "signed")
            closed = result.item is not None and result.item.status != "open"
            if closed and result.item is not None:
                svc.metrics.review_action(result.item.status)
            now = svc.review_now()
            return {
                "signature": verdicts[0].to_dict(),
                "recheck": verdicts[1].to_dict() if len(verdicts) > 1 else None,
                "review": self.item(rid).to_dict(now),
            }

    def respond_to_drift(self, model_version: str, event: dict[str, Any]) -> dict[str, Any]:
        """Record a signed `drift.response_recorded` (a validated event) on `model_version`,
        then — unless it was refused — judge every open item of that model again, as
        `Oversight.respond_to_drift` (`policyengine review drift`) does."""
        svc = self.service
        with self._lock:
            store = self.store()
            _check_drift_response(model_version, event)
            if svc.find(str(event["id"])):
                raise _already_recorded(str(event["id"]), None)
            judged: list[Verdict] = []

            def judge(ev: dict[str, Any]) -> tuple[dict[str, Any], Decision]:
                decided = svc.decide_blocking([ev], [("#", None)], open_reviews=False)
                verdict = decided.verdicts[0]
                if verdict.already_recorded or verdict.judged is None or verdict.event is None:
                    raise _already_recorded(verdict.event_id, None)
                judged.append(verdict)
                return verdict.event, verdict.judged

            at = svc.settings.clock(event)
            judge(event)
            response = judged[0]
            refused = response.outcome == Outcome.DENY.value
            svc.metrics.review_action("refused" if refused else "drift_response")
            rechecks: list[tuple[ReviewItem, Verdict]] = []
            if not refused:
                for item in store.items("open", ("model_version", model_version)):
                    recheck(store, item, at, judge, taken=lambda eid: bool(svc.find(eid)))
                    after = store.get(item.id)
                    if after.status != "open":
                        svc.metrics.review_action(after.status)
                    rechecks.append((after, judged[-1]))
            now = svc.review_now()
            return {
                "decision": response.to_dict(),
                "rechecks": [
                    {"review": item.to_dict(now), "recheck": verdict.to_dict()}
                    for item, verdict in rechecks
                ],
            }

    def escalate(self, now: datetime) -> list[dict[str, Any]]:
        """Escalate each open item past its deadline once, as `policyengine review
        escalate` does: a `review.escalated` event (model versions), judged and logged."""
        svc = self.service
        out: list[dict[str, Any]] = []
        with self._lock:
            store = self.store()
            for item in store.overdue(now):
                if item.escalated_at is not None:
                    continue
                raw = escalation_event(item, now)
                verdict: Verdict | None = None
                if raw is not None:
                    try:
                        event = parse_event(raw)
                    except EventError as exc:  # pragma: no cover - built from valid parts
                        raise ReviewError(f"cannot escalate `{item.id}`: {exc}") from None
                    decided = svc.decide_blocking([event], [("#", None)], open_reviews=False)
                    verdict = decided.verdicts[0]
                detail = None if verdict is None else verdict.outcome
                store.note(
                    item.id, now, "escalated", "policyengine", f"{item.id}~escalated", detail
                )
                svc.metrics.review_action("escalated")
                out.append(
                    {
                        "review": store.get(item.id).to_dict(now),
                        "decision": None if verdict is None else verdict.to_dict(),
                    }
                )
        return out


def parse_status(raw: str | None) -> str:
    status = raw or "open"
    if status not in (*REVIEW_STATUSES, "all"):
        choices = ", ".join(f"`{s}`" for s in (*REVIEW_STATUSES, "all"))
        raise Problem(
            422,
            "invalid-parameter",
            "Invalid parameter",
            f"`status` must be one of {choices}, got `{status}`",
            errors=[{"parameter": "status", "detail": f"one of {choices}"}],
        )
    return status


def parse_flag(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise Problem(
        422,
        "invalid-parameter",
        "Invalid parameter",
        f"`{name}` must be `true` or `false`, got `{raw}`",
        errors=[{"parameter": name, "detail": "`true` or `false`"}],
    )


def parse_now(raw: Any, where: dict[str, str]) -> datetime | None:
    """An RFC 3339 timestamp with an offset (`where`: the parameter or pointer at fault)."""
    if raw is None:
        return None
    problem = None
    if not isinstance(raw, str):
        problem = "must be an RFC 3339 timestamp string"
    else:
        try:
            at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            problem = f"`{raw}` is not an RFC 3339 timestamp"
        else:
            if at.tzinfo is None:
                problem = f"`{raw}` has no UTC offset (hint: end it with `Z`)"
            else:
                return at
    detail = f"`now` {problem}"
    raise Problem(
        422, "invalid-parameter", "Invalid parameter", detail, errors=[{**where, "detail": detail}]
    )


def _check_answer(item: ReviewItem, event: dict[str, Any]) -> None:
    """A signature answers this item: a signable type, on its subject, naming it."""
    errors: list[dict[str, Any]] = []
    if event["type"] not in SIGNABLE_TYPES:
        types = " or ".join(f"`{t}`" for t in SIGNABLE_TYPES)
        errors.append({"pointer": "#/type", "detail": f"`type` must be {types}"})
    subject = event["subject"]
    if (subject["kind"], subject["id"]) != (item.subject_kind, item.subject_id):
        errors.append(
            {
                "pointer": "#/subject",
                "detail": f"the review is about {item.subject_kind} `{item.subject_id}`, the"
                f" event about {subject['kind']} `{subject['id']}`",
            }
        )
    attrs = event["attributes"]
    if attrs.get("review") != item.id:
        errors.append(
            {"pointer": "#/attributes/review", "detail": f"`attributes.review` must be `{item.id}`"}
        )
    if attrs.get("signature") is None:
        errors.append(
            {
                "pointer": "#/attributes/signature",
                "detail": "a review is answered by an electronic signature (`attributes.signature`"
                " with `record_digest`; see docs/server.md)",
            }
        )
    if not errors and event["type"] == "approval.recorded":
        try:
            check_role(item, str(attrs["signer"]), str(attrs["role"]))
        except ReviewError as exc:
            errors.append({"pointer": "#/attributes/role", "detail": str(exc)})
    if errors:
        raise Problem(
            422,
            "invalid-signature-event",
            "Event does not answer this review",
            errors[0]["detail"],
            errors=errors,
        )


def _check_drift_response(model_version: str, event: dict[str, Any]) -> None:
    """A signed drift response on the model version the path names."""
    errors: list[dict[str, Any]] = []
    if event["type"] != DRIFT_RESPONSE_TYPE:
        errors.append({"pointer": "#/type", "detail": f"`type` must be `{DRIFT_RESPONSE_TYPE}`"})
    subject = event["subject"]
    if (subject["kind"], subject["id"]) != ("model_version", model_version):
        errors.append(
            {
                "pointer": "#/subject",
                "detail": f"the path names model_version `{model_version}`, the event is about"
                f" {subject['kind']} `{subject['id']}`",
            }
        )
    if event["attributes"].get("signature") is None:
        errors.append(
            {
                "pointer": "#/attributes/signature",
                "detail": "a drift response is an electronic signature (`attributes.signature`"
                " with `record_digest`; see docs/server.md)",
            }
        )
    if errors:
        raise Problem(
            422,
            "invalid-drift-response",
            "Event is not a drift response on this model",
            errors[0]["detail"],
            errors=errors,
        )


def _already_recorded(event_id: str, rid: str | None) -> Problem:
    where = f"`GET /v1/reviews/{rid}`" if rid is not None else f"`GET /v1/decisions/{event_id}`"
    return Problem(
        409,
        "event-id-conflict",
        "Event id already used",
        f"event id `{event_id}` is already in the decision log; a signature is recorded once"
        f" ({where} shows what it did), a new one needs a new id",
    )
