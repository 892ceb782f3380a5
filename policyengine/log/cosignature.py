"""Witness cosignatures on checkpoints: C2SP tlog-cosignature, Ed25519 ``cosignature/v1``.

A Merkle log proves order, not time, and a log operator could show one inspector a different
tree than another (a split view). A *witness* closes both gaps: it keeps, per log origin, the
largest checkpoint it has cosigned, cosigns a new one only when it is proven consistent with
that, and puts its own clock reading in the signed message. Its cosignature says "as of this
time, the consistent tree head with the largest size I have seen for this origin has this root".

Everything is the wire format of the C2SP ecosystem (litewitness, sigsum, transparency-dev):

- key ID: ``SHA-256(name || "\\n" || 0x04 || 32-byte public key)[:4]``;
- signature line: ``— <name> base64(key ID || u64 big-endian timestamp || Ed25519 signature)``;
- signed message: ``cosignature/v1\\ntime <decimal POSIX seconds>\\n`` + the whole checkpoint
  note body (final newline included, signature lines excluded);
- verifier key: ``name+hexid+base64(0x04 || public key)``; private key, Go style:
  ``PRIVATE+KEY+name+hexid+base64(0x04 || seed)``.

`CosignatureVerifier` has the shape `note.open_note` expects of a trusted key, so a note with
the log's signature and cosignatures opens with one list of keys. Such a list accepts a note
that carries *only* a cosignature, though: use `verify_cosigned`, which also insists on the
log's own signature and counts a quorum of distinct witnesses.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from policyengine.log.checkpoint import HASH_SIZE, Checkpoint
from policyengine.log.errors import LogError, VerificationError
from policyengine.log.merkle import verify_consistency
from policyengine.log.note import (
    _HEX_ID,
    SIGNATURE_PREFIX,
    NoteVerifier,
    _b64decode_canonical,
    _parse_signature_line,
    _valid_name,
    open_note,
)
from policyengine.secret_files import SecretFileError, read_secret, write_secret

__all__ = [
    "COSIGNATURE_TYPE",
    "DEFAULT_MAX_FUTURE_S",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureVerifier",
    "CosignedCheckpoint",
    "WitnessSigner",
    "WitnessState",
    "cosign",
    "cosign_with_state",
    "cosignature_key_id",
    "cosigned_message",
    "format_timestamp",
    "generate_witness_key_file",
    "load_witness_signer",
    "load_witness_verifier",
    "verify_cosignature_line",
    "verify_cosigned",
]

#: Signature-type byte C2SP assigns to Ed25519 ``cosignature/v1`` keys.
COSIGNATURE_TYPE = 0x04
#: The spec caps the timestamp at the largest signed 64-bit integer.
MAX_TIMESTAMP = 2**63 - 1
#: How far a cosignature may be dated ahead of the verifier's clock before it is rejected.
DEFAULT_MAX_FUTURE_S = 600

_HEADER = b"cosignature/v1\n"
_BLOB_SIZE = 4 + 8 + 64
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_STATE_VERSION = 1


def cosignature_key_id(name: str, public_key: bytes) -> int:
    """The spec's key ID: big-endian ``SHA-256(name || 0x0A || 0x04 || key)[:4]``."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def cosigned_message(text: str | bytes, timestamp: int) -> bytes:
    """What a witness signs: header line, time line, then the checkpoint note body."""
    body = text.encode("utf-8") if isinstance(text, str) else text
    return _HEADER + f"time {timestamp}\n".encode("ascii") + body


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValueError(f"cosignature timestamp must be an int, not `{timestamp!r}`")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp `{timestamp}` is outside 0..2**63-1")


