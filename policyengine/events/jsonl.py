"""JSON Lines reader for event logs, reporting every bad line instead of stopping at the first.

Audit logs are long; a reviewer wants all problems with their line numbers in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from .catalog import parse_event
from .models import EventError

__all__ = ["read_jsonl"]


class _JsonProblem(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With duplicates, which value "counts" depends on the reader: ambiguous in an audit log.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _JsonProblem(f"duplicate key `{key}`")
            seen.add(key)
    return obj


def _no_constants(name: str) -> Any:
    raise _JsonProblem(f"`{name}` is not valid JSON")


def _decode(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)


def read_jsonl(
    lines: Iterable[str] | TextIO,
) -> Iterator[tuple[int, dict[str, Any] | EventError]]:
    """Yield `(line number, parsed event or EventError)` for each non-blank line.

    Line numbers are 1-based and count blank lines, so they match an editor. Bad lines are
    yielded as errors (never raised) and reading continues. A `str` is split into lines.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if number == 1:
            text = text.lstrip("\ufeff")
        if not text:
            continue
        try:
            obj = _decode(text)
        except json.JSONDecodeError as exc:
            reason = exc.msg[:1].lower() + exc.msg[1:]
            yield number, EventError(f"invalid JSON: {reason} (column {exc.colno})", line=number)
            continue
        except _JsonProblem as exc:
            yield number, EventError(f"invalid JSON: {exc}", line=number)
            continue
        except RecursionError:
            yield number, EventError("invalid JSON: nested too deeply", line=number)
            continue
        try:
            yield number, parse_event(obj)
        except EventError as exc:
            yield number, exc.at_line(number)
