"""`policyengine audit replay`: check that every logged decision reproduces byte for byte."""

from __future__ import annotations

import re

import click

from policyengine.audit.replay import replay, replay_json, replay_summary, replay_text
from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    no_color_option,
    settings,
)
from policyengine.log import LogError, TransparencyLog
from policyengine.reports._common import dumps

__all__ = ["audit_group", "open_log"]

_HINT = re.compile(r"^(?P<message>.*?)\s*\(hint: (?P<hint>.*)\)$", re.DOTALL)

REPLAY_EPILOG = """\b
Exit codes:
  0  every decision logged with its event reproduces byte for byte
  1  a decision differs, or one logged with its event cannot be replayed
     (its bundle is missing or no longer compiles)
  2  usage error: a missing or unreadable log, bad options
"""


def open_log(path: str) -> TransparencyLog:
    """Open an existing log for reading; any problem is a usage error (exit 2)."""
    try:
        return TransparencyLog.open(path)
    except LogError as exc:
        found = _HINT.match(str(exc))
        if found:
            raise CliError(found["message"], found["hint"]) from None
        raise CliError(str(exc)) from None


@click.group("audit")
def audit_group() -> None:
    """Reproducibility checks over the signed decision log."""


@audit_group.command("replay", epilog=REPLAY_EPILOG)
@click.option(
    "--log",
    "log_path",
    required=True,
    metavar="DB",
    envvar="POLICYENGINE_LOG",
    help="The decision log (SQLite file). Env: POLICYENGINE_LOG.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@no_color_option
def replay_cmd(log_path: str, fmt: str, output: str | None) -> None:
    """Judge every logged event again with the bundle its decision names.

    Bundles are loaded from the sources stored beside the log; events are judged in log
    order, at their logged evaluation time, against the entity state of its session. Each replayed
    decision must equal the logged one byte for byte (a different engine version alone
    is reported but tolerated). Decisions logged without their event are listed as not
    replayable.
    """
    s = settings()
    log = open_log(log_path)
    try:
        report = replay(log)
    finally:
        log.close()
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(dumps(replay_json(report)))
        else:
            sink.write_text(replay_text(report, color=sink.color, width=s.width()))
    if output is not None or fmt != "text":
        s.note(replay_summary(report))
    click.get_current_context().exit(EXIT_OK if report.ok else EXIT_FINDINGS)
