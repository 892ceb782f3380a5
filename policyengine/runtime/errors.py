"""The one exception a compiled expression raises while evaluating."""

from __future__ import annotations

from policyengine.language.ast import Span


class EvalError(Exception):
    """An expression could not produce a value.

    `undefined` marks a missing attribute, a null in the middle of a path or an
    unknown entity: the cases `has(...)` and `??` are allowed to absorb. Every
    other error (type errors at run time, division by zero, `min([])`) is not.
    """

    __slots__ = ("message", "span", "undefined")

    def __init__(self, message: str, span: Span, *, undefined: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.undefined = undefined
