"""Injectable clocks. Policies read `now`; where it comes from is the caller's choice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# A clock is given the event being judged and returns the evaluation time.
Clock = Callable[[dict[str, Any]], datetime]


def event_time(event: dict[str, Any]) -> datetime:
    """Judge each event as of its own timestamp: reproducible replays (the default)."""
    t: datetime = event["time"]
    return t


def wall_clock(_event: dict[str, Any]) -> datetime:
    """Judge at the current UTC time, as a live service would."""
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """Always the same instant: for tests and `--now`."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware datetime")
    at = at.astimezone(UTC)
    return lambda _event: at
