"""`policyengine eval`: decide a JSONL event stream against a policy bundle."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    EventStream,
    Sink,
    load_policies,
    no_color_option,
    parse_now,
    settings,
)
from policyengine.cli.oversight_common import clock_now, load_signers, open_reviews
from policyengine.compiler.bundle import Bundle
from policyengine.events import EventError
from policyengine.events.pseudonym import Pseudonymiser, load_pseudonym_key, require_pseudonymised
from policyengine.log import DecisionRecorder, TransparencyLog, load_signer
from policyengine.oversight.registry import SignerRegistry
from policyengine.oversight.reviews import ReviewStore
from policyengine.reports._common import OutcomeTally, dumps
from policyengine.reports.decisions import decision_json_line, decisions_junit, decisions_text
from policyengine.reports.sarif import decisions_sarif
from policyengine.runtime.clock import Clock
from policyengine.runtime.decision import Decision, Outcome
from policyengine.runtime.engine import Engine

FAIL_ON = {
    "deny": (Outcome.DENY,),
    "review": (Outcome.DENY, Outcome.REVIEW_REQUIRED),
    "warn": (Outcome.DENY, Outcome.REVIEW_REQUIRED, Outcome.ALLOW_WITH_WARNINGS),
}

EPILOG = """\b
Exit codes:
  0  no decision reached the --fail-on threshold
  1  at least one decision did (default: deny or review_required)
  2  usage or input error: bad options, policies that do not compile, a
     missing events file, or any malformed event line (the other lines are
     still decided and reported)
