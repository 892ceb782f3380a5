"""RFC 8785 (JCS) canonical JSON: the only form in which anything is hashed or signed.

`rfc8785` is the reference; it is pure Python and costs ~100 µs for a decision record. Most
of our documents hold only strings, booleans, null, small integers and a few ordinary
floats, and for those the C-accelerated `json.dumps` (sorted keys, no whitespace, UTF-8)
writes exactly the JCS bytes. `dumps` checks that a document is in that safe subset — a
cheap walk — and only then takes the fast path; anything else (integral or exponent-form
floats, keys outside the Basic Multilingual Plane, large integers) goes through `rfc8785`,
so the output is always byte-identical to the reference (property-tested).
"""

from __future__ import annotations

import json
import math
from typing import Any

import rfc8785

__all__ = ["dumps"]

_MAX_SAFE = 2**53 - 1
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def _safe(value: Any) -> bool:
    """Whether `json.dumps` writes `value` exactly as JCS does."""
    if value is None or value is True or value is False:
        return True
    t = type(value)
    if t is str:
        return True
    if t is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if t is float:
        # JCS writes integral floats without ".0" and uses ECMAScript exponent rules; plain
        # decimal reprs (no exponent, a fractional part) agree with it.
        if not math.isfinite(value) or value.is_integer():
            return False
        return "e" not in repr(value)
    if t is dict:
        for k, v in value.items():
            # Python sorts keys by code point, JCS by UTF-16 unit: they agree within the BMP.
            if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                return False
            if not _safe(v):
                return False
        return True
    if t is list or t is tuple:
        return all(_safe(v) for v in value)
    return False


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes of `obj` (RFC 8785). Raises `rfc8785.CanonicalizationError` (a
    `ValueError`) for what JCS cannot represent: NaN, infinities, integers beyond 2**53,
    lone surrogates."""
    if _safe(obj):
        try:
            return _encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference produce its error
    return bytes(rfc8785.dumps(obj))
