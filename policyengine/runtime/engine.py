"""The stateful evaluator: validates events, judges them against an immutable
bundle and folds accepted ones into entity state.

Rules see the subject *as the event would leave it* (a rule on
`approval.recorded` sees that approval), but the change is committed only when
the decision is not `deny`: a rejected signature or an unauthorised override
must never count later. Requests that change nothing are judged the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from policyengine._gc import gc_paused
from policyengine.compiler.bundle import Bundle
from policyengine.events import (
    EventError,
    MemoryStateStore,
    Overlay,
    StateStore,
    parse_event,
    reduce_event,
)
from policyengine.runtime.clock import Clock, event_time
from policyengine.runtime.decision import Decision, Outcome


def judge(bundle: Bundle, state: StateStore, event: dict[str, Any], now: datetime) -> Decision:
    """Decide one validated event against the state it would produce; commit that
    state unless the decision is `deny`. The one place this rule is implemented."""
    change = reduce_event(state, event)
    view = state if change is None else Overlay(state, change)
    decision = bundle.evaluate(event, view, now)
    if change is not None and decision.outcome is not Outcome.DENY:
        state.put(*change)
    return decision


class Engine:
    """Bundle + state + clock. Safe to share between threads: evaluations are
    serialised on a lock because they read and write the shared state store.
    For stateless, lock-free decisions call `Bundle.evaluate` directly."""

    def __init__(
        self,
        bundle: Bundle,
        state: StateStore | None = None,
        clock: Clock = event_time,
    ) -> None:
        self.bundle = bundle
        self.state: StateStore = state if state is not None else MemoryStateStore()
        self.clock = clock
        self._lock = threading.Lock()

    def evaluate(self, event: Mapping[str, Any], *, validated: bool = False) -> Decision:
        """Validate (unless `validated`), decide, and commit the event's state change
        unless denied. Raises `EventError` for malformed input; state is untouched then."""
        ev = dict(event) if validated else parse_event(event)
        with self._lock:
            return judge(self.bundle, self.state, ev, self.clock(ev))

    def evaluate_batch(
        self, events: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> list[Decision]:
        """Decide a batch in order under one lock acquisition. Every event is validated
        before any is decided, so a malformed event rejects the whole batch (raising its
        `EventError` with `line` set to its 1-based position) and leaves state untouched."""
        parsed: list[dict[str, Any]] = []
        for n, event in enumerate(events, start=1):
            try:
                parsed.append(dict(event) if validated else parse_event(event))
            except EventError as err:
                raise err.at_line(n) from None
        with self._lock, gc_paused():
            return [judge(self.bundle, self.state, ev, self.clock(ev)) for ev in parsed]

    def evaluate_many(
        self, events: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> Iterator[Decision | EventError]:
        """Decide a stream in order; a malformed event yields its `EventError` and the
        stream goes on."""
        for event in events:
            try:
                yield self.evaluate(event, validated=validated)
            except EventError as err:
                yield err
