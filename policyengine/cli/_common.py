"""What every command shares: exit codes, user errors, colour and width decisions,
output sinks, policy loading and event-stream reading.

User mistakes (bad paths, bad input, policies that do not compile) become a
short `error: …` on stderr and exit code 2 — never a traceback.
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn, TextIO, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from policyengine.compiler.bundle import Bundle, load_bundle
from policyengine.events import EventError, read_jsonl
from policyengine.language.diagnostics import Code, CompileError
from policyengine.reports.diagnostics import diagnostics_text
from policyengine.runtime.clock import Clock, event_time, fixed, wall_clock

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

FILE_CODES = frozenset({Code.FILE_ERROR, Code.NO_POLICIES})
PROGRESS_MIN_LINES = 1000
PIPE_WIDTH = 140


class CliError(click.ClickException):
    """A user error: printed as `error: …` (+ `hint: …`) on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        ctx = click.get_current_context(silent=True)
        settings = ctx.find_object(Settings) if ctx is not None else None
        (settings or Settings()).error(self.message, self.hint)


@dataclass(slots=True)
class Settings:
    """Global options, stored on the click context as `ctx.obj`."""

    no_color: bool = False
    # Where stderr messages go while a progress bar owns the terminal.
    live_console: Console | None = field(default=None, repr=False)

    def color_for(self, stream: TextIO | IO[Any]) -> bool:
        """NO_COLOR and `--no-color` win, FORCE_COLOR forces, otherwise only on a TTY."""
        if self.no_color or os.environ.get("NO_COLOR"):
            return False
        if os.environ.get("FORCE_COLOR"):
            return True
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    @property
    def stdout_color(self) -> bool:
        return self.color_for(sys.stdout)

    @property
    def stderr_color(self) -> bool:
        return self.color_for(sys.stderr)

    def width(self) -> int:
        """Terminal width on a TTY; otherwise COLUMNS, else a log-friendly 140."""
        if sys.stdout.isatty():
            return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns
        try:
            return max(40, int(os.environ.get("COLUMNS", "")))
        except ValueError:
            return PIPE_WIDTH

    # ------------------------------------------------------------ stderr messages
    def _echo_err(self, text: str, style: str | None = None) -> None:
        if self.live_console is not None:
            self.live_console.print(text, style=style, markup=False, highlight=False)
            return
        color = self.stderr_color
        click.echo(click.style(text, fg=style) if (style and color) else text, err=True)

    def error(self, message: str, hint: str | None = None) -> None:
        self._echo_err(f"error: {message}", "red")
        if hint:
            self._echo_err(f"hint: {hint}", "cyan")

    def warn(self, message: str) -> None:
        self._echo_err(f"warning: {message}", "yellow")

    def note(self, message: str) -> None:
        self._echo_err(message)

    def raw_err(self, text: str) -> None:
        """Pre-rendered text (e.g. diagnostics) to stderr, as is."""
        click.echo(text, err=True, nl=False, color=self.stderr_color)


def settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


F = TypeVar("F", bound=Callable[..., Any])


