"""Mergeable profiles of a batch of data, and their content hash and file format.

A profile is everything the compare step needs from one side: counts over the
reference's bins, missing and infinite counts, min/max, category counts, and the sorted
finite values (exact statistics) — or, above `max_values`, a quantile sketch.

Two profiles of disjoint chunks merge into the profile of their union; for everything
binned or counted (and for the sorted values) the merge is exact, so a reference can be
profiled once and stored, and a production window can be profiled chunk by chunk.

A reference profile is named by its digest: `sha256:` + SHA-256 of the canonical
(RFC 8785) JSON of its manifest, in which large arrays appear as their own SHA-256. A
decision that cites the digest names exactly the baseline it was judged against.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import rfc8785

from policyengine.drift.errors import DriftError
from policyengine.drift.metrics import (
    FloatArray,
    IntArray,
    counts_in_bins,
    quantile_edges,
    sorted_quantiles,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_VALUES",
    "DEFAULT_SKETCH_SIZE",
    "PROFILE_FORMAT",
    "SCHEMA_VERSION",
    "Binning",
    "CategoricalProfile",
    "ColumnKind",
    "ColumnProfile",
    "DatasetProfile",
    "NumericProfile",
    "ProfileOptions",
    "Sketch",
    "categorical_profile",
    "column_kind",
    "load_profile",
    "merge_profiles",
    "numeric_profile",
    "profile_frame",
    "profile_series",
    "save_profile",
    "with_bins",
]

SCHEMA_VERSION = 1
PROFILE_FORMAT = "policyengine.drift.profile"
DEFAULT_BINS = 10
DEFAULT_MAX_VALUES = 10_000_000
"""Sorted values kept per column (80 MB of float64); above it, a quantile sketch."""
DEFAULT_SKETCH_SIZE = 4096

ColumnKind = Literal["numeric", "categorical"]
_MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    bins: int = DEFAULT_BINS
    max_values: int = DEFAULT_MAX_VALUES
    sketch_size: int = DEFAULT_SKETCH_SIZE

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise DriftError(f"`bins` must be at least 1, got `{self.bins}`")
        if self.max_values < 0:
            raise DriftError(f"`max_values` must not be negative, got `{self.max_values}`")
        if self.sketch_size < 2:
            raise DriftError(f"`sketch_size` must be at least 2, got `{self.sketch_size}`")


# --------------------------------------------------------------------------- sketch


@dataclass(frozen=True, eq=False, slots=True)
class Sketch:
    """Weighted points summarising a sorted sample: at most `size` points, each standing
    for `weight` consecutive values. Deterministic, mergeable, approximate (rank error
    about one group per merge level)."""

    points: FloatArray
    weights: IntArray

    @property
    def count(self) -> int:
        return int(self.weights.sum())

    @classmethod
    def from_sorted(cls, values: FloatArray, size: int) -> Sketch:
        n = values.size
        if n <= size:
            return cls(values.copy(), np.ones(n, dtype=np.int64))
        bounds = (np.arange(size + 1, dtype=np.int64) * n) // size
        mid = (bounds[:-1] + bounds[1:] - 1) // 2
        return cls(values[mid].copy(), np.diff(bounds).astype(np.int64))

    def merge(self, other: Sketch, size: int) -> Sketch:
        points = np.concatenate((self.points, other.points))
        weights = np.concatenate((self.weights, other.weights))
        order = np.argsort(points, kind="stable")
        points, weights = points[order], weights[order]
        if points.size <= size:
            return Sketch(points, weights)
        total = int(weights.sum())
        cum = np.cumsum(weights)
        # Each point joins the group holding the middle of its weight.
        group = np.minimum(((2 * cum - weights) * size) // (2 * total), size - 1)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        group_weights = np.add.reduceat(weights, starts)
        group_end = np.cumsum(group_weights)
        middle = group_end - (group_weights + 1) // 2
        pick = np.searchsorted(cum, middle, side="right")
        return Sketch(points[pick].copy(), group_weights.astype(np.int64))

    def quantiles(self, probs: npt.ArrayLike) -> FloatArray:
        cum = np.cumsum(self.weights)
        target = np.asarray(probs, dtype=np.float64) * (cum[-1] - 1)
        idx = np.searchsorted(cum, target, side="right")
        out: FloatArray = self.points[np.minimum(idx, self.points.size - 1)]
        return out

    def counts_in(self, edges: FloatArray) -> IntArray:
        """Approximate counts per right-closed bin (points carry their whole weight)."""
        idx = np.searchsorted(edges, self.points, side="left")
        return np.bincount(idx, weights=self.weights, minlength=edges.size + 1).astype(np.int64)


# --------------------------------------------------------------------------- column profiles


@dataclass(frozen=True, eq=False, slots=True)
class Binning:
    """The reference-derived bins a window is counted in, and the reference's range."""

    bins: int
    """Quantile bins asked for; `edges` may be fewer + 1 where quantiles tie."""
    edges: FloatArray
    low: float | None
    high: float | None

    def same_as(self, other: Binning) -> bool:
        return (
            self.bins == other.bins
            and self.low == other.low
            and self.high == other.high
            and self.edges.shape == other.edges.shape
            and bool(np.array_equal(self.edges, other.edges))
        )


