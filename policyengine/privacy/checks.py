"""k-anonymity, l-diversity and minimum cell size over polars frames.

Each check is one or two `group_by` aggregations planned lazily by polars, so a check reads
only the columns it needs and scales with the number of rows rather than Python loops.
Definitions (including how nulls count) are in `spec/privacy.md`.

Nulls: a null in a quasi-identifier or sensitive column is a value of its own. Rows that
agree on every other quasi-identifier and are null in the same columns form one
equivalence class; a null sensitive value counts as one distinct value. That is what an
observer of the released table sees, and it never merges rows that could be told apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from policyengine.privacy._frame import (
    Frame,
    columns_of,
    jsonable,
    lazy,
    names,
    polars_call,
    require_columns,
    spare_name,
)
from policyengine.privacy.errors import PrivacyError

__all__ = [
    "CellSizeResult",
    "EquivalenceClass",
    "KAnonymityResult",
    "LDiversityResult",
    "SmallCell",
    "k_anonymity",
    "l_diversity",
    "min_cell_size",
]

DEFAULT_SAMPLE = 10
"""How many offending classes or cells a result lists (the smallest first)."""

# entropy l is exp(H); rounding hides float noise so a uniform class of 2 values is 2.0.
_ENTROPY_DIGITS = 9


def _threshold(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PrivacyError(f"{what} must be a positive integer, got `{value}`")
    return value


def _sample_size(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PrivacyError(f"the sample size must be a non-negative integer, got `{value}`")
    return value


def _quasi_identifiers(
    columns: Mapping[str, pl.DataType], quasi_identifiers: str | Iterable[str]
) -> tuple[str, ...]:
    qis = names(quasi_identifiers, "the quasi-identifiers")
    if not qis:
        raise PrivacyError(
            "no quasi-identifiers are declared",
            "name the columns that could re-identify a person in combination, e.g. `age,sex,zip3`",
        )
    require_columns(columns, qis, "the quasi-identifiers")
    return qis


@dataclass(frozen=True, slots=True)
class EquivalenceClass:
    """One group of rows sharing their quasi-identifier values."""

    values: Mapping[str, Any]
    """Quasi-identifier column → value (as read from the frame)."""
    size: int
    """Rows in the class."""
    distinct: int | None = None
    """Distinct sensitive values in the class (l-diversity only)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": jsonable(dict(self.values)), "size": self.size}
        if self.distinct is not None:
            out["distinct"] = self.distinct
        return out


@dataclass(frozen=True, slots=True)
class KAnonymityResult:
    """k-anonymity of a frame over its quasi-identifiers."""

    quasi_identifiers: tuple[str, ...]
    rows: int
    k: int | None
    """Size of the smallest equivalence class; `None` when the frame has no rows."""
    classes: int
    """Number of equivalence classes."""
    threshold: int
    """The k the data is checked against."""
    classes_below: int
    """Classes with fewer than `threshold` rows."""
    rows_below: int
    """Rows in those classes (the rows a release would have to suppress or generalise)."""
    offending: tuple[EquivalenceClass, ...] = field(default=())
    """Up to `sample` classes below the threshold, smallest first."""

    @property
    def passed(self) -> bool:
        """k reaches the threshold; an empty frame proves nothing, so it does not pass."""
        return self.k is not None and self.k >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "rows": self.rows,
            "k": self.k,
            "classes": self.classes,
            "threshold": self.threshold,
            "passed": self.passed,
            "classes_below": self.classes_below,
            "rows_below": self.rows_below,
            "offending": [c.to_dict() for c in self.offending],
        }


def k_anonymity(
    frame: Frame,
    quasi_identifiers: str | Iterable[str],
    *,
    k: int = 5,
    sample: int = DEFAULT_SAMPLE,
) -> KAnonymityResult:
    """k = the size of the smallest group of rows that share every quasi-identifier value.

    `k` is the threshold for `passed`, `classes_below` and `rows_below`; `sample` limits
    how many offending classes are listed (smallest first, ties by value).
    """
    threshold = _threshold(k, "k")
    sample = _sample_size(sample)
    lf = lazy(frame)
    columns = columns_of(lf)
    qis = _quasi_identifiers(columns, quasi_identifiers)
    size = spare_name("size", qis)
    small = pl.col(size) < threshold
    counts = lf.group_by(qis).agg(pl.len().alias(size))
    summary, offending = _summary_and_smallest(
        "group the quasi-identifiers",
        counts,
        [
            pl.len().alias("classes"),
            pl.col(size).min().alias("k"),
            pl.col(size).sum().alias("rows"),
            small.sum().alias("classes_below"),
            pl.col(size).filter(small).sum().alias("rows_below"),
        ],
        small,
        [size, *qis],
        sample,
    )
    return KAnonymityResult(
        quasi_identifiers=qis,
        rows=int(summary["rows"] or 0),
        k=None if summary["k"] is None else int(summary["k"]),
        classes=int(summary["classes"]),
        threshold=threshold,
        classes_below=int(summary["classes_below"] or 0),
        rows_below=int(summary["rows_below"] or 0),
        offending=tuple(
            EquivalenceClass({q: row[q] for q in qis}, int(row[size])) for row in offending
        ),
    )


