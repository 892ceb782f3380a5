"""C2SP transparency-log checkpoints (https://c2sp.org/tlog-checkpoint).

A checkpoint is the log's signed statement "my tree of ``size`` decisions has root ``root``".
Using the standard format means an inspector can verify it, and witnesses can cosign it, with
existing tooling; the parser is strict so that one checkpoint has exactly one textual form.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from policyengine.log.errors import VerificationError
from policyengine.log.note import (
    NoteVerifier,
    Signer,
    _b64decode_canonical,
    open_note,
    sign_note,
)

__all__ = ["HASH_SIZE", "Checkpoint", "sign_checkpoint", "verify_checkpoint"]

#: RFC 6962 with SHA-256: every root hash is 32 bytes.
HASH_SIZE = 32
_MAX_SIZE = 2**63 - 1  # Go parses the size as int64; larger values would not interoperate
_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)


def _line_problem(line: str) -> str | None:
    if not line:
        return "is empty"
    if any(ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF for ch in line):
        return "contains a control character or newline"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin (log identity), tree size, RFC 6962 root, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Tolerate a list from callers but store a tuple so the dataclass stays hashable.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        problem = _line_problem(self.origin)
        if problem:
            raise ValueError(f"checkpoint origin `{self.origin}` {problem}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValueError(f"checkpoint size must be an int, not `{self.size!r}`")
        if not 0 <= self.size <= _MAX_SIZE:
            raise ValueError(f"checkpoint size `{self.size}` is outside 0..2**63-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError(f"checkpoint root must be {HASH_SIZE} bytes (a SHA-256 tree hash)")
        for extension in self.extensions:
            problem = _line_problem(extension)
            if problem:
                raise ValueError(f"checkpoint extension line `{extension}` {problem}")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root, extensions, each ending in a newline."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text; anything but the canonical form raises VerificationError."""
        if not text.endswith("\n"):
            raise VerificationError("malformed checkpoint: text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError(
                "malformed checkpoint: needs origin, tree size and root hash lines"
                f" (got {len(lines)} line{'s' if len(lines) != 1 else ''})"
            )
        for number, line in enumerate(lines, start=1):
            problem = _line_problem(line)
            if problem:
                raise VerificationError(f"malformed checkpoint: line {number} {problem}")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise VerificationError(
                f"malformed checkpoint: tree size `{size_text}` is not a decimal number"
                " without leading zeros"
            )
        size = int(size_text)
        if size > _MAX_SIZE:
            raise VerificationError(f"malformed checkpoint: tree size `{size_text}` is too large")
        try:
            root = _b64decode_canonical(root_text)
        except ValueError as exc:
            raise VerificationError(f"malformed checkpoint: root hash: {exc}") from None
        if len(root) != HASH_SIZE:
            raise VerificationError(
                f"malformed checkpoint: root hash is {len(root)} bytes, expected {HASH_SIZE}"
            )
        return cls(origin=origin, size=size, root=root, extensions=tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer, *cosigners: Signer) -> str:
    """The signed-note form of ``cp``; by convention the log key's name equals the origin."""
    return sign_note(cp.to_text(), signer, *cosigners)


def verify_checkpoint(
    signed: str | bytes,
    verifier: NoteVerifier | Iterable[NoteVerifier],
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint against trusted key(s) and return it.

    Pass ``origin`` to pin the log identity: a validly signed checkpoint of a *different* log by
    the same key must not be mistaken for this log's.
    """
    text, _ = open_note(signed, verifier)
    checkpoint = Checkpoint.parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint is for log `{checkpoint.origin}`, expected `{origin}`"
            " (hint: check which log this checkpoint came from)"
        )
    return checkpoint
