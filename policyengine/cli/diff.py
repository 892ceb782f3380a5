"""`policyengine diff`: which logged decisions a proposed policy bundle would change."""

from __future__ import annotations

import click

from policyengine.audit.diff import diff, diff_headline, diff_json, diff_markdown, diff_text
from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Sink,
    load_policies,
    no_color_option,
    settings,
)
from policyengine.cli.audit import open_log
from policyengine.reports._common import dumps

__all__ = ["diff_cmd"]

EPILOG = """\b
Exit codes:
  0  no logged decision would change (outcome and every rule status stay the same)
  1  at least one would change
  2  usage or compile error: the policies do not compile, a missing log, bad options
"""


@click.command("diff", epilog=EPILOG)
@click.option(
    "--policies",
    "-p",
    "policies",
    required=True,
    multiple=True,
    metavar="PATH",
    help="The proposed policy file or directory (repeatable).",
)
@click.option(
    "--log",
    "log_path",
    required=True,
    metavar="DB",
    envvar="POLICYENGINE_LOG",
    help="The decision log whose events are replayed (SQLite file). Env: POLICYENGINE_LOG.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"], case_sensitive=False),
    default="text",
    show_default=True,
    help="text: tables and examples; json: stable machine-readable keys; markdown: a "
    "summary to post on a pull request.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    metavar="N",
    help="Examples kept per outcome and per rule transition.",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@no_color_option
def diff_cmd(
    policies: tuple[str, ...], log_path: str, fmt: str, examples: int, output: str | None
) -> None:
    """Replay the logged events under proposed policies and report what would change.

    Every event logged with its decision is judged again under the new bundle, in log
    order, at its logged evaluation time, against the entity state of its session; the
    report counts the outcome and rule-status transitions (allow → deny, pass → fail, …)
    with the first examples of each.
    """
    s = settings()
    bundle = load_policies(policies)
    log = open_log(log_path)
    try:
        report = diff(log, bundle, examples=examples)
    finally:
        log.close()
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(dumps(diff_json(report)))
        elif fmt == "markdown":
            sink.write_text(diff_markdown(report))
        else:
            sink.write_text(diff_text(report, color=sink.color, width=s.width()))
    if output is not None or fmt != "text":
        s.note(diff_headline(report))
    click.get_current_context().exit(EXIT_FINDINGS if report.any_changed else EXIT_OK)
