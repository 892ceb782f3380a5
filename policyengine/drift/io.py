"""Reading reference and current data: Parquet, CSV and Arrow IPC through polars.

Columnar files are read a group of columns at a time (so a report never holds both
frames whole), CSV in one pass, and any of them chunk by chunk for profiles of data
larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from policyengine.drift.errors import DriftError
from policyengine.drift.profile import (
    Binning,
    ColumnKind,
    ColumnProfile,
    DatasetProfile,
    NumericProfile,
    ProfileOptions,
    column_kind,
    merge_profiles,
    profile_frame,
    with_bins,
)

__all__ = [
    "DATA_SUFFIXES",
    "DataSource",
    "FileFormat",
    "detect_format",
    "open_source",
    "profile_source",
]

FileFormat = Literal["parquet", "csv", "ipc", "profile"]

DATA_SUFFIXES: dict[str, FileFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".txt": "csv",
    ".arrow": "ipc",
    ".ipc": "ipc",
    ".feather": "ipc",
    ".zip": "profile",
    ".pedrift": "profile",
}


def detect_format(path: str | Path) -> FileFormat:
    """By suffix, else by magic bytes (PAR1, ARROW1, a zip), else CSV."""
    p = Path(path)
    fmt = DATA_SUFFIXES.get(p.suffix.lower())
    if fmt is not None:
        return fmt
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return "csv"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "ipc"
    if head.startswith(b"PK\x03\x04"):
        return "profile"
    return "csv"


# A Rust panic inside polars surfaces as PanicException, a BaseException.
_READ_ERRORS = (Exception, pl.exceptions.PanicException)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class DataSource:
    """A data file, read lazily by column groups or by row chunks."""

    path: Path
    format: FileFormat

    def _scan(self) -> pl.LazyFrame:
        p = str(self.path)
        if self.format == "parquet":
            return pl.scan_parquet(p)
        if self.format == "ipc":
            return pl.scan_ipc(p)
        return pl.scan_csv(p, infer_schema_length=10_000)

    def schema(self) -> dict[str, pl.DataType]:
        try:
            return dict(self._scan().collect_schema())
        except _READ_ERRORS as exc:  # polars raises many types for unreadable files
            raise DriftError(f"cannot read `{self.path}` as {self.format}: {_short(exc)}") from None

    def kinds(self) -> dict[str, ColumnKind | None]:
        return {name: column_kind(dtype) for name, dtype in self.schema().items()}

    def read(self, columns: Sequence[str]) -> pl.DataFrame:
        """The given columns, whole. Columnar formats read only those columns."""
        p = str(self.path)
        try:
            if self.format == "parquet":
                return pl.read_parquet(p, columns=list(columns))
            if self.format == "ipc":
                return pl.read_ipc(p, columns=list(columns))
            return pl.read_csv(p, columns=list(columns), infer_schema_length=10_000)
        except _READ_ERRORS as exc:
            raise DriftError(f"cannot read `{self.path}`: {_short(exc)}") from None

    @property
    def columnar(self) -> bool:
        """Whether reading a few columns is cheaper than reading all of them."""
        return self.format in ("parquet", "ipc")

    def batches(self, columns: Sequence[str], rows: int) -> Iterator[pl.DataFrame]:
        """Row chunks of about `rows` rows, streamed (bounded memory)."""
        lf = self._scan().select(list(columns))
        try:
            yield from lf.collect_batches(chunk_size=rows, lazy=True)
        except DriftError:
            raise
        except _READ_ERRORS as exc:
            raise DriftError(f"cannot read `{self.path}`: {_short(exc)}") from None


def open_source(path: str | Path) -> DataSource:
    """A data file to read; missing files and profiles given as data are user errors."""
    p = Path(path)
    if not p.exists():
        raise DriftError(
            f"no such file `{path}`", "check the path, relative to the current directory"
        )
    if p.is_dir():
        raise DriftError(f"`{path}` is a directory", "pass a Parquet, CSV or Arrow IPC file")
    fmt = detect_format(p)
    if fmt == "profile":
        raise DriftError(
            f"`{path}` is a saved profile, not data",
            "a profile can only stand for the reference",
        )
    return DataSource(p, fmt)


def profile_source(
    source: DataSource,
    *,
    columns: Sequence[str] | None = None,
    reference: DatasetProfile | None = None,
    options: ProfileOptions | None = None,
    batch_rows: int = 1_000_000,
) -> DatasetProfile:
    """Profile a file chunk by chunk, merging chunk profiles (memory bounded by a chunk
    plus the kept values). A window (`reference` given) is counted in the reference's
    bins. A reference is binned at its own quantiles: from the kept values when they fit,
    otherwise with a second pass counting bins at edges taken from the sketch."""
    opts = options or (reference.options if reference is not None else ProfileOptions())
    if columns is None:
        columns = (
            list(reference.columns)
            if reference is not None
            else [n for n, k in source.kinds().items() if k is not None]
        )
    merged: DatasetProfile | None = None
    for chunk in source.batches(columns, batch_rows):
        part = profile_frame(
            chunk, columns=columns, reference=reference, options=opts, binned=reference is not None
        )
        merged = part if merged is None else merge_profiles(merged, part)
    if merged is None:  # an empty file still has a schema
        empty = source.read(columns).head(0)
        merged = profile_frame(
            empty, columns=columns, reference=reference, options=opts, binned=False
        )
    merged.source = str(source.path)
    if reference is not None:
        return merged
    return _bin_reference(source, merged, columns, opts, batch_rows)


def _bin_reference(
    source: DataSource,
    merged: DatasetProfile,
    columns: Sequence[str],
    opts: ProfileOptions,
    batch_rows: int,
) -> DatasetProfile:
    cols = dict(merged.columns)
    sketched: dict[str, NumericProfile] = {}
    for name, prof in cols.items():
        if not isinstance(prof, NumericProfile):
            continue
        if prof.values is not None:
            cols[name] = with_bins(prof, opts.bins)
        else:
            sketched[name] = prof
    if sketched:
        # Second pass: count every chunk in edges taken from the merged sketch (the
        # counting pass keeps no values: max_values = 0).
        probs = np.arange(1, opts.bins, dtype=np.float64) / opts.bins
        staged: dict[str, ColumnProfile] = {}
        for name, prof in sketched.items():
            assert prof.sketch is not None
            stage = NumericProfile(
                rows=0, missing=0, neg_inf=0, pos_inf=0, count=0, minimum=None, maximum=None
            )
            edges = np.unique(prof.sketch.quantiles(probs))
            stage.binning = Binning(opts.bins, edges, prof.minimum, prof.maximum)
            staged[name] = stage
        counting = replace(opts, max_values=0)
        ref = DatasetProfile(staged, 0, counting)
        counted: DatasetProfile | None = None
        for chunk in source.batches(list(sketched), batch_rows):
            part = profile_frame(chunk, columns=list(sketched), reference=ref, options=counting)
            counted = part if counted is None else merge_profiles(counted, part)
        assert counted is not None
        for name, prof in sketched.items():
            c = counted.columns[name]
            assert isinstance(c, NumericProfile)
            prof.binning, prof.bin_counts = c.binning, c.bin_counts
            cols[name] = prof
    return DatasetProfile(cols, merged.rows, opts, merged.source)
