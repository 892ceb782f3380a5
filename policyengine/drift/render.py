"""Drift reports as text (a per-column table), JSON, and one self-contained HTML file.

The HTML page has no scripts and no external assets: inline CSS and, per column, an
inline SVG of the reference and current distributions next to the metric values, so a
reviewer can read it offline, attach it to a change record, or print it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from policyengine import __version__
from policyengine.drift.compare import MetricResult
from policyengine.drift.report import ColumnReport, DriftReport, PlotData, Side
from policyengine.reports._console import DEFAULT_WIDTH, to_text

__all__ = ["report_html", "report_json", "report_text", "summary_line"]

VERDICT_STYLE = {"drift": "bold red", "ok": "green", "no_data": "yellow"}


def fmt_number(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "–"
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.{digits}g}"
    return f"{v:.{max(digits - 1, 1)}e}"


def threshold_text(r: MetricResult) -> str:
    t = fmt_number(r.threshold)
    return f"p < {t}" if r.compared == "p_value" else f"> {t}"


def summary_line(report: DriftReport) -> str:
    cols = report.columns
    drifted = sum(1 for c in cols if c.drifted)
    no_data = sum(1 for c in cols if c.verdict == "no_data")
    n = len(report.breaches)
    text = (
        f"{len(cols)} column{'s' if len(cols) != 1 else ''} compared: "
        f"{drifted} drifted ({n} breach{'es' if n != 1 else ''})"
    )
    if no_data:
        text += f", {no_data} without data"
    return text


def _side(label: str, side: Side) -> str:
    text = f"{label} {side.source or '(in memory)'} ({side.rows:,} rows)"
    if side.digest:
        text += f" {side.digest}"
    return text


def report_text(report: DriftReport, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """A table: one row per (column, metric) with value, p-value, threshold and verdict."""
    head = Text()
    head.append(_side("reference", report.reference) + "\n")
    head.append(_side("current  ", report.current))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    for name, justify in (
        ("column", "left"),
        ("kind", "left"),
        ("metric", "left"),
        ("value", "right"),
        ("p-value", "right"),
        ("threshold", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for col in report.columns:
        for i, r in enumerate(col.metrics):
            verdict = Text(r.verdict.replace("_", " "), style=VERDICT_STYLE[r.verdict])
            if r.verdict == "no_data" and "reason" in r.details:
                verdict.append(f" ({r.details['reason']})", style="dim")
            table.add_row(
                col.column if i == 0 else "",
                col.kind if i == 0 else "",
                r.metric,
                fmt_number(r.value),
                fmt_number(r.p_value, 3) if r.p_value is not None else "",
                threshold_text(r),
                verdict,
            )
        if not col.metrics:
            table.add_row(col.column, col.kind, "(no metrics)", "", "", "", "")
    foot = Text(summary_line(report), style="bold red" if report.drifted else "green")
    if report.elapsed_s is not None:
        foot.append(f" in {report.elapsed_s:.2f} s", style="dim")
    parts: list[Text | Table] = [head, table, foot]
    if report.skipped:
        skipped = Text(
            "skipped: " + ", ".join(f"{n} ({why})" for n, why in report.skipped), style="dim"
        )
        parts.append(skipped)
    return to_text(*parts, color=color, width=width)


def report_json(report: DriftReport) -> str:
    """Every column and metric with value, p-value, threshold and verdict; indented."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """\
