"""Errors raised by the lineage store and its queries (issue 5)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AmbiguousNodeError", "LineageError", "UnknownNodeError"]


class LineageError(Exception):
    """A lineage store or query that cannot be used as asked: a missing or foreign file, an
    event id reused with different content, an unknown or ambiguous node.

    `hint` carries the fix where there is one, so the CLI can print it on its own line.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


class UnknownNodeError(LineageError):
    """No node matches the text; `suggestions` are close ids or names (`kind:id` form)."""

    def __init__(self, text: str, suggestions: Sequence[str] = ()) -> None:
        self.text = text
        self.suggestions = tuple(suggestions)
        hint = (
            "did you mean " + ", ".join(f"`{s}`" for s in self.suggestions) + "?"
            if self.suggestions
            else "pass an entity id (`mv-1` or `model_version:mv-1`) or a name; "
            "`policyengine lineage record` fills the store"
        )
        super().__init__(f"no lineage node `{text}`", hint)


class AmbiguousNodeError(LineageError):
    """Several nodes match; `candidates` lists them (`kind:id`) so the user can pick one."""

    def __init__(self, text: str, candidates: Sequence[str]) -> None:
        self.text = text
        self.candidates = tuple(candidates)
        listed = ", ".join(f"`{c}`" for c in self.candidates)
        super().__init__(
            f"`{text}` is ambiguous: it matches {len(self.candidates)} nodes: {listed}",
            "pass one of them as `kind:id`",
        )
