"""RFC 9457 problem details: every error the API returns, with the request field at fault.

Each problem has a stable `type` URN (`urn:policyengine:problem:<kind>`, listed in
docs/server.md), a short `title`, a `detail` for people, and, for bad input, an `errors`
list whose `pointer` is a JSON Pointer in URI fragment form (`#/attributes/target`) into
the request body (plus `line` for JSON Lines bodies), as in RFC 9457 §3's own example.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from policyengine.events import EventError

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_TYPE",
    "Problem",
    "event_errors",
    "json_pointer",
]

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:policyengine:problem:"

#: Most field errors listed in one problem (a 1,000-event batch can have many more).
MAX_ERRORS = 100


class Problem(Exception):
    """An error response. Raise it anywhere in a handler; the app renders it."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        errors: Iterable[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.extra = extra

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors[:MAX_ERRORS]
            if len(self.errors) > MAX_ERRORS:
                body["errors_omitted"] = len(self.errors) - MAX_ERRORS
        body.update(self.extra)
        return body

    def body(self, instance: str | None = None) -> bytes:
        return json.dumps(self.to_dict(instance), ensure_ascii=False).encode("utf-8")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_pointer(base: str, dotted: str | None) -> str:
    """`#/events/3` + `attributes.inputs[0]` → `#/events/3/attributes/inputs/0`.

    `dotted` is an `EventError.field` path (`a.b[2].c`); None or `""` is the base itself.
    """
    if not dotted:
        return base
    parts: list[str] = []
    for chunk in dotted.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(_escape(name))
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(index)
            rest = rest.removeprefix("[")
    return base.rstrip("/") + "/" + "/".join(parts)


def event_errors(err: EventError, base: str, line: int | None = None) -> list[dict[str, Any]]:
    """One `errors` entry per problem `parse_event` found, pointing into the request body."""
    problems = [(err.field, err.message), *err.details]
    out: list[dict[str, Any]] = []
    for field, message in problems:
        entry: dict[str, Any] = {"pointer": json_pointer(base, field), "detail": message}
        if line is not None:
            entry["line"] = line
        out.append(entry)
    return out
