"""`policyengine ingest`: external records → canonical events → decisions and lineage.

One command for the whole intake path: an adapter translates a source (OpenLineage events,
MLflow runs, SageMaker EventBridge events, …), every event is validated and decided against
the policies, its lineage goes into the store and, with `--log`, each decision into the
signed log. Bad records are reported with their location and skipped; the exit code says
whether anything was blocking (1) or malformed (2).

With `--log`, one ingest continues where the last one into the same log stopped: the entity
state is restored from the log (as `policyengine review` and a restarted server do) and the
log's session goes on, so an incremental source (MLflow `?state=`, a second OpenLineage batch)
is judged against what earlier runs registered, and `audit replay` reproduces both runs as one
stream. Event ids are idempotency keys: an event the log already holds a decision for is not
decided again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import click

from policyengine.adapter import AdapterError, Located, available_adapters, get_adapter
from policyengine.audit.restore import restore_state
from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Sink,
    load_policies,
    no_color_option,
    parse_now,
    settings,
)
from policyengine.cli.evaluate import FAIL_ON, LOG_BATCH, logged
from policyengine.compiler.bundle import Bundle
from policyengine.events import EventError, MemoryStateStore, parse_event
from policyengine.events.pseudonym import Pseudonymiser, load_pseudonym_key, require_pseudonymised
from policyengine.lineage import LineageError, SQLiteLineageStore
from policyengine.log import DecisionRecorder, LogError, TransparencyLog, load_signer
from policyengine.log.records import canonical, parse_record
from policyengine.reports._common import OutcomeTally
from policyengine.reports.decisions import decision_json_line, decisions_text
from policyengine.runtime.clock import Clock
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import Engine
from policyengine.runtime.values import to_jsonable

__all__ = ["ingest"]

EPILOG = """\b
Exit codes:
  0  every record was translated and decided, none reached --fail-on
  1  a decision reached --fail-on (default: deny or review_required)
  2  usage or input error, or some records could not be translated or validated
     (the others are still decided and recorded)
"""


class _Intake:
    """Adapter output → validated events, reporting bad records as it goes."""

    def __init__(
        self,
        adapter_name: str,
        source: str,
        pseudonyms: Pseudonymiser | None = None,
        storing: bool = False,
    ) -> None:
        self.adapter = get_adapter(adapter_name)
        self.source = source
        self.pseudonyms = pseudonyms
        self.storing = storing
        self.bad = 0

    def events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        s = settings()
        for n, item in enumerate(self.adapter.events(self.source), start=1):
            if isinstance(item, AdapterError):
                self.bad += 1
                s.error(item.render(), item.hint)
                continue
            where = f"{self.source}: record {n}"
            if isinstance(item, Located):
                where, item = item.location, item.event
            try:
                event = parse_event(item)
                if self.pseudonyms is not None or self.storing:
                    event = require_pseudonymised(event, self.pseudonyms)
                yield n, event
            except EventError as err:
                self.bad += 1
                ident = item.get("id") if isinstance(item, dict) else None
                if isinstance(ident, str):
                    where += f" (`{ident}`)"
                s.error(f"{where}: {err.message}")
                for _field, message in err.details:
                    s.note(f"       {message}")


class _Decided:
    """Which events were decided already, by this run or (in the log) by an earlier one.

    Event ids are idempotency keys, as for the server (`_recorded_before`): an event whose id
    the log holds a decision for is skipped, and counted, rather than decided twice; the same
    id with other content is an input error. Decisions of this run reach the log in batches,
    so the ids decided so far are also kept here."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log
        self.skipped = 0
        self._digests: dict[str, bytes] = {}

    def before(self, n: int, event: dict[str, Any], intake: _Intake) -> bool:
        """Whether `event` was decided before (then it is skipped, or reported)."""
        event_id = str(event["id"])
        digest = hashlib.sha256(canonical(to_jsonable(dict(event)))).digest()
        seen = self._digests.get(event_id)
        where = f"record {n}"
        if seen is None:
            found = self.log.find(event_id)
            leaf = found[-1] if found else None
            logged = parse_record(self.log.leaf(leaf), leaf) if leaf is not None else None
            if logged is None or logged["kind"] != "decision" or not logged.get("decision"):
                self._digests[event_id] = digest
                return False
            event_logged = logged.get("event")  # a decision logged without it: a conflict
            seen = b"" if event_logged is None else hashlib.sha256(canonical(event_logged)).digest()
            where += f" (log leaf {leaf})"
        if seen != digest:
            intake.bad += 1
            settings().error(
                f"{where}: event `{event_id}` was already decided for a different event;"
                " it is not decided again",
                "an event id names one event: give a changed event a new id",
            )
        else:
            self.skipped += 1
        return True


def _decide(
    intake: _Intake,
    bundle: Bundle,
    clock: Clock,
    store: SQLiteLineageStore | None,
    state: MemoryStateStore | None = None,
    decided: _Decided | None = None,
) -> Iterator[tuple[int, dict[str, Any], Decision]]:
    engine = Engine(bundle, state, clock=clock)
    for n, event in intake.events():
        if store is not None:
            result = store.record(event, on_conflict="skip")
            if result.conflicts:
                settings().warn(
                    f"record {n}: event `{event['id']}` was recorded before with other"
                    " content; its lineage was not changed"
                )
        if decided is not None and decided.before(n, event, intake):
            continue
        yield n, event, engine.evaluate(event, validated=True)


