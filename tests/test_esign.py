"""Electronic signatures and the signer registry: signing, every rejection, tampering,
revocation in time, passphrase-protected key files and the append-only registry file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine import canonical
from policyengine.oversight import (
    MANIFEST_TYPE,
    ESignature,
    RegistryError,
    SignatureError,
    SignerRegistry,
    SigningKeyError,
    check_append_only,
    generate_signing_key,
    key_id,
    load_registry,
    load_signing_key,
    manifest,
    parse_registry,
    public_key_raw,
    record_digest,
    save_registry,
    sign,
    update_registry,
    verify,
)
from policyengine.oversight import registry as registry_module

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SIGNED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RECORD = {"kind": "model_version", "id": "mv-1", "name": "tox", "version": "3"}
PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def alice_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bob_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def registry(alice_key: Ed25519PrivateKey, bob_key: Ed25519PrivateKey) -> SignerRegistry:
    return (
        SignerRegistry()
        .with_signer("alice", "Alice Example", ["qa"], at=T0, public_key=public_key_raw(alice_key))
        .with_signer(
            "bob", "Bob Example", ["domain_expert"], at=T0, public_key=public_key_raw(bob_key)
        )
    )


def _manifest(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "subject_kind": "model_version",
        "subject_id": "mv-1",
        "record_digest": record_digest(RECORD),
        "signer": "alice",
        "signer_name": "Alice Example",
        "role": "qa",
        "meaning": "approved",
        "time": SIGNED_AT,
        "comment": "checked the validation report",
        "review": "rv-7",
    }
    fields.update(changes)
    return manifest(**fields)


def _reason(registry: SignerRegistry, m: dict[str, Any], sig: ESignature) -> str:
    with pytest.raises(SignatureError) as info:
        verify(registry, m, sig)
    assert info.value.reason == str(info.value)
    return info.value.reason


def _alice_kid(alice_key: Ed25519PrivateKey) -> str:
    return key_id(public_key_raw(alice_key))


# --------------------------------------------------------------------------- basics


def test_round_trip(registry: SignerRegistry, alice_key: Ed25519PrivateKey) -> None:
    m = _manifest()
    sig = sign(alice_key, m)
    assert sig.algorithm == "ed25519"
    assert sig.key_id == _alice_kid(alice_key)
    assert len(base64.b64decode(sig.value, validate=True)) == 64
    signer = verify(registry, m, sig)
    assert (signer.id, signer.name) == ("alice", "Alice Example")
    # The signature survives a JSON round trip of manifest and signature (how they are stored).
    stored = json.loads(json.dumps({"m": m, "s": sig.model_dump()}))
    assert verify(registry, stored["m"], ESignature.model_validate(stored["s"])).id == "alice"


def test_manifest_shape_and_time() -> None:
    m = _manifest(time=datetime(2026, 3, 1, 14, 0, 0, 250, tzinfo=timezone(timedelta(hours=2))))
    assert m == {
        "type": "policyengine.esignature/v1",
        "subject": {"kind": "model_version", "id": "mv-1"},
        "record_digest": record_digest(RECORD),
        "signer": "alice",
        "signer_name": "Alice Example",
        "role": "qa",
        "meaning": "approved",
        "time": "2026-03-01T12:00:00.000250Z",
        "comment": "checked the validation report",
        "review": "rv-7",
    }
    assert m["type"] == MANIFEST_TYPE
    with pytest.raises(ValueError, match="no timezone"):
        _manifest(time=datetime(2026, 3, 1))
    with pytest.raises(ValueError, match="record_digest"):
        _manifest(record_digest="md5:abc")
    with pytest.raises(ValueError, match="signer_name"):
        _manifest(signer_name="")


def test_record_digest_and_key_id_vectors() -> None:
    # Canonical JSON: key order and insertion order do not matter, UTF-8 not escaped.
    doc = {"b": 1, "a": [True, None, "é"]}
    expected = hashlib.sha256('{"a":[true,null,"é"],"b":1}'.encode()).hexdigest()
    assert record_digest(doc) == "sha256:" + expected
    assert record_digest({"a": [True, None, "é"], "b": 1}) == record_digest(doc)
    assert record_digest(doc) != record_digest({"b": 2, "a": [True, None, "é"]})
    # Domain-separated and deterministic (a fixed vector so the scheme cannot drift).
    assert key_id(bytes(32)) == "1c40314df1d515a8"
    assert (
        key_id(bytes(32))
        == hashlib.sha256(b"policyengine esignature key\n" + bytes(32)).hexdigest()[:16]
    )
    assert key_id(bytes(31) + b"\x01") != key_id(bytes(32))


# --------------------------------------------------------------------------- rejections


def test_unknown_key(registry: SignerRegistry) -> None:
    stranger = Ed25519PrivateKey.generate()
    m = _manifest()
    reason = _reason(registry, m, sign(stranger, m))
    assert reason == f"unknown signing key `{key_id(public_key_raw(stranger))}`"


def test_key_of_another_signer(registry: SignerRegistry, bob_key: Ed25519PrivateKey) -> None:
    # Bob signs a manifest that claims to be Alice's: the signature is sound, the claim is not.
    m = _manifest()
    reason = _reason(registry, m, sign(bob_key, m))
    assert "belongs to signer `bob`, not `alice`" in reason


def test_printed_name_must_match(registry: SignerRegistry, alice_key: Ed25519PrivateKey) -> None:
    m = _manifest(signer_name="A. Example")
    reason = _reason(registry, m, sign(alice_key, m))
    assert "printed name `A. Example` does not match `Alice Example`" in reason


def test_role_must_be_held(registry: SignerRegistry, alice_key: Ed25519PrivateKey) -> None:
    m = _manifest(role="qa_lead")
    reason = _reason(registry, m, sign(alice_key, m))
    assert "did not hold role `qa_lead`" in reason
    assert "`qa`" in reason


def test_role_changes_are_judged_at_signing_time(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    changed = registry.with_roles("alice", ["qa_lead"], at=SIGNED_AT + timedelta(days=1))
    before = _manifest(role="qa")
    # A role removed after signing leaves the signature valid ...
    assert verify(changed, before, sign(alice_key, before)).id == "alice"
    # ... a role granted after signing does not reach back ...
    early_lead = _manifest(role="qa_lead")
    assert "did not hold role `qa_lead`" in _reason(
        changed, early_lead, sign(alice_key, early_lead)
    )
    # ... and after the change only the new role counts.
    later = SIGNED_AT + timedelta(days=2)
    late_qa = _manifest(role="qa", time=later)
    assert "did not hold role `qa`" in _reason(changed, late_qa, sign(alice_key, late_qa))
    late_lead = _manifest(role="qa_lead", time=later)
    assert verify(changed, late_lead, sign(alice_key, late_lead)).id == "alice"


@pytest.mark.parametrize(
    ("offset", "valid"),
    [(timedelta(seconds=-1), False), (timedelta(0), False), (timedelta(microseconds=1), True)],
)
def test_revocation_relative_to_signing_time(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey, offset: timedelta, valid: bool
) -> None:
    """Revoked at or before the signing time: rejected; revoked later: the signature made
    before the revocation stays valid."""
    revoked = registry.with_revoked_key(_alice_kid(alice_key), SIGNED_AT + offset, "key lost")
    m = _manifest()
    sig = sign(alice_key, m)
    if valid:
        assert verify(revoked, m, sig).id == "alice"
    else:
        reason = _reason(revoked, m, sig)
        assert f"key `{sig.key_id}` was revoked at" in reason
        assert "(reason: `key lost`)" in reason


@pytest.mark.parametrize(
    ("offset", "valid"),
    [(timedelta(hours=-1), False), (timedelta(0), False), (timedelta(hours=1), True)],
)
def test_disabled_signer_relative_to_signing_time(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey, offset: timedelta, valid: bool
) -> None:
    disabled = registry.with_disabled_signer("alice", SIGNED_AT + offset, "left the company")
    m = _manifest()
    sig = sign(alice_key, m)
    if valid:
        assert verify(disabled, m, sig).id == "alice"
    else:
        assert "signer `alice` was disabled at" in _reason(disabled, m, sig)


def test_bad_signature_values(registry: SignerRegistry, alice_key: Ed25519PrivateKey) -> None:
    m = _manifest()
    kid = _alice_kid(alice_key)
    good = sign(alice_key, m)
    raw = base64.b64decode(good.value)
    cases = {
        "not base64!": "not valid base64",
        base64.b64encode(raw[:63]).decode(): "63 bytes, expected 64",
        base64.b64encode(raw + b"\0").decode(): "65 bytes, expected 64",
        good.value.rstrip("="): "not valid base64",  # unpadded
        good.value[:-3] + "B==": "not canonical",  # non-zero padding bits
    }
    for value, expected in cases.items():
        assert expected in _reason(registry, m, ESignature(key_id=kid, value=value)), value
    # Right key id, but the bytes come from another key: the Ed25519 check fails.
    forged = sign(Ed25519PrivateKey.generate(), m).value
    assert "does not match the manifest" in _reason(
        registry, m, ESignature(key_id=kid, value=forged)
    )


def test_malformed_manifest_is_rejected(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    m = _manifest()
    sig = sign(alice_key, m)
    assert "unknown `extra`" in _reason(registry, {**m, "extra": 1}, sig)
    missing = {k: v for k, v in m.items() if k != "review"}
    assert "missing `review`" in _reason(registry, missing, sig)
    assert "not an RFC 3339" in _reason(registry, {**m, "time": "2026-03-01T12:00:00+00:00"}, sig)
    with pytest.raises(ValueError, match="unknown `extra`"):
        sign(alice_key, {**m, "extra": 1})


def _tamper_cases() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def setter(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
        def apply(m: dict[str, Any]) -> None:
            target = m
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value

        return apply

    return [
        ("type", setter(("type",), "policyengine.esignature/v2")),
        ("subject.kind", setter(("subject", "kind"), "dataset")),
        ("subject.id", setter(("subject", "id"), "mv-2")),
        ("record_digest", setter(("record_digest",), record_digest({**RECORD, "version": "4"}))),
        ("signer", setter(("signer",), "bob")),
        ("signer_name", setter(("signer_name",), "Bob Example")),
        ("role", setter(("role",), "domain_expert")),
        ("meaning", setter(("meaning",), "rejected")),
        ("time", setter(("time",), "2026-03-01T12:00:01Z")),
        ("comment", setter(("comment",), None)),
        ("review", setter(("review",), "rv-8")),
    ]


@pytest.mark.parametrize(("field", "tamper"), _tamper_cases(), ids=[c[0] for c in _tamper_cases()])
def test_tampering_any_field_breaks_it(
    registry: SignerRegistry,
    alice_key: Ed25519PrivateKey,
    field: str,
    tamper: Callable[[dict[str, Any]], None],
) -> None:
    m = _manifest()
    sig = sign(alice_key, m)
    tampered = json.loads(json.dumps(m))
    tamper(tampered)
    assert tampered != m
    with pytest.raises(SignatureError):
        verify(registry, tampered, sig)


def test_signature_cannot_move_to_another_record(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    m = _manifest()
    sig = sign(alice_key, m)
    other_subject = _manifest(subject_id="mv-2")
    other_record = _manifest(record_digest=record_digest({**RECORD, "name": "tox-2"}))
    for moved in (other_subject, other_record):
        assert "does not match the manifest" in _reason(registry, moved, sig)


def test_verify_is_thread_safe(registry: SignerRegistry, alice_key: Ed25519PrivateKey) -> None:
    good = _manifest()
    sig = sign(alice_key, good)
    bad = _manifest(meaning="rejected")
    outcomes: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(50):
            m = good if i % 2 == 0 else bad
            try:
                verify(registry, m, sig)
                ok = m is good
            except SignatureError:
                ok = m is bad
            with lock:
                outcomes.append(ok)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 200 and all(outcomes)


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=_text,
    subject_id=_text,
    digest=st.binary(min_size=1, max_size=64),
    role=st.sampled_from(["qa", "domain_expert"]),
    meaning=_text,
    time=_times,
    comment=st.none() | _text,
    review=st.none() | _text,
    flip=st.tuples(st.integers(0, 63), st.integers(0, 7)),
)
def test_property_round_trip_and_flips(
    alice_key: Ed25519PrivateKey,
    kind: str,
    subject_id: str,
    digest: bytes,
    role: str,
    meaning: str,
    time: datetime,
    comment: str | None,
    review: str | None,
    flip: tuple[int, int],
) -> None:
    reg = SignerRegistry().with_signer(
        "alice",
        "Alice Example",
        ["qa", "domain_expert"],
        at=T0,
        public_key=public_key_raw(alice_key),
    )
    m = _manifest(
        subject_kind=kind,
        subject_id=subject_id,
        record_digest="sha256:" + hashlib.sha256(digest).hexdigest(),
        role=role,
        meaning=meaning,
        time=time,
        comment=comment,
        review=review,
    )
    sig = sign(alice_key, m)
    assert verify(reg, m, sig).id == "alice"
    # Any single bit flipped in the signature bytes fails.
    raw = bytearray(base64.b64decode(sig.value))
    raw[flip[0]] ^= 1 << flip[1]
    flipped = ESignature(key_id=sig.key_id, value=base64.b64encode(bytes(raw)).decode())
    with pytest.raises(SignatureError):
        verify(reg, m, flipped)
    # So does a single changed byte in the signed record digest.
    pos = len("sha256:") + flip[0]
    old = m["record_digest"][pos]
    new_char = "0" if old != "0" else "1"
    moved = {
        **m,
        "record_digest": m["record_digest"][:pos] + new_char + m["record_digest"][pos + 1 :],
    }
    with pytest.raises(SignatureError):
        verify(reg, moved, sig)


# --------------------------------------------------------------------------- key files


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("keys") / "alice.key"
    return path, generate_signing_key(path, PASSPHRASE)


def test_key_file_is_encrypted_pkcs8_0600(key_file: tuple[Path, bytes]) -> None:
    path, public = key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_signing_key(path, PASSPHRASE)
    assert public_key_raw(loaded) == public
    # Interoperable: any PKCS8 reader opens it with the passphrase.
    other = serialization.load_pem_private_key(text.encode(), PASSPHRASE.encode())
    assert isinstance(other, Ed25519PrivateKey)


def test_wrong_passphrase(key_file: tuple[Path, bytes]) -> None:
    path, _ = key_file
    with pytest.raises(SigningKeyError) as info:
        load_signing_key(path, "correct horse battery stapler")
    assert str(info.value) == f"wrong passphrase for signing key `{path}`"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_passphrase_is_nfc_normalised(tmp_path: Path) -> None:
    composed, decomposed = "caf\u00e9 au lait ok", "cafe\u0301 au lait ok"
    path = tmp_path / "k.key"
    public = generate_signing_key(path, composed)
    assert public_key_raw(load_signing_key(path, decomposed)) == public


def test_key_file_refusals(tmp_path: Path, key_file: tuple[Path, bytes]) -> None:
    path, _ = key_file
    with pytest.raises(SigningKeyError, match="already exists; refusing to overwrite"):
        generate_signing_key(path, PASSPHRASE)
    with pytest.raises(SigningKeyError, match="at least 12 are required"):
        generate_signing_key(tmp_path / "short.key", "elevenchars")
    assert not (tmp_path / "short.key").exists()
    with pytest.raises(SigningKeyError, match="whitespace"):
        generate_signing_key(tmp_path / "ws.key", " twelve chars ok")
    with pytest.raises(SigningKeyError, match="no signing key file"):
        load_signing_key(tmp_path / "missing.key", PASSPHRASE)
    plain = tmp_path / "plain.key"
    plain.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    plain.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not passphrase-protected"):
        load_signing_key(plain, PASSPHRASE)
    shared = tmp_path / "shared.key"
    shared.write_text(path.read_text())
    shared.chmod(0o640)
    with pytest.raises(SigningKeyError, match="accessible by other users"):
        load_signing_key(shared, PASSPHRASE)


def test_signing_with_a_loaded_key_verifies(key_file: tuple[Path, bytes]) -> None:
    path, public = key_file
    reg = SignerRegistry().with_signer("alice", "Alice Example", ["qa"], at=T0, public_key=public)
    m = _manifest()
    assert verify(reg, m, sign(load_signing_key(path, PASSPHRASE), m)).id == "alice"


# --------------------------------------------------------------------------- registry


def test_updaters_are_pure_and_validate(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    before = registry.document()
    kid = _alice_kid(alice_key)
    registry.with_revoked_key(kid, SIGNED_AT, "lost")
    registry.with_roles("alice", ["qa_lead"], at=SIGNED_AT)
    registry.with_disabled_signer("bob", SIGNED_AT, "left")
    assert registry.document() == before
    lookup = registry.key(kid)
    assert lookup is not None and lookup[0].id == "alice"
    assert registry.signer("nobody") is None and registry.key("0" * 16) is None

    with pytest.raises(RegistryError, match="already registered"):
        registry.with_signer("alice", "Alice Again", ["qa"], at=T0)
    with pytest.raises(RegistryError, match="already registered to signer `alice`"):
        registry.with_key("bob", public_key_raw(alice_key), SIGNED_AT)
    with pytest.raises(
        RegistryError, match="no signer `alcie` in the registry; did you mean `alice`"
    ):
        registry.with_key("alcie", bytes(32), SIGNED_AT)
    with pytest.raises(RegistryError, match="no key"):
        registry.with_revoked_key("0" * 16, SIGNED_AT, "lost")
    revoked = registry.with_revoked_key(kid, SIGNED_AT, "lost")
    with pytest.raises(RegistryError, match="already revoked"):
        revoked.with_revoked_key(kid, SIGNED_AT, "again")
    with pytest.raises(RegistryError, match="before it was added"):
        registry.with_revoked_key(kid, T0 - timedelta(days=1), "lost")
    with pytest.raises(RegistryError, match="reason is required"):
        registry.with_revoked_key(kid, SIGNED_AT, "  ")
    disabled = registry.with_disabled_signer("bob", SIGNED_AT, "left")
    with pytest.raises(RegistryError, match="already disabled"):
        disabled.with_disabled_signer("bob", SIGNED_AT, "left")
    with pytest.raises(RegistryError, match="disabled; it cannot get new keys"):
        disabled.with_key(
            "bob", Ed25519PrivateKey.generate().public_key().public_bytes_raw(), SIGNED_AT
        )
    with pytest.raises(
        RegistryError, match="invalid signer `carol`: `name`: must not have surrounding spaces"
    ):
        registry.with_signer("carol", " Carol", ["qa"], at=T0)
    with pytest.raises(RegistryError, match="at least 1"):
        registry.with_signer("carol", "Carol", [], at=T0)
    with pytest.raises(RegistryError, match="32"):
        registry.with_key("alice", "AAAA", SIGNED_AT)
    assert registry.with_roles("alice", ["qa"]) is registry  # no change, no history entry


def test_digest_is_canonical(registry: SignerRegistry) -> None:
    assert (
        registry.digest()
        == "sha256:" + hashlib.sha256(canonical.dumps(registry.document())).hexdigest()
    )
    reparsed = parse_registry(json.dumps(registry.document(), indent=3).encode())
    assert reparsed == registry and reparsed.digest() == registry.digest()
    assert (
        registry.with_roles("alice", ["qa", "qa_lead"], at=SIGNED_AT).digest() != registry.digest()
    )


def test_save_load_round_trip(tmp_path: Path, registry: SignerRegistry) -> None:
    path = tmp_path / "signers.json"
    save_registry(path, registry)
    assert load_registry(path) == registry
    text = path.read_text()
    assert text.endswith("}\n") and '\n  "signers": [' in text
    assert json.loads(text) == registry.document()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_missing_registry(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    with pytest.raises(RegistryError, match=f"no signer registry `{path}`.*signers add"):
        load_registry(path)
    assert load_registry(path, create=True) == SignerRegistry()


def test_save_refuses_to_forget_history(
    tmp_path: Path, registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "signers.json"
    revoked = registry.with_revoked_key(_alice_kid(alice_key), SIGNED_AT, "lost")
    save_registry(path, revoked)
    cases = {
        "signer `bob` would be removed": SignerRegistry(signers=[revoked.signers[0]]),
        "revocation of key": registry,  # un-revokes alice's key
        "key `": SignerRegistry(
            signers=[revoked.signers[0].model_copy(update={"keys": []}), revoked.signers[1]]
        ),
    }
    for expected, candidate in cases.items():
        with pytest.raises(RegistryError, match=expected):
            save_registry(path, candidate)
        assert load_registry(path) == revoked  # the file on disk is untouched


def test_check_append_only_allows_growth(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    grown = (
        registry.with_signer("carol", "Carol Example", ["qa"], at=T0)
        .with_revoked_key(_alice_kid(alice_key), SIGNED_AT, "lost")
        .with_roles("bob", ["domain_expert", "qa"], at=SIGNED_AT)
        .with_disabled_signer("carol", SIGNED_AT, "left")
    )
    check_append_only(registry, grown)
    carol = grown.signers[2].model_copy(update={"disabled_at": None, "disabled_reason": None})
    with pytest.raises(RegistryError, match="re-enabled"):
        check_append_only(grown, SignerRegistry(signers=[*grown.signers[:2], carol]))


def test_concurrent_lost_update_is_refused(tmp_path: Path, registry: SignerRegistry) -> None:
    """Two writers start from the same file; the second would drop the first's signer."""
    path = tmp_path / "signers.json"
    save_registry(path, registry)
    base = load_registry(path)
    save_registry(path, base.with_signer("carol", "Carol Example", ["qa"], at=T0))
    with pytest.raises(RegistryError, match="signer `carol` would be removed"):
        save_registry(path, base.with_signer("dave", "Dave Example", ["qa"], at=T0))
    # update_registry re-reads under the lock, so the same change applied through it lands.
    updated = update_registry(path, lambda r: r.with_signer("dave", "Dave Example", ["qa"], at=T0))
    assert [s.id for s in updated.signers] == ["alice", "bob", "carol", "dave"]


