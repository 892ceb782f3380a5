"""The decision service behind `policyengine serve`, independent of HTTP.

One bundle reference, one entity state, one writer. Every decision goes through a single
writer — a commit thread when a log is kept, the event loop itself when not — so entity
state has exactly one writer and needs no lock. Requests that arrive while the writer is
busy are decided together as one *group* and made durable by one log append (one fsync,
one checkpoint signature), which is what keeps per-decision durability affordable under
concurrent load; each request still gets its answer only after its decisions are in the log.

The decision semantics are `policyengine.runtime.engine.judge`, applied as `Engine` applies
them with a recorder: each event is judged against the state its predecessors left (staged,
not yet committed), the group's leaves are appended, and only then is the staged state
committed — if the append fails, nothing is acknowledged and state is as if the events never
arrived. The service does this itself rather than through `Engine` so that one request's bad
event (say, an integer too large for canonical JSON) fails only that request, not the others
in its group, and so each event's evaluation time can be measured.

Policy reload swaps the one bundle reference; a group reads it once, so every decision sees
the old bundle or the new one, never a mix. State is not tied to a bundle: approvals and
overrides recorded before a reload keep counting after it.

Signed events are attested at intake exactly as `Engine` does it: one at a time, against the
staged state the event will be judged on, with the signer registry the group read once (the
file is re-read when it changes). Whatever a client wrote into `signature_status` is
replaced. With a log, decisions that wait for people open review items in the log's file once
they are durable (`policyengine.oversight.reviews`), as `policyengine eval --log` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyengine._gc import gc_paused
from policyengine.compiler.bundle import POLICY_SUFFIX, Bundle, load_bundle
from policyengine.events import MemoryStateStore, StateStore
from policyengine.language.diagnostics import CompileError
from policyengine.log.keys import load_signer
from policyengine.log.records import bundle_blob, canonical, decision_record, parse_record, record
from policyengine.log.tlog import TransparencyLog
from policyengine.oversight.attest import SIGNED_EVENT_TYPES, attest
from policyengine.oversight.registry import RegistryError, SignerRegistry, load_registry
from policyengine.oversight.reviews import ReviewStore
from policyengine.runtime.decision import Decision, Outcome
from policyengine.runtime.engine import judge
from policyengine.runtime.values import to_jsonable
from policyengine.server.jsonlog import LOGGER
from policyengine.server.metrics import Metrics
from policyengine.server.problems import Problem
from policyengine.server.restore import Restored, restore_state
from policyengine.server.settings import ServerSettings

__all__ = ["Decided", "DecisionService", "Verdict", "policy_fingerprint"]

#: (JSON Pointer of the event in the request body, JSON Lines line number or None)
Where = tuple[str, int | None]


@dataclass(slots=True)
class Verdict:
    """One event's answer: a new decision, or the one the log already holds for its id.

    A new decision also keeps the event as judged (signature attested) and the `Decision`
    itself, for callers that act on it (the review endpoints); neither is sent."""

    event_id: str
    outcome: str
    decision: dict[str, Any]
    log_index: int | None = None
    already_recorded: bool = False
    event: dict[str, Any] | None = field(default=None, repr=False)
    judged: Decision | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "outcome": self.outcome,
            "log_index": self.log_index,
            "already_recorded": self.already_recorded,
            "decision": self.decision,
        }


@dataclass(slots=True)
class Decided:
    """The answer to one request: its verdicts, in order, and the bundle that judged them."""

    bundle_digest: str
    recorded: bool
    verdicts: list[Verdict]


class _Staged:
    """State changes held back until the decisions that made them are durable."""

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


class _Job:
    """One request's events, decided as a unit: all of them, or (on error) none.
    `open_reviews` is false for the service's own rechecks and escalations, which answer
    review items rather than open new ones."""

    __slots__ = ("events", "future", "open_reviews", "where")

    def __init__(
        self, events: list[dict[str, Any]], where: list[Where], open_reviews: bool = True
    ) -> None:
        self.events = events
        self.where = where
        self.open_reviews = open_reviews
        self.future: Future[Decided] = Future()

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


@dataclass(slots=True)
class _Unit:
    job: _Job
    verdicts: list[Verdict]
    new: list[Verdict] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    first_time: datetime | None = None
    waiting: list[tuple[dict[str, Any], Decision]] = field(default_factory=list)


class _LogWriter:
    """Appends decision leaves; publishes each bundle before the first decision naming it and
    writes a `session` record first when this process starts from empty state (so replay
    resets its state there too). A server whose state was restored from the log writes no
    `session` record: replay carries its state across the restart, exactly as the server did.
    """

    def __init__(self, log: TransparencyLog, *, session: bool) -> None:
        self.log = log
        self._session = session
        self._published: set[str] = set()

    def append(
        self, leaves: list[bytes], keys: list[str | None], bundle: Bundle, at: datetime
    ) -> range:
        blobs = [] if bundle.digest in self._published else [bundle_blob(bundle, at)]
        session = self._session
        if session:
            mark = record("session", at, engine_version=bundle.engine_version, state="empty")
            leaves = [mark, *leaves]
            keys = [None, *keys]
        indices = self.log.append(leaves, bundles=blobs, keys=keys)
        self._session = False
        self._published.add(bundle.digest)
        return indices[1:] if session else indices


class _GroupCommitter:
    """The commit thread: takes every queued request, decides them as one group, appends."""

    def __init__(self, commit: Callable[[list[_Job]], list[_Job]], max_events: int) -> None:
        self._commit = commit
        self._max = max_events
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.pending = 0
        self._thread = threading.Thread(target=self._run, name="policyengine-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: _Job) -> None:
        with self._cond:
            if self._closed:
                raise Problem(
                    503,
                    "shutting-down",
                    "Shutting down",
                    "the server is shutting down and accepts no new decisions",
                    headers={"Retry-After": "1"},
                )
            self._queue.append(job)
            self.pending += len(job.events)
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Decide everything already queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                group = [self._queue.popleft()]
                n = len(group[0].events)
                while self._queue and n + len(self._queue[0].events) <= self._max:
                    job = self._queue.popleft()
                    group.append(job)
                    n += len(job.events)
                self.pending -= n
            try:
                deferred = self._commit(group)
            except BaseException as exc:  # never leave a request waiting on a dead thread
                for job in group:
                    job.fail(exc)
                logging.getLogger(LOGGER).exception("group commit failed")
                continue
            if deferred:
                with self._cond:
                    self._queue.extendleft(reversed(deferred))
                    self.pending += sum(len(j.events) for j in deferred)


class _Signers:
    """The signer registry file, re-read when its modification time or size changes.

    A file that goes missing or stops parsing after a change fails closed: no registry, so
    signatures are `unverified` and never count — an older registry must not keep
    verifying signatures with a key the new file revokes."""

    def __init__(self, path: str | None, logger: logging.Logger) -> None:
        self.path = path
        self.logger = logger
        self.registry: SignerRegistry | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the registry at start-up; a bad file raises `RegistryError`."""
        if self.path is None:
            return
        stamp = _stamp(self.path)
        self.registry = load_registry(self.path)
        self._stamp = stamp

    def current(self) -> SignerRegistry | None:
        if self.path is None:
            return None
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return self.registry
        with self._lock:
            if stamp == self._stamp:
                return self.registry
            fields: dict[str, Any] = {"event": "signers_reload", "path": self.path}
            try:
                registry = load_registry(self.path)
            except RegistryError as exc:
                self.registry = None
                self.logger.error(
                    "signer registry unusable: signatures are unverified until it is fixed",
                    extra={"fields": {**fields, "result": "failure", "error": str(exc)}},
                )
            else:
                self.registry = registry
                self.logger.info(
                    "signer registry reloaded",
                    extra={
                        "fields": {
                            **fields,
                            "result": "success",
                            "digest": registry.digest(),
                            "signers": len(registry.signers),
                        }
                    },
                )
            self._stamp = stamp
            return self.registry


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def policy_fingerprint(paths: Sequence[str]) -> str:
    """SHA-256 over the names and bytes of every policy file `load_bundle` would read.

    Content, not mtimes: portable across filesystems with coarse timestamps, and policy
    directories are small enough to hash on every poll.
    """
    h = hashlib.sha256()
    for p in paths:
        path = Path(p)
        files = sorted(path.rglob(f"*{POLICY_SUFFIX}")) if path.is_dir() else [path]
        for f in files:
            h.update(f.as_posix().encode("utf-8", "surrogateescape") + b"\0")
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"\1unreadable")
            h.update(b"\0")
    return h.hexdigest()