def format_timestamp(timestamp: int) -> str:
    """RFC 3339 UTC for people; the raw number when it is beyond what a calendar can show."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{timestamp} (POSIX seconds)"


def _parse_key_material(name: str, hex_id: str, b64: str, what: str) -> tuple[int, bytes]:
    """Checks of the ``<name>+<hex id>+<base64(0x04 || 32 bytes)>`` tail of a key string."""
    if not _valid_name(name):
        raise ValueError(f"{what}: key name `{name}` is empty or has whitespace or `+`")
    if not _HEX_ID.fullmatch(hex_id):
        raise ValueError(f"{what}: key ID `{hex_id}` is not 8 hex digits")
    try:
        material = _b64decode_canonical(b64)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if len(material) == 33 and material[0] == 0x01:
        raise ValueError(
            f"{what}: this is a signed-note (log) key, type 0x01; a witness key has type 0x04"
            " (hint: `policyengine witness keys generate` makes one)"
        )
    if len(material) != 33 or material[0] != COSIGNATURE_TYPE:
        raise ValueError(
            f"{what}: key material is not 0x04 followed by a 32-byte Ed25519 key"
            " (hint: only Ed25519 cosignature/v1 witness keys are supported)"
        )
    return int(hex_id, 16), material[1:]


class CosignatureVerifier:
    """A witness's Ed25519 public key under its name; usable wherever `open_note` takes keys."""

    __slots__ = ("_key", "_key_id", "_name", "_raw")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _valid_name(name):
            raise ValueError(f"witness name `{name}` is empty or contains whitespace or `+`")
        self._name = name
        self._key = public_key
        self._raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = cosignature_key_id(name, self._raw)

    @classmethod
    def from_key_string(cls, key: str) -> CosignatureVerifier:
        """Parse a vkey ``<name>+<hex key ID>+<base64(0x04 || public key)>``; the ID must match."""
        parts = key.split("+", 2)
        if len(parts) != 3:
            raise ValueError(f"witness key `{key}` is not of the form `name+id+key`")
        name, hex_id, b64 = parts
        claimed, raw = _parse_key_material(name, hex_id, b64, f"witness key `{key}`")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw))
        if verifier.key_id != claimed:
            raise ValueError(f"witness key `{key}`: key ID does not match the key")
        return verifier

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._raw

    def to_key_string(self) -> str:
        b64 = base64.b64encode(bytes([COSIGNATURE_TYPE]) + self._raw).decode("ascii")
        return f"{self._name}+{self._key_id:08x}+{b64}"

    def verify(self, text: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (key ID stripped: timestamp || signature) cosigns note body ``text``.

        Timestamps above 2**63-1 are invalid by the spec, whatever the signature says.
        """
        if len(sig) != _BLOB_SIZE - 4:
            return False
        timestamp = int.from_bytes(sig[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            self._key.verify(sig[8:], cosigned_message(text, timestamp))
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosignatureVerifier):
            return NotImplemented
        return (self._name, self._raw) == (other._name, other._raw)

    def __hash__(self) -> int:
        return hash(("cosignature/v1", self._name, self._raw))

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.to_key_string()!r})"


class WitnessSigner:
    """A witness's Ed25519 private key under its name. Never reuse it under another name:
    the signed message does not commit to the name."""

    __slots__ = ("_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._verifier = CosignatureVerifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_string(cls, key: str) -> WitnessSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64(0x04 || 32-byte seed)>``."""
        if not key.startswith(_PRIVATE_PREFIX):
            raise ValueError("witness key does not start with `PRIVATE+KEY+`")
        parts = key[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise ValueError("witness key is not of the form `PRIVATE+KEY+name+id+key`")
        name, hex_id, b64 = parts
        try:
            claimed, seed = _parse_key_material(name, hex_id, b64, "witness key")
        except ValueError as exc:
            raise ValueError(str(exc).replace(b64, "<redacted>")) from None
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != claimed:
            raise ValueError("witness key: key ID does not match the key")
        return signer

    def to_private_key_string(self) -> str:
        """The secret encoding; treat the result like the key itself."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        b64 = base64.b64encode(bytes([COSIGNATURE_TYPE]) + seed).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{b64}"

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    @property
    def verifier(self) -> CosignatureVerifier:
        return self._verifier

    @property
    def verifier_key(self) -> str:
        return self._verifier.to_key_string()

    def sign_line(self, text: str, timestamp: int) -> str:
        """The signature line (with its newline) cosigning note body ``text`` at ``timestamp``.

        Low level: it checks nothing about the checkpoint. `cosign` is what a witness calls.
        """
        _check_timestamp(timestamp)
        sig = self._key.sign(cosigned_message(text, timestamp))
        blob = self.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"

    def __repr__(self) -> str:  # never show the seed
        return f"WitnessSigner(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class Cosignature:
    """One verified cosignature: who, when (POSIX seconds, the witness's clock), and the line."""

    name: str
    key_id: int
    timestamp: int
    #: The signature line, newline included, exactly as it appears in the note.
    line: str

    @property
    def time(self) -> str:
        return format_timestamp(self.timestamp)


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint whose log signature verified, and the distinct witnesses that vouch for it."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]


def _previous_problem(
    cp: Checkpoint, previous: tuple[int, bytes] | None, proof: Sequence[bytes] | None
) -> str | None:
    """Why a witness must not cosign `cp` after `previous` (tlog-witness add-checkpoint)."""
    if previous is None or previous[0] == 0:
        if proof:
            return "a consistency proof from tree size 0 must be empty"
        if previous is not None and cp.size == 0 and cp.root != previous[1]:
            return "the empty tree's root differs from the one cosigned before"
        return None
    old_size, old_root = previous
    if cp.size < old_size:
        return (
            f"this is a rollback: the witness already cosigned size {old_size} of `{cp.origin}`"
            f" and this checkpoint has size {cp.size}"
        )
    if cp.size == old_size:
        if cp.root != old_root:
            return (
                f"the log has forked: size {old_size} of `{cp.origin}` was cosigned with a"
                " different root (keep both checkpoints: they are evidence)"
            )
        if proof:
            return "the tree size is unchanged, so the consistency proof must be empty"
        return None
    if proof is None:
        return (
            f"it is not proven consistent with size {old_size}, the last one the witness"
            f" cosigned (hint: `policyengine log consistency {old_size} {cp.size} --log DB`)"
        )
    try:
        verify_consistency(old_size, cp.size, proof, old_root, cp.root)
    except VerificationError as exc:
        return f"it is not consistent with size {old_size}, the last one cosigned: {exc}"
    return None


def cosign(
    checkpoint_note: str | bytes,
    log_verifier: NoteVerifier,
    witness: WitnessSigner,
    *,
    previous: tuple[int, bytes] | None = None,
    proof: Sequence[bytes] | None = None,
    now: int,
    origin: str | None = None,
) -> str:
    """Witness a signed checkpoint and return the cosignature line (newline included).

    Checks, in the order the tlog-witness protocol does: the log's signature (other signature
    lines are ignored), the origin (default: the log key's name, this package's convention),
    then against ``previous`` — the (size, root) this witness last cosigned for the origin, or
    None — that the tree did not shrink, did not fork, and that ``proof`` (an RFC 6962
    consistency proof from the previous size) proves it extends what was cosigned. Any
    failure raises `VerificationError` and nothing is signed. ``now`` is the witness's clock
    in POSIX seconds. Call `cosign_with_state` to have the previous head read and updated.
    """
    _check_timestamp(now)
    text, _ = open_note(checkpoint_note, log_verifier)
    cp = Checkpoint.parse(text)
    expected = log_verifier.name if origin is None else origin
    if cp.origin != expected:
        raise VerificationError(
            f"refusing to cosign: checkpoint is for log `{cp.origin}`, but the witness"
            f" trusts this log key for `{expected}`"
        )
    problem = _previous_problem(cp, previous, proof)
    if problem is not None:
        raise VerificationError(f"refusing to cosign the checkpoint at size {cp.size}: {problem}")
    return witness.sign_line(text, now)


def _timestamp_of(signature_b64: str) -> int:
    return int.from_bytes(base64.b64decode(signature_b64)[4:12], "big")


def verify_cosignature_line(
    checkpoint_note: str, line: str, witness: CosignatureVerifier
) -> Cosignature:
    """Check that ``line`` is ``witness``'s valid cosignature of ``checkpoint_note``.

    The note's own signatures are not checked here (the caller holds it, e.g. from its own
    store); the line must be a single signature line by exactly this witness key.
    """
    bare = line[:-1] if line.endswith("\n") else line
    if not bare or "\n" in bare or "\r" in bare:
        raise VerificationError("a cosignature must be exactly one signature line")
    signature = _parse_signature_line(bare, 1)
    if (signature.name, signature.key_id) != (witness.name, witness.key_id):
        raise VerificationError(
            f"the line is by key `{signature.name}` (ID `{signature.key_id:08x}`), not by"
            f" witness `{witness.name}` (ID `{witness.key_id:08x}`)"
            " (hint: check --witness-key)"
        )
    if len(base64.b64decode(signature.base64)) != _BLOB_SIZE:
        raise VerificationError(
            f"the cosignature by `{witness.name}` is not 76 bytes (key ID, timestamp, signature)"
        )
    open_note(checkpoint_note + bare + "\n", [witness])
    return Cosignature(
        signature.name, signature.key_id, _timestamp_of(signature.base64), bare + "\n"
    )


def verify_cosigned(
    note: str | bytes,
    log_verifier: NoteVerifier,
    witnesses: Iterable[CosignatureVerifier],
    quorum: int = 1,
    *,
    origin: str | None = None,
    now: int | None = None,
    max_future_s: int = DEFAULT_MAX_FUTURE_S,
) -> CosignedCheckpoint:
    """Verify a checkpoint's log signature and at least ``quorum`` distinct witnesses' cosignatures.

    Every signature line from a trusted key must verify (a bad one is tampering, as in
    `open_note`); lines from unknown keys are ignored. Witnesses are counted by public key, so
    a witness listed under two names, or a line repeated, counts once. With ``now`` (POSIX
    seconds), cosignatures dated more than ``max_future_s`` ahead of it are rejected.
    """
    trusted = list(witnesses)
    distinct = {w.public_key for w in trusted}
    if quorum < 0:
        raise ValueError(f"quorum must not be negative (got {quorum})")
    if quorum > len(distinct):
        raise ValueError(
            f"quorum {quorum} can never be met by {len(distinct)} distinct witness"
            f" key{'s' if len(distinct) != 1 else ''}"
        )
    text, verified = open_note(note, [log_verifier, *trusted])
    log_slot = (log_verifier.name, log_verifier.key_id)
    if log_slot not in {(s.name, s.key_id) for s in verified}:
        raise VerificationError(
            f"the checkpoint is not signed by the log key `{log_verifier.name}`"
            f" (ID `{log_verifier.key_id:08x}`): cosignatures alone do not make a checkpoint"
        )
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint is for log `{checkpoint.origin}`, expected `{origin}`")
    by_slot = {(w.name, w.key_id): w for w in trusted}
    vouched: list[Cosignature] = []
    counted: set[bytes] = set()
    for signature in verified:
        witness = by_slot.get((signature.name, signature.key_id))
        if witness is None:
            continue
        timestamp = _timestamp_of(signature.base64)
        if now is not None and timestamp > now + max_future_s:
            raise VerificationError(
                f"the cosignature by `{witness.name}` is dated {format_timestamp(timestamp)},"
                f" more than {max_future_s} s in the future (hint: check the witness's clock)"
            )
        if witness.public_key in counted:
            continue
        counted.add(witness.public_key)
        vouched.append(
            Cosignature(signature.name, signature.key_id, timestamp, signature.to_line())
        )
    if len(vouched) < quorum:
        names = ", ".join(f"`{c.name}`" for c in vouched) or "none"
        raise VerificationError(
            f"the checkpoint at size {checkpoint.size} is cosigned by {len(vouched)} of"
            f" {len(distinct)} trusted witness{'es' if len(distinct) != 1 else ''} ({names}),"
            f" fewer than the quorum of {quorum}"
        )
    return CosignedCheckpoint(checkpoint, tuple(vouched))


# ---------------------------------------------------------------------- witness state


class WitnessState:
    """A witness's memory: per log origin, the (size, root) it last cosigned.

    One small JSON file per witness. It is what makes a cosignature mean anything — a witness
    that forgets it can be rolled back or shown a fork — so it is replaced atomically (write,
    fsync, rename, fsync the folder) and bound to the witness key that wrote it. Open it with
    `WitnessState.locked`, which serialises check-and-update across processes, as tlog-witness
    requires.
    """

    def __init__(self, path: Path, witness_key: str, logs: dict[str, tuple[int, bytes]]) -> None:
        self.path = path
        self.witness_key = witness_key
        self._logs = logs

    @classmethod
    @contextmanager
    def locked(cls, path: str | Path, witness: CosignatureVerifier) -> Iterator[WitnessState]:
        """Hold an exclusive lock on ``path`` (via ``path.lock``) and yield its state."""
        p = Path(path)
        lock_path = p.with_name(p.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LogError(f"cannot create `{lock_path}`: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield cls._load(p, witness)
        finally:
            os.close(fd)  # closing releases the lock

    @classmethod
    def _load(cls, path: Path, witness: CosignatureVerifier) -> WitnessState:
        key = witness.to_key_string()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path, key, {})
        except OSError as exc:
            raise LogError(f"cannot read witness state `{path}`: {exc.strerror or exc}") from None
        try:
            doc = json.loads(raw)
            logs = cls._parse(doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise LogError(
                f"witness state `{path}` is damaged: {exc} (hint: restore it from a backup;"
                " starting afresh would let the witness be rolled back)"
            ) from None
        if doc.get("witness") != key:
            raise LogError(
                f"witness state `{path}` belongs to witness `{doc.get('witness')}`, not `{key}`"
                " (hint: each witness key keeps its own --state file)"
            )
        return cls(path, key, logs)

    @staticmethod
    def _parse(doc: Any) -> dict[str, tuple[int, bytes]]:
        if not isinstance(doc, dict) or doc.get("version") != _STATE_VERSION:
            raise ValueError(f"not a version {_STATE_VERSION} witness state")
        logs: dict[str, tuple[int, bytes]] = {}
        for origin, entry in doc["logs"].items():
            size, root_b64 = entry["size"], entry["root"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"size of `{origin}` is not a tree size")
            root = _b64decode_canonical(root_b64)
            if len(root) != HASH_SIZE:
                raise ValueError(f"root of `{origin}` is not {HASH_SIZE} bytes")
            logs[str(origin)] = (size, root)
        return logs

    def get(self, origin: str) -> tuple[int, bytes] | None:
        """The (size, root) last cosigned for ``origin``, or None if it never cosigned one."""
        return self._logs.get(origin)

    def origins(self) -> list[str]:
        return sorted(self._logs)

    def record(self, origin: str, size: int, root: bytes) -> None:
        """Remember a newly cosigned head and make it durable before returning."""
        if self._logs.get(origin) == (size, root):
            return
        self._logs[origin] = (size, root)
        doc = {
            "version": _STATE_VERSION,
            "witness": self.witness_key,
            "logs": {
                o: {"size": s, "root": base64.b64encode(r).decode("ascii")}
                for o, (s, r) in sorted(self._logs.items())
            },
        }
        data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def cosign_with_state(
    checkpoint_note: str | bytes,
    log_verifier: NoteVerifier,
    witness: WitnessSigner,
    state_path: str | Path,
    *,
    proof: Sequence[bytes] | None = None,
    now: int,
    old_size: int | None = None,
) -> str:
    """`cosign` against the witness's state file, updating it (durably) before returning.

    ``old_size``, when the caller knows which size its proof starts from, must equal the size
    the witness last cosigned (tlog-witness answers a mismatch with 409 Conflict).
    """
    with WitnessState.locked(state_path, witness.verifier) as state:
        text, _ = open_note(checkpoint_note, log_verifier)
        origin = Checkpoint.parse(text).origin
        previous = state.get(origin)
        have = previous[0] if previous is not None else 0
        if old_size is not None and old_size != have:
            raise VerificationError(
                f"the consistency proof starts at size {old_size}, but the witness last"
                f" cosigned size {have} of `{origin}`"
                f" (hint: `policyengine log consistency {have} NEW --log DB`)"
            )
        line = cosign(
            checkpoint_note, log_verifier, witness, previous=previous, proof=proof, now=now
        )
        cp = Checkpoint.parse(text)
        state.record(cp.origin, cp.size, cp.root)
    return line


# ---------------------------------------------------------------------- key files


def generate_witness_key_file(path: str | Path, name: str) -> WitnessSigner:
    """Write a fresh witness key to ``path`` (0600, refusing to overwrite); return its signer."""
    try:
        signer = WitnessSigner.generate(name)
    except ValueError as exc:
        raise LogError(
            f"invalid witness name `{name}`: {exc} (hint: a name like `witness.example.com/w1`)"
        ) from None
    try:
        write_secret(path, signer.to_private_key_string(), what="a key")
    except SecretFileError as exc:
        raise LogError(str(exc)) from None
    return signer


def load_witness_signer(path: str | Path) -> WitnessSigner:
    """Read a witness private key file, refusing one that others can read."""
    p = Path(path)
    try:
        text = read_secret(
            p,
            what="witness key file",
            create=f"policyengine witness keys generate --out {p} --name NAME",
        )
    except SecretFileError as exc:
        raise LogError(str(exc)) from None
    try:
        return WitnessSigner.from_private_key_string(text)
    except ValueError as exc:
        raise LogError(f"`{p}` is not a witness private key: {exc}") from None


def load_witness_verifier(value: str | Path) -> CosignatureVerifier:
    """A witness vkey given inline (`name+hexid+base64`) or as a file holding one."""
    text = str(value).strip()
    if "+" not in text or Path(text).exists():
        p = Path(text)
        try:
            text = p.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise LogError(
                f"`{value}` is neither a witness key (`name+hexid+base64`) nor a file"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LogError(f"cannot read witness key file `{p}`: {exc}") from None
        if text.startswith(_PRIVATE_PREFIX):
            raise LogError(
                f"`{p}` holds a private key; give the witness's verifier key instead"
                " (printed by `policyengine witness keys generate`)"
            )
    try:
        return CosignatureVerifier.from_key_string(text)
    except ValueError as exc:
        raise LogError(f"invalid witness key: {exc}") from None
