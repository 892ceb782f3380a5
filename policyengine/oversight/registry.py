"""The signer registry: who may sign, under which printed name and roles, with which keys.

One JSON file (`signers.json` by default) is the source of truth that `esign.verify` checks a
signature against. History is append-only, because a registry that forgets a key or a signer
also forgets why an old signature was valid (21 CFR 11.100(a): a signature is never reused or
reassigned): keys are revoked and signers disabled, never deleted, and role changes are kept
as `role_history` so a signature is judged by the roles its signer held when signing.
`save_registry` refuses a file that drops anything the file on disk holds.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policyengine import canonical
from policyengine.events.models import _aware_utc, validation_problems
from policyengine.runtime.values import format_timestamp

__all__ = [
    "KEY_ID_DOMAIN",
    "RegistryError",
    "RoleChange",
    "Signer",
    "SignerKey",
    "SignerRegistry",
    "check_append_only",
    "decode_public_key",
    "encode_public_key",
    "key_id",
    "load_registry",
    "parse_registry",
    "render_registry",
    "save_registry",
    "update_registry",
]

KEY_ID_DOMAIN = b"policyengine esignature key\n"
PUBLIC_KEY_SIZE = 32

# Workforce identities such as `u2` or `alice@example.org`; no spaces, so they read in logs.
_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$"
_ROLE_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")


class RegistryError(ValueError):
    """A registry that cannot be read, saved or updated; the message names the file or entry.

    `details` holds further `(field, message)` problems when a file has more than one."""

    def __init__(self, message: str, details: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


# --------------------------------------------------------------------------- keys


def key_id(public_key_raw: bytes) -> str:
    """A short, deterministic name for a public key: 16 hex chars of a domain-separated
    sha256, so the same key gets the same id in every registry and no other hash collides."""
    return hashlib.sha256(KEY_ID_DOMAIN + public_key_raw).hexdigest()[:16]


def encode_public_key(raw: bytes) -> str:
    """Standard, padded base64 of the 32 raw Ed25519 public-key bytes."""
    return base64.b64encode(raw).decode("ascii")


def decode_public_key(text: str) -> bytes:
    """The 32 raw bytes of a base64 public key; only the canonical encoding is accepted, so
    one key has exactly one spelling (and one registry digest)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("public key is not valid base64") from None
    if len(raw) != PUBLIC_KEY_SIZE:
        raise ValueError(f"public key is {len(raw)} bytes, expected {PUBLIC_KEY_SIZE} (Ed25519)")
    if encode_public_key(raw) != text:
        raise ValueError("public key is not in canonical (standard, padded) base64")
    return raw


def _as_raw(public_key: bytes | str) -> bytes:
    if isinstance(public_key, bytes):
        if len(public_key) != PUBLIC_KEY_SIZE:
            raise RegistryError(
                f"public key is {len(public_key)} bytes, expected {PUBLIC_KEY_SIZE} (Ed25519)"
            )
        return public_key
    try:
        return decode_public_key(public_key.strip())
    except ValueError as exc:
        raise RegistryError(f"invalid public key `{public_key}`: {exc}") from None


# --------------------------------------------------------------------------- models


