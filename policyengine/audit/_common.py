"""Reading logged decisions back for replay: records, stored bundles and decision comparison.

`replay` and `diff` walk the log the same way and must agree on what a leaf means, which
events can be judged again and how two decisions differ; that shared reading lives here.
Leaves are untrusted input (the log proves order and integrity, not that a record is well
formed), so every field is checked before it is used and a bad record becomes a
`NotReplayable` entry rather than an exception.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from policyengine.compiler.bundle import Bundle, compile_sources
from policyengine.events import EventError, StateStore, parse_event, reduce_event
from policyengine.language.diagnostics import CompileError
from policyengine.log.errors import LogError
from policyengine.log.records import canonical, parse_record
from policyengine.log.store import LogStore
from policyengine.log.tlog import TransparencyLog

#: The status used for a rule that one decision triggered and the other did not.
NOT_TRIGGERED = "not_triggered"

#: Stable reason codes for records that cannot be judged again.
NO_EVENT = "no_event"
MISSING_BUNDLE = "missing_bundle"
BAD_BUNDLE = "bad_bundle"
COMPILE_ERROR = "compile_error"
INVALID_EVENT = "invalid_event"
MALFORMED_RECORD = "malformed_record"


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One rule whose status differs; `NOT_TRIGGERED` when a decision has no result for it."""

    rule: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class NotReplayable:
    """A logged decision that could not be judged again, and why (`code` is stable)."""

    index: int
    event_id: str | None
    code: str
    reason: str

    @property
    def by_design(self) -> bool:
        """Decisions logged without their event (`policyengine log append`) can never be
        replayed; every other reason means the log or the engine lost something."""
        return self.code == NO_EVENT


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A leaf that is not a decision (a bundle publication or a bare event)."""

    index: int
    kind: str


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """A decision record with the event it judged, validated again and ready to replay."""

    index: int
    decision: dict[str, Any]
    event: dict[str, Any]
    evaluated_at: datetime
    bundle_digest: str

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def outcome(self) -> str:
        return str(self.decision.get("outcome"))


LogItem = LoggedDecision | NotReplayable | SkippedRecord


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo is not None else None


def _event_id(decision: Any, event: Any) -> str | None:
    for source in (event, decision.get("event") if isinstance(decision, dict) else None):
        if isinstance(source, dict) and isinstance(source.get("id"), str):
            return str(source["id"])
    return None


def read_item(index: int, data: bytes) -> LogItem:
    """Classify one leaf. Events are re-validated with `parse_event`, exactly as the engine
    validated them before deciding, so a replay judges what the engine judged."""
    try:
        rec = parse_record(data, index)
    except LogError as exc:
        return NotReplayable(index, None, MALFORMED_RECORD, str(exc))
    kind = str(rec["kind"])
    if kind != "decision":
        return SkippedRecord(index, kind)
    decision, raw_event = rec.get("decision"), rec.get("event")
    event_id = _event_id(decision, raw_event)
    if not isinstance(decision, dict):
        return NotReplayable(index, event_id, MALFORMED_RECORD, "the record holds no decision")
    if raw_event is None:
        return NotReplayable(
            index,
            event_id,
            NO_EVENT,
            "the decision was logged without the event it judged (`policyengine log append`)",
        )
    digest = decision.get("bundle_digest")
    if not isinstance(digest, str):
        return NotReplayable(index, event_id, MALFORMED_RECORD, "the decision names no bundle")
    at = _parse_time(decision.get("evaluated_at"))
    if at is None:
        return NotReplayable(
            index,
            event_id,
            MALFORMED_RECORD,
            f"the decision's `evaluated_at` `{decision.get('evaluated_at')}` is not an RFC 3339"
            " timestamp with a timezone",
        )
    try:
        event = parse_event(raw_event)
    except EventError as exc:
        return NotReplayable(
            index, event_id, INVALID_EVENT, f"the logged event no longer validates: {exc}"
        )
    return LoggedDecision(index, decision, event, at, digest)


def walk(log: TransparencyLog) -> Iterator[LogItem]:
    """Every leaf in log order, classified."""
    for index, data in log.leaves():
        yield read_item(index, bytes(data))


class BundleUnavailable(Exception):
    """A logged bundle digest that cannot be turned back into a bundle; `code` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BundleCache:
    """Loads stored bundles by digest and compiles each once (failures are cached too)."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._cache: dict[str, Bundle | BundleUnavailable] = {}

    def get(self, digest: str) -> Bundle:
        found = self._cache.get(digest)
        if found is None:
            found = self._cache[digest] = self._load(digest)
        if isinstance(found, BundleUnavailable):
            raise found
        return found

    def _load(self, digest: str) -> Bundle | BundleUnavailable:
        blob = self.store.get_bundle(digest)
        if blob is None:
            return BundleUnavailable(
                MISSING_BUNDLE, f"bundle `{digest}` is not stored beside the log"
            )
        if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
            return BundleUnavailable(
                BAD_BUNDLE, f"stored bundle `{digest}` does not match its digest"
            )
        try:
            files = json.loads(blob)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return BundleUnavailable(BAD_BUNDLE, f"stored bundle `{digest}` is not JSON: {exc}")
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            return BundleUnavailable(
                BAD_BUNDLE, f"stored bundle `{digest}` is not a map of path to policy source"
            )
        try:
            bundle = compile_sources(files)
        except CompileError as err:
            first = err.diagnostics[0] if err.diagnostics else None
            where = f" ({first.span.file}:{first.span.line}: {first.message})" if first else ""
            n = len(err.diagnostics)
            return BundleUnavailable(
                COMPILE_ERROR,
                f"bundle `{digest}` no longer compiles: {n} problem{'s' if n != 1 else ''}{where}",
            )
        if bundle.digest != digest:  # compile_sources hashes the same bytes; defensive
            return BundleUnavailable(
                BAD_BUNDLE, f"stored bundle `{digest}` compiles to digest `{bundle.digest}`"
            )
        return bundle


def commit_as_logged(state: StateStore, item: LoggedDecision) -> None:
    """Fold an event that could not be judged into state the way the logged decision did
    (committed unless denied), so later decisions still see the history they were made on."""
    change = reduce_event(state, item.event)
    if change is not None and item.decision.get("outcome") != "deny":
        state.put(*change)


# ---------------------------------------------------------------- comparing decisions


def rule_statuses(decision: Mapping[str, Any]) -> dict[str, str]:
    """{rule id: status} of a decision dict; malformed entries are ignored."""
    out: dict[str, str] = {}
    results = decision.get("results")
    if isinstance(results, list):
        for r in results:
            if isinstance(r, dict) and isinstance(r.get("rule"), str):
                out[r["rule"]] = str(r.get("status"))
    return out


def rule_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[RuleChange, ...]:
    """Rules whose status differs between two decision dicts, by rule id."""
    before, after = rule_statuses(old), rule_statuses(new)
    changes = []
    for rule in sorted(before.keys() | after.keys()):
        b, a = before.get(rule, NOT_TRIGGERED), after.get(rule, NOT_TRIGGERED)
        if b != a:
            changes.append(RuleChange(rule, b, a))
    return tuple(changes)


def _keyed_results(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, list) or not all(
        isinstance(r, dict) and isinstance(r.get("rule"), str) for r in value
    ):
        return None
    keyed = {r["rule"]: r for r in value}
    return keyed if len(keyed) == len(value) else None


def field_paths(old: Any, new: Any, *, limit: int = 8) -> tuple[str, ...]:
    """Paths (`outcome`, `results[gxp.x].message`, …) where two decision dicts differ.

    Results are matched by rule id rather than position, so one extra rule reads as one
    change instead of shifting every later result. At most `limit` paths are returned.
    """
    out: list[str] = []

    def visit(a: Any, b: Any, path: str) -> None:
        if len(out) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                sub = f"{path}.{key}" if path else str(key)
                if (key in a) != (key in b):
                    out.append(sub)
                    continue
                if key == "results":
                    ka, kb = _keyed_results(a.get(key)), _keyed_results(b.get(key))
                    if ka is not None and kb is not None:
                        for rule in sorted(ka.keys() | kb.keys()):
                            visit(ka.get(rule), kb.get(rule), f"{sub}[{rule}]")
                        continue
                visit(a.get(key), b.get(key), sub)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                visit(x, y, f"{path}[{i}]")
        else:
            out.append(path or "<decision>")

    visit(old, new, "")
    return tuple(out)


def canonical_or_none(obj: Any) -> bytes | None:
    """Canonical bytes of a logged value, or None when it has no canonical form (e.g. NaN)."""
    try:
        return canonical(obj)
    except (TypeError, ValueError, OverflowError):
        return None


def human_status(status: str) -> str:
    return "not triggered" if status == NOT_TRIGGERED else status
