"""A toolkit for writing adapters: time normalisation, typed field access with JSON paths,
reading records from files, JSON Lines and folders, and deterministic event ids.

Shared by the adapters in `adapters/` (which never import each other) and open to third-party
adapters. External systems mix time formats even inside one record (EventBridge `time` is
RFC 3339 with `Z`, a detail may carry epoch milliseconds, CloudWatch writes `+0000` offsets),
so every timestamp goes through `normalise_time`, which names the field when a value cannot be
read rather than guessing a timezone.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyengine.adapter import AdapterError

__all__ = [
    "BadField",
    "Fields",
    "Record",
    "event_id",
    "normalise_time",
    "read_records",
]

# Epoch numbers above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is 1973.
_MILLIS_ABOVE = 1e11


class BadField(Exception):
    """One source field is missing or malformed; turned into an `AdapterError` by the caller,
    which knows the record's location."""

    def __init__(self, field: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.hint = hint


def normalise_time(value: Any, field: str = "time") -> str:
    """An RFC 3339 UTC timestamp (`...Z`) from any time format AWS uses.

    Accepts RFC 3339 / ISO 8601 text with `Z`, `+00:00` or `+0000` offsets, and epoch seconds
    or milliseconds as a number or a numeric string (SageMaker's endpoint events carry
    `1583831889050` and `1592411992203.0`). Text without a timezone is refused: guessing UTC
    would silently shift an audit record."""
    if isinstance(value, bool) or value is None:
        raise BadField(field, f"expected a timestamp, got {_json_type(value)}")
    moment: datetime
    if isinstance(value, int | float):
        moment = _from_epoch(float(value), field)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and text and (text[0].isdigit() or text[0] in "+-."):
            moment = _from_epoch(number, field)
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise BadField(
                    field,
                    f"`{value}` is not a timestamp",
                    "expected RFC 3339 (e.g. `2021-02-24T17:00:14Z`) or epoch milliseconds",
                ) from None
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise BadField(
                    field,
                    f"timestamp `{value}` has no timezone",
                    "AWS timestamps carry `Z` or an offset; add one rather than assume UTC",
                )
    else:
        raise BadField(field, f"expected a timestamp, got {_json_type(value)}")
    moment = moment.astimezone(UTC)
    spec = "seconds" if not moment.microsecond else "milliseconds"
    if moment.microsecond % 1000:
        spec = "microseconds"
    return moment.isoformat(timespec=spec).removesuffix("+00:00") + "Z"


def _from_epoch(number: float, field: str) -> datetime:
    if not math.isfinite(number) or number < 0:
        raise BadField(field, f"`{number}` is not an epoch timestamp")
    seconds = number / 1000 if number > _MILLIS_ABOVE else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadField(field, f"`{number}` is out of range for a timestamp") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Fields:
    """Typed, path-aware access to a JSON object, so every error names the source field."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            missing = "is missing" if key not in self.data else "is null"
            raise BadField(self.field(key), f"required field {missing}")
        return value

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadField(self.field(key), f"expected a string, got {_json_type(value)}")
        if required and not value.strip():
            raise BadField(self.field(key), "must not be empty")
        return value

    def req_text(self, key: str) -> str:
        value = self.text(key)
        assert value is not None
        return value

    def integer(self, key: str, *, required: bool = True) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadField(self.field(key), f"expected an integer, got {_json_type(value)}")
        if isinstance(value, float) and not value.is_integer():
            raise BadField(self.field(key), f"expected an integer, got `{value}`")
        return int(value)

    def number(self, key: str, *, required: bool = True) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadField(self.field(key), f"expected a number, got {_json_type(value)}")
        if not math.isfinite(value):
            raise BadField(self.field(key), f"expected a finite number, got `{value}`")
        return float(value)

    def flag(self, key: str, *, required: bool = True) -> bool | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise BadField(self.field(key), f"expected true or false, got {_json_type(value)}")
        return value

    def obj(self, key: str, *, required: bool = True) -> Fields | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadField(self.field(key), f"expected an object, got {_json_type(value)}")
        return Fields(value, self.field(key))

    def req_obj(self, key: str) -> Fields:
        value = self.obj(key)
        assert value is not None
        return value

    def array(self, key: str, *, required: bool = True) -> list[Any] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise BadField(self.field(key), f"expected an array, got {_json_type(value)}")
        return value

    def objects(self, key: str, *, required: bool = True) -> list[Fields]:
        items = self.array(key, required=required) or []
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadField(
                    f"{self.field(key)}[{i}]", f"expected an object, got {_json_type(item)}"
                )
            out.append(Fields(item, f"{self.field(key)}[{i}]"))
        return out

    def str_map(self, key: str, *, required: bool = False) -> dict[str, str]:
        """A map of strings (tags, metadata properties); non-string values are errors."""
        value = self._get(key, required)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise BadField(self.field(key), f"expected an object, got {_json_type(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise BadField(f"{self.field(key)}.{k}", f"expected a string, got {_json_type(v)}")
        return dict(value)

    def time(self, key: str, *, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        return normalise_time(value, self.field(key))


def event_id(prefix: str, *parts: Any) -> str:
    """A deterministic event id: `prefix-` + 24 hex digits of SHA-256 over the identifying
    parts, so re-ingesting the same source record yields the same id."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{prefix}-{hashlib.sha256(blob.encode('utf-8')).hexdigest()[:24]}"


@dataclass(frozen=True)
class Record:
    """One decoded JSON value with where it came from (`file:line` or `file[index]`)."""

    value: Any
    location: str
    path: Path | None


def read_records(
    source: str, *, skip_names: frozenset[str] = frozenset()
) -> Iterator[Record | AdapterError]:
    """JSON values from a file (one value, an array of values, or JSON Lines), from `-`
    (standard input), or from every `*.json`/`*.jsonl` file under a directory in name order.

    Raises `AdapterError` when the source as a whole cannot be read; one bad line or file is
    yielded as an `AdapterError` and reading goes on."""
    if source == "-":
        yield from _parse_text(sys.stdin.read(), "<stdin>", None)
        return
    root = Path(source)
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and p.suffix in {".json", ".jsonl"} and p.name not in skip_names
        )
        if not files:
            raise AdapterError(
                f"no `.json` or `.jsonl` files under `{source}`",
                hint="point SOURCE at an exported event file or a folder of them",
            )
        for path in files:
            yield from _read_file(path)
        return
    if not root.exists():
        raise AdapterError(f"no such file or directory `{source}`")
    yield from _read_file(root)


def _read_file(path: Path) -> Iterator[Record | AdapterError]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        yield AdapterError(f"cannot read file: {exc}", location=str(path))
        return
    yield from _parse_text(text, str(path), path)


def _parse_text(text: str, name: str, path: Path | None) -> Iterator[Record | AdapterError]:
    if not text.strip():
        return
    if path is not None and path.suffix == ".jsonl":
        yield from _parse_lines(text, name, path)
        return
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            yield AdapterError(
                f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                location=name,
            )
            return
    else:
        if isinstance(whole, list):
            for i, item in enumerate(whole):
                yield Record(item, f"{name}[{i}]", path)
        else:
            yield Record(whole, name, path)
        return
    # More than one value: JSON Lines, one value per line.
    yield from _parse_lines(text, name, path)


def _parse_lines(text: str, name: str, path: Path | None) -> Iterator[Record | AdapterError]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield AdapterError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", location=f"{name}:{number}"
            )
            continue
        yield Record(value, f"{name}:{number}", path)
