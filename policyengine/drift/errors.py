"""The one exception type of the drift package."""

from __future__ import annotations

__all__ = ["DriftError"]


class DriftError(ValueError):
    """A problem with the caller's input (a file, a column, a threshold, a profile).

    Messages are lowercase, name user input in backticks and may carry a `hint`, so the
    CLI can print them as `error: …` / `hint: …` and a policy runtime can surface them
    unchanged.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
