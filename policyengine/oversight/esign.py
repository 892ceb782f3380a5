"""Electronic signatures in the sense of 21 CFR Part 11: Ed25519 over a canonical manifest.

A signature signs a *manifest*, never the record itself: the manifest names the record by
kind, id and digest (11.70, so a signature cannot be moved to another record), and carries
the signer's identity, printed name, role, meaning and UTC time (11.50). Signing needs two
distinct identification components (11.200(a)(1)): the private key file *and* the passphrase
that decrypts it. `verify` checks a signature against the signer registry; it is pure (no
I/O, no clock, no shared state) and therefore thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from policyengine import canonical
from policyengine.oversight.registry import (
    Signer,
    SignerRegistry,
    decode_public_key,
    key_id,
)
from policyengine.runtime.values import format_timestamp
from policyengine.secret_files import SecretFileError, read_secret, write_secret

__all__ = [
    "MANIFEST_TYPE",
    "PASSPHRASE_ENV",
    "PASSPHRASE_MIN_LENGTH",
    "ESignature",
    "SignatureError",
    "SignatureLike",
    "SigningKeyError",
    "check_passphrase",
    "generate_signing_key",
    "load_public_key_file",
    "load_signing_key",
    "manifest",
    "normalise_passphrase",
    "public_key_raw",
    "record_digest",
    "sign",
    "verify",
]

MANIFEST_TYPE = "policyengine.esignature/v1"
SIGNATURE_SIZE = 64
PASSPHRASE_ENV = "POLICYENGINE_SIGNING_PASSPHRASE"
# 11.300 asks that identification codes and passwords resist guessing. The key file's PKCS8
# encryption (PBKDF2-HMAC-SHA256, AES-256) is only as strong as the passphrase: 12 characters
# is the floor where an offline guessing attack on a stolen key file stops being cheap.
PASSPHRASE_MIN_LENGTH = 12

_MANIFEST_KEYS = frozenset(
    {
        "type",
        "subject",
        "record_digest",
        "signer",
        "signer_name",
        "role",
        "meaning",
        "time",
        "comment",
        "review",
    }
)
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class SignatureError(ValueError):
    """A signature that does not verify; `reason` is lowercase, user input in backticks."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeyError(ValueError):
    """A signing key file that cannot be created or opened (wrong passphrase, bad file)."""


class ESignature(BaseModel):
    """A detached signature over `canonical.dumps(manifest)`; the key id names the key in
    the signer registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str
    value: str
    """Standard, padded base64 of the 64 signature bytes."""


class SignatureLike(Protocol):
    """Anything shaped like `ESignature` (e.g. the copy embedded in an event model)."""

    @property
    def algorithm(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def value(self) -> str: ...


# --------------------------------------------------------------------------- digests


def record_digest(obj: Any) -> str:
    """`sha256:<hex>` of the RFC 8785 canonical JSON of `obj`: what a manifest binds to."""
    return "sha256:" + hashlib.sha256(canonical.dumps(obj)).hexdigest()


# --------------------------------------------------------------------------- manifest


def manifest(
    *,
    subject_kind: str,
    subject_id: str,
    record_digest: str,
    signer: str,
    signer_name: str,
    role: str,
    meaning: str,
    time: datetime,
    comment: str | None,
    review: str | None,
) -> dict[str, Any]:
    """What is signed: the record (kind, id, digest) and the signature's 11.50 facts."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"signing time `{time.isoformat()}` has no timezone (hint: use UTC)")
    doc: dict[str, Any] = {
        "type": MANIFEST_TYPE,
        "subject": {"kind": subject_kind, "id": subject_id},
        "record_digest": record_digest,
        "signer": signer,
        "signer_name": signer_name,
        "role": role,
        "meaning": meaning,
        "time": format_timestamp(time.astimezone(UTC)),
        "comment": comment,
        "review": review,
    }
    problem = _manifest_problem(doc)
    if problem is not None:
        raise ValueError(problem)
    return doc