"""

LOG_BATCH = 512

NOW_HELP = (
    "Evaluation time that policies see as `now`: an RFC 3339 timestamp, or `wall` for "
    "the current time. Default: each event's own time (reproducible replays)."
)


def decide(stream: EventStream, bundle: Bundle, clock: Clock) -> Iterator[tuple[int, Decision]]:
    """Replay the stream through a stateful engine, yielding `(line, decision)`;
    events the engine rejects are reported like malformed lines."""
    for line, _event, decision in decide_events(stream, bundle, clock):
        yield line, decision


def decide_events(
    stream: EventStream,
    bundle: Bundle,
    clock: Clock,
    pseudonyms: Pseudonymiser | None = None,
    *,
    storing: bool = False,
    signers: SignerRegistry | None = None,
) -> Iterator[tuple[int, dict[str, Any], Decision]]:
    """Decide each event; pseudonymise it first when a key is given, and when decisions are
    stored refuse (as a bad line) any event with raw patient identifiers and no key."""
    engine = Engine(bundle, clock=clock, signers=signers)
    for line, event in stream.events():
        try:
            if pseudonyms is not None or storing:
                event = require_pseudonymised(event, pseudonyms)
            decision = engine.evaluate(event, validated=True)
        except EventError as err:
            stream.reject(line, err)
            continue
        yield line, event, decision


def logged(
    decided: Iterator[tuple[int, dict[str, Any], Decision]],
    recorder: DecisionRecorder,
    bundle: Bundle,
    batch: int = LOG_BATCH,
    reviews: ReviewStore | None = None,
) -> Iterator[Decision]:
    """Yield decisions only once they are durable in the log (committed and checkpointed),
    in batches so one fsync and one signature cover many decisions. Decisions that wait
    for people open review items in `reviews` once they are durable."""
    pending: list[tuple[dict[str, Any], Decision]] = []

    def flush() -> Iterator[Decision]:
        recorder.record(pending, bundle)
        if reviews is not None:
            for event, decision in pending:
                if decision.reviews:
                    reviews.open_for(event, decision)
        yield from (d for _e, d in pending)

    for _line, event, decision in decided:
        pending.append((event, decision))
        if len(pending) >= batch:
            yield from flush()
            pending = []
    if pending:
        yield from flush()


def _pseudonymiser(path: str | None) -> Pseudonymiser | None:
    if path is None:
        return None
    try:
        return load_pseudonym_key(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None


@click.command("eval", epilog=EPILOG)
@click.option(
    "--policies",
    "-p",
    "policies",
    required=True,
    multiple=True,
    metavar="PATH",
    help="Policy file or directory (repeatable).",
)
@click.option(
    "--events",
    "-e",
    "events",
    required=True,
    metavar="FILE",
    help="JSON Lines event log, one event per line; `-` reads stdin.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit", "sarif"], case_sensitive=False),
    default="text",
    show_default=True,
    help="text: table + summary; json: one canonical decision per line; junit: one "
    "testcase per (event, rule); sarif: one result per failed rule.",
)
@click.option("--now", metavar="TIMESTAMP|wall", help=NOW_HELP)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "review", "warn"], case_sensitive=False),
    default="review",
    show_default=True,
    help="Lowest outcome that makes the run exit 1: deny; review (deny or "
    "review_required); warn (also allow_with_warnings).",
)
@click.option(
    "--only-failing", is_flag=True, help="text: list only events whose outcome is not `allow`."
)
@click.option(
    "--log",
    "log_path",
    metavar="DB",
    help="Append every decision (and the event it judged) to this signed decision log, "
    "created if missing; needs --key.",
)
@click.option(
    "--key",
    "key_path",
    metavar="KEYFILE",
    help="The log's Ed25519 private key (from `policyengine keys generate`).",
)
@click.option(
    "--pseudonym-key",
    "pseudonym_key",
    metavar="FILE",
    help="Replace patient identifiers with keyed pseudonyms before deciding (from "
    "`policyengine keys pseudonym`); required with --log when events carry identifiers.",
)
@click.option(
    "--signers",
    "signers_path",
    metavar="FILE",
    help="Signer registry (`policyengine signers add`) that electronic signatures in the "
    "stream are verified against; without it they count as `unverified`.",
)
@no_color_option
def eval_cmd(
    policies: tuple[str, ...],
    events: str,
    fmt: str,
    now: str | None,
    output: str | None,
    fail_on: str,
    only_failing: bool,
    log_path: str | None,
    key_path: str | None,
    pseudonym_key: str | None,
    signers_path: str | None,
) -> None:
    """Decide every event in a JSON Lines stream, in order, keeping entity state.

    Each event first updates the state of its subject, then is judged, so later
    events see earlier approvals, registrations and overrides.
    """
    s = settings()
    clock = parse_now(now)
    bundle = load_policies(policies)
    if (log_path is None) != (key_path is None):
        raise CliError(
            "--log and --key go together",
            "the log signs a checkpoint after each batch of decisions, so it needs its key",
        )
    log = None
    if log_path is not None and key_path is not None:
        log = TransparencyLog.open(log_path, load_signer(key_path), create=True)
    stream = EventStream(events)
    tally = OutcomeTally()
    pseudonyms = _pseudonymiser(pseudonym_key)
    registry = load_signers(signers_path)
    decided = decide_events(
        stream, bundle, clock, pseudonyms, storing=log is not None, signers=registry
    )
    reviews = None
    if log is not None:
        reviews = open_reviews(log_path or "")
        recorder = DecisionRecorder(log)
        decisions = tally.watch(logged(decided, recorder, bundle, reviews=reviews))
    else:
        decisions = tally.watch(d for _line, _e, d in decided)
    started = time.perf_counter()
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            for d in decisions:
                sink.write_bytes(decision_json_line(d))
        elif fmt == "junit":
            collected = list(decisions)
            duration = time.perf_counter() - started
            sink.write_text(decisions_junit(collected, duration=duration))
        elif fmt == "sarif":
            sarif = decisions_sarif(
                decisions, bundle.rules, base=os.getcwd(), bundle_digest=bundle.digest
            )
            sink.write_text(dumps(sarif))
        else:
            sink.write_text(
                decisions_text(
                    decisions, color=sink.color, width=s.width(), only_failing=only_failing
                )
            )
    if output is not None or fmt != "text":
        s.note(tally.summary())
    if log is not None:
        cp = log.latest_checkpoint()
        signed = cp.size if cp else 0
        s.note(f"logged to `{log_path}`: {log.size()} leaves, checkpoint at size {signed}")
        log.close()
    if reviews is not None:
        waiting = reviews.counts(clock_now())["open"]
        if waiting:
            s.note(f"{waiting} review(s) open: `policyengine review list --log {log_path}`")
        reviews.close()
    ctx = click.get_current_context()
    if stream.bad_lines:
        n = stream.bad_lines
        s.error(
            f"{n} line{'s' if n != 1 else ''} of `{stream.label}` could not be decided",
            "see the messages above; every other line was decided",
        )
        ctx.exit(EXIT_USAGE)
    ctx.exit(EXIT_FINDINGS if tally.any_of(FAIL_ON[fail_on]) else EXIT_OK)