@dataclass(eq=False, slots=True)
class NumericProfile:
    """Profile of a numeric column. NaN and null are *missing*; ±inf are counted apart
    and excluded from the distribution, as are missing values."""

    rows: int
    missing: int
    neg_inf: int
    pos_inf: int
    count: int
    minimum: float | None
    maximum: float | None
    values: FloatArray | None = None
    """Sorted finite values (exact mode)."""
    sketch: Sketch | None = None
    """Weighted quantile sketch, when the values were not kept."""
    binning: Binning | None = None
    bin_counts: IntArray | None = None
    below: int = 0
    """Finite values below the binning's reference minimum."""
    above: int = 0
    moments: tuple[float, float] | None = None
    """(mean, Σ(x − mean)²) of the finite values; derived lazily in exact mode."""
    kind: ColumnKind = field(default="numeric", init=False)

    @property
    def exact(self) -> bool:
        return self.values is not None

    @property
    def mean(self) -> float | None:
        m = self._moments()
        return None if m is None else m[0]

    @property
    def std(self) -> float | None:
        """Population standard deviation (ddof = 0), as numpy's and Evidently's default."""
        m = self._moments()
        return None if m is None or self.count == 0 else math.sqrt(max(m[1], 0.0) / self.count)

    def _moments(self) -> tuple[float, float] | None:
        if self.moments is None and self.values is not None and self.values.size:
            self.moments = _moments(self.values)
        return self.moments

    def quantiles(self, probs: npt.ArrayLike) -> FloatArray:
        if self.values is not None:
            return sorted_quantiles(self.values, np.asarray(probs, dtype=np.float64))
        if self.sketch is not None:
            return self.sketch.quantiles(probs)
        return np.full(np.shape(probs), np.nan)


@dataclass(eq=False, slots=True)
class CategoricalProfile:
    """Profile of a categorical column: counts per category (as text); nulls are missing."""

    rows: int
    missing: int
    counts: dict[str, int]
    kind: ColumnKind = field(default="categorical", init=False)

    @property
    def count(self) -> int:
        return self.rows - self.missing


ColumnProfile = NumericProfile | CategoricalProfile


def _finite_split(sorted_all: FloatArray) -> tuple[FloatArray, int, int, int]:
    """For a sorted array (NaN last): the finite slice and the −inf, +inf, NaN counts."""
    n = sorted_all.size
    first_nan = int(np.searchsorted(sorted_all, np.nan, side="left"))
    neg = int(np.searchsorted(sorted_all[:first_nan], -np.inf, side="right"))
    first_pos = int(np.searchsorted(sorted_all[:first_nan], np.inf, side="left"))
    return sorted_all[neg:first_pos], neg, first_nan - first_pos, n - first_nan


def numeric_profile(
    values: npt.ArrayLike,
    *,
    binning: Binning | None = None,
    bins: int | None = None,
    options: ProfileOptions = ProfileOptions(),
    presorted: bool = False,
    owned: bool = False,
) -> NumericProfile:
    """Profile numeric values (NaN = missing).

    - `binning` given: a *window* profile, counted in the reference's bins;
    - `bins` given: a *reference* profile, binned at its own quantiles;
    - neither: an unbinned chunk, to merge and then bin with `with_bins`.

    `presorted`: the values are already sorted; `owned`: the caller hands the array over,
    so it is sorted in place instead of copied (a million rows: one 8 MB copy saved).
    """
    x = np.asarray(values, dtype=np.float64)
    if presorted:
        s = x
    elif owned:
        x.sort()
        s = x
    else:
        s = np.sort(x)
    finite, neg, pos, nan = _finite_split(s)
    n = int(finite.size)
    lo = float(finite[0]) if n else None
    hi = float(finite[-1]) if n else None
    prof = NumericProfile(
        rows=int(s.size), missing=nan, neg_inf=neg, pos_inf=pos, count=n, minimum=lo, maximum=hi
    )
    if binning is None and bins is not None:
        binning = Binning(bins, quantile_edges(finite, bins), lo, hi)
    if binning is not None:
        prof.binning = binning
        prof.bin_counts = counts_in_bins(finite, binning.edges)
        if binning.low is not None and n:
            prof.below = int(np.searchsorted(finite, binning.low, side="left"))
        if binning.high is not None and n:
            prof.above = n - int(np.searchsorted(finite, binning.high, side="right"))
    if n <= options.max_values:
        prof.values = finite
    else:
        prof.moments = _moments(finite)
        prof.sketch = Sketch.from_sorted(finite, options.sketch_size)
    return prof


