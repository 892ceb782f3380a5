"""`eventTime`: RFC 3339, normalised to UTC — and what to do when the offset is missing.

The spec types `eventTime` as a JSON Schema `date-time`, which is RFC 3339 and always carries
an offset; yet the spec's own serde examples (and Python producers that call a naive
`datetime.now().isoformat()`) send `2021-11-03T10:53:52.427343`. Whose wall clock that is
cannot be known from the event, and a wrong guess silently shifts an audit record by hours,
so by default such a time is rejected with a hint. The `utc` mode reads it as UTC for
producers known to emit UTC wall-clock times; the translated events then carry the original
text in the label `openlineage.naive_event_time`, so the assumption stays on the record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

__all__ = ["NaiveTime", "TimeError", "format_utc", "parse_event_time"]

NaiveTime = Literal["reject", "utc"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))?"
)


class TimeError(ValueError):
    """`eventTime` could not be read; `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_event_time(text: str, naive: NaiveTime = "reject") -> tuple[str, bool]:
    """`(RFC 3339 UTC text ending in Z, whether UTC was assumed)` for an `eventTime`.

    Fractions finer than a microsecond (Java producers send nanoseconds) are truncated to
    microseconds, the precision of the rest of policyengine."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TimeError(
            f"`{text}` is not an RFC 3339 date-time",
            "expected e.g. `2024-05-03T10:00:00Z` or `2024-05-03T12:00:00.123+02:00`",
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    assumed = False
    if match.group("z"):
        tz: timezone = UTC
    elif match.group("sign"):
        hours, minutes = int(match.group("oh")), int(match.group("om"))
        if hours > 23 or minutes > 59:
            raise TimeError(f"`{text}` has an invalid UTC offset")
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if match.group("sign") == "-" else offset)
    elif naive == "utc":
        tz, assumed = UTC, True
    else:
        raise TimeError(
            f"`{text}` has no UTC offset, so the instant it names is unknown",
            "add `Z` or an offset such as `+00:00` at the producer; to read such times as UTC,"
            " set POLICYENGINE_OPENLINEAGE_NAIVE_TIME=utc (the original text is kept in the"
            " label `openlineage.naive_event_time`)",
        )
    try:
        moment = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
        return format_utc(moment), assumed
    except ValueError as exc:
        raise TimeError(f"`{text}` is not a valid date-time: {exc}") from None
    except OverflowError:
        raise TimeError(f"`{text}` is out of range in UTC") from None


def format_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`, at the precision the value needs (s, ms or µs)."""
    moment = moment.astimezone(UTC)
    spec = "seconds"
    if moment.microsecond:
        spec = "microseconds" if moment.microsecond % 1000 else "milliseconds"
    return moment.isoformat(timespec=spec).removesuffix("+00:00") + "Z"