def no_color_option(f: F) -> F:
    """`--no-color` on every subcommand too, so it works after the command name."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(Settings).no_color = True

    return click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help="Disable coloured output (also: the NO_COLOR environment variable).",
    )(f)


# ---------------------------------------------------------------- output


class CliInternalError(CliError):
    """A problem with the installation rather than the input: exit code 3."""

    exit_code = EXIT_INTERNAL


class Sink:
    """The report destination: stdout, or a file given with `--output`."""

    def __init__(self, path: str | None, color: bool) -> None:
        self.path = path
        self.color = color if path is None else False
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> Sink:
        if self.path is not None:
            try:
                self._fh = open(self.path, "wb")
            except OSError as exc:
                raise CliError(
                    f"cannot write `{self.path}`: {exc.strerror or exc}",
                    "check that the directory exists and is writable",
                ) from None
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
        else:
            sys.stdout.flush()
            sys.stdout.buffer.flush()

    def write_text(self, s: str) -> None:
        if self._fh is not None:
            self._fh.write(s.encode("utf-8"))
        else:
            click.echo(s, nl=False, color=self.color)

    def write_bytes(self, b: bytes) -> None:
        if self._fh is not None:
            self._fh.write(b)
            return
        sys.stdout.flush()  # keep order with any text already written
        sys.stdout.buffer.write(b)


# ---------------------------------------------------------------- inputs


def require_paths(paths: Sequence[str], what: str = "file or directory") -> None:
    for p in paths:
        if not Path(p).exists():
            raise CliError(
                f"no such {what} `{p}`", "check the path, relative to the current directory"
            )


def load_policies(paths: Sequence[str]) -> Bundle:
    """Compile policies for commands that need a bundle; any problem is exit 2."""
    require_paths(paths)
    try:
        return load_bundle(*paths)
    except CompileError as err:
        fail_compile(err)


def fail_compile(err: CompileError) -> NoReturn:
    """Print a compile failure to stderr and exit 2 (for commands other than `check`)."""
    s = settings()
    if all(d.code in FILE_CODES for d in err.diagnostics):
        first = err.diagnostics[0]
        raise CliError(first.message, first.hint)
    s.raw_err(diagnostics_text(err.diagnostics, err.sources, color=s.stderr_color, width=s.width()))
    raise CliError("the policies do not compile", "run `policyengine check` on them for details")


def parse_timestamp(value: str, option: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp from the command line, as aware UTC."""
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"invalid {option} `{value}`", "use RFC 3339, e.g. 2026-03-01T12:00:00Z"
        ) from None
    if at.tzinfo is None:
        raise CliError(f"{option} `{value}` has no timezone", "add `Z` for UTC")
    return at.astimezone(UTC)


def parse_now(value: str | None) -> Clock:
    """`--now`: None → each event's own time; `wall` → the wall clock; else a fixed instant."""
    if value is None:
        return event_time
    if value.strip().lower() == "wall":
        return wall_clock
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"`--now` must be an RFC 3339 timestamp or `wall`, got `{value}`",
            "e.g. `--now 2026-03-01T12:00:00Z`",
        ) from None
    if at.tzinfo is None:
        raise CliError(f"`--now {value}` has no timezone", "add `Z` or an offset such as `+00:00`")
    return fixed(at)


@dataclass(slots=True)
class EventStream:
    """Reads a JSONL event file (or `-` for stdin), reporting each bad line on
    stderr as `error: FILE:LINE: message` and counting them; good events are yielded."""

    path: str
    bad_lines: int = 0

    @property
    def label(self) -> str:
        return "<stdin>" if self.path == "-" else self.path

    def reject(self, line: int, err: EventError) -> None:
        self.bad_lines += 1
        s = settings()
        s.error(f"{self.label}:{line}: {err.message}")
        for _field, message in err.details:
            s.note(f"       {self.label}:{line}: {message}")

    def _open(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdin.buffer
        if not Path(self.path).is_file():
            what = "a directory" if Path(self.path).is_dir() else "missing"
            raise CliError(f"events file `{self.path}` is {what}", "pass a JSON Lines file")
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise CliError(f"cannot read `{self.path}`: {exc.strerror or exc}") from None

    def _count_lines(self) -> int:
        with open(self.path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))

    def events(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """`(line, validated event)` for each good line, in order."""
        fh = self._open()
        try:
            with self._progress() as advance:
                for line, item in read_jsonl(self._decoded(fh, advance)):
                    if isinstance(item, EventError):
                        self.reject(line, item)
                    else:
                        yield line, item
        finally:
            if self.path != "-":
                fh.close()

    def _decoded(self, fh: IO[bytes], advance: Callable[[], None]) -> Iterator[str]:
        # Decode line by line so one bad byte costs one line, not the whole stream.
        for number, raw in enumerate(fh, start=1):
            advance()
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.reject(number, EventError(f"line is not valid UTF-8 ({exc.reason})"))
                yield ""

    @contextmanager
    def _progress(self) -> Iterator[Callable[[], None]]:
        s = settings()
        if self.path == "-" or not stderr_is_tty():
            yield lambda: None
            return
        total = self._count_lines()
        if total <= PROGRESS_MIN_LINES:
            yield lambda: None
            return
        console = Console(stderr=True, no_color=not s.stderr_color)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        task = progress.add_task(f"evaluating {Path(self.path).name}", total=total)
        s.live_console = console
        try:
            with progress:
                yield lambda: progress.advance(task)
        finally:
            s.live_console = None


def stderr_is_tty() -> bool:
    """Whether a person is watching stderr (progress bars are only drawn then)."""
    return sys.stderr.isatty()


def close_matches(word: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