def _moments(finite: FloatArray, block: int = 1 << 16) -> tuple[float, float]:
    """(mean, Σ(x − mean)²), two passes in cache-sized blocks (no full-size temporary)."""
    mean = float(np.mean(finite))
    buf = np.empty(min(block, finite.size), dtype=np.float64)
    m2 = 0.0
    for i in range(0, finite.size, block):
        out = buf[: min(block, finite.size - i)]
        np.subtract(finite[i : i + block], mean, out=out)
        m2 += float(np.einsum("i,i->", out, out))  # not np.dot: BLAS threads contend
    return mean, m2


def categorical_profile(values: pl.Series | Sequence[Any]) -> CategoricalProfile:
    """Profile categorical values; every non-null value is compared as text."""
    s = values if isinstance(values, pl.Series) else pl.Series("value", list(values))
    if s.dtype != pl.String:
        s = s.cast(pl.String)
    missing = s.null_count()
    # A lazy group-by counts about twice as fast as `Series.value_counts` (polars 2.1).
    vc = (
        s.alias("value")
        .to_frame()
        .lazy()
        .group_by("value")
        .agg(pl.len().alias("n"))
        .filter(pl.col("value").is_not_null())
        .collect()
    )
    names = vc.get_column("value").to_list()
    counts = vc.get_column("n").to_list()
    return CategoricalProfile(
        rows=s.len(),
        missing=missing,
        counts={str(k): int(c) for k, c in sorted(zip(names, counts, strict=True))},
    )


def column_kind(dtype: pl.DataType) -> ColumnKind | None:
    """numeric for integer/float/decimal columns; categorical for text, categorical, enum
    and boolean; None for everything else (dates, lists, structs…), which is skipped."""
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.String or dtype == pl.Boolean or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return "categorical"
    return None


def profile_series(
    series: pl.Series,
    *,
    kind: ColumnKind | None = None,
    against: ColumnProfile | None = None,
    options: ProfileOptions = ProfileOptions(),
) -> ColumnProfile:
    """Profile one column: as a reference (binned at its own quantiles), or, `against` a
    reference column profile, as a window counted in that reference's bins."""
    if series.dtype == pl.Null:  # a column with no values at all: missing throughout
        series = series.cast(pl.Float64 if kind == "numeric" else pl.String)
    kind = kind or column_kind(series.dtype)
    if kind is None:
        raise DriftError(
            f"column `{series.name}` has type `{series.dtype}`, which drift cannot compare",
            "compare numeric, text, categorical or boolean columns",
        )
    if kind == "categorical":
        return categorical_profile(series)
    if not series.dtype.is_numeric():
        raise DriftError(f"column `{series.name}` is `{series.dtype}`, not numeric")
    x = series.cast(pl.Float64).to_numpy()
    if against is not None:
        if not isinstance(against, NumericProfile):
            raise DriftError(
                f"column `{series.name}` is numeric here but categorical in the reference"
            )
        return numeric_profile(x, binning=against.binning, options=options)
    return numeric_profile(x, bins=options.bins, options=options)


# --------------------------------------------------------------------------- merging