@click.command("ingest", epilog=EPILOG)
@click.option(
    "--adapter",
    "-a",
    "adapter_name",
    required=True,
    metavar="NAME",
    help="Which adapter reads SOURCE (`policyengine adapters` lists them).",
)
@click.argument("source", metavar="SOURCE")
@click.option(
    "--policies", "-p", "policies", required=True, multiple=True, metavar="PATH",
    help="Policy file or directory (repeatable).",
)  # fmt: skip
@click.option(
    "--store", "store_path", metavar="DB", help="Record lineage in this store (created if missing)."
)
@click.option(
    "--log",
    "log_path",
    metavar="DB",
    help="Append every decision to this signed log, continuing from the state it records; "
    "events it already holds are not decided again.",
)
@click.option("--key", "key_path", metavar="KEYFILE", help="The log's private key (with --log).")
@click.option(
    "--pseudonym-key",
    "pseudonym_key",
    metavar="FILE",
    help="Pseudonymise patient identifiers before anything is decided or stored; required "
    "with --store or --log when records carry identifiers.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
)
@click.option("--now", metavar="TIMESTAMP|wall", help="Evaluation time (default: event time).")
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "review", "warn"], case_sensitive=False),
    default="review",
    show_default=True,
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE.")
@no_color_option
def ingest(
    adapter_name: str,
    source: str,
    policies: tuple[str, ...],
    store_path: str | None,
    log_path: str | None,
    key_path: str | None,
    pseudonym_key: str | None,
    fmt: str,
    now: str | None,
    fail_on: str,
    output: str | None,
) -> None:
    """Translate SOURCE with an adapter, decide every event and record its lineage."""
    s = settings()
    if (log_path is None) != (key_path is None):
        raise CliError("--log and --key go together")
    try:
        pseudonyms = load_pseudonym_key(pseudonym_key) if pseudonym_key is not None else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    storing = store_path is not None or log_path is not None
    try:
        intake = _Intake(adapter_name, source, pseudonyms, storing)
    except AdapterError as exc:
        raise CliError(exc.render(), exc.hint) from None
    bundle = load_policies(policies)
    clock = parse_now(now)
    store = None
    log = None
    seen: _Decided | None = None
    try:
        if store_path is not None:
            store = SQLiteLineageStore(store_path, create=True)
        state = None
        if log_path is not None and key_path is not None:
            log = TransparencyLog.open(log_path, load_signer(key_path), create=True)
            state = _restored(log)
            seen = _Decided(log)
        decided = _decide(intake, bundle, clock, store, state, seen)
        tally = OutcomeTally()
        if log is not None:
            # A restored, non-empty state continues the log's last session (no `session`
            # record), so replay carries the state across runs exactly as this run did.
            recorder = DecisionRecorder(log, session=state is None or len(state) == 0)
            decisions = tally.watch(logged(decided, recorder, bundle, LOG_BATCH))
        else:
            decisions = tally.watch(d for _n, _e, d in decided)
        with Sink(output, s.stdout_color) as sink:
            if fmt == "json":
                for d in decisions:
                    sink.write_bytes(decision_json_line(d))
            else:
                sink.write_text(decisions_text(decisions, color=sink.color, width=s.width()))
    except AdapterError as exc:  # the source as a whole could not be read
        raise CliError(exc.render(), exc.hint) from None
    except (LineageError, LogError) as exc:
        raise CliError(str(exc)) from None
    finally:
        if store is not None:
            store.close()
        if log is not None:
            log.close()
    if output is not None or fmt != "text":  # the text report ends with the same summary
        s.note(tally.summary())
    if seen is not None and seen.skipped:
        k = seen.skipped
        s.note(
            f"{k} event{'s' if k != 1 else ''} already decided in `{log_path}`"
            f" {'were' if k != 1 else 'was'} skipped"
        )
    if intake.bad:
        n = intake.bad
        s.error(f"{n} record{'s' if n != 1 else ''} of `{source}` could not be ingested")
        click.get_current_context().exit(EXIT_USAGE)
    click.get_current_context().exit(EXIT_FINDINGS if tally.any_of(FAIL_ON[fail_on]) else EXIT_OK)


def _restored(log: TransparencyLog) -> MemoryStateStore:
    """The entity state the log's last session left (`policyengine.audit.restore`)."""
    restored = restore_state(log)
    if restored.skipped:
        n = restored.skipped
        settings().warn(
            f"{n} decision record{'s' if n != 1 else ''} in the log could not be read; the"
            " state is restored without them (`policyengine audit replay` says which)"
        )
    return restored.state


@click.command("adapters")
@no_color_option
def list_adapters() -> None:
    """List the installed adapters (built in and from the `policyengine.adapters` entry points)."""
    for name, factory in available_adapters().items():
        try:
            summary = factory().summary
        except AdapterError as exc:
            summary = f"(unavailable: {exc.render()})"
        click.echo(f"{name:<14} {summary}")