def _summary_and_smallest(
    what: str,
    groups: pl.LazyFrame,
    summary: list[pl.Expr],
    offending: pl.Expr,
    by: list[str],
    n: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One summary row and the first `n` offending groups (ordered by `by`, nulls last).

    Both plans share the group-by, which polars computes once (common subplan elimination)
    without materialising every group: on millions of classes that is most of the cost.
    """
    plans = [groups.select(summary)]
    if n:
        plans.append(groups.filter(offending).bottom_k(n, by=by))
    frames = polars_call(what, lambda: pl.collect_all(plans))
    smallest = frames[1].sort(by, nulls_last=True).to_dicts() if n else []
    return frames[0].row(0, named=True), smallest


@dataclass(frozen=True, slots=True)
class LDiversityResult:
    """l-diversity of a sensitive attribute within the quasi-identifier classes."""

    quasi_identifiers: tuple[str, ...]
    sensitive: str
    rows: int
    l: int | None  # noqa: E741 - the letter is the name of the property
    """Distinct l: the fewest distinct sensitive values in any class; `None` without rows."""
    entropy_l: float | None
    """Entropy l: the smallest exp(H) over the classes, H the Shannon entropy (natural log)
    of the class's sensitive values; never above the distinct l."""
    classes: int
    threshold: int
    """The (distinct) l the data is checked against."""
    classes_below: int
    rows_below: int
    offending: tuple[EquivalenceClass, ...] = field(default=())
    """Up to `sample` classes below the threshold, least diverse first."""

    @property
    def passed(self) -> bool:
        return self.l is not None and self.l >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "rows": self.rows,
            "l": self.l,
            "entropy_l": self.entropy_l,
            "classes": self.classes,
            "threshold": self.threshold,
            "passed": self.passed,
            "classes_below": self.classes_below,
            "rows_below": self.rows_below,
            "offending": [c.to_dict() for c in self.offending],
        }


def l_diversity(
    frame: Frame,
    quasi_identifiers: str | Iterable[str],
    sensitive: str,
    *,
    l: int = 2,  # noqa: E741
    sample: int = DEFAULT_SAMPLE,
) -> LDiversityResult:
    """Distinct and entropy l of `sensitive` within the classes of the quasi-identifiers.

    One aggregation counts rows per (class, sensitive value); a second one per class gives
    the number of distinct values and the entropy from those counts.
    """
    threshold = _threshold(l, "l")
    sample = _sample_size(sample)
    lf = lazy(frame)
    columns = columns_of(lf)
    qis = _quasi_identifiers(columns, quasi_identifiers)
    require_columns(columns, [sensitive], "the sensitive attribute")
    if sensitive in qis:
        raise PrivacyError(
            f"the sensitive attribute `{sensitive}` is also a quasi-identifier",
            "an attribute is either what an attacker knows or what they must not learn",
        )
    taken = [*qis, sensitive]
    n, size, distinct, nlogn = (spare_name(b, taken) for b in ("n", "size", "distinct", "nlogn"))
    entropy = spare_name("entropy_l", taken)
    per_class = (
        lf.group_by(taken)
        .agg(pl.len().alias(n))
        .group_by(qis)
        .agg(
            pl.len().alias(distinct),
            pl.col(n).sum().alias(size),
            (pl.col(n).cast(pl.Float64) * pl.col(n).cast(pl.Float64).log()).sum().alias(nlogn),
        )
        .with_columns(
            (pl.col(size).cast(pl.Float64).log() - pl.col(nlogn) / pl.col(size))
            .exp()
            .alias(entropy)
        )
    )
    low = pl.col(distinct) < threshold
    summary, offending = _summary_and_smallest(
        "group the quasi-identifiers and the sensitive attribute",
        per_class,
        [
            pl.len().alias("classes"),
            pl.col(distinct).min().alias("l"),
            pl.col(entropy).min().alias("entropy_l"),
            pl.col(size).sum().alias("rows"),
            low.sum().alias("classes_below"),
            pl.col(size).filter(low).sum().alias("rows_below"),
        ],
        low,
        [distinct, size, *qis],
        sample,
    )
    entropy_l = summary["entropy_l"]
    return LDiversityResult(
        quasi_identifiers=qis,
        sensitive=sensitive,
        rows=int(summary["rows"] or 0),
        l=None if summary["l"] is None else int(summary["l"]),
        entropy_l=None if entropy_l is None else round(float(entropy_l), _ENTROPY_DIGITS),
        classes=int(summary["classes"]),
        threshold=threshold,
        classes_below=int(summary["classes_below"] or 0),
        rows_below=int(summary["rows_below"] or 0),
        offending=tuple(
            EquivalenceClass({q: row[q] for q in qis}, int(row[size]), int(row[distinct]))
            for row in offending
        ),
    )


