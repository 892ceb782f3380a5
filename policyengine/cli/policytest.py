"""`policyengine test`: run the `test` blocks of a policy bundle."""

from __future__ import annotations

import time

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Sink,
    load_policies,
    no_color_option,
    settings,
)
from policyengine.reports.policy_tests import (
    closing_line,
    policy_tests_json,
    policy_tests_junit,
    policy_tests_text,
)
from policyengine.testing import run_tests

EPILOG = """\b
Exit codes:
  0  every test passed
  1  at least one test failed (or is broken)
  2  the policies do not compile, or there are no tests to run
"""


@click.command("test", epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Report format (json always includes coverage).",
)
@click.option("--coverage", is_flag=True, help="text: show per-rule and per-requirement coverage.")
@click.option(
    "--run", "name_filter", metavar="SUBSTRING", help="Only run tests whose name contains this."
)
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
@no_color_option
def test_cmd(
    paths: tuple[str, ...],
    fmt: str,
    coverage: bool,
    name_filter: str | None,
    output: str | None,
) -> None:
    """Compile policies and run their `test` blocks (convention: *_test.policy).

    Each test starts from empty state; its events go through the same
    validation and state reducers as real events.
    """
    s = settings()
    bundle = load_policies(paths)
    started = time.perf_counter()
    report = run_tests(bundle, name_filter or None)
    duration = time.perf_counter() - started
    if not report.results:
        if name_filter:
            names = ", ".join(f"`{t.decl.name}`" for t in bundle.tests[:5])
            raise CliError(
                f"no test name contains `{name_filter}`",
                f"the tests are: {names}{', …' if len(bundle.tests) > 5 else ''}"
                if bundle.tests
                else None,
            )
        raise CliError(
            "no tests found", 'write `test "..." { ... }` blocks, e.g. in a *_test.policy file'
        )
    with Sink(output, s.stdout_color) as sink:
        if fmt == "json":
            sink.write_text(policy_tests_json(report))
        elif fmt == "junit":
            sink.write_text(policy_tests_junit(report, duration=duration))
        else:
            sink.write_text(
                policy_tests_text(report, coverage=coverage, color=sink.color, width=s.width())
            )
    if output is not None or fmt != "text":
        s.note(closing_line(report))
    click.get_current_context().exit(EXIT_OK if report.passed else EXIT_FINDINGS)