def _merge_numeric(a: NumericProfile, b: NumericProfile, options: ProfileOptions) -> NumericProfile:
    if (a.binning is None) != (b.binning is None) or (
        a.binning is not None and b.binning is not None and not a.binning.same_as(b.binning)
    ):
        raise DriftError(
            "cannot merge profiles counted in different bins",
            "profile every chunk against the same reference, or merge unbinned chunks and bin once",
        )
    n = a.count + b.count
    lows = [v for v in (a.minimum, b.minimum) if v is not None]
    highs = [v for v in (a.maximum, b.maximum) if v is not None]
    out = NumericProfile(
        rows=a.rows + b.rows,
        missing=a.missing + b.missing,
        neg_inf=a.neg_inf + b.neg_inf,
        pos_inf=a.pos_inf + b.pos_inf,
        count=n,
        minimum=min(lows) if lows else None,
        maximum=max(highs) if highs else None,
        binning=a.binning,
        below=a.below + b.below,
        above=a.above + b.above,
    )
    if a.bin_counts is not None and b.bin_counts is not None:
        out.bin_counts = a.bin_counts + b.bin_counts
    if a.values is not None and b.values is not None and n <= options.max_values:
        # Two sorted runs: the stable sort is a linear merge.
        out.values = np.sort(np.concatenate((a.values, b.values)), kind="stable")
        return out
    ma, mb = a._moments(), b._moments()
    out.moments = _chan(a.count, ma, b.count, mb)
    sa = a.sketch or (
        Sketch.from_sorted(a.values, options.sketch_size) if a.values is not None else None
    )
    sb = b.sketch or (
        Sketch.from_sorted(b.values, options.sketch_size) if b.values is not None else None
    )
    if sa is not None and sb is not None:
        out.sketch = sa.merge(sb, options.sketch_size)
    else:
        out.sketch = sa or sb
    return out


def _chan(
    na: int, ma: tuple[float, float] | None, nb: int, mb: tuple[float, float] | None
) -> tuple[float, float] | None:
    """Chan et al.'s pairwise update of (mean, M2)."""
    if ma is None or na == 0:
        return mb
    if mb is None or nb == 0:
        return ma
    n = na + nb
    delta = mb[0] - ma[0]
    return ma[0] + delta * nb / n, ma[1] + mb[1] + delta * delta * na * nb / n


def _merge_categorical(a: CategoricalProfile, b: CategoricalProfile) -> CategoricalProfile:
    counts = dict(a.counts)
    for k, v in b.counts.items():
        counts[k] = counts.get(k, 0) + v
    return CategoricalProfile(
        rows=a.rows + b.rows, missing=a.missing + b.missing, counts=dict(sorted(counts.items()))
    )


def with_bins(profile: NumericProfile, bins: int) -> NumericProfile:
    """Bin a merged, unbinned reference at its own quantiles (needs the exact values)."""
    if profile.values is None:
        raise DriftError(
            "cannot bin a profile that kept only a quantile sketch",
            "raise `max_values`, or profile the reference in two passes (`profile_source`)",
        )
    out = replace(profile)
    out.binning = Binning(
        bins, quantile_edges(profile.values, bins), profile.minimum, profile.maximum
    )
    out.bin_counts = counts_in_bins(profile.values, out.binning.edges)
    out.below = out.above = 0
    return out


# --------------------------------------------------------------------------- dataset profiles