def _manifest_problem(doc: Any) -> str | None:
    """Why `doc` is not a well-formed manifest, or None."""
    if not isinstance(doc, dict):
        return "manifest is not a JSON object"
    keys = set(doc)
    if keys != _MANIFEST_KEYS:
        parts = []
        if missing := sorted(_MANIFEST_KEYS - keys):
            parts.append("missing " + ", ".join(f"`{k}`" for k in missing))
        if extra := sorted(str(k) for k in keys - _MANIFEST_KEYS):
            parts.append("unknown " + ", ".join(f"`{k}`" for k in extra))
        return "manifest has " + " and ".join(parts)
    if doc["type"] != MANIFEST_TYPE:
        return f"manifest type `{doc['type']}` is not `{MANIFEST_TYPE}`"
    subject = doc["subject"]
    if not isinstance(subject, dict) or set(subject) != {"kind", "id"}:
        return "manifest `subject` must be an object with exactly `kind` and `id`"
    for name, value in (("subject.kind", subject["kind"]), ("subject.id", subject["id"])):
        if not isinstance(value, str) or not value:
            return f"manifest `{name}` must be a non-empty string"
    for name in ("signer", "signer_name", "role", "meaning"):
        if not isinstance(doc[name], str) or not doc[name]:
            return f"manifest `{name}` must be a non-empty string"
    for name in ("comment", "review"):
        if doc[name] is not None and not isinstance(doc[name], str):
            return f"manifest `{name}` must be a string or null"
    if not isinstance(doc["record_digest"], str) or not _DIGEST_RE.match(doc["record_digest"]):
        return "manifest `record_digest` must be `sha256:` and 64 lowercase hex digits"
    if _manifest_time(doc["time"]) is None:
        return f"manifest `time` `{doc['time']}` is not an RFC 3339 UTC timestamp"
    return None


def _manifest_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    try:
        t = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None
    return t if format_timestamp(t) == value else None


# --------------------------------------------------------------------------- sign / verify


def public_key_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw public-key bytes (what the registry stores, base64-encoded)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(private_key: Ed25519PrivateKey, manifest: dict[str, Any]) -> ESignature:
    """Sign the canonical bytes of a well-formed manifest."""
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise ValueError(problem)
    value = private_key.sign(canonical.dumps(manifest))
    return ESignature(
        key_id=key_id(public_key_raw(private_key)),
        value=base64.b64encode(value).decode("ascii"),
    )


