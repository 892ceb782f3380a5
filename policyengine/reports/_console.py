"""Render rich renderables to a string, independent of the process's terminal.

Reports are data in, text out: the CLI prints the string, the HTTP server can
return it. The console ignores the environment (NO_COLOR, COLUMNS, FORCE_COLOR)
so the same inputs always give the same bytes; callers decide colour and width.
"""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

DEFAULT_WIDTH = 100


def to_text(*renderables: RenderableType, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """Render to plain text, or to ANSI-styled text when `color` is true."""
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        force_jupyter=False,
        force_interactive=False,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={},
    )
    for r in renderables:
        console.print(r)
    text = buf.getvalue()
    if color:
        return text
    # Tables pad every cell; trailing blanks only get in the way in files and diffs.
    return "".join(line.rstrip() + "\n" for line in text.splitlines())
