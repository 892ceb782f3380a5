"""Shared helpers: frames in, column checks with "did you mean", JSON-safe values out."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import polars as pl

from policyengine.privacy.errors import PrivacyError

__all__ = [
    "Frame",
    "columns_of",
    "jsonable",
    "lazy",
    "names",
    "polars_call",
    "require_columns",
    "spare_name",
]

Frame = pl.DataFrame | pl.LazyFrame
"""Every check takes either; eager frames are made lazy so polars can plan the work."""

T = TypeVar("T")

# A Rust panic inside polars surfaces as PanicException, a BaseException.
_POLARS_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException)


def lazy(frame: Frame) -> pl.LazyFrame:
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    raise TypeError(f"expected a polars DataFrame or LazyFrame, got {type(frame).__name__}")


def polars_call(what: str, call: Callable[[], T]) -> T:
    """Run a polars computation, turning its errors (bad files, odd dtypes) into ours."""
    try:
        return call()
    except _POLARS_ERRORS as exc:
        lines = str(exc).strip().splitlines()
        raise PrivacyError(f"cannot {what}: {lines[0] if lines else type(exc).__name__}") from None


def columns_of(frame: pl.LazyFrame) -> dict[str, pl.DataType]:
    return dict(polars_call("read the schema", frame.collect_schema))


def names(value: str | Iterable[str] | None, option: str) -> tuple[str, ...]:
    """Column names as a tuple; one string is one column; duplicates are a mistake."""
    if value is None:
        return ()
    out = (value,) if isinstance(value, str) else tuple(value)
    seen: set[str] = set()
    for name in out:
        if name in seen:
            raise PrivacyError(f"column `{name}` is named twice in {option}")
        seen.add(name)
    return out


def require_columns(available: Iterable[str], wanted: Iterable[str], option: str) -> None:
    """Every wanted column exists, else an error naming the closest existing column."""
    known = list(available)
    for name in wanted:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        shown = ", ".join(f"`{c}`" for c in known[:12]) + (" …" if len(known) > 12 else "")
        hint = f"did you mean `{close[0]}`?" if close else f"the columns are {shown or 'none'}"
        raise PrivacyError(f"unknown column `{name}` in {option}", hint)


def spare_name(base: str, taken: Iterable[str]) -> str:
    """A column name for an intermediate result that cannot collide with the data's."""
    used = set(taken)
    name = base
    while name in used:
        name = "_" + name + "_"
    return name


def jsonable(value: Any) -> Any:
    """A value from a frame as JSON: temporal values as ISO text, non-finite floats as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
