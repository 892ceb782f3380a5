"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

The decision log publishes its checkpoints as signed notes so that an inspector can check them
with any off-the-shelf implementation (Go's ``golang.org/x/mod/sumdb/note``, transparency-dev,
sigsum) instead of trusting this package. Everything here is therefore byte-for-byte the wire
format of that ecosystem: key IDs, verifier keys, ``PRIVATE+KEY+`` signer keys and signature lines.

Verification is deliberately strict (it rejects anything the spec calls malformed, plus
non-canonical base64, which would otherwise let a signed note be re-encoded without the signer),
while unknown keys are ignored as the spec requires so that key rotation and witness cosigning
keep working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from policyengine.log.errors import VerificationError

__all__ = [
    "ED25519_TYPE",
    "MAX_SIGNATURES",
    "SIGNATURE_PREFIX",
    "NoteVerifier",
    "Signature",
    "Signer",
    "Verifier",
    "key_id",
    "open_note",
    "sign_note",
]

#: Signature-type byte the spec assigns to plain Ed25519 note signatures.
ED25519_TYPE = 0x01
#: Every signature line starts with an em dash and a space.
SIGNATURE_PREFIX = "\u2014 "
#: Cap on signature lines (Go's limit); the spec requires accepting at least 16.
MAX_SIGNATURES = 100

_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def _valid_name(name: str) -> bool:
    """Key names are non-empty, have no Unicode whitespace, no ``+`` and no control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    )


def _b64decode_canonical(data: str) -> bytes:
    """Decode standard padded base64, refusing any encoding but the canonical one.

    Python (like Go) ignores the unused low bits of the last character, so without the
    round-trip check one signature would have several textual spellings.
    """
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise ValueError(f"`{data}` is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != data:
        raise ValueError(f"`{data}` is not canonical base64")
    return raw


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: bytes) -> int:
    """The spec's Ed25519 key ID: big-endian SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _parse_key_material(name: str, hex_id: str, b64: str, what: str) -> tuple[int, bytes]:
    """Shared checks of the ``<name>+<hex id>+<base64(0x01 || 32 bytes)>`` tail of a key string."""
    if not _valid_name(name):
        raise ValueError(f"{what}: key name `{name}` is empty or has whitespace or `+`")
    if not _HEX_ID.fullmatch(hex_id):
        raise ValueError(f"{what}: key ID `{hex_id}` is not 8 hex digits")
    try:
        material = _b64decode_canonical(b64)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if len(material) != 33 or material[0] != ED25519_TYPE:
        raise ValueError(
            f"{what}: key material is not 0x01 followed by a 32-byte Ed25519 key"
            " (hint: only Ed25519 keys are supported)"
        )
    return int(hex_id, 16), material[1:]


class NoteVerifier(Protocol):
    """What `open_note` needs of a trusted key, so other signature types (witness
    cosignatures, C2SP tlog-cosignature) verify through the same code path."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, sig: bytes) -> bool: ...


class Verifier:
    """An Ed25519 public key under a name: what an inspector is configured to trust."""

    __slots__ = ("_key", "_key_id", "_name", "_raw")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        if not _valid_name(name):
            raise ValueError(f"key name `{name}` is empty or contains whitespace or `+`")
        self._name = name
        self._key = public_key
        self._raw = _raw_public_key(public_key)
        self._key_id = key_id(name, self._raw)

    @classmethod
    def from_key_string(cls, key: str) -> Verifier:
        """Parse a verifier key ``<name>+<hex key ID>+<base64(0x01 || public key)>``.

        The ID is recomputed and must match: a key string whose ID disagrees with its key is a
        copy-paste accident or tampering, and accepting it would make its signatures unmatchable.
        """
        parts = key.split("+", 2)  # the base64 tail may itself contain `+`
        if len(parts) != 3:
            raise ValueError(f"verifier key `{key}` is not of the form `name+id+key`")
        name, hex_id, b64 = parts
        claimed, raw = _parse_key_material(name, hex_id, b64, f"verifier key `{key}`")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw))
        if verifier.key_id != claimed:
            raise ValueError(f"verifier key `{key}`: key ID does not match the key")
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
        b64 = base64.b64encode(bytes([ED25519_TYPE]) + self._raw).decode("ascii")
        return f"{self._name}+{self._key_id:08x}+{b64}"

    def verify(self, text: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (key ID stripped) is this key's Ed25519 signature of ``text``."""
        if len(sig) != 64:
            return False
        try:
            self._key.verify(sig, text)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return (self._name, self._raw) == (other._name, other._raw)

    def __hash__(self) -> int:
        return hash((self._name, self._raw))

    def __repr__(self) -> str:
        return f"Verifier({self.to_key_string()!r})"


