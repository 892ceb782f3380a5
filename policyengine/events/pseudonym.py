"""Keyed pseudonyms for the identifiers of people, applied before anything is stored.

Fields whose type is marked `Sensitive` (patient ids, MRNs) are replaced by
`pseud:<32 hex>` = HMAC-SHA256(key, category + NUL + value), truncated to 128 bits. The same
identifier always maps to the same pseudonym under one key, so lineage still joins and
rules can count distinct patients, but without the key a pseudonym cannot be reversed or
even confirmed by guessing (unlike a plain hash of an MRN). Pseudonymising happens at
intake, before an event is judged: the engine, the decisions and their explanations, the
signed log, the lineage store and every export only ever see pseudonyms, and `audit
replay` reproduces decisions from exactly what was logged.

The pseudonymisation key is a secret of its own, never the log's signing key: a leaked
signing key must not also unmask patients, and the two are rotated on different schedules.
Workforce identities (actors, signers) are not pseudonymised: 21 CFR 11.50 requires the
signer's printed name on the record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from policyengine.events.catalog import EVENT_TYPES
from policyengine.events.models import EventError
from policyengine.events.refs import Sensitive
from policyengine.secret_files import read_secret, write_secret

__all__ = [
    "PSEUDONYM",
    "Pseudonymiser",
    "carries_identifiers",
    "generate_pseudonym_key",
    "load_pseudonym_key",
    "require_pseudonymised",
    "sensitive_fields",
]

PSEUDONYM = re.compile(r"pseud:[0-9a-f]{32}")
_KEY_PREFIX = "policyengine-pseudonym-key:"


def _sensitive(annotation: Any, metadata: tuple[Any, ...] = ()) -> tuple[str, str] | None:
    """("one" | "list", category) when the annotation is a sensitive string or list of them."""
    for m in metadata:
        if isinstance(m, Sensitive):
            return ("one", m.category)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _sensitive(args[0], tuple(args[1:]))
    if origin is list and args:
        inner = _sensitive(args[0])
        return ("list", inner[1]) if inner else None
    if origin in (typing.Union, types.UnionType):
        for a in args:
            found = _sensitive(a)
            if found:
                return found
    return None


@cache
def sensitive_fields(event_type: str) -> tuple[tuple[str, str, str], ...]:
    """((attribute, "one" | "list", category), …) of an event type's sensitive attributes."""
    spec = EVENT_TYPES.get(event_type)
    if spec is None:
        return ()
    model: type[BaseModel] = spec.attributes
    out: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        found = _sensitive(info.annotation, tuple(info.metadata))
        if found:
            out.append((name, found[0], found[1]))
    return tuple(out)


class Pseudonymiser:
    """Replaces sensitive attribute values of validated events with keyed pseudonyms."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a pseudonymisation key needs at least 32 bytes")
        self._key = key

    def token(self, category: str, value: str) -> str:
        if PSEUDONYM.fullmatch(value):
            return value  # already pseudonymised (idempotent)
        mac = hmac.new(self._key, category.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return "pseud:" + mac.hexdigest()[:32]

    def apply(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the (validated) event with every sensitive attribute pseudonymised."""
        fields = sensitive_fields(str(event.get("type")))
        if not fields:
            return dict(event)
        attrs = dict(event.get("attributes") or {})
        for name, shape, category in fields:
            value = attrs.get(name)
            if value is None:
                continue
            if shape == "list" and isinstance(value, list):
                attrs[name] = [self.token(category, str(v)) for v in value]
            elif isinstance(value, str):
                attrs[name] = self.token(category, value)
        return {**event, "attributes": attrs}

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(<key>)"


def carries_identifiers(event: Mapping[str, Any]) -> bool:
    """Whether a (validated) event holds any raw sensitive value."""
    attrs = event.get("attributes") or {}
    for name, _shape, _cat in sensitive_fields(str(event.get("type"))):
        value = attrs.get(name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not PSEUDONYM.fullmatch(v) for v in values):
            return True
    return False


def require_pseudonymised(
    event: Mapping[str, Any], pseudonymiser: Pseudonymiser | None
) -> dict[str, Any]:
    """Pseudonymise, or refuse an event with raw identifiers when there is no key: fail
    closed, so identifiers can never reach storage by omission."""
    if pseudonymiser is not None:
        return pseudonymiser.apply(event)
    if carries_identifiers(event):
        names = [n for n, _s, _c in sensitive_fields(str(event.get("type")))]
        fields = ", ".join(f"`attributes.{n}`" for n in names)
        raise EventError(
            f"event carries patient identifiers ({fields}) and no pseudonymisation key was"
            " given; pass --pseudonym-key FILE (made by `policyengine keys pseudonym`) so they"
            " are pseudonymised before anything is stored"
        )
    return dict(event)


def generate_pseudonym_key(path: str | Path) -> None:
    """Write 32 random bytes as a key file (0600, never over an existing file)."""
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    write_secret(path, _KEY_PREFIX + key, what="a key")


def load_pseudonym_key(path: str | Path) -> Pseudonymiser:
    p = Path(path)
    text = read_secret(
        p, what="pseudonymisation key", create=f"policyengine keys pseudonym --out {p}"
    )
    if text.startswith("PRIVATE+KEY+"):
        raise ValueError(
            f"`{p}` is a log signing key; pseudonyms need their own key"
            " (hint: `policyengine keys pseudonym --out FILE`)"
        )
    if not text.startswith(_KEY_PREFIX):
        raise ValueError(f"`{p}` is not a policyengine pseudonymisation key")
    try:
        key = base64.b64decode(text[len(_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"`{p}` is not a policyengine pseudonymisation key") from None
    return Pseudonymiser(key)
