"""One privacy assessment of a dataset: every check, a verdict, and the event that records
it (`dataset.privacy_assessed`) so policies can gate releases on it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from policyengine.privacy._frame import Frame, lazy, names, polars_call
from policyengine.privacy.checks import (
    DEFAULT_SAMPLE,
    CellSizeResult,
    KAnonymityResult,
    LDiversityResult,
    k_anonymity,
    l_diversity,
    min_cell_size,
)
from policyengine.privacy.errors import PrivacyError
from policyengine.privacy.identifiers import (
    DEFAULT_MIN_SHARE,
    IdentifierFinding,
    detect_identifiers,
)
from policyengine.privacy.identifiers import (
    DEFAULT_SAMPLE as IDENTIFIER_SAMPLE,
)
from policyengine.privacy.io import file_digest, scan_data
from policyengine.runtime.values import format_timestamp

__all__ = ["EVENT_TYPE", "PrivacyAssessment", "assess", "assess_file"]

EVENT_TYPE = "dataset.privacy_assessed"


@dataclass(frozen=True, slots=True)
class PrivacyAssessment:
    """The result of `assess`: each check that ran, and the data it ran on."""

    rows: int
    digest: str | None
    """Content digest of the data checked: `sha256:` + hex of the file's bytes when read
    from a file (`assess_file`), else whatever the caller passed (`None` if nothing)."""
    source: str | None
    """Where the data came from (a file path), for the report only."""
    k_anonymity: KAnonymityResult | None
    """`None` when no quasi-identifiers were declared (an aggregated table)."""
    l_diversity: LDiversityResult | None
    """`None` when no sensitive attribute was declared."""
    identifiers: tuple[IdentifierFinding, ...]
    cell_size: CellSizeResult | None
    """`None` unless a count column or group-by columns were given."""

    @property
    def aggregated(self) -> bool:
        """The data is an aggregated table (it has a count column)."""
        return self.cell_size is not None and self.cell_size.count_column is not None

    @property
    def failures(self) -> list[str]:
        """One sentence per failed check, in check order; empty when everything passed."""
        out: list[str] = []
        k = self.k_anonymity
        if k is not None and not k.passed:
            if k.k is None:
                out.append("k-anonymity: the data has no rows")
            else:
                out.append(
                    f"k-anonymity: k = {k.k} < {k.threshold} ({k.classes_below} classes, "
                    f"{k.rows_below} rows below)"
                )
        ld = self.l_diversity
        if ld is not None and not ld.passed:
            if ld.l is None:
                out.append("l-diversity: the data has no rows")
            else:
                out.append(
                    f"l-diversity: l = {ld.l} < {ld.threshold} for `{ld.sensitive}` "
                    f"({ld.classes_below} classes, {ld.rows_below} rows below)"
                )
        if self.identifiers:
            shown = ", ".join(f"`{f.column}` ({f.kind})" for f in self.identifiers)
            out.append(f"direct identifiers: {shown}")
        cells = self.cell_size
        if cells is not None and not cells.passed:
            out.append(
                f"cell size: {cells.small_cells} cells below {cells.threshold} "
                f"(smallest {cells.min_cell_size})"
            )
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "digest": self.digest,
            "rows": self.rows,
            "passed": self.passed,
            "failures": self.failures,
            "k_anonymity": None if self.k_anonymity is None else self.k_anonymity.to_dict(),
            "l_diversity": None if self.l_diversity is None else self.l_diversity.to_dict(),
            "direct_identifiers": [f.to_dict() for f in self.identifiers],
            "cell_size": None if self.cell_size is None else self.cell_size.to_dict(),
        }

    def event_attributes(self) -> dict[str, Any]:
        """Attributes of `dataset.privacy_assessed`: the figures rules need, and no data
        values (offending classes and small cells stay in the local report)."""
        k, ld, cells = self.k_anonymity, self.l_diversity, self.cell_size
        return {
            "data_digest": self.digest,
            "source": self.source,
            "rows": self.rows,
            "quasi_identifiers": [] if k is None else list(k.quasi_identifiers),
            "k": None if k is None else k.k,
            "classes": None if k is None else k.classes,
            "sensitive": None if ld is None else ld.sensitive,
            "l": None if ld is None else ld.l,
            "entropy_l": None if ld is None else ld.entropy_l,
            "direct_identifiers": [
                {"column": f.column, "kind": f.kind, "name_match": f.name_match, "share": f.share}
                for f in self.identifiers
            ],
            "aggregated": self.aggregated,
            "min_cell_size": None if cells is None else cells.min_cell_size,
            "small_cells": None if cells is None else cells.small_cells,
        }

    def to_event(
        self,
        dataset: str,
        *,
        actor: str,
        time: datetime,
        roles: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The `dataset.privacy_assessed` event about `dataset`, with an id derived from
        (dataset, digest, time) so re-emitting the same assessment yields the same event."""
        if not dataset:
            raise PrivacyError("the assessment event needs a dataset id")
        if not actor:
            raise PrivacyError("the assessment event needs an actor id")
        stamp = format_timestamp(time)
        key = "|".join((dataset, self.digest or "", stamp))
        return {
            "id": "privacy-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24],
            "type": EVENT_TYPE,
            "time": stamp,
            "actor": {"id": actor, "roles": list(roles)},
            "subject": {"kind": "dataset", "id": dataset},
            "attributes": self.event_attributes(),
        }