class Signer:
    """An Ed25519 private key under a name; the log holds one and signs its checkpoints."""

    __slots__ = ("_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._verifier = Verifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh random key for ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_string(cls, key: str) -> Signer:
        """Parse Go's ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || 32-byte seed)>`` encoding."""
        if not key.startswith(_PRIVATE_PREFIX):
            # Never echo the input: it may be (a mangled copy of) a secret.
            raise ValueError("signer key does not start with `PRIVATE+KEY+`")
        parts = key[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise ValueError("signer key is not of the form `PRIVATE+KEY+name+id+key`")
        name, hex_id, b64 = parts
        try:
            claimed, seed = _parse_key_material(name, hex_id, b64, "signer key")
        except ValueError as exc:
            # The messages quote the base64 seed; keep the secret out of logs and tracebacks.
            raise ValueError(str(exc).replace(b64, "<redacted>")) from None
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != claimed:
            raise ValueError("signer key: key ID does not match the key")
        return signer

    def to_private_key_string(self) -> str:
        """The Go-compatible secret encoding; treat the result like the key itself."""
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        b64 = base64.b64encode(bytes([ED25519_TYPE]) + seed).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{b64}"

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> int:
        return self._verifier.key_id

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    @property
    def verifier_key(self) -> str:
        """The public verifier key string to hand to inspectors."""
        return self._verifier.to_key_string()

    def sign(self, text: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of ``text``."""
        return self._key.sign(text)

    def __repr__(self) -> str:  # never show the seed
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: the key name, its ID and the base64 of ID || signature."""

    name: str
    key_id: int
    base64: str

    def to_line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {self.base64}\n"


def _check_characters(data: str, what: str) -> None:
    """Notes are UTF-8 with no control characters except newline (so no bare CR, tab, NUL)."""
    for index, ch in enumerate(data):
        if (ord(ch) < 0x20 and ch != "\n") or 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError(f"{what} has a forbidden character {ch!r} at offset {index}")


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` with every signer and return the signed note.

    ``text`` must end in a newline and hold no control characters but newline; it may contain
    empty lines (the spec splits text from signatures at the *last* empty line).
    """
    if not signers:
        raise ValueError("sign_note needs at least one signer")
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    _check_characters(text, "note text")
    if len(signers) > MAX_SIGNATURES:
        raise ValueError(f"a note carries at most {MAX_SIGNATURES} signatures")
    payload = text.encode("utf-8")
    lines = []
    for signer in signers:
        blob = signer.key_id.to_bytes(4, "big") + signer.sign(payload)
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(blob).decode('ascii')}\n")
    return text + "\n" + "".join(lines)


def _index_verifiers(
    verifiers: NoteVerifier | Iterable[NoteVerifier],
) -> dict[tuple[str, int], NoteVerifier]:
    if not isinstance(verifiers, Iterable):
        verifiers = [verifiers]
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            raise ValueError(
                f"two different verifier keys share name `{verifier.name}` and ID"
                f" `{verifier.key_id:08x}`; signatures by either would be ambiguous"
            )
        known[slot] = verifier
    return known


def open_note(
    signed: str | bytes, verifiers: NoteVerifier | Iterable[NoteVerifier]
) -> tuple[str, list[Signature]]:
    """Check a signed note against trusted keys; return its text and the verified signatures.

    Signatures whose (name, key ID) pair is not a trusted key are ignored, as the spec requires
    (even if the name alone or the ID alone matches). Every signature from a trusted key must
    verify, and at least one must be present; otherwise — or if the note is malformed in any
    way — :class:`VerificationError` is raised.
    """
    known = _index_verifiers(verifiers)
    if isinstance(signed, bytes):
        try:
            message = signed.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError(f"malformed note: not valid UTF-8 ({exc.reason})") from None
    else:
        message = signed
    try:
        _check_characters(message, "note")
    except ValueError as exc:
        raise VerificationError(f"malformed note: {exc}") from None

    split = message.rfind("\n\n")
    if split < 0:
        raise VerificationError(
            "malformed note: no blank line before the signatures (hint: is it signed at all?)"
        )
    text, block = message[: split + 1], message[split + 2 :]
    if not block:
        raise VerificationError("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise VerificationError("malformed note: the last signature line has no final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    payload = text.encode("utf-8")
    verified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    for number, line in enumerate(lines, start=1):
        signature = _parse_signature_line(line, number)
        slot = (signature.name, signature.key_id)
        verifier = known.get(slot)
        if verifier is None:
            continue
        raw = base64.b64decode(signature.base64)[4:]
        if not verifier.verify(payload, raw):
            raise VerificationError(
                f"invalid signature by trusted key `{signature.name}`"
                f" (ID `{signature.key_id:08x}`) on signature line {number}:"
                " the note was altered or signed by a different key"
            )
        if slot not in seen:
            seen.add(slot)
            verified.append(signature)
    if not verified:
        raise VerificationError(
            "note has no signature from a trusted key"
            f" (trusted: {', '.join(f'`{n}+{i:08x}`' for n, i in sorted(known)) or 'none'})"
        )
    return text, verified


def _parse_signature_line(line: str, number: int) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise VerificationError(
            f"malformed note: signature line {number} `{line}` does not start with `\u2014 `"
        )
    name, sep, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not _valid_name(name):
        raise VerificationError(
            f"malformed note: signature line {number} has no valid key name before the signature"
        )
    try:
        blob = _b64decode_canonical(b64)
    except ValueError as exc:
        raise VerificationError(f"malformed note: signature line {number}: {exc}") from None
    if len(blob) < 5:
        raise VerificationError(f"malformed note: signature line {number} is too short")
    return Signature(name=name, key_id=int.from_bytes(blob[:4], "big"), base64=b64)