:root { --ref: #4c78a8; --cur: #f58518; --bad: #c62828; --good: #2e7d32; --warn: #b26a00;
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 0 0 10px; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta td { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 12px 0 20px; font-weight: 600; }
.banner.drift { background: #fdecea; color: var(--bad); }
.banner.ok { background: #e8f5e9; color: var(--good); }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; }
.badge.drift { background: #fdecea; color: var(--bad); }
.badge.ok { background: #e8f5e9; color: var(--good); }
.badge.no_data { background: #fff4e5; color: var(--warn); }
.overview { width: 100%; margin-bottom: 24px; }
.overview tr { border-bottom: 1px solid var(--line); }
section.column { border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin: 0 0 18px; break-inside: avoid; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
.note { color: var(--muted); font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
a { color: inherit; }
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def report_html(report: DriftReport, *, title: str = "Drift report") -> str:
    """One self-contained HTML page: summary, an overview table and, per column, the
    distribution plot and the metric values (call `run_report(..., plots=True)`)."""
    banner = "drift" if report.drifted else "ok"
    out: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<table class="meta">',
        _side_row("Reference", report.reference),
        _side_row("Current", report.current),
        "</table>",
        f'<div class="banner {banner}">{_e(summary_line(report))}</div>',
        _overview(report.columns),
    ]
    for i, col in enumerate(report.columns):
        out.append(_column_section(i, col))
    if report.skipped:
        items = "".join(f"<li>{_e(n)} — {_e(why)}</li>" for n, why in report.skipped)
        out.append(f"<h2>Not compared</h2><ul>{items}</ul>")
    out.append(
        f'<p class="note">policyengine {_e(__version__)} · metric definitions: spec/drift.md · '
        "tests are judged on their p-value (drift when below the threshold), distances on "
        "their value (drift when above).</p>"
    )
    out.append("</body></html>\n")
    return "\n".join(out)


def _badge(verdict: str) -> str:
    return f'<span class="badge {verdict}">{verdict.replace("_", " ")}</span>'


def _side_row(label: str, side: Side) -> str:
    parts = [side.source or "(in memory)", f"{side.rows:,} rows"]
    if side.digest:
        parts.append(side.digest)
    return f"<tr><th>{label}</th><td>{_e(' · '.join(parts))}</td></tr>"


def _overview(columns: Sequence[ColumnReport]) -> str:
    rows = [
        '<table class="overview"><tr><th>Column</th><th>Kind</th><th>Verdict</th>'
        "<th>Metrics</th></tr>"
    ]
    for i, c in enumerate(columns):
        metrics = ", ".join(
            f"{r.metric} {fmt_number(r.p_value if r.compared == 'p_value' else r.value, 3)}"
            + (" ✗" if r.drifted else "")
            for r in c.metrics
        )
        rows.append(
            f'<tr><td><a href="#col-{i}">{_e(c.column)}</a></td><td>{c.kind}</td>'
            f'<td><span class="badge {c.verdict}">{c.verdict.replace("_", " ")}</span></td>'
            f"<td>{_e(metrics)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _metrics_table(col: ColumnReport) -> str:
    rows = [
        "<table><tr><th>Metric</th><th>Value</th><th>p-value</th><th>Threshold</th><th>Verdict</th></tr>"
    ]
    for r in col.metrics:
        note = ""
        if r.verdict == "no_data":
            note = f' <span class="note">{_e(r.details.get("reason", ""))}</span>'
        elif "p_value_note" in r.details:
            note = f' <span class="note">{_e(r.details["p_value_note"])}</span>'
        rows.append(
            f"<tr><td>{_e(r.metric)}</td><td class=num>{_e(fmt_number(r.value))}</td>"
            f"<td class=num>{_e(fmt_number(r.p_value, 3) if r.p_value is not None else '')}</td>"
            f"<td class=num>{_e(threshold_text(r))}</td>"
            f"<td>{_badge(r.verdict)}{note}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _summary_table(col: ColumnReport) -> str:
    rows = ["<table><tr><th></th><th>Reference</th><th>Current</th></tr>"]
    for key, val in col.summary.items():
        if not isinstance(val, dict):
            continue
        ref, cur = val.get("reference", ""), val.get("current", "")
        rows.append(
            f"<tr><th>{_e(key.replace('_', ' '))}</th><td class=num>{_e(_cell(ref, key))}</td>"
            f"<td class=num>{_e(_cell(cur, key))}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _cell(v: object, key: str) -> str:
    if v is None or v == "":
        return "–" if v is None else ""
    if isinstance(v, float):
        if key in ("missing_rate", "out_of_range"):
            return f"{v:.2%}"
        return fmt_number(v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _column_section(i: int, col: ColumnReport) -> str:
    plot = _svg(col.column, col.plot) if col.plot is not None else ""
    legend = (
        '<div class="legend note"><span style="background:var(--ref)"></span>reference'
        '<span style="background:var(--cur)"></span>current</div>'
        if col.plot is not None
        else ""
    )
    approx = (
        '<p class="note">Plot from quantile sketches (approximate).</p>'
        if col.plot is not None and col.plot.approximate
        else ""
    )
    return (
        f'<section class="column" id="col-{i}"><h2>{_e(col.column)} '
        f'<span class="note">{col.kind}</span> '
        f'<span class="badge {col.verdict}">{col.verdict.replace("_", " ")}</span></h2>'
        f'<div class="row"><div>{plot}{legend}{approx}</div>'
        f"<div>{_metrics_table(col)}<br>{_summary_table(col)}</div></div></section>"
    )


def _svg(name: str, plot: PlotData) -> str:
    if plot.kind == "categorical":
        return _svg_bars(name, plot)
    return _svg_histogram(name, plot)


def _svg_histogram(name: str, plot: PlotData) -> str:
    w, h, left, bottom, top = 480, 200, 44, 22, 10
    inner_w, inner_h = w - left - 8, h - bottom - top
    n = len(plot.reference)
    peak = max([*plot.reference, *plot.current, 1e-12])
    bw = inner_w / max(n, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{_e(f"distribution of {name}: reference and current")}">',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{w - 8}" y2="{top + inner_h}" '
        'stroke="#d1d9e0"/>',
    ]
    for k in range(n):
        x = left + k * bw
        for j, (vals, color) in enumerate(
            ((plot.reference, "var(--ref)"), (plot.current, "var(--cur)"))
        ):
            bh = vals[k] / peak * inner_h
            if bh <= 0:
                continue
            parts.append(
                f'<rect x="{x + j * bw / 2:.2f}" y="{top + inner_h - bh:.2f}" width="{bw / 2:.2f}" '
                f'height="{bh:.2f}" fill="{color}" fill-opacity="0.8"/>'
            )
    lo, hi = plot.edges[0], plot.edges[-1]
    parts.append(f'<text x="{left}" y="{h - 6}">{_e(fmt_number(lo))}</text>')
    parts.append(f'<text x="{w - 8}" y="{h - 6}" text-anchor="end">{_e(fmt_number(hi))}</text>')
    parts.append(
        f'<text x="{left + inner_w / 2:.1f}" y="{h - 6}" text-anchor="middle">'
        f"{_e(fmt_number((lo + hi) / 2))}</text>"
    )
    parts.append(f'<text x="{left - 4}" y="{top + 9}" text-anchor="end">{peak:.1%}</text>')
    parts.append(f'<text x="{left - 4}" y="{top + inner_h}" text-anchor="end">0</text>')
    parts.append("</svg>")
    outside = [
        f"{label}: reference {r:.2%}, current {c:.2%}"
        for label, (r, c) in (("below range", plot.below), ("above range", plot.above))
        if r > 0.0005 or c > 0.0005
    ]
    if outside:
        parts.append(f'<p class="note">{_e("; ".join(outside))}</p>')
    return "".join(parts)


def _svg_bars(name: str, plot: PlotData) -> str:
    label_w, bar_w, row_h = 150, 300, 20
    w = label_w + bar_w + 60
    h = row_h * len(plot.labels) + 8
    peak = max([*plot.reference, *plot.current, 1e-12])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{_e(f"category shares of {name}: reference and current")}">'
    ]
    for k, label in enumerate(plot.labels):
        y = 4 + k * row_h
        short = label if len(label) <= 22 else label[:21] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(short)}</text>')
        for j, (vals, color) in enumerate(
            ((plot.reference, "var(--ref)"), (plot.current, "var(--cur)"))
        ):
            bw = max(vals[k], 0.0) / peak * bar_w
            parts.append(
                f'<rect x="{label_w}" y="{y + 2 + j * 8}" width="{bw:.2f}" height="7" '
                f'fill="{color}"/>'
            )
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{y + 13}">{plot.current[k]:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)