def assess(
    frame: Frame,
    quasi_identifiers: str | Iterable[str] = (),
    sensitive: str | None = None,
    *,
    k: int = 5,
    l: int = 2,  # noqa: E741
    group_by: str | Iterable[str] | None = None,
    count_column: str | None = None,
    cell_threshold: int = 11,
    identifier_sample: int | None = IDENTIFIER_SAMPLE,
    min_share: float = DEFAULT_MIN_SHARE,
    digest: str | None = None,
    source: str | None = None,
    sample: int = DEFAULT_SAMPLE,
) -> PrivacyAssessment:
    """Run every applicable check on one frame.

    k-anonymity runs when quasi-identifiers are given, l-diversity when a sensitive
    attribute is also given, the cell-size check when a count column or group-by columns
    are given; direct identifiers are always looked for. Record-level data needs
    quasi-identifiers: only an aggregated table (a count column) may go without.
    """
    lf = lazy(frame)
    qis = names(quasi_identifiers, "the quasi-identifiers")
    keys = names(group_by, "the group-by columns")
    if not qis and count_column is None:
        raise PrivacyError(
            "no quasi-identifiers are declared",
            "name the columns that could re-identify a person in combination, e.g. "
            "`age,sex,zip3` (only an aggregated table with a count column may go without)",
        )
    if sensitive is not None and not qis:
        raise PrivacyError("l-diversity needs quasi-identifiers besides the sensitive attribute")
    kres = k_anonymity(lf, qis, k=k, sample=sample) if qis else None
    lres = l_diversity(lf, qis, sensitive, l=l, sample=sample) if sensitive is not None else None
    cells = None
    if keys or count_column is not None:
        cells = min_cell_size(
            lf, keys or None, count_column, threshold=cell_threshold, sample=sample
        )
    found = detect_identifiers(lf, sample=identifier_sample, min_share=min_share)
    if kres is not None:
        rows = kres.rows
    else:
        rows = int(polars_call("count the rows", lambda: lf.select(pl.len()).collect().item()))
    return PrivacyAssessment(
        rows=rows,
        digest=digest,
        source=source,
        k_anonymity=kres,
        l_diversity=lres,
        identifiers=tuple(found),
        cell_size=cells,
    )


def assess_file(path: str | Path, **options: Any) -> PrivacyAssessment:
    """`assess` on a Parquet, CSV or Arrow IPC file, with `digest` = `file_digest(path)`.

    The digest is taken before the rows are read, so it names the bytes that were checked
    as long as the file is not rewritten during the check (write-once data lakes).
    """
    frame = scan_data(path)
    digest = file_digest(path)
    return assess(frame, digest=digest, source=str(path), **options)
