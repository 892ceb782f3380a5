"""`policyengine fmt`: rewrite policy files in the canonical layout.

The formatter itself lives in `policyengine.language.formatter` and is imported
only when this command runs, so the rest of the CLI never depends on it.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from policyengine.cli._common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    CliInternalError,
    Settings,
    no_color_option,
    require_paths,
    settings,
)
from policyengine.compiler.bundle import POLICY_SUFFIX
from policyengine.language.diagnostics import CompileError
from policyengine.reports.diagnostics import diagnostics_text

Formatter = Callable[[str, str], str]

EPILOG = """\b
Exit codes:
  0  files formatted (or already formatted)
  1  with --check or --diff: at least one file would change
  2  a path does not exist, or a file has syntax errors (other files are
     still processed)
"""


def load_formatter() -> Formatter:
    """`policyengine.language.formatter.format_source`, imported on first use."""
    try:
        module = importlib.import_module("policyengine.language.formatter")
    except ModuleNotFoundError as exc:
        if exc.name != "policyengine.language.formatter":
            raise
        raise CliInternalError(
            "this installation has no policy formatter (`policyengine.language.formatter`)",
            "please report this; `fmt` needs a release that includes the formatter",
        ) from None
    format_source: Formatter = module.format_source
    return format_source


def policy_files(paths: Sequence[str]) -> Iterator[Path]:
    """Files as given, directories searched recursively for *.policy, each once."""
    seen: set[Path] = set()
    for p in paths:
        path = Path(p)
        files = sorted(path.rglob(f"*{POLICY_SUFFIX}")) if path.is_dir() else [path]
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                yield f


def unified_diff(before: str, after: str, path: str) -> str:
    """A `git apply`-able diff between a file and its formatted text."""
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
    )
    out: list[str] = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _color_diff(diff: str) -> str:
    styled = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            styled.append(click.style(line, bold=True))
        elif line.startswith("+"):
            styled.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            styled.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            styled.append(click.style(line, fg="cyan"))
        else:
            styled.append(line)
    return "".join(styled)


@dataclass(slots=True)
class _Tally:
    changed: int = 0
    unchanged: int = 0
    errors: int = 0


def _format_one(
    formatter: Formatter, text: str, label: str, s: Settings, tally: _Tally
) -> str | None:
    """The formatted text, or None after reporting a syntax error."""
    try:
        formatted = formatter(text, label)
    except CompileError as err:
        tally.errors += 1
        s.raw_err(
            diagnostics_text(
                err.diagnostics, err.sources or {label: text}, color=s.stderr_color, width=s.width()
            )
        )
        return None
    if formatted == text:
        tally.unchanged += 1
    else:
        tally.changed += 1
    return formatted


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--check", is_flag=True, help="Do not write; list files that would change.")
@click.option("--diff", is_flag=True, help="Do not write; print a unified diff of the changes.")
@no_color_option
def fmt(paths: tuple[str, ...], check: bool, diff: bool) -> None:
    """Format policy files in place (directories are searched for *.policy).

    `-` formats stdin to stdout. With --check or --diff nothing is written and
    the command exits 1 when a file is not formatted, for CI.
    """
    s = settings()
    formatter = load_formatter()
    ctx = click.get_current_context()
    tally = _Tally()
    color = s.stdout_color
    if paths == ("-",):
        text = sys.stdin.read()
        formatted = _format_one(formatter, text, "<stdin>", s, tally)
        if formatted is None:
            ctx.exit(EXIT_USAGE)
        if diff:
            d = unified_diff(text, formatted, "<stdin>")
            click.echo(_color_diff(d) if color else d, nl=False, color=color)
        elif not check:
            click.echo(formatted, nl=False)
        ctx.exit(EXIT_FINDINGS if (check or diff) and tally.changed else EXIT_OK)

    require_paths(paths)
    for path in policy_files(paths):
        label = path.as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            tally.errors += 1
            s.error(f"cannot read `{label}`: {getattr(exc, 'strerror', None) or exc}")
            continue
        formatted = _format_one(formatter, text, label, s, tally)
        if formatted is None or formatted == text:
            continue
        if diff:
            d = unified_diff(text, formatted, label)
            click.echo(_color_diff(d) if color else d, nl=False, color=color)
        elif check:
            click.echo(f"would reformat {label}")
        else:
            try:
                with open(path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(formatted)
            except OSError as exc:
                tally.errors += 1
                s.error(f"cannot write `{label}`: {exc.strerror or exc}")
                continue
            click.echo(f"reformatted {label}")

    total = tally.changed + tally.unchanged
    if not total and not tally.errors:
        raise CliError("no `*.policy` files found", "policy files end in `.policy`")
    verb = "would be reformatted" if (check or diff) else "reformatted"
    summary = (
        f"{tally.changed} file{'s' if tally.changed != 1 else ''} {verb}, "
        f"{tally.unchanged} already formatted"
    )
    if tally.errors:
        summary += f", {tally.errors} with errors"
    if diff:
        s.note(summary)
    else:
        click.echo(summary)
    if tally.errors:
        ctx.exit(EXIT_USAGE)
    ctx.exit(EXIT_FINDINGS if (check or diff) and tally.changed else EXIT_OK)
