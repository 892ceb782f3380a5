"""`policyengine explain`: the full decision trace for one event of a stream."""

from __future__ import annotations

import click

from policyengine.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    EventStream,
    Sink,
    close_matches,
    load_policies,
    no_color_option,
    parse_now,
    settings,
)
from policyengine.cli.evaluate import NOW_HELP, decide
from policyengine.reports.explain import explain_json, explain_text
from policyengine.runtime.decision import Decision

EPILOG = """\b
Exit codes:
  0  the event was found and explained (whatever its outcome)
  2  unknown event id, policies that do not compile, or malformed lines
     before the event (the explanation is still printed, but the state it
     was judged against may be incomplete)
"""


@click.command(epilog=EPILOG)
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
    help="JSON Lines event log; `-` reads stdin.",
)
@click.argument("event_id", metavar="EVENT_ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("--now", metavar="TIMESTAMP|wall", help=NOW_HELP)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@no_color_option
def explain(
    policies: tuple[str, ...],
    events: str,
    event_id: str,
    fmt: str,
    now: str | None,
    output: str | None,
) -> None:
    """Explain the decision for EVENT_ID.

    Replays the stream up to and including the first event with that id (so
    its state is built from the earlier events), then shows every triggered
    rule: layer, severity, enforcement, status, message, references, the
    rule's doc comment, and each requirement with the values it saw.
    """
    s = settings()
    clock = parse_now(now)
    bundle = load_policies(policies)
    stream = EventStream(events)
    found: tuple[int, Decision] | None = None
    seen: list[str] = []
    for line, decision in decide(stream, bundle, clock):
        if decision.event_id == event_id:
            found = (line, decision)
            break
        seen.append(decision.event_id)
    if found is None:
        close = close_matches(event_id, seen)
        if close:
            hint = "did you mean " + ", ".join(f"`{c}`" for c in close) + "?"
        elif seen:
            hint = f"the stream has {len(seen)} events, e.g. `{seen[0]}` … `{seen[-1]}`"
        else:
            hint = "the stream has no valid events"
        raise CliError(f"no event with id `{event_id}` in `{stream.label}`", hint)
    line, decision = found
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(explain_json(decision, bundle.rules, line=line))
        else:
            sink.write_text(
                explain_text(decision, bundle.rules, line=line, color=sink.color, width=s.width())
            )
    ctx = click.get_current_context()
    if stream.bad_lines:
        s.error(
            f"{stream.bad_lines} line(s) before `{event_id}` could not be read",
            "the state this event was judged against may be incomplete",
        )
        ctx.exit(EXIT_USAGE)
    ctx.exit(EXIT_OK)
