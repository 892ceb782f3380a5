"""The one exception type of the privacy package."""

from __future__ import annotations

__all__ = ["PrivacyError"]


class PrivacyError(ValueError):
    """A problem with the caller's input (a file, a column, a threshold).

    Messages are lowercase and name user input in backticks; `hint` says what to do, so the
    CLI prints `error: …` / `hint: …` and exits 2 instead of showing a traceback.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
