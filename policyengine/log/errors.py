"""Errors raised by the tamper-evident decision log (issue 4)."""

from __future__ import annotations

__all__ = ["LogError", "VerificationError"]


class VerificationError(Exception):
    """The one exception every failed verification raises.

    Callers (the CLI, an inspector's script) need a single thing to catch: a malformed note, an
    untrusted or bad signature, a checkpoint that does not parse and a Merkle proof that does not
    check out are all the same answer — "do not trust this".
    """


class LogError(Exception):
    """A log that cannot be used as asked: missing, not a log, the wrong key, a bad range.

    Distinct from `VerificationError`: this is a usage or environment problem with a fix,
    not evidence that records were altered.
    """
