"""One error taxonomy for everything the compiler reports.

Codes are stable (documented in spec/errors.md); messages follow Cedar's style
guide: lowercase, user input in backticks, the fix in a separate hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from policyengine.language.ast import Span


class Code(StrEnum):
    """Stable diagnostic codes. Never renumber; add new ones at the end of a group."""

    # syntax
    SYNTAX = "E0101"
    UNEXPECTED_EOF = "E0102"
    UNEXPECTED_CHAR = "E0103"
    BAD_LITERAL = "E0104"
    BAD_TEMPLATE = "E0105"
    # names
    UNDEFINED_NAME = "E0201"
    UNDEFINED_RULE = "E0202"
    UNDEFINED_PACKAGE = "E0203"
    UNKNOWN_ATTRIBUTE = "E0204"
    UNKNOWN_FUNCTION = "E0205"
    UNKNOWN_EVENT_TYPE = "E0206"
    UNKNOWN_ENTITY_KIND = "E0207"
    SHADOWED_NAME = "E0208"
    UNKNOWN_METRIC = "E0209"
    # types
    TYPE_MISMATCH = "E0301"
    WRONG_ARITY = "E0302"
    BAD_REGEX = "E0303"
    NOT_CONSTANT = "E0304"
    # structure
    DUPLICATE_RULE = "E0401"
    DUPLICATE_CONST = "E0402"
    MISSING_REQUIREMENT = "E0403"
    DEPENDENCY_CYCLE = "E0404"
    MISSING_CLAUSE = "E0405"
    BAD_CLAUSE_VALUE = "E0406"
    REPEATED_CLAUSE = "E0407"
    DUPLICATE_TEST = "E0408"
    PACKAGE_MISMATCH = "E0409"
    DEPENDENCY_NOT_TRIGGERED = "E0410"  # a warning
    # files
    FILE_ERROR = "E0501"
    NO_POLICIES = "E0502"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: Code
    message: str
    span: Span
    hint: str | None = None
    severity: Severity = Severity.ERROR
    # Secondary locations, e.g. the first definition of a duplicate.
    notes: tuple[tuple[str, Span], ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.code.value)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "hint": self.hint,
            "notes": [
                {"message": m, "file": s.file, "line": s.line, "column": s.column}
                for m, s in self.notes
            ],
        }


class CompileError(Exception):
    """Raised when a bundle does not compile; carries every diagnostic, sorted by location."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = sources or {}
        super().__init__(
            "\n".join(f"{d.span}: {d.code.value}: {d.message}" for d in self.diagnostics)
        )

    def render(self) -> str:
        return render_all(self.diagnostics, self.sources)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{matches[0]}`?" if matches else None


def render(diag: Diagnostic, source: str | None) -> str:
    """Render like rustc: header, location arrow, the line with a caret, then help."""
    sp = diag.span
    out = [f"{diag.severity.value}[{diag.code.value}]: {diag.message}"]
    gutter = len(str(sp.line)) + 1
    out.append(f"{' ' * (gutter - 1)}--> {sp.file}:{sp.line}:{sp.column}")
    lines = source.splitlines() if source is not None else []
    if 1 <= sp.line <= len(lines):
        text = lines[sp.line - 1].expandtabs(1)
        width = (sp.end_column - sp.column) if sp.end_line == sp.line else len(text) - sp.column + 1
        width = max(1, width)
        out.append(f"{' ' * gutter}|")
        out.append(f"{sp.line:>{gutter - 1}} | {text}")
        out.append(f"{' ' * gutter}| {' ' * (sp.column - 1)}{'^' * width}")
    for note, nspan in diag.notes:
        out.append(f"{' ' * gutter}= note: {note} at {nspan}")
    if diag.hint:
        out.append(f"{' ' * gutter}= help: {diag.hint}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str]) -> str:
    parts = [render(d, sources.get(d.span.file)) for d in sorted(diags, key=Diagnostic.sort_key)]
    errors = sum(1 for d in diags if d.severity is Severity.ERROR)
    warnings = len(diags) - errors
    summary = f"{errors} error{'s' if errors != 1 else ''}"
    if warnings:
        summary += f", {warnings} warning{'s' if warnings != 1 else ''}"
    return "\n\n".join([*parts, summary]) if parts else ""
