"""Adapters turn an external system's records into canonical lineage events.

An adapter is anything with a `name`, a one-line `summary` and an `events(source)` method
that yields canonical event dicts (validated afterwards by `parse_event`, so adapters stay
thin translators), optionally `Located` with where they came from, or an `AdapterError` for
one bad record — reading goes on, the CLI reports
each bad record with its location. Adapters are discovered through the `policyengine.adapters`
entry-point group, so a user package can add its own without touching policyengine; the
adapters shipped in `adapters/` register themselves the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterError",
    "CanonicalEvents",
    "Located",
    "available_adapters",
    "get_adapter",
]

ENTRY_POINT_GROUP = "policyengine.adapters"


class AdapterError(ValueError):
    """One record an adapter could not translate, with where it is and what is wrong.

    `location` names the record in its source (`events.jsonl:3`, `run 4f2a…`) and `field` the
    offending field as a JSON path (`run.facets.schema.fields[2].name`)."""

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"`{self.field}`: " if self.field else ""
        return f"{where}{what}{self.message}"


@dataclass(frozen=True)
class Located:
    """A translated event with where its record is in the source (`file:line`, a run id…),
    so validation errors can point at it."""

    event: dict[str, Any]
    location: str


@runtime_checkable
class Adapter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str: ...

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        """Canonical events from `source` (a path, URL or `-`), in source order."""
        ...


@dataclass(frozen=True)
class CanonicalEvents:
    """The identity adapter: JSON Lines already in policyengine's event format."""

    name: str = "events"
    summary: str = "canonical policyengine events, one JSON object per line"

    def events(self, source: str) -> Iterator[dict[str, Any] | Located | AdapterError]:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AdapterError(f"no such file `{source}`") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AdapterError(f"cannot read `{source}`: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield AdapterError(
                    f"invalid JSON: {exc.msg} (column {exc.colno})", location=f"{source}:{number}"
                )
                continue
            if not isinstance(obj, dict):
                yield AdapterError("an event must be a JSON object", location=f"{source}:{number}")
                continue
            yield Located(obj, f"{source}:{number}")


def available_adapters() -> dict[str, Callable[[], Adapter]]:
    """Adapter factories by name: the built-in `events` plus every installed entry point."""
    found: dict[str, Callable[[], Adapter]] = {"events": CanonicalEvents}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, _loader(ep))
    return dict(sorted(found.items()))


def _loader(ep: Any) -> Callable[[], Adapter]:
    def load() -> Adapter:
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the CLI down
            raise AdapterError(
                f"adapter `{ep.name}` ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                hint="reinstall the package that provides it, or check its optional dependencies",
            ) from None
        adapter = obj() if isinstance(obj, type) or callable(obj) else obj
        if not isinstance(adapter, Adapter):
            raise AdapterError(f"entry point `{ep.name}` ({ep.value}) is not an adapter")
        return adapter

    return load


def get_adapter(name: str) -> Adapter:
    adapters = available_adapters()
    factory = adapters.get(name)
    if factory is None:
        names = ", ".join(f"`{n}`" for n in adapters)
        raise AdapterError(f"unknown adapter `{name}`", hint=f"installed adapters: {names}")
    return factory()
