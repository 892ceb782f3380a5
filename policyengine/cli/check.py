"""`policyengine check`: parse and compile policies, report every diagnostic."""

from __future__ import annotations

import os

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    FILE_CODES,
    CliError,
    Sink,
    no_color_option,
    require_paths,
    settings,
)
from policyengine.compiler.bundle import load_bundle
from policyengine.language.diagnostics import CompileError, Diagnostic, Severity
from policyengine.reports._common import dumps
from policyengine.reports.diagnostics import BundleStats, check_json, check_text
from policyengine.reports.sarif import diagnostics_sarif

EPILOG = """\b
Exit codes:
  0  the policies compile (warnings are printed but do not fail, unless --strict)
  1  findings: at least one compile error (or warning with --strict)
  2  usage error: a path does not exist or holds no .policy files
"""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--strict", is_flag=True, help="Treat warnings as findings (exit 1).")
@no_color_option
def check(paths: tuple[str, ...], fmt: str, output: str | None, strict: bool) -> None:
    """Parse and compile policy files and directories (searched for *.policy).

    Prints rustc-style diagnostics with file:line:col and a caret under the
    problem, or, when everything compiles, one line with the number of files,
    rules and tests and the bundle digest.
    """
    s = settings()
    require_paths(paths)
    diagnostics: list[Diagnostic]
    stats: BundleStats | None
    try:
        bundle = load_bundle(*paths)
    except CompileError as err:
        if all(d.code in FILE_CODES for d in err.diagnostics):
            first = err.diagnostics[0]
            raise CliError(first.message, first.hint) from None
        diagnostics, sources, stats = list(err.diagnostics), dict(err.sources), None
    else:
        diagnostics, sources = list(bundle.warnings), dict(bundle.sources)
        stats = BundleStats.of(bundle)

    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(check_json(diagnostics, stats))
        elif fmt == "sarif":
            sink.write_text(dumps(diagnostics_sarif(diagnostics, base=os.getcwd())))
        else:
            sink.write_text(
                check_text(diagnostics, sources, stats, color=sink.color, width=s.width())
            )
    if output is not None or fmt != "text":
        errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
        s.note(
            stats.summary() if stats is not None else f"{errors} error{'s' if errors != 1 else ''}"
        )

    failed = stats is None or (strict and bool(diagnostics))
    click.get_current_context().exit(EXIT_FINDINGS if failed else EXIT_OK)