class _Watcher:
    """Polls the policy files and wakes on SIGHUP; compiles off the request path."""

    SETTLE_S = 0.1

    def __init__(self, service: DecisionService, interval: float, fingerprint: str) -> None:
        self._service = service
        self._interval = interval
        self._last = fingerprint
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="policyengine-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        paths = self._service.settings.policies
        while True:
            signalled = self._wake.wait(self._interval if self._interval > 0 else None)
            self._wake.clear()
            if self._stopping:
                return
            try:
                current = policy_fingerprint(paths)
                if not signalled and current == self._last:
                    continue
                # An editor or a deploy may be writing several files: wait until they settle.
                for _ in range(20):
                    time.sleep(self.SETTLE_S)
                    again = policy_fingerprint(paths)
                    if again == current:
                        break
                    current = again
                self._last = current
                self._service.reload("signal" if signalled else "change")
            except Exception:  # the watcher must outlive any one bad reload
                logging.getLogger(LOGGER).exception("policy watcher error")


class DecisionService:
    """Bundle, state, log and the threads around them. `open` does the fallible start-up
    work (compile, open the log, restore state); `start` starts the threads; `close` drains
    queued requests and closes the log."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.logger = logging.getLogger(LOGGER)
        self.state = MemoryStateStore()
        self.log: TransparencyLog | None = None
        self.reviews: ReviewStore | None = None
        self.restored: Restored | None = None
        self.last_reload: dict[str, Any] | None = None
        self._bundle: Bundle | None = None
        self._writer: _LogWriter | None = None
        self._committer: _GroupCommitter | None = None
        self._watcher: _Watcher | None = None
        self._fingerprint = ""
        self._log_error: str | None = None
        self._signers = _Signers(settings.signers_path, self.logger)
        self._reload_lock = threading.Lock()
        self._started = False
        self._closed = False
        self.metrics.pending_events.set_function(self._pending)
        self.metrics.count_reviews(self._review_counts)

    # ------------------------------------------------------------------ lifecycle

    @property
    def opened(self) -> bool:
        return self._bundle is not None

    @property
    def bundle(self) -> Bundle:
        """The bundle serving now (one reference; a reload replaces it whole)."""
        if self._bundle is None:
            raise RuntimeError("the decision service is not open")
        return self._bundle

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def open(self) -> None:
        """Compile the policies, open the log and rebuild state. Raises `CompileError` or
        `LogError` (with a message for the user) and leaves nothing open on failure."""
        if self.opened:
            return
        s = self.settings
        self._fingerprint = policy_fingerprint(s.policies)
        bundle = load_bundle(*s.policies)
        self._signers.load()
        if s.log_path is not None and s.key_path is not None:
            signer = load_signer(s.key_path)
            log = TransparencyLog.open(s.log_path, signer, create=True)
            try:
                if s.restore_state:
                    self.restored = restore_state(log)
                    self.state = self.restored.state
                size = log.size()
                signed = log.latest_checkpoint() is not None
                # Review items live in the log's file, next to the decisions they wait on.
                self.reviews = ReviewStore(s.log_path)
            except BaseException:
                log.close()
                raise
            # A restored, non-empty state continues the log's last session; otherwise this
            # process starts one.
            self._writer = _LogWriter(log, session=len(self.state) == 0)
            self.log = log
            self.metrics.log_leaves.set(size)
            if signed:
                self.metrics.checkpoint_signed(_mtime(s.log_path))
        self._bundle = bundle
        self.metrics.serving(bundle)

    def start(self) -> None:
        if self._started:
            return
        self.open()
        self._started = True
        if self._writer is not None:
            self._committer = _GroupCommitter(self._commit, self.settings.group_max_events)
            self._committer.start()
        self._watcher = _Watcher(self, self.settings.reload_interval_s, self._fingerprint)
        self._watcher.start()
        self._announce()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.stop()
        if self._committer is not None:
            self._committer.close()
        if self.reviews is not None:
            self.reviews.close()
        if self.log is not None:
            self.log.close()
        self.logger.info("decision service stopped", extra={"fields": {"event": "stopped"}})

    def request_reload(self) -> None:
        """Ask the watcher to recompile now (what SIGHUP does); returns at once."""
        if self._watcher is not None:
            self._watcher.poke()

    def _pending(self) -> float:
        return float(self._committer.pending) if self._committer is not None else 0.0

    def review_now(self) -> datetime:
        """`now` for review deadlines: the service's clock, asked about the present (the
        wall clock, unless the server runs on a fixed `--now`)."""
        return self.settings.clock({"time": datetime.now(UTC)})

    def _review_counts(self) -> dict[str, int] | None:
        return None if self.reviews is None else self.reviews.counts(self.review_now())

    @property
    def signers(self) -> SignerRegistry | None:
        """The signer registry in force now (re-read if its file changed)."""
        return self._signers.current()

    def _announce(self) -> None:
        b = self.bundle
        fields: dict[str, Any] = {
            "event": "started",
            "bundle_digest": b.digest,
            "rules": len(b.rules),
            "policies": list(self.settings.policies),
            "reload_interval_s": self.settings.reload_interval_s,
            "auth": self.settings.token is not None,
            "signers": self.settings.signers_path,
        }
        if self.log is not None:
            fields["log"] = self.settings.log_path
            fields["log_leaves"] = self.log.size()
            if self.restored is not None:
                fields["restored_entities"] = len(self.state)
                fields["restored_decisions"] = self.restored.decisions
                fields["restore_seconds"] = round(self.restored.seconds, 3)
        self.logger.info("decision service started", extra={"fields": fields})
        if self.log is None:
            self.logger.warning(
                "no decision log: decisions are not recorded and entity state is lost on exit"
                " (start with --log and --key to record them)",
                extra={"fields": {"event": "no_log"}},
            )

    def readiness(self, *, strict: bool = True) -> list[str]:
        """Why the service should not be sent decisions now; empty when it can take them.

        `strict` also counts a failed last log append: readiness probes then route traffic
        away, while requests that still arrive are attempted (each one is the retry that
        finds out whether the log has recovered)."""
        reasons: list[str] = []
        if not self._started or self._closed:
            reasons.append("the decision service is not running")
        if self._committer is not None and not self._committer.alive:
            reasons.append("the commit thread has stopped")
        if strict and self._log_error is not None:
            reasons.append(f"the last log append failed: {self._log_error}")
        return reasons

    # ------------------------------------------------------------------ deciding

    async def decide(self, events: list[dict[str, Any]], where: list[Where]) -> Decided:
        """Decide validated events as one unit; with a log, return once they are durable."""
        if self._closed:
            raise Problem(
                503, "shutting-down", "Shutting down", "the server is shutting down",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        job = _Job(events, where)
        if self._committer is None:
            self._commit([job])  # no log: no I/O, decide on the event loop (one writer)
            return job.future.result()
        self._committer.submit(job)
        return await asyncio.wrap_future(job.future)

    def decide_blocking(
        self, events: list[dict[str, Any]], where: list[Where], *, open_reviews: bool = True
    ) -> Decided:
        """`decide` for a worker thread (never the event loop): queue the events for the
        commit thread and wait until they are durable. Needs a log."""
        if self._closed:
            raise Problem(
                503, "shutting-down", "Shutting down", "the server is shutting down",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        if self._committer is None:
            raise RuntimeError("deciding from a worker thread needs the commit thread (a log)")
        job = _Job(events, where, open_reviews)
        self._committer.submit(job)
        return job.future.result()

    def _commit(self, jobs: list[_Job]) -> list[_Job]:
        """Decide a group, append it, then commit its state; returns jobs to retry next."""
        bundle = self.bundle  # read once: the whole group is judged by one bundle
        signers = self._signers.current()  # and checked against one signer registry
        staged = _Staged(self.state)
        seen: set[str] = set()
        deferred: list[_Job] = []
        units: list[_Unit] = []
        with gc_paused():
            for job in jobs:
                ids = [str(ev["id"]) for ev in job.events]
                if not seen.isdisjoint(ids):
                    deferred.append(job)  # the same id twice in a group: decide it after
                    continue
                try:
                    units.append(self._decide_unit(bundle, staged, job, signers))
                except Problem as p:
                    job.fail(p)
                    continue
                except Exception as exc:
                    self.logger.exception(
                        "deciding failed", extra={"fields": {"events": len(job.events)}}
                    )
                    job.fail(exc)
                    continue
                seen.update(ids)
        indices: range | None = None
        new = [v for u in units for v in u.new]
        if self._writer is not None and new:
            leaves = [leaf for u in units for leaf in u.leaves]
            keys: list[str | None] = [v.event_id for v in new]
            at = next(u.first_time for u in units if u.first_time is not None)
            started = time.perf_counter()
            try:
                indices = self._writer.append(leaves, keys, bundle, at)
            except Exception as exc:
                self._log_failed(exc, units, len(leaves))
                return deferred
            self._log_error = None
            now = time.time()
            self.metrics.log_append_seconds.observe(time.perf_counter() - started)
            self.metrics.log_leaves.set(indices.stop)
            self.metrics.checkpoint_signed(now)
        staged.flush()
        if indices is not None:
            for verdict, index in zip(new, indices, strict=True):
                verdict.log_index = index
        self._open_reviews(units)
        self.metrics.group_events.observe(sum(len(u.job.events) for u in units))
        for unit in units:
            unit.job.future.set_result(
                Decided(bundle.digest, self._writer is not None, unit.verdicts)
            )
        return deferred

    def _log_failed(self, exc: Exception, units: list[_Unit], leaves: int) -> None:
        self.metrics.log_append_failures.inc()
        self._log_error = str(exc) or type(exc).__name__
        self.logger.error(
            "decision log append failed; nothing acknowledged",
            exc_info=exc,
            extra={"fields": {"event": "log_append_failed", "leaves": leaves}},
        )
        problem = Problem(
            503,
            "log-unavailable",
            "Decision log unavailable",
            "the decisions could not be made durable, so none was acknowledged and entity"
            " state is unchanged; retry later",
            headers={"Retry-After": "1"},
        )
        for unit in units:
            unit.job.fail(problem)

    def _open_reviews(self, units: list[_Unit]) -> None:
        """Open the review items that durable decisions wait on (after the append, like
        `policyengine eval --log`: an item never names a decision the log lacks)."""
        if self.reviews is None:
            return
        for unit in units:
            for event, decision in unit.waiting:
                try:
                    opened = self.reviews.open_for(event, decision)
                except Exception:
                    # The decision is durable and answered; the item can be opened again
                    # from the log (`review_id` is deterministic), so say so loudly.
                    self.logger.exception(
                        "could not open review items for a decision that waits on review",
                        extra={"fields": {"event": "review_open_failed", "id": event["id"]}},
                    )
                    continue
                self.metrics.review_action("opened", len(opened))

    def _decide_unit(
        self, bundle: Bundle, staged: _Staged, job: _Job, signers: SignerRegistry | None
    ) -> _Unit:
        state = _Staged(staged)  # this request's changes, dropped if it fails
        prior = self._recorded_before(job) if self._writer is not None else {}
        unit = _Unit(job, [])
        clock = self.settings.clock
        observe = self.metrics.evaluation_seconds.observe
        waiting = job.open_reviews and self.reviews is not None
        for pos, event in enumerate(job.events):
            hit = prior.get(pos)
            if hit is not None:
                unit.verdicts.append(hit)
                continue
            t0 = time.perf_counter()
            # one at a time: a signature is checked against the state its predecessors left
            event = attest(event, state, signers)
            decision = judge(bundle, state, event, clock(event))
            observe(time.perf_counter() - t0)
            if self._writer is not None:
                try:
                    unit.leaves.append(decision_record(event, decision))
                except ValueError as exc:  # rfc8785: e.g. an integer beyond 2**53
                    base, line = job.where[pos]
                    raise _unrecordable(exc, base, line) from None
                if unit.first_time is None:
                    unit.first_time = decision.evaluated_at
            verdict = Verdict(
                decision.event_id,
                decision.outcome.value,
                decision.to_dict(),
                event=event,
                judged=decision,
            )
            unit.verdicts.append(verdict)
            unit.new.append(verdict)
            if waiting and decision.outcome is Outcome.REVIEW_REQUIRED and decision.reviews:
                unit.waiting.append((event, decision))
            self.metrics.observe_decision(decision)
        state.flush()
        return unit

    def _recorded_before(self, job: _Job) -> dict[int, Verdict]:
        """Events whose id the log already holds a decision for: event ids are idempotency
        keys, so a retried request gets the recorded decision instead of a second one."""
        assert self.log is not None
        out: dict[int, Verdict] = {}
        for pos, event in enumerate(job.events):
            event_id = str(event["id"])
            found = self.log.find(event_id)
            if not found:
                continue
            index = found[-1]
            rec = parse_record(self.log.leaf(index), index)
            decision = rec.get("decision")
            if rec["kind"] != "decision" or not isinstance(decision, dict):
                continue
            if not _same_event(rec.get("event"), event):
                base, line = job.where[pos]
                entry: dict[str, Any] = {
                    "pointer": base.rstrip("/") + "/id",
                    "detail": f"`id`: `{event_id}` was already decided for a different event",
                }
                if line is not None:
                    entry["line"] = line
                raise Problem(
                    409,
                    "event-id-conflict",
                    "Event id already used",
                    f"event id `{event_id}` was already decided (log leaf {index}) for a"
                    " different event; an event id names one event, so send a new event"
                    " with a new id",
                    errors=[entry],
                    log_index=index,
                )
            self.metrics.already_recorded.inc()
            out[pos] = Verdict(
                event_id, str(decision.get("outcome")), decision, index, already_recorded=True
            )
        return out

    # ------------------------------------------------------------------ reload

    def reload(self, reason: str = "manual") -> bool:
        """Compile the policies again and, if they compile, serve them. A bundle that does
        not compile is rejected: the old one keeps serving. Returns whether it compiled."""
        with self._reload_lock:
            old = self.bundle
            started = time.perf_counter()
            try:
                new = load_bundle(*self.settings.policies)
            except Exception as exc:
                self._reload_failed(exc, old, reason)
                return False
            self._bundle = new  # the swap: one reference, read once per group
            seconds = time.perf_counter() - started
            self.metrics.serving(new)
            self.metrics.reload_attempt(True)
            self.last_reload = {
                "ok": True,
                "reason": reason,
                "at": time.time(),
                "bundle_digest": new.digest,
            }
            self.logger.info(
                "policy bundle reloaded"
                if new.digest != old.digest
                else "policy bundle reloaded (unchanged)",
                extra={
                    "fields": {
                        "event": "bundle_reload",
                        "result": "success",
                        "reason": reason,
                        "old_digest": old.digest,
                        "bundle_digest": new.digest,
                        "rules": len(new.rules),
                        "seconds": round(seconds, 4),
                    }
                },
            )
            return True

    def _reload_failed(self, exc: Exception, old: Bundle, reason: str) -> None:
        self.metrics.reload_attempt(False)
        if isinstance(exc, CompileError):
            diagnostics = [
                f"{d.span.file}:{d.span.line}:{d.span.column}: {d.code.value}: {d.message}"
                for d in exc.diagnostics
            ]
            self.logger.error(
                "policy bundle rejected: it does not compile; still serving the previous one",
                extra={
                    "fields": {
                        "event": "bundle_reload",
                        "result": "failure",
                        "reason": reason,
                        "bundle_digest": old.digest,
                        "diagnostics": diagnostics,
                    }
                },
            )
        else:
            diagnostics = [f"{type(exc).__name__}: {exc}"]
            self.logger.error(
                "policy bundle reload failed; still serving the previous one",
                exc_info=exc,
                extra={
                    "fields": {
                        "event": "bundle_reload",
                        "result": "failure",
                        "reason": reason,
                        "bundle_digest": old.digest,
                    }
                },
            )
        self.last_reload = {
            "ok": False,
            "reason": reason,
            "at": time.time(),
            "bundle_digest": old.digest,
            "diagnostics": diagnostics,
        }

    # ------------------------------------------------------------------ reading the log

    def find(self, event_id: str) -> list[int]:
        return [] if self.log is None else self.log.find(event_id)


def _same_event(logged: Any, event: dict[str, Any]) -> bool:
    if logged is None:
        return False
    try:
        return canonical(_as_sent(logged)) == canonical(_as_sent(to_jsonable(dict(event))))
    except ValueError:
        return False


_ATTESTED = ("signature_status", "signature_problem")


def _as_sent(event: Any) -> Any:
    """A signed event without what attestation writes: the log holds the attested event, a
    retry carries whatever the client wrote there, and both are the same event."""
    if not isinstance(event, dict) or event.get("type") not in SIGNED_EVENT_TYPES:
        return event
    attrs = event.get("attributes")
    if not isinstance(attrs, dict):
        return event
    return {**event, "attributes": {k: v for k, v in attrs.items() if k not in _ATTESTED}}


def _unrecordable(exc: ValueError, base: str, line: int | None) -> Problem:
    entry: dict[str, Any] = {"pointer": base, "detail": f"cannot be logged: {exc}"}
    if line is not None:
        entry["line"] = line
    return Problem(
        422,
        "unrecordable-event",
        "Event cannot be recorded",
        f"the event cannot be written to the decision log as canonical JSON ({exc}); integers"
        " must lie within ±2**53 and numbers must be finite",
        errors=[entry],
    )


def _mtime(path: str) -> float:
    """When the log was last written: the newest of the database and its WAL."""
    times = [os.path.getmtime(p) for p in (path, path + "-wal") if os.path.exists(p)]
    return max(times) if times else time.time()
