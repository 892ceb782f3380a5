"""`monitor` blocks: parsing, compile-time checks, the column plan, formatting."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from policyengine.compiler.bundle import compile_sources
from policyengine.compiler.monitors import METRICS, Condition, MonitorSpec
from policyengine.language.diagnostics import Code, CompileError
from policyengine.language.formatter import format_source

FULL = """package gxp.monitoring

/// Assay inputs, weekly.
monitor assay_drift {
  title "Assay input drift"
  severity high
  model "tox-predictor", "hepatox-*"
  baseline "ref-assay-2026-03"
  window 7d
  time_column "scored_at"
  refs "GMLP Guiding Principle 10"
  numeric logP, mol_weight: psi < 0.2, ks.p > 0.01
  numeric assay_*: wasserstein_norm <= 0.1
  numeric *: psi < 0.25
  numeric "odd name": mean_shift < 0.5
  categorical assay_type: chi2.p > 0.01, js < 0.1
  categorical *: psi < 0.25
  on breach: alert critical; review by "qa", "qa_lead" within 48h; trigger retrain
}
"""


def compile_one(src: str) -> MonitorSpec:
    bundle = compile_sources({"m.policy": src})
    (spec,) = bundle.monitors.values()
    return spec


def errors(src: str) -> list[tuple[Code, str, int, int]]:
    with pytest.raises(CompileError) as info:
        compile_sources({"m.policy": src})
    return [(d.code, d.message, d.span.line, d.span.column) for d in info.value.diagnostics]


def test_full_monitor_compiles_to_spec() -> None:
    spec = compile_one(FULL)
    assert spec.id == "gxp.monitoring.assay_drift"
    assert spec.doc == "Assay inputs, weekly."
    assert spec.severity == "high" and spec.alert == "critical"
    assert spec.models == ("tox-predictor", "hepatox-*")
    assert spec.baseline == "ref-assay-2026-03"
    assert spec.window_duration == timedelta(days=7) and spec.window_rows is None
    assert spec.time_column == "scored_at"
    assert spec.review is not None and spec.review.roles == ("qa", "qa_lead")
    assert spec.review.within == timedelta(hours=48)
    assert spec.triggers == ("retrain",)
    assert spec.named_features() == ("logP", "mol_weight", "odd name", "assay_type")
    assert spec.file == "m.policy" and spec.line == 4


def test_models_are_globs() -> None:
    spec = compile_one(FULL)
    assert spec.applies_to("tox-predictor") and spec.applies_to("hepatox-v2")
    assert not spec.applies_to("Tox-predictor") and not spec.applies_to("cardiotox")


def test_plan_takes_the_most_specific_check_per_column() -> None:
    spec = compile_one(FULL)
    plan = {
        col: (kind, [str(c) for c in conds])
        for col, kind, conds in spec.plan(
            {
                "logP": "numeric",
                "assay_ph": "numeric",
                "weight": "numeric",
                "odd name": "numeric",
                "assay_type": "categorical",
                "site": "categorical",
            }
        )
    }
    assert plan == {
        "logP": ("numeric", ["psi < 0.2", "ks.p > 0.01"]),
        "assay_ph": ("numeric", ["wasserstein_norm <= 0.1"]),
        "weight": ("numeric", ["psi < 0.25"]),
        "odd name": ("numeric", ["mean_shift < 0.5"]),
        "assay_type": ("categorical", ["chi2.p > 0.01", "js < 0.1"]),
        "site": ("categorical", ["psi < 0.25"]),
    }


def test_plan_skips_unmatched_columns_and_merges_ties() -> None:
    spec = compile_one(
        'package p\nmonitor m { model "x" numeric a_*: psi < 0.1 numeric *_b: ks < 0.2 }'
    )
    plan = spec.plan({"a_b": "numeric", "c": "numeric", "a_c": "categorical"})
    assert [(c, [str(x) for x in conds]) for c, _, conds in plan] == [
        ("a_b", ["psi < 0.1", "ks < 0.2"])
    ]


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        ("<", 0.1, True),
        ("<", 0.2, False),
        ("<=", 0.2, True),
        (">", 0.2, False),
        (">=", 0.2, True),
        ("<", math.nan, False),
        (">", math.nan, False),
        ("<", math.inf, False),
    ],
)
def test_condition_semantics(op: str, value: float, holds: bool) -> None:
    assert Condition("psi", op, 0.2).holds(value) is holds


def test_window_rows() -> None:
    spec = compile_one('package p\nmonitor m { model "x" window 5000 rows numeric *: psi < 0.2 }')
    assert spec.window_rows == 5000 and spec.window_duration is None


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("numeric a: psy < 0.2", Code.UNKNOWN_METRIC, "unknown drift metric `psy`"),
        ("numeric a: chi2.p > 0.2", Code.UNKNOWN_METRIC, "does not apply to numeric"),
        ("categorical a: ks < 0.2", Code.UNKNOWN_METRIC, "does not apply to categorical"),
        ("numeric a: psi == 0.2", Code.BAD_CLAUSE_VALUE, "compared with `<`"),
        ("numeric a: ks.p > 5", Code.BAD_CLAUSE_VALUE, "is a p-value"),
        ("numeric a: psi < 0.2 window 0 rows", Code.BAD_CLAUSE_VALUE, "empty window"),
        ("numeric a: psi < 0.2 severity huge", Code.BAD_CLAUSE_VALUE, "unknown severity"),
        ("numeric a: psi < 0.2 on breach: alert urgent", Code.BAD_CLAUSE_VALUE, "severity"),
        (
            'numeric a: psi < 0.2 baseline "a" baseline "b"',
            Code.REPEATED_CLAUSE,
            "`baseline` is given more than once",
        ),
        (
            "numeric a: psi < 0.2 on breach: alert high; alert low",
            Code.REPEATED_CLAUSE,
            "`alert` is given more than once",
        ),
    ],
)
def test_monitor_errors(body: str, code: Code, fragment: str) -> None:
    found = errors(f'package p\nmonitor m {{ model "x" {body} }}')
    assert any(c is code and fragment in msg for c, msg, _, _ in found), found


def test_missing_model_and_checks() -> None:
    found = errors("package p\nmonitor m { window 7d }")
    messages = [msg for c, msg, _, _ in found if c is Code.MISSING_CLAUSE]
    assert "monitor `m` does not say which models it watches" in messages
    assert "monitor `m` checks no features" in messages


def test_duplicate_monitor() -> None:
    found = errors(
        'package p\nmonitor m { model "x" numeric *: psi < 1 }\n'
        'monitor m { model "y" numeric *: psi < 1 }'
    )
    assert found == [(Code.DUPLICATE_RULE, "monitor `m` is defined twice in package `p`", 3, 9)]


def test_unknown_metric_suggests_and_points_at_metric() -> None:
    with pytest.raises(CompileError) as info:
        compile_sources(
            {"m.policy": 'package p\nmonitor m {\n  model "x"\n  numeric a: ks.q > 0.1\n}'}
        )
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.column, d.span.end_column) == (4, 14, 18)
    assert d.hint == "did you mean `ks.p`?"


def test_syntax_errors_in_monitors_are_friendly() -> None:
    found = errors('package p\nmonitor m { modle "x" }')
    assert found[0][:2] == (Code.SYNTAX, "unknown monitor clause `modle`")


def test_format_is_canonical_and_idempotent() -> None:
    messy = FULL.replace("  numeric *: psi < 0.25\n", "") + ""
    messy = messy.replace('  title "Assay input drift"\n', "").replace(
        "  on breach:", '  title "Assay input drift"\n  numeric *: psi < 0.25\n  on breach:'
    )
    out = format_source(messy)
    assert out == format_source(out)
    assert out.index("title") < out.index("model") < out.index("numeric logP")
    assert "within 2d" in out
    # formatting never changes meaning
    assert compile_one(out) == compile_one(messy)


def test_round_trip_of_every_metric() -> None:
    numeric = ", ".join(
        f"{m} {'>' if i.p_value else '<'} 0.5" for m, i in METRICS.items() if "numeric" in i.kinds
    )
    categorical = ", ".join(
        f"{m} < 3" for m, i in METRICS.items() if "categorical" in i.kinds and not i.p_value
    )
    src = (
        f'package p\n\nmonitor m {{\n  model "x"\n  numeric *: {numeric}\n'
        f"  categorical *: {categorical}\n}}\n"
    )
    out = format_source(src)
    assert format_source(out) == out
    assert compile_one(out) == compile_one(src)
