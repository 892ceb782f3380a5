"""`policyengine drift`: compare a current data window with a reference, column by column.

The drift package (numpy, scipy, polars) is imported when the command runs, not when the
CLI starts, so other commands do not pay for it.
"""

from __future__ import annotations

import dataclasses

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    no_color_option,
    settings,
)

EPILOG = """\b
Default metrics: numeric columns KS (p < 0.05), PSI (> 0.2) and Wasserstein
normalised by the reference SD (> 0.1); categorical columns chi-squared
(p < 0.05), Jensen-Shannon (> 0.1) and PSI (> 0.2). Change them with
--thresholds (see spec/drift.md).

\b
Exit codes:
  0  no metric breached its threshold
  1  at least one did (drift)
  2  usage or input error: missing or unreadable files, unknown columns,
     a bad thresholds file
"""


def _columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [c.strip() for c in value.split(",") if c.strip()]
    if not names:
        raise CliError("`--columns` names no columns", "e.g. `--columns age,weight`")
    return names


@click.command("drift", epilog=EPILOG)
@click.option(
    "--reference",
    "-r",
    required=True,
    metavar="PATH",
    help="Reference data (Parquet, CSV or Arrow IPC) or a reference profile saved "
    "with --save-reference.",
)
@click.option(
    "--current",
    "-c",
    required=True,
    metavar="PATH",
    help="Current window (Parquet, CSV or Arrow IPC).",
)
@click.option("--columns", metavar="A,B,…", help="Compare only these columns (comma-separated).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"], case_sensitive=False),
    default="text",
    show_default=True,
    help="text: a table per column and metric; json: every value, p-value, threshold and "
    "verdict; html: one self-contained page with a distribution plot per column.",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option(
    "--thresholds",
    "--threshold-file",
    "thresholds",
    metavar="FILE",
    help="TOML or JSON file choosing metrics, thresholds and options per column type, "
    "column or column-name pattern.",
)
@click.option(
    "--save-reference",
    metavar="FILE",
    help="Also save the reference profile to FILE, so later runs can pass it as "
    "--reference; the report then names the baseline by its digest.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="Worker threads (default: one per CPU)."
)
@click.option(
    "--policies",
    "--policy",
    "-p",
    "policies",
    multiple=True,
    metavar="PATH",
    help="Judge with the `monitor` blocks of these policies instead of the default metrics "
    "(repeatable).",
)
@click.option("--monitor", metavar="ID", help="Run only this monitor (id or bare name).")
@click.option("--model", metavar="NAME", help="Run the monitors that watch this model name.")
@click.option(
    "--model-version",
    metavar="ID",
    help="The model version the window was scored by: the subject of the drift events.",
)
@click.option(
    "--emit-events",
    metavar="FILE",
    help="Write one `drift.evaluated` event per check to FILE (JSON Lines; `-` = stdout).",
)
@click.option("--log", "log_path", metavar="DB", help="Decide the drift events and log them.")
@click.option("--key", "key_path", metavar="KEYFILE", help="The log's private key (with --log).")
@click.option(
    "--on-trigger",
    "on_trigger",
    multiple=True,
    metavar="NAME=COMMAND",
    help="On a breach, run COMMAND for the monitor's `trigger NAME`, with the result as "
    "JSON on stdin (repeatable).",
)
@click.option(
    "--webhook", metavar="URL", help="On a breach, POST the monitor result as JSON to URL."
)
@click.option("--now", metavar="TIMESTAMP", help="Time of the drift events (default: now).")
@no_color_option
def drift(
    reference: str,
    current: str,
    columns: str | None,
    fmt: str,
    output: str | None,
    thresholds: str | None,
    save_reference: str | None,
    threads: int | None,
    policies: tuple[str, ...],
    monitor: str | None,
    model: str | None,
    model_version: str | None,
    emit_events: str | None,
    log_path: str | None,
    key_path: str | None,
    on_trigger: tuple[str, ...],
    webhook: str | None,
    now: str | None,
) -> None:
    """Compare CURRENT with REFERENCE column by column: per metric the value, p-value,
    threshold and whether it drifted. Exits 1 when any metric breaches its threshold.

    With --policies, the `monitor` blocks decide which metrics apply to which features and
    what counts as a breach; each check becomes a `drift.evaluated` event that can be
    written out (--emit-events), decided by the policies and logged (--log), and a breach
    sets off the monitor's actions (--on-trigger, --webhook).
    """
    if policies:
        from policyengine.cli.monitor import run_monitors

        if thresholds is not None or save_reference is not None or columns is not None:
            raise CliError(
                "--policies takes the metrics from the monitor blocks",
                "drop --thresholds, --columns and --save-reference, or drop --policies",
            )
        run_monitors(
            reference=reference,
            current=current,
            fmt=fmt.lower(),
            output=output,
            threads=threads,
            policies=policies,
            monitor=monitor,
            model=model,
            model_version=model_version,
            emit_events=emit_events,
            log_path=log_path,
            key_path=key_path,
            on_trigger=on_trigger,
            webhook=webhook,
            now=now,
        )
        return
    extra = [
        name
        for name, value in (
            ("--monitor", monitor),
            ("--model", model),
            ("--model-version", model_version),
            ("--emit-events", emit_events),
            ("--log", log_path),
            ("--webhook", webhook),
        )
        if value is not None
    ] + (["--on-trigger"] if on_trigger else [])
    if extra:
        raise CliError(f"{', '.join(extra)} need --policies", "monitors come from policy files")
    from policyengine.drift import (
        DriftConfig,
        DriftError,
        load_config,
        report_html,
        report_json,
        report_text,
        run_report,
        save_profile,
    )
    from policyengine.drift.render import summary_line

    s = settings()
    fmt = fmt.lower()
    try:
        config = load_config(thresholds) if thresholds is not None else DriftConfig()
        report = run_report(
            reference,
            current,
            columns=_columns(columns),
            config=config,
            threads=threads,
            plots=fmt == "html",
            keep_reference=save_reference is not None,
        )
        if save_reference is not None:
            assert report.reference_profile is not None
            digest = save_profile(report.reference_profile, save_reference)
            report = dataclasses.replace(
                report, reference=dataclasses.replace(report.reference, digest=digest)
            )
            s.note(f"reference profile saved to {save_reference} ({digest})")
    except DriftError as err:
        raise CliError(err.message, err.hint) from None
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(report_json(report))
        elif fmt == "html":
            sink.write_text(report_html(report))
        else:
            sink.write_text(report_text(report, color=sink.color, width=s.width()))
    if output is not None or fmt != "text":
        s.note(summary_line(report))
    no_data = [c.column for c in report.columns if c.verdict == "no_data"]
    if no_data:
        shown = ", ".join(no_data[:5]) + (" …" if len(no_data) > 5 else "")
        plural = "s" if len(no_data) != 1 else ""
        s.warn(f"no data to compare in {len(no_data)} column{plural}: {shown}")
    click.get_current_context().exit(EXIT_FINDINGS if report.drifted else EXIT_OK)
