"""C2SP transparency-log proofs (https://c2sp.org/tlog-proof).

One `.tlog-proof` file carries everything an inspector needs to check one decision offline:
the leaf bytes (in the `extra` line), its index, the RFC 6962 inclusion proof and the signed
checkpoint it is proved against. The `extra` data is unauthenticated by itself; it is trusted
only because its leaf hash, index and proof reproduce the signed root.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from policyengine.log.checkpoint import Checkpoint, verify_checkpoint
from policyengine.log.errors import VerificationError
from policyengine.log.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from policyengine.log.note import Verifier, _b64decode_canonical

__all__ = ["HEADER", "TlogProof", "verify_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)", re.ASCII)


@dataclass(frozen=True)
class TlogProof:
    """A parsed proof. `checkpoint` is the signed note text, verbatim."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def to_text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode("ascii") for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str | bytes) -> TlogProof:
        """Strict parse; any deviation from the format raises `VerificationError`."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise VerificationError("malformed tlog-proof: not UTF-8 text") from None
        head, sep, checkpoint = text.partition("\n\n")
        if not sep or not checkpoint:
            raise VerificationError(
                "malformed tlog-proof: no blank line before the checkpoint"
                " (hint: the file may be truncated)"
            )
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise VerificationError(f"malformed tlog-proof: first line must be `{HEADER}`")
        pos = 1
        extra: bytes | None = None
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = _decode(lines[pos][len("extra ") :], "extra data", canonical=False)
            pos += 1
        if pos >= len(lines) or not (m := _INDEX.fullmatch(lines[pos])):
            raise VerificationError("malformed tlog-proof: expected `index N` line")
        index = int(m.group(1))
        pos += 1
        hashes = []
        for n, line in enumerate(lines[pos:], start=1):
            digest = _decode(line, f"proof hash {n}", canonical=True)
            if len(digest) != HASH_SIZE:
                raise VerificationError(
                    f"malformed tlog-proof: proof hash {n} is {len(digest)} bytes,"
                    f" expected {HASH_SIZE}"
                )
            hashes.append(digest)
        return cls(index=index, hashes=tuple(hashes), checkpoint=checkpoint, extra=extra)


def _decode(data: str, what: str, *, canonical: bool) -> bytes:
    try:
        if canonical:
            return _b64decode_canonical(data)
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        raise VerificationError(f"malformed tlog-proof: {what} is not valid base64") from None


def verify_proof(
    proof: TlogProof | str | bytes,
    verifier: Verifier | Iterable[Verifier],
    *,
    leaf: bytes | None = None,
    origin: str | None = None,
) -> tuple[Checkpoint, bytes]:
    """Check the checkpoint's signature and the leaf's inclusion; return (checkpoint, leaf).

    The leaf is ``leaf`` when given (the caller's own copy of the record), else the proof's
    extra data; when both are present they must be equal.
    """
    p = proof if isinstance(proof, TlogProof) else TlogProof.parse(proof)
    checkpoint = verify_checkpoint(p.checkpoint, verifier, origin)
    data = leaf if leaf is not None else p.extra
    if data is None:
        raise VerificationError("tlog-proof carries no leaf data; pass the record to check")
    if leaf is not None and p.extra is not None and p.extra != leaf:
        raise VerificationError("the record differs from the leaf data carried in the proof")
    if p.index >= checkpoint.size:
        raise VerificationError(
            f"index {p.index} is outside the checkpointed tree of size {checkpoint.size}"
        )
    verify_inclusion(leaf_hash(data), p.index, checkpoint.size, list(p.hashes), checkpoint.root)
    return checkpoint, data
