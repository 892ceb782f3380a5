"""The stateful evaluator: validates events, folds them into entity state and
decides them against an immutable bundle.

State changes first, then judgement: a rule triggered by `approval.recorded`
sees the subject with that approval, and every event is judged even when it
is denied, because the stream records what happened, not what was allowed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policyengine.compiler.bundle import Bundle
from policyengine.events import EventError, MemoryStateStore, StateStore, apply_event, parse_event
from policyengine.runtime.clock import Clock, event_time
from policyengine.runtime.decision import Decision


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
        """Validate (unless `validated`), apply to state, then decide one event.

        Raises `EventError` for malformed input; state is untouched in that case.
        """
        ev = dict(event) if validated else parse_event(event)
        with self._lock:
            apply_event(self.state, ev)
            return self.bundle.evaluate(ev, self.state, self.clock(ev))

    def evaluate_batch(
        self, events: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> list[Decision]:
        """Decide a batch in order under one lock acquisition. Every event is validated
        before any is applied, so a malformed event rejects the whole batch (raising its
        `EventError` with `line` set to its 1-based position) and leaves state untouched."""
        parsed: list[dict[str, Any]] = []
        for n, event in enumerate(events, start=1):
            try:
                parsed.append(dict(event) if validated else parse_event(event))
            except EventError as err:
                raise err.at_line(n) from None
        out: list[Decision] = []
        with self._lock:
            for ev in parsed:
                apply_event(self.state, ev)
                out.append(self.bundle.evaluate(ev, self.state, self.clock(ev)))
        return out

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
