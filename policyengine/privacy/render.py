"""Text and JSON renderings of a `PrivacyAssessment` for the CLI.

The text report is for the person fixing the data: it lists the smallest offending classes
and cells by their quasi-identifier values. It never shows values of direct-identifier
columns, only which columns matched and on what evidence.
"""

from __future__ import annotations

import json
from typing import Any

import click

from policyengine.privacy._frame import jsonable
from policyengine.privacy.assess import PrivacyAssessment
from policyengine.privacy.checks import EquivalenceClass, SmallCell

__all__ = ["assessment_json", "assessment_text"]


def assessment_json(assessment: PrivacyAssessment) -> str:
    """Every figure of the assessment as indented JSON (keys in a stable order)."""
    return json.dumps(assessment.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _verdict(passed: bool, color: bool) -> str:
    text = "pass" if passed else "FAIL"
    if not color:
        return text
    return click.style(text, fg="green" if passed else "red", bold=not passed)


def _values(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{name}={json.dumps(jsonable(v), ensure_ascii=False)}" for name, v in values.items()
    )


def _class_line(c: EquivalenceClass) -> str:
    extra = "" if c.distinct is None else f", {c.distinct} distinct"
    return f"    {_values(dict(c.values))}  ({_plural(c.size, 'row')}{extra})"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _cell_line(c: SmallCell) -> str:
    return f"    {_values(dict(c.values))}  (count {c.count})"


def assessment_text(assessment: PrivacyAssessment, *, color: bool = False) -> str:
    """A table of checks (figure, threshold, verdict), then the details of failures."""
    a = assessment
    head = a.source or "data"
    digest = f", {a.digest}" if a.digest else ""
    lines = [f"privacy check of {head} ({a.rows:,} rows{digest})", ""]
    rows: list[tuple[str, str, str, str]] = []
    details: list[str] = []
    k = a.k_anonymity
    if k is not None:
        figure = "no rows" if k.k is None else f"k = {k.k} ({k.classes:,} classes)"
        rows.append(("k-anonymity", figure, f"k >= {k.threshold}", _verdict(k.passed, color)))
        if k.offending:
            details.append(
                f"  smallest classes over {', '.join(k.quasi_identifiers)} "
                f"({k.classes_below:,} classes, {k.rows_below:,} rows below k = {k.threshold}):"
            )
            details += [_class_line(c) for c in k.offending]
    ld = a.l_diversity
    if ld is not None:
        figure = (
            "no rows"
            if ld.l is None
            else f"l = {ld.l}, entropy l = {ld.entropy_l:.3g} for {ld.sensitive}"
        )
        rows.append(("l-diversity", figure, f"l >= {ld.threshold}", _verdict(ld.passed, color)))
        if ld.offending:
            details.append(
                f"  least diverse classes for {ld.sensitive} ({ld.classes_below:,} classes, "
                f"{ld.rows_below:,} rows below l = {ld.threshold}):"
            )
            details += [_class_line(c) for c in ld.offending]
    found = a.identifiers
    figure = "none found" if not found else f"found in {_plural(len(found), 'column')}"
    rows.append(("direct identifiers", figure, "none", _verdict(not found, color)))
    if found:
        details.append("  direct identifiers (values not shown):")
        width = max(len(f.column) for f in found)
        details += [f"    {f.column:<{width}}  {f.kind:<14} {f.evidence}" for f in found]
    cells = a.cell_size
    if cells is not None:
        figure = (
            "no positive cell"
            if cells.min_cell_size is None
            else f"smallest {cells.min_cell_size} ({cells.cells:,} cells)"
        )
        rows.append(("cell size", figure, f">= {cells.threshold}", _verdict(cells.passed, color)))
        if cells.smallest:
            details.append(
                f"  small cells ({cells.small_cells:,} with a count from 1 to "
                f"{cells.threshold - 1}):"
            )
            details += [_cell_line(c) for c in cells.smallest]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines.append(
        f"  {'check':<{widths[0]}}  {'result':<{widths[1]}}  {'needs':<{widths[2]}}  verdict"
    )
    for name, figure, needs, verdict in rows:
        lines.append(
            f"  {name:<{widths[0]}}  {figure:<{widths[1]}}  {needs:<{widths[2]}}  {verdict}"
        )
    if details:
        lines += ["", *details]
    failed = len(a.failures)
    lines += [
        "",
        "all checks passed" if not failed else f"{failed} of {_plural(len(rows), 'check')} failed",
    ]
    return "\n".join(lines) + "\n"