def test_crash_during_save_keeps_old_file(
    tmp_path: Path, registry: SignerRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "signers.json"
    save_registry(path, registry)
    before = path.read_bytes()

    def crash(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry_module.os, "replace", crash)
    with pytest.raises(RegistryError, match=r"cannot write signer registry .*No space left"):
        save_registry(path, registry.with_signer("carol", "Carol Example", ["qa"], at=T0))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{", "is not valid JSON"),
        (b"\xff", "is not UTF-8"),
        (b'{"version": 2, "signers": []}', "`version`"),
        (
            b'{"version": 1, "signers": [{"id": "u1", "name": "U", "roles": ["qa"], "kyes": []}]}',
            "`signers[0].kyes`: unknown field; did you mean `keys`?",
        ),
        (
            b'{"version": 1, "signers": [{"id": "u 1", "name": "U", "roles": ["qa"]}]}',
            "`signers[0].id`",
        ),
    ],
)
def test_malformed_registry_names_file_and_field(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "signers.json"
    path.write_bytes(content)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert f"signer registry `{path}`" in message
    assert expected in message


def test_registry_detects_forged_key_entries(
    registry: SignerRegistry, alice_key: Ed25519PrivateKey
) -> None:
    doc = registry.document()
    # A key id that does not belong to its public key (someone edited the file by hand).
    doc["signers"][1]["keys"][0]["key_id"] = _alice_kid(alice_key)
    with pytest.raises(RegistryError, match="does not match the public key"):
        parse_registry(json.dumps(doc).encode(), "signers.json")
    # One public key under two signers.
    doc = registry.document()
    doc["signers"][1]["keys"] = doc["signers"][0]["keys"]
    with pytest.raises(RegistryError, match="listed twice"):
        parse_registry(json.dumps(doc).encode(), "signers.json")
    # Naive timestamps are ambiguous and refused.
    doc = registry.document()
    doc["signers"][0]["keys"][0]["added_at"] = "2026-01-01T00:00:00"
    with pytest.raises(RegistryError, match="has no timezone"):
        parse_registry(json.dumps(doc).encode(), "signers.json")


def test_registry_files_are_not_secret(tmp_path: Path, registry: SignerRegistry) -> None:
    """The registry holds public keys only; it is readable so verifiers can use it."""
    path = tmp_path / "signers.json"
    old = os.umask(0o022)
    try:
        save_registry(path, registry)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert "PRIVATE" not in path.read_text()
