"""Rebuilding entity state from the decision log at start-up.

The state a server had when it stopped is exactly what `policyengine audit replay` rebuilds
at that point of the log: a fresh state at the latest `session` record, then every logged
decision's event folded in as it was decided (committed unless the decision was `deny`).
Restoring reads the log the same way, with the same reader (`policyengine.audit`), so the
restarted server and a later replay agree on what every approval and override counted for.
Logged outcomes are used rather than re-judging: they are what the engine acted on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from policyengine.audit._common import LoggedDecision, SkippedRecord, commit_as_logged, read_item
from policyengine.events import MemoryStateStore
from policyengine.log.records import parse_record
from policyengine.log.tlog import TransparencyLog

__all__ = ["Restored", "restore_state"]

_SESSION = b'"kind":"session"'


@dataclass(frozen=True, slots=True)
class Restored:
    """What start-up rebuilt: the state, and how much of the log it read."""

    state: MemoryStateStore
    #: Index of the `session` record the state starts from (None: the log's beginning).
    session_index: int | None
    #: Decision records folded into the state.
    decisions: int
    #: Decision records that could not be read (logged without their event, or malformed).
    skipped: int
    seconds: float


def _last_session(log: TransparencyLog) -> int | None:
    """Index of the latest `session` record. Canonical JSON makes a byte search a safe
    pre-filter; each hit is confirmed by parsing the record."""
    last: int | None = None
    for index, data in log.leaves():
        raw = bytes(data)
        if _SESSION in raw:
            try:
                if parse_record(raw, index)["kind"] == "session":
                    last = index
            except Exception:  # a malformed leaf is `audit`'s business, not start-up's
                continue
    return last


def restore_state(log: TransparencyLog) -> Restored:
    """The entity state a server deciding into `log` had after its last logged decision."""
    started = time.perf_counter()
    session = _last_session(log)
    start = 0 if session is None else session + 1
    state = MemoryStateStore()
    decisions = skipped = 0
    for index, data in log.leaves(start):
        item = read_item(index, bytes(data))
        if isinstance(item, LoggedDecision):
            commit_as_logged(state, item)
            decisions += 1
        elif not isinstance(item, SkippedRecord):
            skipped += 1
    return Restored(state, session, decisions, skipped, time.perf_counter() - started)