@dataclass(frozen=True, slots=True)
class SmallCell:
    """A released cell whose count is positive but below the threshold."""

    values: Mapping[str, Any]
    """The cell's key: group-by column → value (every other column without a group-by)."""
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"values": jsonable(dict(self.values)), "count": self.count}


@dataclass(frozen=True, slots=True)
class CellSizeResult:
    """Cell sizes of an aggregated output (a table of counts)."""

    group_by: tuple[str, ...]
    count_column: str | None
    cells: int
    total: int
    """Sum of all cell counts (the people or records behind the table)."""
    min_cell_size: int | None
    """Smallest positive count; `None` when no cell is positive. Empty cells (0) disclose
    nobody and are not small cells."""
    empty_cells: int
    threshold: int
    small_cells: int
    """Cells with a count from 1 to `threshold - 1`."""
    smallest: tuple[SmallCell, ...] = field(default=())
    """Up to `sample` small cells, smallest first."""

    @property
    def passed(self) -> bool:
        return self.small_cells == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_by": list(self.group_by),
            "count_column": self.count_column,
            "cells": self.cells,
            "total": self.total,
            "min_cell_size": self.min_cell_size,
            "empty_cells": self.empty_cells,
            "threshold": self.threshold,
            "passed": self.passed,
            "small_cells": self.small_cells,
            "smallest": [c.to_dict() for c in self.smallest],
        }


def min_cell_size(
    frame: Frame,
    group_by: str | Iterable[str] | None = None,
    count_column: str | None = None,
    *,
    threshold: int = 11,
    sample: int = DEFAULT_SAMPLE,
) -> CellSizeResult:
    """Smallest count in a released table, and the cells below `threshold`.

    - `count_column` only: the frame is the aggregated table, one row per cell.
    - `group_by` only: the frame is record-level and the cells are the row counts per
      group (the table a `GROUP BY … COUNT(*)` would release).
    - both: counts are summed per group (a table split over several rows per cell).

    Counts must be non-negative integers without nulls: a cell of unknown size cannot be
    shown to be safe. The default threshold 11 follows the CMS cell-size suppression
    policy (counts 1–10 are not released).
    """
    limit = _threshold(threshold, "the cell-size threshold")
    sample = _sample_size(sample)
    lf = lazy(frame)
    columns = columns_of(lf)
    keys = names(group_by, "the group-by columns")
    if not keys and count_column is None:
        raise PrivacyError(
            "a cell-size check needs a count column or group-by columns",
            "pass the column holding each cell's count, or the columns the table is grouped by",
        )
    require_columns(columns, keys, "the group-by columns")
    if count_column is not None:
        require_columns(columns, [count_column], "the count column")
        if count_column in keys:
            raise PrivacyError(f"the count column `{count_column}` is also a group-by column")
        dtype = columns[count_column]
        if not dtype.is_integer():
            raise PrivacyError(
                f"the count column `{count_column}` holds {dtype}, not integers",
                "cell counts are whole numbers of people or records",
            )
        bad = polars_call(
            "read the count column",
            lambda: (
                lf.select(
                    pl.col(count_column).null_count().alias("nulls"),
                    (pl.col(count_column) < 0).sum().alias("negative"),
                )
                .collect()
                .row(0, named=True)
            ),
        )
        if bad["nulls"]:
            raise PrivacyError(
                f"the count column `{count_column}` has {bad['nulls']} null value(s)",
                "a cell of unknown size cannot be shown to be safe; fill in or drop them",
            )
        if bad["negative"]:
            raise PrivacyError(
                f"the count column `{count_column}` has {bad['negative']} negative value(s)"
            )
    count = spare_name("count", columns)
    if keys and count_column is not None:
        key_columns = list(keys)
        plan = lf.group_by(keys).agg(pl.col(count_column).sum().alias(count))
    elif keys:
        key_columns = list(keys)
        plan = lf.group_by(keys).agg(pl.len().alias(count))
    else:
        assert count_column is not None
        key_columns = [c for c in columns if c != count_column]
        plan = lf.with_columns(pl.col(count_column).alias(count))
    positive = pl.col(count) > 0
    small = positive & (pl.col(count) < limit)
    summary, smallest = _summary_and_smallest(
        "count the cells",
        plan,
        [
            pl.len().alias("cells"),
            pl.col(count).sum().alias("total"),
            pl.col(count).filter(positive).min().alias("min"),
            (pl.col(count) == 0).sum().alias("empty"),
            small.sum().alias("small"),
        ],
        small,
        [count, *key_columns],
        sample,
    )
    return CellSizeResult(
        group_by=keys,
        count_column=count_column,
        cells=int(summary["cells"]),
        total=int(summary["total"] or 0),
        min_cell_size=None if summary["min"] is None else int(summary["min"]),
        empty_cells=int(summary["empty"] or 0),
        threshold=limit,
        small_cells=int(summary["small"] or 0),
        smallest=tuple(
            SmallCell({c: row[c] for c in key_columns}, int(row[count])) for row in smallest
        ),
    )
