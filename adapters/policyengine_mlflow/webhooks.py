"""MLflow (3.x, open source) model-registry webhooks: signature check and translation.

MLflow POSTs `{"entity", "action", "timestamp", "data"}` as JSON (`mlflow/webhooks/delivery.py`)
with three headers, following the Standard Webhooks conventions:

- `X-MLflow-Delivery-Id`: a UUID per delivery (retries reuse it: use it to drop replays),
- `X-MLflow-Timestamp`: Unix seconds when it was sent,
- `X-MLflow-Signature`: `v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")),
  present only when the webhook was created with a secret.

`verify_webhook` recomputes the HMAC over the exact body bytes, compares in constant time and
refuses timestamps outside a tolerance (5 minutes by default), so a captured delivery cannot be
replayed later; `webhook_events` translates a verified payload into canonical events with the
same translation, and the same event ids, as the polling adapter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time as _time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from policyengine.adapter import AdapterError
from policyengine.adapter_kit import BadField, Fields

from ._translate import APPROVAL_TAG_PREFIX, Translated, Translator

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "DELIVERY_ID_HEADER",
    "IGNORED_EVENTS",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "TRANSLATED_EVENTS",
    "WebhookError",
    "sign_webhook",
    "verify_webhook",
    "webhook_events",
]

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
#: How far the sender's timestamp may be from our clock (either way), in seconds.
DEFAULT_TOLERANCE_S = 300.0

#: `entity.action` values that produce events.
TRANSLATED_EVENTS = frozenset(
    {"model_version.created", "model_version_tag.set", "model_version_alias.created"}
)
#: Valid MLflow events with no canonical counterpart (see README.md): accepted, no events.
IGNORED_EVENTS = frozenset(
    {
        "registered_model.created",
        "model_version_tag.deleted",
        "model_version_alias.deleted",
        "prompt.created",
        "prompt_version.created",
        "prompt_tag.set",
        "prompt_tag.deleted",
        "prompt_version_tag.set",
        "prompt_version_tag.deleted",
        "prompt_alias.created",
        "prompt_alias.deleted",
        "budget_policy.exceeded",
    }
)


class WebhookError(AdapterError):
    """A delivery that must be refused: `status` is the HTTP status a receiver answers
    (401 for authentication failures, 400 for a malformed payload)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, location="webhook", field=field, hint=hint)
        self.status = status


def sign_webhook(secret: str, delivery_id: str, timestamp: str, body: bytes | str) -> str:
    """The `X-MLflow-Signature` value MLflow sends for this delivery."""
    payload = body.decode("utf-8") if isinstance(body, bytes) else body
    content = f"{delivery_id}.{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode("utf-8"), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime | float | None = None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> dict[str, Any]:
    """Check a delivery's HMAC signature and timestamp; return the decoded payload.

    Raises `WebhookError` (status 401) when the signature is missing, malformed or wrong or
    the timestamp is outside `tolerance_s` of `now` (default: the wall clock), and (400) when
    the body is not a JSON object. Header names are matched case-insensitively."""
    if not secret:
        raise WebhookError(
            "no webhook secret is configured",
            status=401,
            hint="create the MLflow webhook with a `secret` and configure it here",
        )
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get(SIGNATURE_HEADER.lower())
    stamp = lower.get(TIMESTAMP_HEADER.lower())
    delivery = lower.get(DELIVERY_ID_HEADER.lower())
    for name, value in (
        (SIGNATURE_HEADER, signature),
        (TIMESTAMP_HEADER, stamp),
        (DELIVERY_ID_HEADER, delivery),
    ):
        if not value:
            raise WebhookError(
                f"missing `{name}` header",
                status=401,
                hint="was the MLflow webhook created with a secret?",
            )
    assert signature is not None and stamp is not None and delivery is not None
    try:
        sent = int(stamp.strip())
    except ValueError:
        raise WebhookError(
            f"`{TIMESTAMP_HEADER}` is not Unix seconds: `{stamp[:40]}`", status=401
        ) from None
    clock = _time.time() if now is None else now.timestamp() if isinstance(now, datetime) else now
    if not math.isfinite(clock) or abs(clock - sent) > tolerance_s:
        raise WebhookError(
            f"`{TIMESTAMP_HEADER}` {sent} is more than {tolerance_s:g} s from now",
            status=401,
            hint="a replayed or delayed delivery; check the clocks of both hosts",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookError("the body is not UTF-8", status=400) from None
    expected = sign_webhook(secret, delivery, stamp, text).encode("ascii")
    candidates = [c for c in signature.split() if c.startswith(f"{SIGNATURE_VERSION},")]
    if not candidates:
        raise WebhookError(
            f"`{SIGNATURE_HEADER}` has no `{SIGNATURE_VERSION},` signature", status=401
        )
    if not any(hmac.compare_digest(c.encode("utf-8"), expected) for c in candidates):
        raise WebhookError(
            "the signature does not match",
            status=401,
            hint="is the secret the one the webhook was created with?",
        )
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(payload, dict):
        raise WebhookError("the payload must be a JSON object")
    return payload


def webhook_events(
    payload: Mapping[str, Any], *, aliases: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Canonical events for one (verified) MLflow webhook payload.

    `model_version.created` → `model.registered` (plus approvals in its tags);
    `model_version_tag.set` of an approval tag → `approval.recorded`;
    `model_version_alias.created` → `model.promotion_requested` at the delivery's time.
    The events in `IGNORED_EVENTS` give `[]`; anything else raises `WebhookError`."""
    try:
        env = Fields(payload, "")
        entity = env.req_text("entity")
        action = env.req_text("action")
        at = env.time("timestamp")
        assert at is not None
        kind = f"{entity}.{action}"
        if kind in IGNORED_EVENTS:
            return []
        if kind not in TRANSLATED_EVENTS:
            raise WebhookError(
                f"unknown MLflow webhook event `{kind}`",
                field="entity",
                hint="known: " + ", ".join(sorted(TRANSLATED_EVENTS | IGNORED_EVENTS)),
            )
        data = env.req_obj("data")
        name = data.req_text("name")
        tr = Translator(aliases=dict(aliases or {}))
        where = f"model version {name}/?"
        if kind == "model_version_alias.created":
            version = data.req_text("version")
            alias = data.req_text("alias")
            return _events([tr.alias(name, alias, version, at, f"registered model {name}")])
        version = data.req_text("version")
        where = f"model version {name}/{version}"
        if kind == "model_version_tag.set":
            key = data.req_text("key")
            value = data.text("value", required=False) or ""
            if not key.startswith(APPROVAL_TAG_PREFIX):
                return []  # other tags reach the registration on the next sync
            return _events([tr.approval(name, version, key, value, where)])
        record = {
            "name": name,
            "version": version,
            "creation_timestamp": at,
            "source": data.text("source", required=False),
            "run_id": data.text("run_id", required=False),
            "description": data.text("description", required=False),
            "tags": data.str_map("tags"),
            "user_id": None,
            "status": "READY",
        }
        return _events(list(tr.model_version(record)))
    except BadField as err:
        raise WebhookError(err.message, field=_data_field(err.field), hint=err.hint) from None


def _events(items: list[Translated | AdapterError]) -> list[dict[str, Any]]:
    for item in items:
        if isinstance(item, AdapterError):
            raise WebhookError(item.message, field=_data_field(item.field), hint=item.hint)
    return [i.event for i in items if isinstance(i, Translated)]


def _data_field(field: str | None) -> str | None:
    if field is None or field.startswith(("data", "entity", "action", "timestamp")):
        return field
    return f"data.{field}"