@dataclass(eq=False)
class DatasetProfile:
    """Profiles of every compared column of one data set (a reference or a window)."""

    columns: dict[str, ColumnProfile]
    rows: int
    options: ProfileOptions = ProfileOptions()
    source: str | None = None
    """Where the data came from; informational, not part of the digest."""
    schema_version: int = SCHEMA_VERSION
    _digest: str | None = field(default=None, repr=False)

    def manifest(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """The hashed description and the large arrays it names by SHA-256."""
        arrays: dict[str, npt.NDArray[Any]] = {}
        cols = [
            _column_manifest(name, prof, i, arrays)
            for i, (name, prof) in enumerate(self.columns.items())
        ]
        body = {
            "format": PROFILE_FORMAT,
            "schema_version": self.schema_version,
            "rows": self.rows,
            "options": {
                "bins": self.options.bins,
                "max_values": self.options.max_values,
                "sketch_size": self.options.sketch_size,
            },
            "columns": cols,
        }
        return body, arrays

    @property
    def digest(self) -> str:
        """`sha256:` + hex digest of the canonical JSON manifest (computed once)."""
        if self._digest is None:
            body, _ = self.manifest()
            self._digest = _digest_of(body)
        return self._digest


def _digest_of(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def _array_ref(
    arr: npt.NDArray[Any], key: str, arrays: dict[str, npt.NDArray[Any]]
) -> dict[str, Any]:
    le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    arrays[key] = le
    return {
        "file": key,
        "dtype": le.dtype.str,
        "length": int(le.size),
        "sha256": hashlib.sha256(le.data).hexdigest(),
    }


def _float_or_none(v: float | None) -> float | None:
    return None if v is None else float(v)


def _column_manifest(
    name: str, prof: ColumnProfile, i: int, arrays: dict[str, npt.NDArray[Any]]
) -> dict[str, Any]:
    if isinstance(prof, CategoricalProfile):
        return {
            "name": name,
            "kind": "categorical",
            "rows": prof.rows,
            "missing": prof.missing,
            "counts": dict(prof.counts),
        }
    out: dict[str, Any] = {
        "name": name,
        "kind": "numeric",
        "rows": prof.rows,
        "missing": prof.missing,
        "neg_inf": prof.neg_inf,
        "pos_inf": prof.pos_inf,
        "count": prof.count,
        "min": _float_or_none(prof.minimum),
        "max": _float_or_none(prof.maximum),
        "binning": None,
        "bin_counts": None,
        "below": prof.below,
        "above": prof.above,
        "values": None,
        "sketch": None,
        "moments": None,
    }
    if prof.binning is not None:
        out["binning"] = {
            "bins": prof.binning.bins,
            "edges": [float(e) for e in prof.binning.edges],
            "low": _float_or_none(prof.binning.low),
            "high": _float_or_none(prof.binning.high),
        }
    if prof.bin_counts is not None:
        out["bin_counts"] = [int(c) for c in prof.bin_counts]
    if prof.values is not None:
        out["values"] = _array_ref(prof.values, f"arrays/{i}/values", arrays)
    else:
        # Without the values the moments are primary data, so they are hashed too.
        if prof.moments is not None:
            out["moments"] = {"mean": prof.moments[0], "m2": prof.moments[1]}
        if prof.sketch is not None:
            out["sketch"] = {
                "points": _array_ref(prof.sketch.points, f"arrays/{i}/sketch_points", arrays),
                "weights": _array_ref(prof.sketch.weights, f"arrays/{i}/sketch_weights", arrays),
            }
    return out


def merge_profiles(a: DatasetProfile, b: DatasetProfile) -> DatasetProfile:
    """Profile of the union of two disjoint chunks profiled with the same options/bins."""
    if list(a.columns) != list(b.columns):
        raise DriftError(
            "cannot merge profiles of different columns",
            f"one has {list(a.columns)}, the other {list(b.columns)}",
        )
    if a.options != b.options:
        raise DriftError("cannot merge profiles made with different options")
    cols: dict[str, ColumnProfile] = {}
    for name, pa in a.columns.items():
        pb = b.columns[name]
        if isinstance(pa, NumericProfile) and isinstance(pb, NumericProfile):
            cols[name] = _merge_numeric(pa, pb, a.options)
        elif isinstance(pa, CategoricalProfile) and isinstance(pb, CategoricalProfile):
            cols[name] = _merge_categorical(pa, pb)
        else:
            raise DriftError(
                f"column `{name}` is numeric in one profile and categorical in the other"
            )
    return DatasetProfile(cols, a.rows + b.rows, a.options, a.source)


def profile_frame(
    frame: pl.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    kinds: Mapping[str, ColumnKind] | None = None,
    reference: DatasetProfile | None = None,
    options: ProfileOptions | None = None,
    binned: bool = True,
    source: str | None = None,
) -> DatasetProfile:
    """Profile a frame: as a reference (binned at its own quantiles), or — `reference`
    given — as a window counted in the reference's bins. `binned=False` gives unbinned
    reference chunks to merge and then bin with `with_bins`."""
    opts = options or (reference.options if reference is not None else ProfileOptions())
    names = (
        list(columns)
        if columns is not None
        else (list(reference.columns) if reference is not None else list(frame.columns))
    )
    kinds = dict(kinds or {})
    cols: dict[str, ColumnProfile] = {}
    for name in names:
        if name not in frame.columns:
            raise DriftError(f"no column `{name}` in the data")
        s = frame.get_column(name)
        against = reference.columns.get(name) if reference is not None else None
        if reference is not None and against is None:
            raise DriftError(f"column `{name}` is not in the reference profile")
        kind = kinds.get(name) or (against.kind if against is not None else column_kind(s.dtype))
        if kind is None:
            if columns is None:
                continue
            raise DriftError(f"column `{name}` has type `{s.dtype}`, which drift cannot compare")
        if kind == "numeric" and against is None and not binned:
            cols[name] = numeric_profile(s.cast(pl.Float64).to_numpy(), options=opts)
        else:
            cols[name] = profile_series(s, kind=kind, against=against, options=opts)
    return DatasetProfile(cols, frame.height, opts, source)


# --------------------------------------------------------------------------- file format


def save_profile(profile: DatasetProfile, path: str | Path) -> str:
    """Write the profile as one zip file (manifest + raw little-endian arrays); returns
    the digest. The manifest carries the digest so a reader can check the file."""
    body, arrays = profile.manifest()
    digest = _digest_of(body)
    profile._digest = digest
    doc = {"digest": digest, "profile": body, "info": {"source": profile.source}}
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(_MANIFEST, json.dumps(doc, indent=1, ensure_ascii=False))
            for key, arr in arrays.items():
                zf.writestr(key, arr.tobytes())
    except OSError as exc:
        raise DriftError(f"cannot write `{path}`: {exc.strerror or exc}") from None
    return digest


def load_profile(path: str | Path, *, verify: bool = True) -> DatasetProfile:
    """Read a profile written by `save_profile`, checking every hash unless told not to."""
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DriftError(f"no such profile `{path}`") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DriftError(f"`{path}` is not a drift profile ({exc})") from None
    with zf:
        try:
            doc = json.loads(zf.read(_MANIFEST))
            body = doc["profile"]
            digest = doc["digest"]
        except (KeyError, ValueError, TypeError):
            raise DriftError(f"`{path}` is not a drift profile (no readable manifest)") from None
        if not isinstance(body, dict) or body.get("format") != PROFILE_FORMAT:
            raise DriftError(f"`{path}` is not a drift profile")
        version = body.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DriftError(
                f"`{path}` has profile schema version `{version}`; "
                f"this version reads {SCHEMA_VERSION}",
                "re-profile the reference with this version of policyengine",
            )
        if verify and _digest_of(body) != digest:
            raise DriftError(f"profile `{path}` does not match its digest", "the file was modified")
        try:
            return _from_manifest(body, zf, digest, doc.get("info", {}).get("source"), verify)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DriftError):
                raise
            raise DriftError(f"`{path}` is not a valid drift profile ({exc})") from None


def _read_array(zf: zipfile.ZipFile, ref: Mapping[str, Any], verify: bool) -> npt.NDArray[Any]:
    raw = zf.read(ref["file"])
    if verify and hashlib.sha256(raw).hexdigest() != ref["sha256"]:
        raise DriftError(f"array `{ref['file']}` does not match its hash", "the file was modified")
    arr = np.frombuffer(raw, dtype=np.dtype(ref["dtype"]))
    if arr.size != ref["length"]:
        raise DriftError(f"array `{ref['file']}` has the wrong length")
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _from_manifest(
    body: Mapping[str, Any], zf: zipfile.ZipFile, digest: str, source: str | None, verify: bool
) -> DatasetProfile:
    o = body["options"]
    options = ProfileOptions(int(o["bins"]), int(o["max_values"]), int(o["sketch_size"]))
    cols: dict[str, ColumnProfile] = {}
    for c in body["columns"]:
        if c["kind"] == "categorical":
            cols[c["name"]] = CategoricalProfile(
                int(c["rows"]), int(c["missing"]), {str(k): int(v) for k, v in c["counts"].items()}
            )
            continue
        prof = NumericProfile(
            rows=int(c["rows"]),
            missing=int(c["missing"]),
            neg_inf=int(c["neg_inf"]),
            pos_inf=int(c["pos_inf"]),
            count=int(c["count"]),
            minimum=c["min"],
            maximum=c["max"],
            below=int(c["below"]),
            above=int(c["above"]),
        )
        if c["binning"] is not None:
            b = c["binning"]
            prof.binning = Binning(
                int(b["bins"]), np.asarray(b["edges"], dtype=np.float64), b["low"], b["high"]
            )
        if c["bin_counts"] is not None:
            prof.bin_counts = np.asarray(c["bin_counts"], dtype=np.int64)
        if c["values"] is not None:
            prof.values = _read_array(zf, c["values"], verify).astype(np.float64)
        if c["sketch"] is not None:
            prof.sketch = Sketch(
                _read_array(zf, c["sketch"]["points"], verify).astype(np.float64),
                _read_array(zf, c["sketch"]["weights"], verify).astype(np.int64),
            )
        if c["moments"] is not None:
            prof.moments = (float(c["moments"]["mean"]), float(c["moments"]["m2"]))
        cols[c["name"]] = prof
    return DatasetProfile(
        cols, int(body["rows"]), options, source, int(body["schema_version"]), digest
    )
