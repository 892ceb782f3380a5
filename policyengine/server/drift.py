"""`POST /v1/drift`: run a monitor of the serving bundle over posted or server-side data.

The request names the monitor (or the model it watches), the model version that scored the
window, and the two data sets — inline as columns, or as paths under the server's
`--data-root` (never anywhere else: a request must not be able to read arbitrary files).
Each check becomes a `drift.evaluated` event that the caller decides and records like any
other, so an open breach blocks promotion through the ordinary rules.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyengine.compiler.bundle import Bundle
from policyengine.server.problems import Problem

__all__ = ["DriftRequest", "parse_drift_request", "run_drift"]

_FIELDS = {"monitor", "model", "model_version", "reference", "current", "time"}


class DriftRequest:
    def __init__(
        self,
        monitor: str | None,
        model: str | None,
        model_version: str,
        reference: Any,
        current: Any,
        time: datetime,
    ) -> None:
        self.monitor = monitor
        self.model = model
        self.model_version = model_version
        self.reference = reference
        self.current = current
        self.time = time


def _invalid(pointer: str, detail: str) -> Problem:
    return Problem(
        422,
        "invalid-request",
        "Invalid drift request",
        detail,
        errors=[{"pointer": pointer, "detail": detail}],
    )


def _data(value: Any, pointer: str, data_root: str | None) -> Any:
    """A path under the data root, or inline columns `{"columns": {name: [values]}}`."""
    import polars as pl

    if isinstance(value, str):
        if data_root is None:
            raise _invalid(
                pointer,
                "this server reads no files (start it with --data-root); send the data inline"
                ' as {"columns": {...}}',
            )
        root = Path(data_root).resolve()
        path = (root / value).resolve()
        if not path.is_relative_to(root):
            raise _invalid(pointer, f"`{value}` is outside the server's data root")
        if not path.is_file():
            raise _invalid(pointer, f"no data file `{value}` under the data root")
        return path
    if isinstance(value, dict) and set(value) == {"columns"} and isinstance(value["columns"], dict):
        columns = value["columns"]
        lengths = {len(v) for v in columns.values() if isinstance(v, list)}
        if (
            not columns
            or len(lengths) != 1
            or not all(isinstance(v, list) for v in columns.values())
        ):
            raise _invalid(pointer, "`columns` must map names to lists of equal length")
        try:
            return pl.DataFrame(columns, strict=False)
        except Exception as exc:  # polars raises several types for mixed columns
            raise _invalid(pointer, f"the columns do not form a table: {exc}") from None
    raise _invalid(pointer, 'expected a path under the data root or {"columns": {...}}')


def parse_drift_request(body: Any, data_root: str | None) -> DriftRequest:
    if not isinstance(body, dict):
        raise _invalid("#", "a drift request is a JSON object")
    extra = sorted(set(body) - _FIELDS)
    if extra:
        raise _invalid(f"#/{extra[0]}", f"unknown field `{extra[0]}`")
    for name in ("model_version", "reference", "current"):
        if name not in body:
            raise _invalid(f"#/{name}", f"`{name}` is required")
    for name in ("monitor", "model", "model_version"):
        if name in body and not (isinstance(body[name], str) and body[name]):
            raise _invalid(f"#/{name}", f"`{name}` must be a non-empty string")
    when = datetime.now(UTC)
    if "time" in body:
        try:
            when = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("#/time", "`time` must be an RFC 3339 timestamp") from None
        if when.tzinfo is None:
            raise _invalid("#/time", "`time` needs a UTC offset such as `Z`")
    return DriftRequest(
        body.get("monitor"),
        body.get("model"),
        body["model_version"],
        _data(body["reference"], "#/reference", data_root),
        _data(body["current"], "#/current", data_root),
        when.astimezone(UTC),
    )


def run_drift(bundle: Bundle, request: DriftRequest) -> tuple[list[Any], list[dict[str, Any]]]:
    """(monitor runs, drift events) for the request; CPU-bound, run it off the event loop."""
    from policyengine.drift import DriftError
    from policyengine.drift.monitor import drift_events, run_monitor, select_monitors

    try:
        chosen = select_monitors(bundle.monitors, monitor=request.monitor, model=request.model)
        runs = [
            run_monitor(
                spec, request.reference, request.current, model_version=request.model_version
            )
            for spec in chosen
        ]
    except DriftError as err:
        detail = err.message + (f" (hint: {err.hint})" if err.hint else "")
        raise Problem(422, "drift-error", "Drift check failed", detail) from None
    events = [e for run in runs for e in drift_events(run, time=request.time)]
    return runs, events


def gauge_value(value: float | None) -> float:
    return math.nan if value is None else value
