"""Verifying every electronic signature in a decision log again, independently.

The engine checks signatures as they arrive and writes the outcome into the logged event.
An inspector should not have to trust that: `reverify` walks the log as replay does (state
reset at each `session`, each decision folded in as logged), and for every signed event
recomputes the record digest from the state before it and verifies the signature against
the registry the inspector holds. Any logged status that does not come out the same is
reported — a `verified` that no longer verifies is the finding that matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policyengine.audit._common import LoggedDecision, SkippedRecord, commit_as_logged, walk
from policyengine.events import MemoryStateStore
from policyengine.log.tlog import TransparencyLog
from policyengine.oversight.attest import SIGNED_EVENT_TYPES, attest
from policyengine.oversight.registry import SignerRegistry

__all__ = ["Mismatch", "ReverifyReport", "reverify"]


@dataclass(frozen=True, slots=True)
class Mismatch:
    index: int
    event_id: str
    logged: str
    now: str
    problem: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "logged": self.logged,
            "now": self.now,
            "problem": self.problem,
        }


@dataclass(slots=True)
class ReverifyReport:
    signatures: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "signatures": self.signatures,
            "counts": dict(sorted(self.counts.items())),
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


def reverify(log: TransparencyLog, registry: SignerRegistry) -> ReverifyReport:
    """Re-check every signed event in `log` against `registry` (see the module doc)."""
    report = ReverifyReport()
    state = MemoryStateStore()
    for item in walk(log):
        if isinstance(item, SkippedRecord):
            if item.kind == "session":
                state = MemoryStateStore()
            continue
        if not isinstance(item, LoggedDecision):
            continue
        event = item.event
        if event.get("type") in SIGNED_EVENT_TYPES:
            attrs = event.get("attributes") or {}
            if attrs.get("signature") is not None:
                report.signatures += 1
                checked = attest(event, state, registry)["attributes"]
                status = str(checked["signature_status"])
                report.counts[status] = report.counts.get(status, 0) + 1
                logged = str(attrs.get("signature_status"))
                if logged != status:
                    report.mismatches.append(
                        Mismatch(
                            item.index,
                            str(event.get("id")),
                            logged,
                            status,
                            checked.get("signature_problem"),
                        )
                    )
        commit_as_logged(state, item)
    return report
