"""Witness cosignatures (C2SP tlog-cosignature, Ed25519 cosignature/v1): format, semantics, storage.

Expected values are computed here independently (hashlib, raw Ed25519) rather than through the
module under test, and every refusal a witness must make is exercised.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policyengine.log import (
    Checkpoint,
    LogError,
    Signer,
    TransparencyLog,
    VerificationError,
    open_note,
    sign_checkpoint,
    verify_checkpoint,
    verify_proof,
)
from policyengine.log.cosignature import (
    MAX_TIMESTAMP,
    CosignatureVerifier,
    WitnessSigner,
    WitnessState,
    cosign,
    cosign_with_state,
    cosigned_message,
    generate_witness_key_file,
    load_witness_signer,
    load_witness_verifier,
    verify_cosignature_line,
    verify_cosigned,
)
from policyengine.log.note import key_id as note_key_id

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
LOG = Signer("example.com/gxp-log", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER_LOG = Signer.generate("example.com/other-log")
W1 = WitnessSigner("witness.example/w1", Ed25519PrivateKey.from_private_bytes(bytes(32)))
W2 = WitnessSigner.generate("witness.example/w2")
W3 = WitnessSigner.generate("witness.example/w3")

# The example from the C2SP tlog-cosignature spec (its witness public key is not published).
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIG = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _note(signer: Signer, leaves: list[bytes], origin: str | None = None) -> str:
    from policyengine.log import root_from_leaf_hashes
    from policyengine.log.merkle import leaf_hash

    root = root_from_leaf_hashes([leaf_hash(x) for x in leaves])
    return sign_checkpoint(Checkpoint(origin or signer.name, len(leaves), root), signer)


LEAVES = [f"leaf {i}".encode() for i in range(8)]
NOTE5 = _note(LOG, LEAVES[:5])


# --- format -----------------------------------------------------------------------------------


def test_spec_example_has_the_documented_shape() -> None:
    name, _, b64 = SPEC_COSIG.removeprefix("\u2014 ").partition(" ")
    blob = base64.b64decode(b64)
    assert name == "witness.example.com/w1"
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1679315147
    # the signed message is exactly what the spec prints
    assert cosigned_message(SPEC_BODY, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    # ... and our own lines have the same shape
    ours = W1.sign_line(SPEC_BODY, 1679315147)
    ours_blob = base64.b64decode(ours.removeprefix(f"\u2014 {W1.name} ").rstrip("\n"))
    assert len(ours_blob) == len(blob) and ours_blob[4:12] == blob[4:12]
    assert ours.endswith("\n") and ours.count("\n") == 1


def test_key_id_uses_type_0x04_over_the_name_and_key() -> None:
    pub = _raw(Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
    expected = int.from_bytes(
        hashlib.sha256(b"witness.example/w1" + b"\n" + b"\x04" + pub).digest()[:4], "big"
    )
    assert W1.key_id == W1.verifier.key_id == expected
    assert W1.verifier.public_key == pub
    # a signed-note (type 0x01) key ID of the same name and key differs
    assert note_key_id(W1.name, pub) != expected
    b64 = base64.b64encode(b"\x04" + pub).decode()
    assert W1.verifier_key == f"witness.example/w1+{expected:08x}+{b64}"


def test_vkey_round_trip_and_rejections() -> None:
    parsed = CosignatureVerifier.from_key_string(W2.verifier_key)
    assert parsed == W2.verifier and parsed.to_key_string() == W2.verifier_key
    with pytest.raises(ValueError, match="signed-note \\(log\\) key, type 0x01"):
        CosignatureVerifier.from_key_string(LOG.verifier_key)
    name, hex_id, b64 = W2.verifier_key.split("+", 2)
    wrong_id = f"{(int(hex_id, 16) ^ 1):08x}"
    with pytest.raises(ValueError, match="key ID does not match"):
        CosignatureVerifier.from_key_string(f"{name}+{wrong_id}+{b64}")
    with pytest.raises(ValueError, match="not of the form"):
        CosignatureVerifier.from_key_string("no-plus-signs")
    with pytest.raises(ValueError, match="empty or contains whitespace"):
        WitnessSigner.generate("bad name")


def test_private_key_string_round_trip() -> None:
    text = W1.to_private_key_string()
    prefix = f"PRIVATE+KEY+{W1.name}+{W1.key_id:08x}+"
    assert text.startswith(prefix)
    assert base64.b64decode(text.removeprefix(prefix)) == b"\x04" + bytes(32)
    again = WitnessSigner.from_private_key_string(text)
    assert again.verifier_key == W1.verifier_key
    assert again.sign_line(SPEC_BODY, 5) == W1.sign_line(SPEC_BODY, 5)  # Ed25519 is deterministic
    log_secret = LOG.to_private_key_string()
    with pytest.raises(ValueError) as info:
        WitnessSigner.from_private_key_string(log_secret)
    assert log_secret.rsplit("+", 1)[1] not in str(info.value)  # never echo a secret
    assert "0x04" in str(info.value)
    assert "seed" not in repr(W1) and text not in repr(W1)


# --- signing and verification ------------------------------------------------------------------


def test_sign_verify_round_trip() -> None:
    line = cosign(NOTE5, LOG.verifier, W1, now=NOW)
    # the signature is Ed25519 over the spec's message, checked with the raw primitive
    blob = base64.b64decode(line.removeprefix(f"\u2014 {W1.name} ").rstrip("\n"))
    assert blob[:4] == W1.key_id.to_bytes(4, "big")
    assert int.from_bytes(blob[4:12], "big") == NOW
    body = NOTE5[: NOTE5.index("\n\n") + 1]
    pub = Ed25519PublicKey.from_public_bytes(W1.verifier.public_key)
    pub.verify(blob[12:], f"cosignature/v1\ntime {NOW}\n".encode() + body.encode())
    with pytest.raises(InvalidSignature):
        pub.verify(blob[12:], body.encode())
    cosigned = NOTE5 + line
    # the existing note/checkpoint code verifies it with a list of keys
    text, sigs = open_note(cosigned, [LOG.verifier, W1.verifier])
    assert text == body and [s.name for s in sigs] == [LOG.name, W1.name]
    assert verify_checkpoint(cosigned, [LOG.verifier, W1.verifier]).size == 5
    assert verify_checkpoint(cosigned, LOG.verifier).size == 5  # unknown cosigner ignored
    result = verify_cosigned(cosigned, LOG.verifier, [W1.verifier], 1)
    assert result.checkpoint.size == 5
    assert [(c.name, c.timestamp, c.time) for c in result.cosignatures] == [
        (W1.name, NOW, "2026-01-01T00:00:00Z")
    ]
    assert result.cosignatures[0].line == line
    assert verify_cosignature_line(NOTE5, line, W1.verifier).timestamp == NOW


def test_every_single_bit_flip_of_a_cosigned_note_is_rejected() -> None:
    cosigned = (NOTE5 + cosign(NOTE5, LOG.verifier, W1, now=NOW)).encode()
    verify_cosigned(cosigned, LOG.verifier, [W1.verifier], 1)
    for i in range(len(cosigned)):
        for bit in range(8):
            mutated = bytearray(cosigned)
            mutated[i] ^= 1 << bit
            with pytest.raises(VerificationError):
                verify_cosigned(bytes(mutated), LOG.verifier, [W1.verifier], 1)


def test_cosignature_of_another_origin_is_rejected(tmp_path: Path) -> None:
    other = _note(OTHER_LOG, LEAVES[:5])
    line = cosign(other, OTHER_LOG.verifier, W1, now=NOW)
    verify_cosigned(other + line, OTHER_LOG.verifier, [W1.verifier], 1)
    with pytest.raises(VerificationError, match="invalid signature by trusted key"):
        verify_cosigned(NOTE5 + line, LOG.verifier, [W1.verifier], 1)
    with pytest.raises(VerificationError):
        verify_cosignature_line(NOTE5, line, W1.verifier)
    log = TransparencyLog.open(tmp_path / "log.db", LOG, create=True)
    log.append(LEAVES[:5])
    with pytest.raises(VerificationError):
        log.add_cosignature(5, line, W1.verifier)
    assert log.store.cosignatures() == []
    # a witness refuses a checkpoint whose origin is not the one it trusts the key for
    foreign = sign_checkpoint(Checkpoint("example.com/elsewhere", 1, bytes(32)), LOG)
    with pytest.raises(VerificationError, match=r"checkpoint is for log `example\.com/elsewhere`"):
        cosign(foreign, LOG.verifier, W1, now=NOW)
    # and one the log did not sign at all
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        cosign(other, LOG.verifier, W1, now=NOW)


def test_the_logs_own_signature_is_still_required() -> None:
    line = cosign(NOTE5, LOG.verifier, W1, now=NOW)
    body = NOTE5[: NOTE5.index("\n\n") + 1]
    only_cosigned = body + "\n" + line
    # a plain key list accepts a cosignature alone, which is why verify_cosigned exists
    assert verify_checkpoint(only_cosigned, [LOG.verifier, W1.verifier]).size == 5
    with pytest.raises(VerificationError, match="not signed by the log key"):
        verify_cosigned(only_cosigned, LOG.verifier, [W1.verifier], 1)
    with pytest.raises(VerificationError, match="not signed by the log key"):
        verify_cosigned(only_cosigned, LOG.verifier, [W1.verifier], 0)
    with pytest.raises(VerificationError, match="no signature from a trusted key"):
        cosign(only_cosigned, LOG.verifier, W2, now=NOW)


def test_quorum_counts_distinct_witness_keys() -> None:
    l1 = cosign(NOTE5, LOG.verifier, W1, now=NOW)
    l2 = cosign(NOTE5, LOG.verifier, W2, now=NOW + 1)
    trusted = [W1.verifier, W2.verifier, W3.verifier]
    both = NOTE5 + l1 + l2
    result = verify_cosigned(both, LOG.verifier, trusted, 2)
    assert [(c.name, c.timestamp) for c in result.cosignatures] == [
        (W1.name, NOW),
        (W2.name, NOW + 1),
    ]
    with pytest.raises(VerificationError, match="cosigned by 2 of 3 trusted witnesses"):
        verify_cosigned(both, LOG.verifier, trusted, 3)
    assert verify_cosigned(NOTE5, LOG.verifier, trusted, 0).cosignatures == ()
    # the same line twice counts once
    with pytest.raises(VerificationError, match="cosigned by 1 of 3"):
        verify_cosigned(NOTE5 + l1 + l1, LOG.verifier, trusted, 2)
    # the same key under a second name counts once, even with a genuine line for each name
    alias = WitnessSigner("witness.example/alias", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    la = cosign(NOTE5, LOG.verifier, alias, now=NOW)
    with_alias = [W1.verifier, alias.verifier, W2.verifier]
    with pytest.raises(VerificationError, match="cosigned by 1 of 2"):
        verify_cosigned(NOTE5 + l1 + la, LOG.verifier, with_alias, 2)
    # the message does not commit to the name, so w1's signature relabelled as the alias
    # verifies — and still must not count twice
    relabelled = base64.b64encode(
        alias.key_id.to_bytes(4, "big") + base64.b64decode(l1.split(" ")[2])[4:]
    ).decode()
    forged = f"\u2014 {alias.name} {relabelled}\n"
    assert verify_cosigned(NOTE5 + forged, LOG.verifier, [alias.verifier], 1).cosignatures
    with pytest.raises(VerificationError, match="cosigned by 1 of 2"):
        verify_cosigned(NOTE5 + l1 + forged, LOG.verifier, with_alias, 2)
    # unknown witnesses are ignored, and a quorum that can never be met is a usage error
    with pytest.raises(VerificationError, match="cosigned by 0 of 1"):
        verify_cosigned(both, LOG.verifier, [W3.verifier], 1)
    with pytest.raises(ValueError, match="can never be met"):
        verify_cosigned(both, LOG.verifier, [W1.verifier, W1.verifier], 2)
    with pytest.raises(ValueError, match="negative"):
        verify_cosigned(both, LOG.verifier, trusted, -1)


def test_timestamps_are_bounded() -> None:
    body = NOTE5[: NOTE5.index("\n\n") + 1]
    for bad in (-1, MAX_TIMESTAMP + 1):
        with pytest.raises(ValueError, match=r"outside 0\.\.2\*\*63-1"):
            cosign(NOTE5, LOG.verifier, W1, now=bad)
    assert (
        verify_cosigned(NOTE5 + W1.sign_line(body, MAX_TIMESTAMP), LOG.verifier, [W1.verifier], 1)
        .cosignatures[0]
        .time.endswith("(POSIX seconds)")
    )
    # a well-formed Ed25519 signature over a timestamp of 2**63 is still rejected
    seed = Ed25519PrivateKey.from_private_bytes(bytes(32))
    too_big = 2**63
    sig = seed.sign(cosigned_message(body, too_big))
    blob = W1.key_id.to_bytes(4, "big") + too_big.to_bytes(8, "big") + sig
    line = f"\u2014 {W1.name} {base64.b64encode(blob).decode()}\n"
    with pytest.raises(VerificationError, match="invalid signature"):
        verify_cosigned(NOTE5 + line, LOG.verifier, [W1.verifier], 1)
    # future timestamps: rejected beyond the tolerance when the verifier passes its clock
    future = NOTE5 + W1.sign_line(body, NOW + 3600)
    verify_cosigned(future, LOG.verifier, [W1.verifier], 1)
    verify_cosigned(future, LOG.verifier, [W1.verifier], 1, now=NOW, max_future_s=3600)
    with pytest.raises(VerificationError, match="in the future"):
        verify_cosigned(future, LOG.verifier, [W1.verifier], 1, now=NOW, max_future_s=600)


# --- witness semantics ---------------------------------------------------------------------


def _log(tmp_path: Path, name: str = "log.db") -> TransparencyLog:
    log = TransparencyLog.open(tmp_path / name, LOG, create=True)
    log.append(LEAVES[:3])
    return log


def test_refuses_rollback_fork_and_unproven_or_inconsistent_trees(tmp_path: Path) -> None:
    log = _log(tmp_path)
    note3 = log.cosigned_note(3)
    log.append(LEAVES[3:5])
    note5 = log.cosigned_note(5)
    root3, root5 = log.root(3), log.root(5)
    proof = log.consistency(3, 5)
    # grows consistently: accepted
    cosign(note5, LOG.verifier, W1, previous=(3, root3), proof=proof, now=NOW)
    # rollback
    with pytest.raises(VerificationError, match="rollback"):
        cosign(note3, LOG.verifier, W1, previous=(5, root5), now=NOW)
    # same size, different root: a fork
    forked5 = _note(LOG, [*LEAVES[:4], b"rewritten"])
    with pytest.raises(VerificationError, match="forked"):
        cosign(forked5, LOG.verifier, W1, previous=(5, root5), now=NOW)
    # same size, same root: fine (re-cosigning), but a proof must then be empty
    cosign(note5, LOG.verifier, W1, previous=(5, root5), now=NOW)
    with pytest.raises(VerificationError, match="must be empty"):
        cosign(note5, LOG.verifier, W1, previous=(5, root5), proof=proof, now=NOW)
    # larger but unproven
    with pytest.raises(VerificationError, match="not proven consistent with size 3"):
        cosign(note5, LOG.verifier, W1, previous=(3, root3), now=NOW)
    # a larger tree that rewrote history: the genuine proof does not reach its root
    rewritten = _note(LOG, [b"rewritten", *LEAVES[1:5]])
    with pytest.raises(VerificationError, match="not consistent with size 3"):
        cosign(rewritten, LOG.verifier, W1, previous=(3, root3), proof=proof, now=NOW)
    # a proof that does not fit the sizes
    with pytest.raises(VerificationError, match="not consistent"):
        cosign(note5, LOG.verifier, W1, previous=(3, root3), proof=proof[:-1], now=NOW)
    # from nothing, the proof must be empty
    with pytest.raises(VerificationError, match="from tree size 0 must be empty"):
        cosign(note5, LOG.verifier, W1, previous=None, proof=proof, now=NOW)


def test_state_file_remembers_and_refuses(tmp_path: Path) -> None:
    log = _log(tmp_path)
    state = tmp_path / "w1.state.json"
    note3 = log.cosigned_note()
    line = cosign_with_state(note3, LOG.verifier, W1, state, now=NOW)
    assert verify_cosignature_line(note3, line, W1.verifier).timestamp == NOW
    doc = json.loads(state.read_text())
    assert doc["witness"] == W1.verifier_key
    assert doc["logs"] == {LOG.name: {"size": 3, "root": base64.b64encode(log.root(3)).decode()}}
    log.append(LEAVES[3:6])
    note6 = log.cosigned_note()
    with pytest.raises(VerificationError, match="not proven consistent with size 3"):
        cosign_with_state(note6, LOG.verifier, W1, state, now=NOW)
    with pytest.raises(VerificationError, match="proof starts at size 2"):
        cosign_with_state(
            note6, LOG.verifier, W1, state, proof=log.consistency(2, 6), old_size=2, now=NOW
        )
    before = state.read_bytes()
    cosign_with_state(note6, LOG.verifier, W1, state, proof=log.consistency(3, 6), now=NOW)
    assert json.loads(state.read_text())["logs"][LOG.name]["size"] == 6
    after = state.read_bytes()
    assert after != before
    with pytest.raises(VerificationError, match="rollback"):
        cosign_with_state(note3, LOG.verifier, W1, state, now=NOW)
    assert state.read_bytes() == after  # a refusal changes nothing
    # each origin has its own entry
    other = _note(OTHER_LOG, LEAVES[:2])
    cosign_with_state(other, OTHER_LOG.verifier, W1, state, now=NOW)
    assert sorted(json.loads(state.read_text())["logs"]) == sorted([OTHER_LOG.name, LOG.name])
    assert not list(tmp_path.glob("*.tmp"))
    # another witness's key may not use this state; a damaged file is not silently reset
    with pytest.raises(LogError, match="belongs to witness"):
        cosign_with_state(note6, LOG.verifier, W2, state, now=NOW)
    state.write_text('{"version": 1, "witness": "x", "logs": {"a": {"size": -1}}}')
    with pytest.raises(LogError, match="is damaged"):
        cosign_with_state(note6, LOG.verifier, W1, state, now=NOW)
    with WitnessState.locked(tmp_path / "fresh.json", W1.verifier) as fresh:
        assert fresh.get(LOG.name) is None and fresh.origins() == []


# --- storage -------------------------------------------------------------------------------


def test_log_stores_cosignatures_beside_checkpoints(tmp_path: Path) -> None:
    log = _log(tmp_path)
    note = log.cosigned_note()
    assert note == log.latest_checkpoint().note  # type: ignore[union-attr]
    l2 = cosign(note, LOG.verifier, W2, now=NOW)
    l1 = cosign(note, LOG.verifier, W1, now=NOW)
    assert log.add_cosignature(3, l2, W2.verifier) is True
    assert log.add_cosignature(3, l1.rstrip("\n"), W1.verifier) is True
    assert log.add_cosignature(3, l1, W1.verifier) is False  # already kept
    # the log's signature first, then cosignatures in a stable order
    assert log.cosigned_note(3) == note + l1 + l2
    assert [c.name for c in log.store.cosignatures(3)] == [W1.name, W2.name]
    # the checkpoint row itself is untouched, so audit and signing see the log's note only
    assert log.latest_checkpoint().note == note  # type: ignore[union-attr]
    assert log.audit(LOG.verifier).ok
    # proofs carry the witness signatures
    proof = log.prove(1)
    assert proof.checkpoint == note + l1 + l2
    verify_proof(proof, LOG.verifier)
    assert len(verify_cosigned(proof.checkpoint, LOG.verifier, [W1.verifier, W2.verifier], 2)
               .cosignatures) == 2  # fmt: skip
    # a newer checkpoint starts without cosignatures; the old one keeps its own
    log.append(LEAVES[3:4])
    assert log.cosigned_note() == log.latest_checkpoint().note  # type: ignore[union-attr]
    assert log.prove(1, size=3).checkpoint == note + l1 + l2
    # wrong witness key, wrong checkpoint, or not a single line: refused, nothing stored
    with pytest.raises(VerificationError, match="not by witness"):
        log.add_cosignature(3, l1, W3.verifier)
    with pytest.raises(VerificationError):
        log.add_cosignature(4, l1, W1.verifier)
    with pytest.raises(VerificationError, match="exactly one signature line"):
        log.add_cosignature(3, l1 + l2, W1.verifier)
    with pytest.raises(LogError, match="no signed checkpoint at size 2"):
        log.add_cosignature(2, l1, W1.verifier)
    assert len(log.store.cosignatures()) == 2
    log.close()
    # append-only, like every other table
    db = sqlite3.connect(tmp_path / "log.db")
    for sql in ("UPDATE cosignatures SET line='x'", "DELETE FROM cosignatures"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()


def test_logs_made_before_cosigning_gain_the_table_on_first_use(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.close()
    db = sqlite3.connect(tmp_path / "log.db")
    for name in ("cosignatures_no_update", "cosignatures_no_delete"):
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DROP TABLE cosignatures")
    db.commit()
    db.close()
    log = TransparencyLog.open(tmp_path / "log.db")
    assert log.store.cosignatures() == [] and log.prove(0).checkpoint == log.cosigned_note()
    line = cosign(log.cosigned_note(), LOG.verifier, W1, now=NOW)
    assert log.add_cosignature(3, line, W1.verifier)
    assert log.cosigned_note().endswith(line)
    log.close()
    db = sqlite3.connect(tmp_path / "log.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM cosignatures")
    db.close()


def test_witness_key_files(tmp_path: Path) -> None:
    path = tmp_path / "w.key"
    signer = generate_witness_key_file(path, "witness.example/qa")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_witness_signer(path).verifier_key == signer.verifier_key
    with pytest.raises(LogError, match="already exists"):
        generate_witness_key_file(path, "witness.example/qa")
    path.chmod(0o640)
    with pytest.raises(LogError, match="accessible by other users"):
        load_witness_signer(path)
    assert load_witness_verifier(signer.verifier_key) == signer.verifier
    (tmp_path / "w.pub").write_text(signer.verifier_key + "\n")
    assert load_witness_verifier(tmp_path / "w.pub") == signer.verifier
    with pytest.raises(LogError, match="holds a private key"):
        load_witness_verifier(path)
    with pytest.raises(LogError, match="type 0x04"):
        load_witness_verifier(LOG.verifier_key)
