"""What goes into the log: leaf records, and the recorder that logs decisions as they are made.

Every leaf is the RFC 8785 canonical JSON of one record `{"v": 1, "kind": …, "time": …}`:

- `decision` — the event as the engine validated it and the decision it got; `time` is the
  engine's evaluation time (its injected clock), so the same events and bundle give the same
  leaves and roots on every run;
- `bundle` — a policy bundle's publication: its digest and per-file SHA-256; the sources
  themselves are stored content-addressed beside the log so any decision can be replayed;
- `session` — an engine started deciding with empty entity state: replay starts a fresh
  state there, so two `eval --log` runs appended to one log replay as they ran;
- `event` / `decision` without the other half — what `policyengine log append` ingests.

Approvals and overrides are events, so they are logged with the decisions on them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from policyengine.canonical import dumps as canonical_dumps
from policyengine.compiler.bundle import Bundle, canonical_sources
from policyengine.events.pseudonym import carries_identifiers
from policyengine.log.errors import LogError
from policyengine.log.tlog import BundleBlob, TransparencyLog
from policyengine.runtime.decision import Decision
from policyengine.runtime.values import format_timestamp, to_jsonable

__all__ = [
    "RECORD_KINDS",
    "RECORD_VERSION",
    "DecisionRecorder",
    "bundle_blob",
    "canonical",
    "decision_record",
    "parse_record",
    "record",
]

RECORD_VERSION = 1
RECORD_KINDS = ("bundle", "decision", "event", "session")


def canonical(obj: Any) -> bytes:
    """RFC 8785 bytes: the only form in which anything is hashed or signed."""
    return canonical_dumps(obj)


def record(kind: str, time: datetime | str, **fields: Any) -> bytes:
    stamp = time if isinstance(time, str) else format_timestamp(time)
    return canonical({"v": RECORD_VERSION, "kind": kind, "time": stamp, **fields})


def decision_record(event: Mapping[str, Any], decision: Decision) -> bytes:
    """The leaf for one decision, with the validated event it judged (replayable)."""
    return record(
        "decision",
        decision.evaluated_at,
        event=to_jsonable(dict(event)),
        decision=decision.to_dict(),
    )


def bundle_blob(bundle: Bundle, time: datetime) -> BundleBlob:
    """(digest, canonical sources, publication leaf) for `TransparencyLog.append`."""
    blob = canonical_sources(bundle.files)
    if "sha256:" + hashlib.sha256(blob).hexdigest() != bundle.digest:
        raise LogError(f"bundle `{bundle.digest}` does not hash to its digest; cannot log it")
    files = {
        path: "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        for path, text in sorted(bundle.files.items())
    }
    leaf = record(
        "bundle",
        time,
        digest=bundle.digest,
        engine_version=bundle.engine_version,
        files=files,
        rules=sorted(bundle.rules),
    )
    return bundle.digest, blob, leaf


def parse_record(data: bytes, index: int | None = None) -> dict[str, Any]:
    """Decode one leaf, checking the envelope every record has."""
    where = f"leaf {index}" if index is not None else "record"
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogError(f"{where} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise LogError(f"{where} is not a JSON object")
    if obj.get("v") != RECORD_VERSION:
        raise LogError(f"{where} has record version `{obj.get('v')}`, expected {RECORD_VERSION}")
    if obj.get("kind") not in RECORD_KINDS:
        raise LogError(f"{where} has unknown kind `{obj.get('kind')}`")
    if not isinstance(obj.get("time"), str):
        raise LogError(f"{where} has no `time`")
    return obj


class DecisionRecorder:
    """Logs decisions durably, publishing each bundle the first time a decision names it.

    `record` returns only after the leaves are committed (and a checkpoint signed when the
    log has a signer): callers acknowledge a decision after that, never before. The first
    batch is preceded by a `session` record: the engine feeding this recorder started from
    empty state, which is what replay needs to know to reproduce its decisions.
    """

    def __init__(self, log: TransparencyLog, *, session: bool = True) -> None:
        """`session=False` continues the log's last session: for an engine whose state was
        restored from this log (`review approve`), so replay carries the state across."""
        self.log = log
        self._published: set[str] = set()
        self._started = not session
        self._lock = threading.Lock()

    def record(self, pairs: Sequence[tuple[Mapping[str, Any], Decision]], bundle: Bundle) -> range:
        if not pairs:
            return range(self.log.size(), self.log.size())
        blobs: list[BundleBlob] = []
        with self._lock:
            if bundle.digest not in self._published:
                blobs.append(bundle_blob(bundle, pairs[0][1].evaluated_at))
        for event, decision in pairs:
            if carries_identifiers(event):
                raise LogError(
                    f"event `{decision.event_id}` carries raw patient identifiers; pseudonymise"
                    " events before they are decided and logged (Engine(pseudonymiser=…),"
                    " --pseudonym-key)"
                )
            if decision.bundle_digest != bundle.digest:
                raise LogError(
                    f"decision `{decision.event_id}` names bundle `{decision.bundle_digest}`,"
                    f" not `{bundle.digest}`"
                )
        leaves = [decision_record(event, decision) for event, decision in pairs]
        keys: list[str | None] = [decision.event_id for _, decision in pairs]
        with self._lock:
            first = not self._started
            if first:
                keys.insert(0, None)
                leaves.insert(
                    0,
                    record(
                        "session",
                        pairs[0][1].evaluated_at,
                        engine_version=bundle.engine_version,
                        state="empty",
                    ),
                )
            indices = self.log.append(leaves, bundles=blobs, keys=keys)
            self._started = True
            self._published.add(bundle.digest)
        return indices[1:] if first else indices
