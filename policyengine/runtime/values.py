"""Value helpers shared by the evaluator, decisions and reports: deterministic
iteration, JSON-safe conversion and human formatting."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(d: timedelta) -> str:
    """`timedelta(hours=49)` → `2d1h`: the language's own syntax, days as the largest unit
    (`90d` reads better than `12w6d` in a message)."""
    micros = (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, rest = divmod(micros, 1_000_000)
    parts: list[str] = []
    for unit, size in _UNITS:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    ms = rest // 1000
    if ms:
        parts.append(f"{ms}ms")
    if not parts:
        return "0s"
    return sign + "".join(parts)


def format_timestamp(t: datetime) -> str:
    t = t.astimezone(UTC) if t.tzinfo is not None else t.replace(tzinfo=UTC)
    text = t.isoformat(timespec="microseconds" if t.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def sort_key(v: Any) -> tuple[str, Any]:
    """Total order across mixed types, so set iteration never depends on hash seeds."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, datetime):
        return ("t", v)
    if isinstance(v, timedelta):
        return ("d", v)
    if v is None:
        return ("0", 0)
    return ("z", repr(v))


def iterate(coll: Any) -> Iterable[Any]:
    """Iterate lists in order, sets sorted and maps by sorted key."""
    if isinstance(coll, list | tuple):
        return coll
    if isinstance(coll, frozenset | set):
        return sorted(coll, key=sort_key)
    if isinstance(coll, dict):
        return sorted(coll)
    raise TypeError(type(coll).__name__)


def to_jsonable(v: Any) -> Any:
    """Convert an evaluation value into JSON data with one canonical spelling."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        if math.isfinite(v):
            return int(v) if v.is_integer() and abs(v) < 2**53 else v
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, datetime):
        return format_timestamp(v)
    if isinstance(v, timedelta):
        return format_duration(v)
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, frozenset | set):
        return [to_jsonable(x) for x in sorted(v, key=sort_key)]
    if isinstance(v, list | tuple):
        return [to_jsonable(x) for x in v]
    return str(v)


def format_value(v: Any) -> str:
    """Human rendering for messages: strings bare, everything else compact."""
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return format_timestamp(v)
    if isinstance(v, timedelta):
        return format_duration(v)
    if isinstance(v, float):
        return repr(v) if not v.is_integer() else str(int(v))
    if isinstance(v, list | tuple | frozenset | set):
        items = v if isinstance(v, list | tuple) else sorted(v, key=sort_key)
        return "[" + ", ".join(format_value(x) for x in items) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {format_value(x)}" for k, x in v.items()) + "}"
    return str(v)
