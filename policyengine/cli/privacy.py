"""`policyengine privacy check`: k-anonymity, l-diversity, direct identifiers and cell sizes
of a data file, optionally recorded as a `dataset.privacy_assessed` event.

The privacy package (polars) is imported when the command runs, not when the CLI starts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    no_color_option,
    parse_timestamp,
    settings,
)

__all__ = ["privacy_group"]

EPILOG = """\b
Checks (definitions in spec/privacy.md):
  k-anonymity         every combination of the quasi-identifiers is shared by
                      at least --k rows (nulls count as a value)
  l-diversity         with --sensitive: every such class shows at least --l
                      distinct sensitive values (entropy l is reported too)
  direct identifiers  no column is named like, or holds values like, names,
                      e-mail, phone, MRN, date of birth, SSN, IP or street
                      addresses (always checked)
  cell size           with --cell-size-column and/or --group-by: every
                      non-empty cell counts at least --cell-threshold

\b
Exit codes:
  0  every check passed
  1  at least one check failed
  2  usage or input error: a missing or unreadable file, an unknown column,
     a bad option
"""


def _columns(value: str | None, option: str) -> list[str]:
    if value is None:
        return []
    names = [c.strip() for c in value.split(",") if c.strip()]
    if not names:
        raise CliError(f"`{option}` names no columns", f"e.g. `{option} age,sex,zip3`")
    return names


@click.group("privacy")
def privacy_group() -> None:
    """Privacy checks on datasets (k-anonymity, l-diversity, identifiers, cell sizes)."""


@privacy_group.command("check", epilog=EPILOG)
@click.argument("data", metavar="DATA")
@click.option(
    "--quasi-identifiers",
    "-q",
    "quasi_identifiers",
    metavar="A,B,…",
    help="Columns that could re-identify a person in combination (comma-separated). "
    "Required unless DATA is an aggregated table (--cell-size-column).",
)
@click.option("--sensitive", metavar="COLUMN", help="Sensitive attribute for l-diversity.")
@click.option(
    "--k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="Minimum k."
)
@click.option(
    "--l", "l_min", type=click.IntRange(min=1), default=2, show_default=True, help="Minimum l."
)
@click.option(
    "--cell-size-column",
    metavar="COLUMN",
    help="DATA is an aggregated table; COLUMN holds each cell's count.",
)
@click.option(
    "--group-by",
    metavar="A,B,…",
    help="The cells are the groups of these columns (counts are summed with "
    "--cell-size-column, else rows are counted).",
)
@click.option(
    "--cell-threshold",
    type=click.IntRange(min=1),
    default=11,
    show_default=True,
    help="Smallest non-empty cell allowed (11: the CMS cell-size suppression policy).",
)
@click.option(
    "--identifier-sample",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Values sampled per text column when looking for direct identifiers.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="text: a table of checks and the smallest offending classes; json: every figure.",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option(
    "--emit-event",
    metavar="FILE",
    help="Write the assessment as a `dataset.privacy_assessed` event to FILE (JSON Lines, "
    "`-` = stdout), ready for `eval`, `ingest` or `POST /v1/events`.",
)
@click.option("--dataset", metavar="ID", help="The registered dataset the event is about.")
@click.option(
    "--actor",
    metavar="ID",
    default="policyengine-privacy",
    show_default=True,
    help="Actor of the event.",
)
@click.option("--now", metavar="TIMESTAMP", help="Time of the event (default: now).")
@no_color_option
def check_cmd(
    data: str,
    quasi_identifiers: str | None,
    sensitive: str | None,
    k: int,
    l_min: int,
    cell_size_column: str | None,
    group_by: str | None,
    cell_threshold: int,
    identifier_sample: int,
    fmt: str,
    output: str | None,
    emit_event: str | None,
    dataset: str | None,
    actor: str,
    now: str | None,
) -> None:
    """Check DATA (Parquet, CSV or Arrow IPC) for re-identification risk.

    Exits 1 when a check fails. With --emit-event the result becomes a
    `dataset.privacy_assessed` event about --dataset carrying the file's sha256 digest, so
    release rules can require k >= 5, no direct identifiers and a digest that matches the
    registered dataset.
    """
    from policyengine.privacy import PrivacyError, assess, file_digest, scan_data
    from policyengine.privacy.render import assessment_json, assessment_text

    s = settings()
    qis = _columns(quasi_identifiers, "--quasi-identifiers")
    keys = _columns(group_by, "--group-by")
    if not qis and cell_size_column is None:
        raise CliError(
            "`--quasi-identifiers` is required for record-level data",
            "e.g. `--quasi-identifiers age,sex,zip3`; only an aggregated table "
            "(`--cell-size-column`) may go without",
        )
    if emit_event is None and dataset is not None:
        raise CliError("`--dataset` names the subject of the event", "add `--emit-event FILE`")
    if emit_event is not None and not dataset:
        raise CliError(
            "`--emit-event` needs `--dataset`", "pass the id the dataset was registered under"
        )
    if emit_event == "-" and output is None:
        raise CliError(
            "the event and the report would both go to stdout",
            "write the report elsewhere with `--output FILE`, or the event to a file",
        )
    at = parse_timestamp(now, "--now") if now is not None else datetime.now(UTC)
    try:
        frame = scan_data(data)
        digest = file_digest(data)
    except PrivacyError as err:
        raise CliError(err.message, err.hint) from None
    try:
        assessment = assess(
            frame,
            qis,
            sensitive,
            k=k,
            l=l_min,
            group_by=keys or None,
            count_column=cell_size_column,
            cell_threshold=cell_threshold,
            identifier_sample=identifier_sample,
            digest=digest,
            source=data,
        )
    except PrivacyError as err:
        raise CliError(f"{data}: {err.message}", err.hint) from None

    with Sink(output, s.stdout_color) as sink:
        if fmt.lower() == "json":
            sink.write_text(assessment_json(assessment))
        else:
            sink.write_text(assessment_text(assessment, color=sink.color))
    if emit_event is not None:
        assert dataset is not None
        event = assessment.to_event(dataset, actor=actor, time=at, roles=("privacy",))
        with Sink(None if emit_event == "-" else emit_event, False) as sink:
            sink.write_text(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        if emit_event != "-":
            s.note(f"wrote `dataset.privacy_assessed` for `{dataset}` to {emit_event}")
    failures = assessment.failures
    if output is not None or fmt.lower() != "text":
        s.note("privacy check: " + ("; ".join(failures) if failures else "all checks passed"))
    click.get_current_context().exit(EXIT_FINDINGS if failures else EXIT_OK)
