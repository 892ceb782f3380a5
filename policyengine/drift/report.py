"""The default drift report over two data sets: profile, compare, judge — per column.

`run_report` takes the reference as a data file, a polars frame or a saved profile, and
the current window as a file or frame (or a window profile). Columns are processed in
groups on a thread pool: numpy's sort and polars' counting release the GIL, so both
cores work, and only a group of columns is in memory at a time. Each column's arrays are
dropped as soon as its metrics are judged, unless the reference profile is asked for.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from policyengine.drift.compare import (
    ColumnPair,
    MetricResult,
    MetricSpec,
    evaluate,
    json_value,
    validate_spec,
)
from policyengine.drift.config import DriftConfig
from policyengine.drift.errors import DriftError
from policyengine.drift.io import DataSource, detect_format, open_source
from policyengine.drift.profile import (
    CategoricalProfile,
    ColumnKind,
    ColumnProfile,
    DatasetProfile,
    NumericProfile,
    ProfileOptions,
    column_kind,
    load_profile,
    profile_series,
)

__all__ = [
    "ColumnReport",
    "DriftReport",
    "PlotData",
    "Side",
    "compare_profiles",
    "run_report",
]

REPORT_FORMAT = "policyengine.drift.report"
REPORT_VERSION = 1
# Columns read per group from a columnar file: bounds memory to a few columns at a time.
GROUP_COLUMNS = 6
PLOT_BINS = 40
PLOT_CATEGORIES = 15

Input = str | Path | pl.DataFrame | DatasetProfile


@dataclass(frozen=True, slots=True)
class PlotData:
    """What the HTML report draws for a column: reference and current shares per bar.

    Numeric: `edges` are the PLOT_BINS + 1 equal-width edges between the 0.5% and
    99.5% quantiles of both sides; `below`/`above` hold the shares outside them.
    Categorical: `labels` are the most frequent categories, the rest pooled as "(other)".
    """

    kind: ColumnKind
    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    below: tuple[float, float] = (0.0, 0.0)
    above: tuple[float, float] = (0.0, 0.0)
    approximate: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "reference": list(self.reference),
            "current": list(self.current),
        }
        if self.kind == "numeric":
            out.update(edges=list(self.edges), below=list(self.below), above=list(self.above))
        else:
            out["labels"] = list(self.labels)
        out["approximate"] = self.approximate
        return out


@dataclass(frozen=True, slots=True)
class ColumnReport:
    column: str
    kind: ColumnKind
    metrics: tuple[MetricResult, ...]
    summary: Mapping[str, Any] = field(default_factory=dict)
    """Data-quality figures shown alongside (rows, missing rates, ranges, categories)."""
    plot: PlotData | None = None

    @property
    def drifted(self) -> bool:
        return any(r.drifted for r in self.metrics)

    @property
    def verdict(self) -> Literal["drift", "ok", "no_data"]:
        if self.drifted:
            return "drift"
        if self.metrics and all(r.verdict == "no_data" for r in self.metrics):
            return "no_data"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "kind": self.kind,
            "verdict": self.verdict,
            "drifted": self.drifted,
            "metrics": [r.to_dict() for r in self.metrics],
            "summary": _jsonable(self.summary),
        }
        if self.plot is not None:
            out["plot"] = self.plot.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison: where it came from, its rows, and — for a profiled
    reference — the digest that names it."""

    source: str | None
    rows: int
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class DriftReport:
    reference: Side
    current: Side
    columns: tuple[ColumnReport, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(column, why) for columns left out: unsupported types, skipped by configuration,
    only in the current data."""
    elapsed_s: float | None = field(default=None, compare=False)
    reference_profile: DatasetProfile | None = field(default=None, compare=False, repr=False)

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in self.columns)

    @property
    def breaches(self) -> tuple[MetricResult, ...]:
        return tuple(r for c in self.columns for r in c.metrics if r.drifted)

    def to_dict(self) -> dict[str, Any]:
        no_data = sum(1 for c in self.columns if c.verdict == "no_data")
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "drifted": self.drifted,
            "reference": self.reference.to_dict(),
            "current": self.current.to_dict(),
            "summary": {
                "columns": len(self.columns),
                "drifted_columns": sum(1 for c in self.columns if c.drifted),
                "breaches": len(self.breaches),
                "no_data_columns": no_data,
            },
            "columns": [c.to_dict() for c in self.columns],
            "skipped": [{"column": n, "reason": why} for n, why in self.skipped],
        }


def _jsonable(v: Any) -> Any:
    return json_value(v)


# --------------------------------------------------------------------------- sides


class _Source:
    """Uniform access to one side: a saved/in-memory profile, a frame, or a file."""

    def __init__(self, value: Input, role: str) -> None:
        self.profile: DatasetProfile | None = None
        self.frame: pl.DataFrame | None = None
        self.file: DataSource | None = None
        self.label: str | None = None
        self._schema: dict[str, pl.DataType] | None = None
        if isinstance(value, DatasetProfile):
            self.profile = value
            self.label = value.source
        elif isinstance(value, pl.DataFrame):
            self.frame = value
        elif isinstance(value, (str, Path)):
            self.label = str(value)
            if role == "reference" and Path(value).is_file() and detect_format(value) == "profile":
                self.profile = load_profile(value)
                if self.profile.source is None:
                    self.profile.source = str(value)
            else:
                self.file = open_source(value)
        else:
            raise DriftError(f"the {role} must be a file path, a polars DataFrame or a profile")

    def schema(self) -> dict[str, pl.DataType]:
        """Column types of a frame or file (read once: a CSV infers them from its rows)."""
        if self._schema is None:
            if self.frame is not None:
                self._schema = dict(self.frame.schema)
            elif self.file is not None:
                self._schema = self.file.schema()
            else:
                self._schema = {}
        return self._schema

    def kinds(self) -> dict[str, ColumnKind | None]:
        if self.profile is not None:
            return {n: p.kind for n, p in self.profile.columns.items()}
        return {n: column_kind(t) for n, t in self.schema().items()}

    def dtype(self, name: str) -> pl.DataType | None:
        return self.schema().get(name)

    def rows(self) -> int | None:
        if self.profile is not None:
            return self.profile.rows
        if self.frame is not None:
            return self.frame.height
        return None

    def load(self, columns: Sequence[str]) -> Mapping[str, pl.Series]:
        if self.frame is not None:
            return {c: self.frame.get_column(c) for c in columns}
        if self.file is not None:
            df = self.file.read(columns)
            return {c: df.get_column(c) for c in columns}
        return {}


# --------------------------------------------------------------------------- running


def run_report(
    reference: Input,
    current: Input,
    *,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    threads: int | None = None,
    plots: bool = False,
    options: ProfileOptions | None = None,
    keep_reference: bool = False,
) -> DriftReport:
    """Compare every selected column of `current` with `reference` and judge each metric.

    `reference`: a data file (Parquet/CSV/Arrow IPC), a saved profile, a polars frame or
    a `DatasetProfile`. `current`: a data file, a frame, or a window profile counted
    against that reference profile. `columns`: restrict to these (default: every column
    of the reference with a comparable type). `plots`: add the distribution data the HTML
    report draws. `keep_reference`: return the reference profile (to save it).
    """
    started = time.perf_counter()
    cfg = config or DriftConfig()
    ref = _Source(reference, "reference")
    cur = _Source(current, "current")
    if cur.profile is not None and ref.profile is None:
        raise DriftError(
            "a current-window profile can only be compared with a reference profile",
            "pass the reference as a saved profile, or pass the current data itself",
        )
    opts = options or (
        ref.profile.options if ref.profile is not None else ProfileOptions(bins=cfg.bins)
    )
    plan, skipped = _plan(ref, cur, columns, cfg)
    threads = threads or min(len(plan) or 1, os.cpu_count() or 1)
    results: dict[str, tuple[ColumnReport, ColumnProfile | None]] = {}
    rows = {"reference": ref.rows(), "current": cur.rows()}

    def task(
        name: str,
        kind: ColumnKind,
        specs: tuple[MetricSpec, ...],
        rs: pl.Series | None,
        cs: pl.Series | None,
    ) -> None:
        results[name] = _column(name, kind, specs, ref, cur, rs, cs, opts, plots, keep_reference)

    groups = _groups(plan, ref, cur)
    with (
        ThreadPoolExecutor(max_workers=threads) as pool,
        ThreadPoolExecutor(max_workers=1) as reader,
    ):
        loaded: Future[tuple[Mapping[str, pl.Series], Mapping[str, pl.Series]]] | None = None
        pending: list[Future[None]] = []
        for i, group in enumerate(groups):
            names = [p[0] for p in group]
            if loaded is None:
                loaded = reader.submit(_load_pair, ref, cur, names)
            rdata, cdata = loaded.result()
            # Read the next group while this one is computed.
            loaded = (
                reader.submit(_load_pair, ref, cur, [p[0] for p in groups[i + 1]])
                if i + 1 < len(groups)
                else None
            )
            _note_rows(rows, rdata, cdata)
            pending.extend(
                pool.submit(task, name, kind, specs, rdata.get(name), cdata.get(name))
                for name, kind, specs in group
            )
            # Keep at most two groups in flight so memory stays bounded.
            while len(pending) > 2 * GROUP_COLUMNS:
                pending.pop(0).result()
        for f in pending:
            f.result()
    reports = tuple(results[name][0] for name, _, _ in plan)
    ref_profile = ref.profile
    if keep_reference and ref_profile is None:
        kept: dict[str, ColumnProfile] = {}
        for name, _, _ in plan:
            prof = results[name][1]
            if prof is not None:
                kept[name] = prof
        ref_profile = DatasetProfile(kept, rows["reference"] or 0, opts, ref.label)
    digest = ref.profile.digest if ref.profile is not None else None
    return DriftReport(
        Side(ref.label, rows["reference"] or 0, digest),
        Side(cur.label, rows["current"] or 0),
        reports,
        tuple(skipped),
        time.perf_counter() - started,
        ref_profile if keep_reference else None,
    )


def compare_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    config: DriftConfig | None = None,
    columns: Sequence[str] | None = None,
    plots: bool = False,
) -> DriftReport:
    """The compare step alone, for profiles made elsewhere (chunked, distributed)."""
    return run_report(reference, current, config=config, columns=columns, plots=plots, threads=1)


Plan = list[tuple[str, ColumnKind, tuple[MetricSpec, ...]]]


def _plan(
    ref: _Source, cur: _Source, columns: Sequence[str] | None, cfg: DriftConfig
) -> tuple[Plan, list[tuple[str, str]]]:
    rk, ck = ref.kinds(), cur.kinds()
    skipped: list[tuple[str, str]] = []
    if columns is not None:
        names = list(dict.fromkeys(columns))
        for n in names:
            if n not in rk:
                raise DriftError(f"no column `{n}` in the reference", _close(n, rk))
    else:
        names = list(rk)
        skipped.extend((n, "not in the reference") for n in ck if n not in rk)
    plan: Plan = []
    missing = [n for n in names if n not in ck]
    if missing:
        listed = ", ".join(f"`{n}`" for n in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DriftError(
            f"the current data has no column {listed}",
            _close(missing[0], ck) if len(missing) == 1 else "pass --columns to compare a subset",
        )
    for n in names:
        if cfg.skipped(n):
            skipped.append((n, "skipped by configuration"))
            continue
        rkind = cfg.kind_for(n, rk[n])
        ckind = cfg.kind_for(n, ck[n])
        if rkind is None:
            if columns is not None:
                raise DriftError(
                    f"column `{n}` has a type drift cannot compare",
                    "compare numeric, text or boolean columns",
                )
            skipped.append((n, "type not comparable"))
            continue
        if ref.profile is not None and ref.profile.columns[n].kind != rkind:
            stored = ref.profile.columns[n].kind
            raise DriftError(f"column `{n}` is {stored} in the reference profile, not {rkind}")
        all_null = cur.profile is None and cur.dtype(n) == pl.Null  # e.g. an empty column
        if (
            ckind != rkind
            and not all_null
            and not (cur.profile is None and ckind is not None and rkind == "categorical")
        ):
            raise DriftError(
                f"column `{n}` is {rkind} in the reference but "
                f"{ckind or 'of another type'} in the current data",
                "check both files have the same schema, or set the column's kind in the "
                "thresholds file",
            )
        specs = cfg.specs_for(n, rkind)
        for s in specs:
            validate_spec(s, rkind, n)
        plan.append((n, rkind, specs))
    return plan, skipped


def _close(name: str, names: Mapping[str, Any]) -> str | None:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    return f"did you mean {', '.join(f'`{c}`' for c in close)}?" if close else None


def _groups(plan: Plan, ref: _Source, cur: _Source) -> list[Plan]:
    csv = (ref.file is not None and not ref.file.columnar) or (
        cur.file is not None and not cur.file.columnar
    )
    size = len(plan) if csv else GROUP_COLUMNS
    return [plan[i : i + size] for i in range(0, len(plan), max(size, 1))] or []


def _load_pair(
    ref: _Source, cur: _Source, names: Sequence[str]
) -> tuple[Mapping[str, pl.Series], Mapping[str, pl.Series]]:
    return ref.load(names), cur.load(names)


def _note_rows(
    rows: dict[str, int | None], rdata: Mapping[str, pl.Series], cdata: Mapping[str, pl.Series]
) -> None:
    for key, data in (("reference", rdata), ("current", cdata)):
        if rows[key] is None and data:
            rows[key] = next(iter(data.values())).len()


def _column(
    name: str,
    kind: ColumnKind,
    specs: tuple[MetricSpec, ...],
    ref: _Source,
    cur: _Source,
    rs: pl.Series | None,
    cs: pl.Series | None,
    opts: ProfileOptions,
    plots: bool,
    keep: bool,
) -> tuple[ColumnReport, ColumnProfile | None]:
    if ref.profile is not None:
        rp = ref.profile.columns[name]
    else:
        assert rs is not None
        rp = profile_series(rs, kind=kind, options=opts)
    if cur.profile is not None:
        cp = cur.profile.columns.get(name)
        if cp is None:
            raise DriftError(f"column `{name}` is not in the current-window profile")
    else:
        assert cs is not None
        cp = profile_series(cs, kind=kind, against=rp, options=opts)
    pair = ColumnPair(name, rp, cp)
    results = evaluate(pair, specs)
    report = ColumnReport(name, kind, results, _summary(pair), _plot(pair) if plots else None)
    return report, (rp if keep else None)


# --------------------------------------------------------------------------- summary & plots


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _summary(pair: ColumnPair) -> dict[str, Any]:
    r, c = pair.reference, pair.current
    out: dict[str, Any] = {
        "rows": {"reference": r.rows, "current": c.rows},
        "missing_rate": {
            "reference": _rate(r.missing, r.rows),
            "current": _rate(c.missing, c.rows),
        },
    }
    if isinstance(r, NumericProfile) and isinstance(c, NumericProfile):
        q = np.array([0.05, 0.5, 0.95])
        rq = r.quantiles(q) if r.count else np.full(3, np.nan)
        cq = c.quantiles(q) if c.count else np.full(3, np.nan)
        out["min"] = {"reference": r.minimum, "current": c.minimum}
        out["max"] = {"reference": r.maximum, "current": c.maximum}
        for i, label in enumerate(("p05", "median", "p95")):
            out[label] = {"reference": _f(rq[i]), "current": _f(cq[i])}
        out["infinite"] = {"reference": r.neg_inf + r.pos_inf, "current": c.neg_inf + c.pos_inf}
        if r.minimum is not None and r.maximum is not None and c.count + c.neg_inf + c.pos_inf:
            if c.values is not None:
                below = int(np.searchsorted(c.values, r.minimum, side="left"))
                above = c.count - int(np.searchsorted(c.values, r.maximum, side="right"))
            else:
                below, above = c.below, c.above
            n = c.count + c.neg_inf + c.pos_inf
            out["out_of_range"] = {"current": (below + above + c.neg_inf + c.pos_inf) / n}
        out["exact"] = r.values is not None and c.values is not None
    elif isinstance(r, CategoricalProfile) and isinstance(c, CategoricalProfile):
        out["categories"] = {"reference": len(r.counts), "current": len(c.counts)}
        out["new_categories"] = {"current": sum(1 for k in c.counts if k not in r.counts)}
        out["missing_categories"] = {"current": sum(1 for k in r.counts if k not in c.counts)}
    return out


def _f(v: Any) -> float | None:
    x = float(v)
    return x if np.isfinite(x) else None


def _plot(pair: ColumnPair) -> PlotData | None:
    r, c = pair.reference, pair.current
    if isinstance(r, CategoricalProfile) and isinstance(c, CategoricalProfile):
        names, rc, cc = pair.categories()
        if not names:
            return None
        rs = rc / max(rc.sum(), 1)
        cs = cc / max(cc.sum(), 1)
        order = sorted(range(len(names)), key=lambda i: (-max(rs[i], cs[i]), names[i]))
        top = order[:PLOT_CATEGORIES]
        labels = [names[i] for i in top]
        rv = [float(rs[i]) for i in top]
        cv = [float(cs[i]) for i in top]
        if len(order) > PLOT_CATEGORIES:
            labels.append("(other)")
            rv.append(float(1.0 - sum(rv)))
            cv.append(float(1.0 - sum(cv)))
        return PlotData("categorical", tuple(rv), tuple(cv), labels=tuple(labels))
    assert isinstance(r, NumericProfile) and isinstance(c, NumericProfile)
    if r.count == 0 and c.count == 0:
        return None
    sides = [p for p in (r, c) if p.count]
    lo = min(float(p.quantiles([0.005])[0]) for p in sides)
    hi = max(float(p.quantiles([0.995])[0]) for p in sides)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)

    def shares(p: NumericProfile) -> tuple[list[float], float, float]:
        if p.count == 0:
            return [0.0] * PLOT_BINS, 0.0, 0.0
        if p.values is not None:
            cum = np.searchsorted(p.values, edges, side="left").astype(np.float64)
            cum[-1] = np.searchsorted(p.values, edges[-1], side="right")
        else:
            assert p.sketch is not None
            cw = np.concatenate(([0], np.cumsum(p.sketch.weights)))
            cum = cw[np.searchsorted(p.sketch.points, edges, side="left")].astype(np.float64)
        n = float(p.count)
        inner = np.diff(cum) / n
        return [float(v) for v in inner], float(cum[0] / n), float((n - cum[-1]) / n)

    rv, rb, ra = shares(r)
    cv, cb, ca = shares(c)
    return PlotData(
        "numeric",
        tuple(rv),
        tuple(cv),
        edges=tuple(float(e) for e in edges),
        below=(rb, cb),
        above=(ra, ca),
        approximate=not pair.exact,
    )
