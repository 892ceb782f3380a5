"""The stateful evaluator: validates events, judges them against an immutable
bundle and folds accepted ones into entity state.

Rules see the subject *as the event would leave it* (a rule on
`approval.recorded` sees that approval), but the change is committed only when
the decision is not `deny`: a rejected signature or an unauthorised override
must never count later. Requests that change nothing are judged the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

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
from policyengine.events.pseudonym import Pseudonymiser, require_pseudonymised
from policyengine.oversight.attest import attest
from policyengine.oversight.registry import SignerRegistry
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


class Recorder(Protocol):
    """Where decisions go before they are acknowledged (`policyengine.log.DecisionRecorder`)."""

    def record(
        self, pairs: Sequence[tuple[Mapping[str, Any], Decision]], bundle: Bundle
    ) -> object: ...


class _Pending:
    """State changes held back until the decisions that made them are durably recorded."""

    __slots__ = ("_base", "_changes")

    def __init__(self, base: StateStore) -> None:
        self._base = base
        self._changes: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        hit = self._changes.get((kind, id))
        return hit if hit is not None else self._base.get(kind, id)

    def put(self, kind: str, id: str, value: dict[str, Any]) -> None:
        self._changes[(kind, id)] = value

    def flush(self) -> None:
        for (kind, id), value in self._changes.items():
            self._base.put(kind, id, value)


class Engine:
    """Bundle + state + clock. Safe to share between threads: evaluations are
    serialised on a lock because they read and write the shared state store.
    For stateless, lock-free decisions call `Bundle.evaluate` directly.

    With a `recorder` (a signed decision log), a decision is returned only after it is
    durably recorded, and its state change is committed only then: if recording fails the
    call raises and the engine's state is as if the event never arrived. With a
    `pseudonymiser`, patient identifiers are replaced before an event is judged; with a
    recorder and none, an event carrying identifiers is refused (`EventError`).

    Signed events (approvals, overrides, drift responses) are checked against `signers`
    before they are judged; without a registry a signature is `unverified`, never
    `verified` (`policyengine.oversight.attest`)."""

    def __init__(
        self,
        bundle: Bundle,
        state: StateStore | None = None,
        clock: Clock = event_time,
        recorder: Recorder | None = None,
        pseudonymiser: Pseudonymiser | None = None,
        signers: SignerRegistry | None = None,
    ) -> None:
        self.bundle = bundle
        self.signers = signers
        self.state: StateStore = state if state is not None else MemoryStateStore()
        self.clock = clock
        self.recorder = recorder
        self.pseudonymiser = pseudonymiser
        self._lock = threading.Lock()

    def evaluate(self, event: Mapping[str, Any], *, validated: bool = False) -> Decision:
        """Validate (unless `validated`), decide, and commit the event's state change
        unless denied. Raises `EventError` for malformed input; state is untouched then."""
        return self.decide(event, validated=validated)[1]

    def decide(
        self, event: Mapping[str, Any], *, validated: bool = False
    ) -> tuple[dict[str, Any], Decision]:
        """`evaluate`, also returning the event as judged: validated, pseudonymised and
        with its signature status set — what the log holds and reviews refer to."""
        ev = self._intake(event, validated)
        with self._lock:
            if self.recorder is None:
                return self._judge(self.state, ev)
            return self._recorded([ev])[0]

    def _judge(self, state: StateStore, ev: dict[str, Any]) -> tuple[dict[str, Any], Decision]:
        ev = attest(ev, state, self.signers)
        return ev, judge(self.bundle, state, ev, self.clock(ev))

    def _intake(self, event: Mapping[str, Any], validated: bool) -> dict[str, Any]:
        ev = dict(event) if validated else parse_event(event)
        if self.pseudonymiser is not None or self.recorder is not None:
            ev = require_pseudonymised(ev, self.pseudonymiser)
        return ev

    def _recorded(self, events: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], Decision]]:
        assert self.recorder is not None
        pending = _Pending(self.state)
        # One at a time: a signature is checked against the state the events before it left.
        pairs = [self._judge(pending, ev) for ev in events]
        self.recorder.record(pairs, self.bundle)
        pending.flush()
        return pairs

    def evaluate_batch(
        self, events: Iterable[Mapping[str, Any]], *, validated: bool = False
    ) -> list[Decision]:
        """Decide a batch in order under one lock acquisition. Every event is validated
        before any is decided, so a malformed event rejects the whole batch (raising its
        `EventError` with `line` set to its 1-based position) and leaves state untouched."""
        parsed: list[dict[str, Any]] = []
        for n, event in enumerate(events, start=1):
            try:
                parsed.append(self._intake(event, validated))
            except EventError as err:
                raise err.at_line(n) from None
        with self._lock, gc_paused():
            if self.recorder is not None:
                return [d for _ev, d in self._recorded(parsed)]
            return [self._judge(self.state, ev)[1] for ev in parsed]

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