def _signature_bytes(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SignatureError("signature value is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise SignatureError("signature value is not canonical (standard, padded) base64")
    if len(raw) != SIGNATURE_SIZE:
        raise SignatureError(
            f"signature value is {len(raw)} bytes, expected {SIGNATURE_SIZE} (ed25519)"
        )
    return raw


def verify(registry: SignerRegistry, manifest: dict[str, Any], signature: SignatureLike) -> Signer:
    """The registry entry of the person who signed `manifest`, or `SignatureError`.

    Judged as of the manifest's own time: a key revoked, a signer disabled or a role removed
    *after* the signing time leaves the signature valid (an approval does not become void
    when its signer later leaves); at or before it, the signature is rejected. The manifest
    time is asserted by the signer, so callers compare it with the time of the record.
    """
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise SignatureError(problem)
    if signature.algorithm != "ed25519":
        raise SignatureError(f"unsupported signature algorithm `{signature.algorithm}`")
    raw = _signature_bytes(signature.value)
    found = registry.key(signature.key_id)
    if found is None:
        raise SignatureError(f"unknown signing key `{signature.key_id}`")
    signer, key = found
    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(raw, canonical.dumps(manifest))
    except InvalidSignature:
        raise SignatureError(
            f"signature does not match the manifest for key `{key.key_id}`"
            " (the record or a signed field changed, or another key signed it)"
        ) from None
    at = _manifest_time(manifest["time"])
    assert at is not None  # checked by _manifest_problem
    when = manifest["time"]
    if manifest["signer"] != signer.id:
        raise SignatureError(
            f"key `{key.key_id}` belongs to signer `{signer.id}`, not `{manifest['signer']}`"
        )
    if manifest["signer_name"] != signer.name:
        raise SignatureError(
            f"printed name `{manifest['signer_name']}` does not match `{signer.name}`,"
            f" the registered name of `{signer.id}`"
        )
    if signer.disabled_at is not None and signer.disabled_by(at):
        raise SignatureError(
            f"signer `{signer.id}` was disabled at {format_timestamp(signer.disabled_at)},"
            f" at or before the signing time {when}"
        )
    if key.revoked_at is not None and key.revoked_by(at):
        raise SignatureError(
            f"key `{key.key_id}` was revoked at {format_timestamp(key.revoked_at)}"
            f" (reason: `{key.revocation_reason}`), at or before the signing time {when}"
        )
    roles = signer.roles_at(at)
    if manifest["role"] not in roles:
        held = ", ".join(f"`{r}`" for r in roles)
        raise SignatureError(
            f"signer `{signer.id}` did not hold role `{manifest['role']}` at {when}"
            f" (roles then: {held})"
        )
    return signer


# --------------------------------------------------------------------------- key files


def normalise_passphrase(passphrase: str) -> str:
    """NFC form, so the same passphrase typed on two systems yields the same bytes."""
    return unicodedata.normalize("NFC", passphrase)


def check_passphrase(passphrase: str) -> None:
    """The passphrase policy for new keys (11.300): at least 12 characters, no surrounding
    whitespace (files and prompts would disagree on it)."""
    p = normalise_passphrase(passphrase)
    if len(p) < PASSPHRASE_MIN_LENGTH:
        raise SigningKeyError(
            f"the passphrase has {len(p)} characters; at least {PASSPHRASE_MIN_LENGTH} are"
            " required (hint: a few unrelated words make a long passphrase easy to remember)"
        )
    if p != p.strip():
        raise SigningKeyError("the passphrase must not begin or end with whitespace")


def generate_signing_key(path: str | Path, passphrase: str) -> bytes:
    """Write a new Ed25519 key as passphrase-encrypted PKCS8 PEM (mode 0600, never over an
    existing file) and return its 32 raw public-key bytes."""
    check_passphrase(passphrase)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(normalise_passphrase(passphrase).encode("utf-8")),
    )
    try:
        write_secret(path, pem.decode("ascii"), what="a signing key")
    except SecretFileError as exc:
        raise SigningKeyError(str(exc)) from None
    return public_key_raw(key)


def load_signing_key(path: str | Path, passphrase: str) -> Ed25519PrivateKey:
    """Open a signing key file with its passphrase; every failure is a `SigningKeyError`
    naming the file."""
    p = Path(path)
    try:
        text = read_secret(
            p, what="signing key file", create=f"policyengine signers keygen --out {p}"
        )
    except SecretFileError as exc:
        raise SigningKeyError(str(exc)) from None
    if "ENCRYPTED PRIVATE KEY" not in text:
        if "PRIVATE KEY" in text:
            raise SigningKeyError(
                f"signing key file `{p}` is not passphrase-protected; Part 11 signing needs"
                " both the key and a passphrase (hint: `policyengine signers keygen`)"
            )
        raise SigningKeyError(f"`{p}` is not a signing key file (no encrypted PKCS8 PEM)")
    secret = normalise_passphrase(passphrase).encode("utf-8")
    try:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=secret)
    except ValueError as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise SigningKeyError(f"wrong passphrase for signing key `{p}`") from None
        raise SigningKeyError(f"`{p}` is not a readable signing key: {exc}") from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"`{p}` is not a readable signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key `{p}` is not an Ed25519 key")
    return key


def load_public_key_file(path: str | Path) -> bytes:
    """The raw public key in a `.pub` file: one line of base64 (as `signers keygen` writes)
    or a PEM `PUBLIC KEY`. A private key file is refused with a hint."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SigningKeyError(f"no public key file `{p}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"cannot read public key file `{p}`: {exc}") from None
    if "PRIVATE KEY" in text:
        raise SigningKeyError(
            f"`{p}` holds a private key; give its public key instead"
            f" (hint: `{p}.pub`, written by `policyengine signers keygen`)"
        )
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            public = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SigningKeyError(f"`{p}` is not a readable public key: {exc}") from None
        if not isinstance(public, Ed25519PublicKey):
            raise SigningKeyError(f"public key `{p}` is not an Ed25519 key")
        return public_key_raw(public)
    try:
        return decode_public_key(text)
    except ValueError as exc:
        raise SigningKeyError(f"`{p}` is not a public key file: {exc}") from None
