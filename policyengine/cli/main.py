"""The `policyengine` command group and console-script entry point.

Error policy: user errors (paths, input, policies) print `error: …` and exit 2;
anything unexpected is a bug — a short request to report it and exit 3, with
the traceback only when POLICYENGINE_DEBUG is set.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from policyengine import __version__
from policyengine.cli._common import (
    EXIT_INTERNAL,
    CliError,
    Settings,
    no_color_option,
)
from policyengine.cli.audit import audit_group
from policyengine.cli.check import check
from policyengine.cli.diff import diff_cmd
from policyengine.cli.drift import drift
from policyengine.cli.evaluate import eval_cmd
from policyengine.cli.explain import explain
from policyengine.cli.fmt import fmt
from policyengine.cli.ingest import ingest, list_adapters
from policyengine.cli.keys import keys
from policyengine.cli.lineage import lineage_group
from policyengine.cli.logcmd import log_group
from policyengine.cli.policytest import test_cmd
from policyengine.cli.privacy import privacy_group
from policyengine.cli.review import review_group
from policyengine.cli.serve import serve_cmd
from policyengine.cli.signers import signers_group
from policyengine.cli.witness import witness_group
from policyengine.log import LogError

__all__ = ["cli", "main"]

# 128 + SIGPIPE, what a shell reports when a pipe reader (`| head`) goes away.
EXIT_BROKEN_PIPE = 141


def version_line() -> str:
    return f"policyengine {__version__}"


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class PolicyEngineGroup(click.Group):
    """Turns stray exceptions into the documented exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except LogError as exc:
            raise CliError(str(exc)) from None
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as exc:
            if exc.filename is None:
                _internal_error(ctx, exc)
            target = exc.filename
            raise CliError(f"cannot access `{target}`: {exc.strerror or exc}") from None
        except Exception as exc:
            _internal_error(ctx, exc)


def _internal_error(ctx: click.Context, exc: BaseException) -> None:
    s = ctx.find_object(Settings) or Settings()
    if os.environ.get("POLICYENGINE_DEBUG"):
        click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    s.error(
        f"internal error: {type(exc).__name__}{': ' + detail if detail else ''}",
        f"this is a bug in {version_line()}; please report it with the command you ran "
        "(set POLICYENGINE_DEBUG=1 to see the traceback)",
    )
    ctx.exit(EXIT_INTERNAL)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_line())
        ctx.exit(0)


@click.group(
    cls=PolicyEngineGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 ok · 1 findings (failed rules, tests or checks) · 2 usage or "
    "input error · 3 internal error. See docs/cli.md.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
@no_color_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """policyengine: policy-as-code for ML governance in GxP settings.

    Compile and test policies, decide lineage event streams, and explain decisions.
    """
    ctx.ensure_object(Settings)


@cli.command()
@no_color_option
def version() -> None:
    """Print the version of policyengine."""
    click.echo(version_line())


cli.add_command(check)
cli.add_command(test_cmd)
cli.add_command(eval_cmd)
cli.add_command(explain)
cli.add_command(fmt)
cli.add_command(keys)
cli.add_command(log_group)
cli.add_command(audit_group)
cli.add_command(diff_cmd)
cli.add_command(witness_group)
cli.add_command(lineage_group)
cli.add_command(ingest)
cli.add_command(list_adapters)
cli.add_command(serve_cmd)
cli.add_command(drift)
cli.add_command(privacy_group)
cli.add_command(review_group)
cli.add_command(signers_group)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: `policyengine = "policyengine.cli.main:main"`."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="policyengine")
    except BrokenPipeError:  # raised while click flushes its own output
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)


if __name__ == "__main__":  # pragma: no cover
    main()
