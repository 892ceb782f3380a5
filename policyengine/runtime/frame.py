"""The per-evaluation environment that compiled closures read from."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class StateReader(Protocol):
    """What evaluation needs from entity state: a lookup by kind and id."""

    def get(self, kind: str, id: str) -> dict[str, Any] | None: ...


class Frame:
    """Everything one event's evaluation can see. Created per event, never shared,
    so the compiled bundle itself stays free of mutable state."""

    __slots__ = (
        "_subject",
        "attrs",
        "event",
        "now",
        "results",
        "state",
        "subject_id",
        "subject_kind",
        "vars",
    )

    def __init__(
        self,
        event: dict[str, Any],
        state: StateReader,
        now: datetime,
        nvars: int,
    ) -> None:
        self.event = event
        self.attrs: dict[str, Any] = event["attributes"]
        subject = event["subject"]
        self.subject_id: str = subject["id"]
        self.subject_kind: str = subject["kind"]
        self.state = state
        self.now = now
        self.vars: list[Any] = [None] * nvars
        self.results: dict[str, str] = {}
        self._subject: dict[str, Any] | None = None

    def subject(self) -> dict[str, Any] | None:
        s = self._subject
        if s is None:
            s = self._subject = self.state.get(self.subject_kind, self.subject_id)
        return s
