"""`check` reports: compile diagnostics as rustc-style text or JSON, plus the
one-line bundle summary printed when everything compiles."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from policyengine.compiler.bundle import Bundle
from policyengine.language.diagnostics import Diagnostic, Severity, render_all
from policyengine.reports._common import dumps
from policyengine.reports._console import DEFAULT_WIDTH, to_text

__all__ = ["BundleStats", "check_json", "check_text", "diagnostics_text"]


@dataclass(frozen=True, slots=True)
class BundleStats:
    """What a successful `check` reports about the compiled bundle."""

    files: int
    rules: int
    tests: int
    digest: str

    @classmethod
    def of(cls, bundle: Bundle) -> BundleStats:
        return cls(len(bundle.sources), len(bundle.rules), len(bundle.tests), bundle.digest)

    def summary(self) -> str:
        def n(k: int, word: str) -> str:
            return f"{k} {word}{'s' if k != 1 else ''}"

        return (
            f"ok: {n(self.files, 'file')}, {n(self.rules, 'rule')}, {n(self.tests, 'test')}; "
            f"bundle {self.digest}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "rules": self.rules,
            "tests": self.tests,
            "digest": self.digest,
        }


_HEADER = re.compile(r"^(error|warning)(\[[A-Z]\d+\])?:")


def _style_line(line: str) -> Text:
    text = Text(line)
    m = _HEADER.match(line)
    if m:
        text.stylize("bold red" if m.group(1) == "error" else "bold yellow", 0, m.end())
        text.stylize("bold", m.end())
        return text
    stripped = line.lstrip()
    if stripped.startswith("-->") or stripped.startswith("= "):
        text.stylize("cyan")
    elif stripped.startswith("|") and set(stripped[1:].strip()) == {"^"}:
        text.stylize("bold red")
    elif "|" in line and line.split("|", 1)[0].strip().isdigit():
        text.stylize("cyan", 0, line.index("|") + 1)
    return text


def diagnostics_text(
    diagnostics: Sequence[Diagnostic],
    sources: Mapping[str, str],
    *,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
) -> str:
    """rustc-style diagnostics (file:line:col, the source line, a caret, the hint),
    followed by an `N errors` line; empty when there is nothing to report."""
    rendered = render_all(diagnostics, dict(sources))
    if not rendered:
        return ""
    if not color:
        return rendered + "\n"
    lines = [_style_line(line) for line in rendered.splitlines()]
    return to_text(*lines, color=True, width=max(width, max(len(t) for t in lines)))


def check_text(
    diagnostics: Sequence[Diagnostic],
    sources: Mapping[str, str],
    stats: BundleStats | None,
    *,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
) -> str:
    """Diagnostics (errors or warnings) and, when the bundle compiled, the summary line."""
    out = diagnostics_text(diagnostics, sources, color=color, width=width)
    if stats is not None:
        if out:
            out += "\n"
        out += stats.summary() + "\n"
    return out


def check_json(diagnostics: Sequence[Diagnostic], stats: BundleStats | None) -> str:
    """`{"ok": ..., "errors": n, "warnings": n, "diagnostics": [...], "bundle": {...}|null}`."""
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    return dumps(
        {
            "ok": stats is not None and errors == 0,
            "errors": errors,
            "warnings": len(diagnostics) - errors,
            "diagnostics": [d.to_dict() for d in diagnostics],
            "bundle": stats.to_dict() if stats is not None else None,
        }
    )