def _utc(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise RegistryError(f"{what} `{at.isoformat()}` has no timezone (hint: use UTC)")
    return at.astimezone(UTC)


def _check_roles(roles: list[str]) -> list[str]:
    if len(set(roles)) != len(roles):
        raise PydanticCustomError("duplicate_role", "roles must not repeat")
    return roles


def _check_text(value: str) -> str:
    if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PydanticCustomError(
            "untidy_text", "must not have surrounding spaces or control characters"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class SignerKey(_Model):
    """One Ed25519 public key of a signer. Revoked keys stay listed: signatures made before
    the revocation remain verifiable."""

    key_id: str
    """`key_id(raw public key)`: 16 hex characters."""
    public_key: str
    """Standard padded base64 of the 32 raw public-key bytes."""
    added_at: datetime
    """When the key was registered (UTC)."""
    revoked_at: datetime | None = None
    """When the key stopped being valid; signatures dated at or after it are rejected."""
    revocation_reason: str | None = None
    """Why it was revoked (lost, compromised, person left), required with `revoked_at`."""

    _times = field_validator("added_at", "revoked_at", mode="wrap")(_aware_utc)

    @field_serializer("added_at", "revoked_at")
    def _dump_time(self, t: datetime | None) -> str | None:
        return None if t is None else format_timestamp(t)

    @field_validator("public_key")
    @classmethod
    def _check_public_key(cls, value: str) -> str:
        try:
            decode_public_key(value)
        except ValueError as exc:
            raise PydanticCustomError("public_key", str(exc)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SignerKey:
        expected = key_id(base64.b64decode(self.public_key))
        if self.key_id != expected:
            raise PydanticCustomError(
                "key_id_mismatch",
                "key id `{got}` does not match the public key (expected `{want}`)",
                {"got": self.key_id, "want": expected},
            )
        if (self.revoked_at is None) != (self.revocation_reason is None):
            raise PydanticCustomError(
                "revocation", "`revoked_at` and `revocation_reason` go together"
            )
        if self.revoked_at is not None and self.revoked_at < self.added_at:
            raise PydanticCustomError("revocation", "revoked before it was added")
        return self

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.public_key)

    def revoked_by(self, at: datetime) -> bool:
        """Whether the key was already revoked at instant `at` (revocation is inclusive)."""
        return self.revoked_at is not None and self.revoked_at <= at


class RoleChange(_Model):
    """A replaced role set: from `at` on, the signer no longer holds `previous` but the roles
    of the next change (or the current `roles`)."""

    at: datetime
    previous: list[str]

    _time = field_validator("at", mode="wrap")(_aware_utc)

    @field_serializer("at")
    def _dump_time(self, t: datetime) -> str:
        return format_timestamp(t)


class Signer(_Model):
    """A person who signs, identified by a workforce id and shown by their printed name
    (21 CFR 11.50 requires the printed name in every signature)."""

    id: str = Field(pattern=_ID_RE)
    """Workforce identity, e.g. `u2` or `alice@example.org` (never a patient identifier)."""
    name: str = Field(min_length=1, max_length=200)
    """Printed name, copied into each signature manifest."""
    roles: list[str] = Field(min_length=1)
    """Current roles, e.g. `qa`, `domain_expert`."""
    keys: list[SignerKey] = Field(default_factory=list)
    disabled_at: datetime | None = None
    """When the signer lost the right to sign (left, suspended); earlier signatures stand."""
    disabled_reason: str | None = None
    role_history: list[RoleChange] = Field(default_factory=list)
    """Earlier role sets, oldest first, so old signatures are judged by the roles of the time."""

    _times = field_validator("disabled_at", mode="wrap")(_aware_utc)
    _name = field_validator("name")(_check_text)

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: list[str]) -> list[str]:
        for role in roles:
            if not re.match(_ROLE_RE, role):
                raise PydanticCustomError(
                    "role", "role `{role}` must be letters, digits, `.`, `_` or `-`", {"role": role}
                )
        return _check_roles(roles)

    @field_serializer("disabled_at")
    def _dump_time(self, t: datetime | None) -> str | None:
        return None if t is None else format_timestamp(t)

    @model_validator(mode="after")
    def _consistent(self) -> Signer:
        if (self.disabled_at is None) != (self.disabled_reason is None):
            raise PydanticCustomError("disabled", "`disabled_at` and `disabled_reason` go together")
        times = [c.at for c in self.role_history]
        if times != sorted(times):
            raise PydanticCustomError("role_history", "`role_history` must be in time order")
        return self

    def roles_at(self, at: datetime) -> list[str]:
        """The roles held at instant `at`: undo every role change made after it."""
        roles = self.roles
        for change in reversed(self.role_history):
            if change.at <= at:
                break
            roles = change.previous
        return roles

    def disabled_by(self, at: datetime) -> bool:
        """Whether the signer was already disabled at instant `at` (inclusive)."""
        return self.disabled_at is not None and self.disabled_at <= at


class SignerRegistry(_Model):
    """All signers. Updaters (`with_…`) are pure: they return a new, validated registry."""

    version: Literal[1] = 1
    signers: list[Signer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SignerRegistry:
        seen: set[str] = set()
        owners: dict[str, str] = {}
        for s in self.signers:
            if s.id in seen:
                raise PydanticCustomError(
                    "duplicate", "signer `{id}` is listed twice", {"id": s.id}
                )
            seen.add(s.id)
            for k in s.keys:
                if k.key_id in owners:
                    raise PydanticCustomError(
                        "duplicate",
                        "key `{key}` is listed twice (signers `{a}` and `{b}`)",
                        {"key": k.key_id, "a": owners[k.key_id], "b": s.id},
                    )
                owners[k.key_id] = s.id
        return self

    # ------------------------------------------------------------------ lookups
    def signer(self, id: str) -> Signer | None:
        return next((s for s in self.signers if s.id == id), None)

    def key(self, key_id: str) -> tuple[Signer, SignerKey] | None:
        for s in self.signers:
            for k in s.keys:
                if k.key_id == key_id:
                    return s, k
        return None

    def document(self) -> dict[str, Any]:
        """The JSON document stored on disk (and digested)."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """`sha256:<hex>` of the RFC 8785 form; a review can record which registry it used."""
        return "sha256:" + hashlib.sha256(canonical.dumps(self.document())).hexdigest()

    # ------------------------------------------------------------------ updaters
    def _replace(self, signer: Signer) -> SignerRegistry:
        signers = [signer if s.id == signer.id else s for s in self.signers]
        return _build(signers)

    def _existing(self, id: str) -> Signer:
        found = self.signer(id)
        if found is None:
            hint = _close(id, [s.id for s in self.signers])
            raise RegistryError(f"no signer `{id}` in the registry{hint}")
        return found

    def with_signer(
        self,
        id: str,
        name: str,
        roles: list[str],
        *,
        at: datetime,
        public_key: bytes | str | None = None,
    ) -> SignerRegistry:
        """Add a new signer (optionally with a first key added at `at`)."""
        if self.signer(id) is not None:
            raise RegistryError(
                f"signer `{id}` is already registered",
                [("", "add a key with `with_key`, change roles with `with_roles`")],
            )
        try:
            signer = Signer(id=id, name=name, roles=_norm_roles(roles))
        except ValidationError as exc:
            raise _model_error(exc, Signer, f"signer `{id}`") from None
        registry = _build([*self.signers, signer])
        if public_key is not None:
            registry = registry.with_key(id, public_key, at)
        return registry

    def with_key(self, signer_id: str, public_key: bytes | str, at: datetime) -> SignerRegistry:
        """Register another key for a signer. A key already registered (to anyone, revoked
        or not) is refused: one key signs for one person only (11.100(a))."""
        signer = self._existing(signer_id)
        if signer.disabled_at is not None:
            raise RegistryError(f"signer `{signer_id}` is disabled; it cannot get new keys")
        raw = _as_raw(public_key)
        kid = key_id(raw)
        owner = self.key(kid)
        if owner is not None:
            raise RegistryError(f"key `{kid}` is already registered to signer `{owner[0].id}`")
        key = SignerKey(
            key_id=kid, public_key=encode_public_key(raw), added_at=_utc(at, "key time")
        )
        return self._replace(signer.model_copy(update={"keys": [*signer.keys, key]}))

    def with_revoked_key(self, key_id: str, at: datetime, reason: str) -> SignerRegistry:
        """Revoke a key from `at` on; signatures dated before `at` stay valid."""
        found = self.key(key_id)
        if found is None:
            raise RegistryError(f"no key `{key_id}` in the registry")
        signer, key = found
        if key.revoked_at is not None:
            raise RegistryError(
                f"key `{key_id}` was already revoked at {format_timestamp(key.revoked_at)}"
            )
        at = _utc(at, "revocation time")
        if at < key.added_at:
            raise RegistryError(
                f"key `{key_id}` cannot be revoked at {format_timestamp(at)},"
                f" before it was added ({format_timestamp(key.added_at)})"
            )
        revoked = key.model_copy(update={"revoked_at": at, "revocation_reason": _reason(reason)})
        keys = [revoked if k.key_id == key_id else k for k in signer.keys]
        return self._replace(signer.model_copy(update={"keys": keys}))

    def with_disabled_signer(self, id: str, at: datetime, reason: str) -> SignerRegistry:
        """Stop a signer from signing from `at` on (all keys); earlier signatures stand."""
        signer = self._existing(id)
        if signer.disabled_at is not None:
            raise RegistryError(
                f"signer `{id}` was already disabled at {format_timestamp(signer.disabled_at)}"
            )
        update = {"disabled_at": _utc(at, "disable time"), "disabled_reason": _reason(reason)}
        return self._replace(signer.model_copy(update=update))

    def with_roles(
        self, id: str, roles: list[str], *, at: datetime | None = None
    ) -> SignerRegistry:
        """Replace a signer's roles from `at` on (default: now). The old set is kept in
        `role_history`, so a signature made under a role that is later removed stays valid."""
        signer = self._existing(id)
        new = _norm_roles(roles)
        if new == signer.roles:
            return self
        when = _utc(at, "role change time") if at is not None else datetime.now(UTC)
        if signer.role_history and when < signer.role_history[-1].at:
            raise RegistryError(f"role change for `{id}` is older than its last role change")
        history = [*signer.role_history, RoleChange(at=when, previous=signer.roles)]
        try:
            updated = Signer.model_validate(
                {**signer.model_dump(), "roles": new, "role_history": history}
            )
        except ValidationError as exc:
            raise _model_error(exc, Signer, f"signer `{id}`") from None
        return self._replace(updated)


def _norm_roles(roles: list[str]) -> list[str]:
    return sorted({r.strip() for r in roles})


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise RegistryError("a reason is required (hint: e.g. `key lost`, `left the company`)")
    return text


def _close(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _build(signers: list[Signer]) -> SignerRegistry:
    try:
        # Re-validate from plain data: `model_copy(update=…)` skips the per-signer checks.
        docs = [s.model_dump(mode="json") for s in signers]
        return SignerRegistry.model_validate({"version": 1, "signers": docs})
    except ValidationError as exc:
        raise _model_error(exc, SignerRegistry, "registry") from None


def _model_error(exc: ValidationError, model: type[BaseModel], what: str) -> RegistryError:
    problems = validation_problems(exc, model)
    return RegistryError(f"invalid {what}: {problems[0][1]}", problems[1:])


# --------------------------------------------------------------------------- files


def load_registry(path: str | Path, *, create: bool = False) -> SignerRegistry:
    """Read a registry file. A missing file is an empty registry only with `create=True`
    (the commands that add signers); everything else needs the file to exist."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if create:
            return SignerRegistry()
        raise RegistryError(
            f"no signer registry `{p}` (hint: `policyengine signers add` creates one)"
        ) from None
    except IsADirectoryError:
        raise RegistryError(f"signer registry `{p}` is a directory") from None
    except OSError as exc:
        raise RegistryError(f"cannot read signer registry `{p}`: {exc.strerror or exc}") from None
    return parse_registry(raw, p)


def parse_registry(raw: bytes, source: str | Path = "<registry>") -> SignerRegistry:
    """Validate registry JSON bytes; errors name `source` and the field."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RegistryError(f"signer registry `{source}` is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"signer registry `{source}` is not valid JSON: {exc.msg}"
            f" at line {exc.lineno}, column {exc.colno}"
        ) from None
    try:
        return SignerRegistry.model_validate(doc)
    except ValidationError as exc:
        problems = validation_problems(exc, SignerRegistry)
        raise RegistryError(
            f"signer registry `{source}` is malformed: {problems[0][1]}",
            problems[1:],
        ) from None


def render_registry(registry: SignerRegistry) -> bytes:
    """Pretty, stable JSON (sorted keys, two-space indent, trailing newline) that diffs well."""
    text = json.dumps(registry.document(), indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def check_append_only(old: SignerRegistry, new: SignerRegistry) -> None:
    """Refuse a registry that forgets history: every signer and key of `old` must remain,
    with the same public key, time added, revocation and disabling."""
    for before in old.signers:
        after = new.signer(before.id)
        if after is None:
            raise RegistryError(
                f"signer `{before.id}` would be removed; signers are disabled, never deleted"
            )
        if after.name != before.name:
            raise RegistryError(
                f"printed name of `{before.id}` would change; earlier signatures carry"
                f" `{before.name}` (hint: register the person under a new signer id)"
            )
        if before.disabled_at is not None and (
            after.disabled_at,
            after.disabled_reason,
        ) != (before.disabled_at, before.disabled_reason):
            raise RegistryError(f"signer `{before.id}` would be re-enabled or its disabling edited")
        if after.role_history[: len(before.role_history)] != before.role_history:
            raise RegistryError(f"role history of `{before.id}` would be rewritten")
        keys = {k.key_id: k for k in after.keys}
        for k in before.keys:
            now = keys.get(k.key_id)
            if now is None:
                raise RegistryError(
                    f"key `{k.key_id}` of `{before.id}` would be removed; keys are revoked,"
                    " never deleted"
                )
            if (now.public_key, now.added_at) != (k.public_key, k.added_at):
                raise RegistryError(f"key `{k.key_id}` of `{before.id}` would be altered")
            if k.revoked_at is not None and (now.revoked_at, now.revocation_reason) != (
                k.revoked_at,
                k.revocation_reason,
            ):
                raise RegistryError(f"revocation of key `{k.key_id}` would be undone or edited")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RegistryError(f"cannot create lock file `{lock}`: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def save_registry(path: str | Path, registry: SignerRegistry) -> None:
    """Replace the registry file atomically: write a temporary file, fsync it, rename it over
    the old one and fsync the folder, so a crash leaves either the old or the new file.
    Refuses (under an exclusive lock) a registry that drops history the file on disk holds,
    which also catches a concurrent writer's update being overwritten."""
    p = Path(path)
    with _locked(p):
        _save_unlocked(p, registry)


def _save_unlocked(p: Path, registry: SignerRegistry) -> None:
    if p.exists():
        check_append_only(load_registry(p), registry)
    data = render_registry(registry)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RegistryError(f"cannot write signer registry `{p}`: {exc.strerror or exc}") from None
    dir_fd = os.open(p.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_registry(
    path: str | Path,
    change: Callable[[SignerRegistry], SignerRegistry],
    *,
    create: bool = False,
) -> SignerRegistry:
    """Load, apply `change` and save under one lock, so concurrent updates serialise."""
    p = Path(path)
    with _locked(p):
        updated = change(load_registry(p, create=create))
        _save_unlocked(p, updated)
    return updated
