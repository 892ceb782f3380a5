"""Timestamps as the store keeps them: fixed-width UTC text, so SQL compares them as strings."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

__all__ = ["db_time", "from_db_time", "show_time"]

_DB = "%Y-%m-%dT%H:%M:%S.%fZ"


def db_time(t: datetime) -> str:
    """`2026-01-12T09:00:00.000000Z`: always microseconds, so lexical order is time order."""
    if t.tzinfo is None:
        raise ValueError("lineage times must be timezone-aware")
    return t.astimezone(UTC).strftime(_DB)


@lru_cache(maxsize=1 << 16)
def from_db_time(text: str) -> datetime:
    # `fromisoformat` is C code (strptime is ~20x slower); many edges share a time.
    return datetime.fromisoformat(text)


def show_time(t: datetime) -> str:
    """RFC 3339 in UTC for people and JSON output, without a zero fraction."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if t.microsecond else "") + "Z")
