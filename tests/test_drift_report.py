"""The compare step (specs → results with verdicts), thresholds files, and the report
over frames and files in every format."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from policyengine.drift import (
    METRICS,
    ColumnPair,
    DriftConfig,
    DriftError,
    MetricSpec,
    ProfileOptions,
    config_from_mapping,
    evaluate_metric,
    load_config,
    numeric_profile,
    profile_frame,
    profile_source,
    report_html,
    report_json,
    report_text,
    run_report,
    save_profile,
)
from policyengine.drift.io import open_source
from policyengine.drift.profile import categorical_profile


def frames(n: int = 3_000, shift: float = 0.0, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)

    def one(s: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "age": rng.normal(50 + 10 * s, 10, n),
                "dose": rng.exponential(1 + s, n),
                "site": rng.choice(
                    ["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2 - 0.1 * s, 0.1 + 0.1 * s]
                ),
                "stable": rng.normal(0, 1, n),
            }
        )

    return one(0.0), one(shift)


def pair(ref: np.ndarray, cur: np.ndarray) -> ColumnPair:
    rp = numeric_profile(ref, bins=10)
    return ColumnPair("x", rp, numeric_profile(cur, binning=rp.binning))


def test_numeric_metrics_carry_value_p_value_threshold_verdict() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 5_000), rng.normal(0.5, 1, 5_000)
    p = pair(a, b)
    ks = evaluate_metric(p, MetricSpec("ks"))
    ref = stats.ks_2samp(a, b)
    assert ks.value == pytest.approx(ref.statistic, abs=1e-12)
    assert ks.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert (ks.threshold, ks.compared, ks.verdict) == (0.05, "p_value", "drift")
    assert ks.details["direction"] == "current is shifted towards larger values"
    w = evaluate_metric(p, MetricSpec("wasserstein"))
    assert w.value == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-9)
    assert w.details["raw"] == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)
    raw = evaluate_metric(p, MetricSpec("wasserstein", 1.0, {"normalise": False}))
    assert raw.value == pytest.approx(w.details["raw"]) and raw.verdict == "ok"
    stat = evaluate_metric(p, MetricSpec("ks", 0.3, {"on": "statistic"}))
    assert stat.compared == "value" and stat.verdict == "ok"
    same = pair(a, rng.normal(0, 1, 5_000))
    assert evaluate_metric(same, MetricSpec("psi")).verdict == "ok"
    assert evaluate_metric(p, MetricSpec("mean_shift")).value == pytest.approx(
        abs(b.mean() - a.mean()) / a.std(), rel=1e-9
    )
    assert evaluate_metric(p, MetricSpec("std_shift")).value == pytest.approx(
        abs(b.std() / a.std() - 1), rel=1e-9
    )


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_evaluates(name: str) -> None:
    rng = np.random.default_rng(2)
    d = METRICS[name]
    if "numeric" in d.kinds:
        p = pair(rng.normal(0, 1, 300), rng.normal(0.1, 1.1, 200))
    else:
        ref = categorical_profile(list(rng.choice(["a", "b", "c"], 300)))
        cur = categorical_profile(list(rng.choice(["a", "b", "z"], 200)))
        p = ColumnPair("x", ref, cur)
    spec = MetricSpec(name, 0.5 if d.default_threshold is None and not d.test else None)
    r = evaluate_metric(p, spec)
    assert r.verdict in ("drift", "ok") and r.value is not None and math.isfinite(r.value)
    assert (r.p_value is not None) == d.test
    json.dumps(r.to_dict(), allow_nan=False)


def test_categorical_metrics_and_new_categories() -> None:
    ref = categorical_profile(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = categorical_profile(["a"] * 40 + ["b"] * 30 + ["new"] * 25 + [None] * 5)
    p = ColumnPair("site", ref, cur)
    chi = evaluate_metric(p, MetricSpec("chi2"))
    s = stats.chi2_contingency(np.array([[50, 30, 20, 0], [40, 30, 0, 25]]))
    assert chi.value == pytest.approx(s.statistic, rel=1e-12) and chi.verdict == "drift"
    new = evaluate_metric(p, MetricSpec("new_categories"))
    assert new.value == pytest.approx(25 / 95) and new.details["categories"] == ["new"]
    gone = evaluate_metric(p, MetricSpec("missing_categories"))
    assert gone.value == pytest.approx(0.2) and gone.details["categories"] == ["c"]
    miss = evaluate_metric(p, MetricSpec("missing_rate"))
    assert miss.value == pytest.approx(0.05) and miss.verdict == "ok"
    tvd = evaluate_metric(p, MetricSpec("tvd"))
    expected = 0.5 * (abs(0.5 - 40 / 95) + abs(0.3 - 30 / 95) + 0.2 + 25 / 95)
    assert tvd.value == pytest.approx(expected, rel=1e-12)


def test_no_data_is_a_verdict_not_a_crash() -> None:
    rng = np.random.default_rng(3)
    empty = pair(rng.normal(size=100), np.array([np.nan, np.nan]))
    for name in ("ks", "psi", "wasserstein", "anderson_darling", "out_of_range"):
        r = evaluate_metric(empty, MetricSpec(name))
        assert r.verdict == "no_data" and r.value is None and "no values" in r.details["reason"]
    # the missing rate is still defined
    assert evaluate_metric(empty, MetricSpec("missing_rate")).verdict == "drift"
    constant = pair(np.full(100, 1.0), np.full(50, 1.0))
    assert evaluate_metric(constant, MetricSpec("anderson_darling")).verdict == "no_data"
    assert evaluate_metric(constant, MetricSpec("wasserstein")).value == 0.0
    moved = pair(np.full(100, 1.0), np.full(50, 2.0))
    w = evaluate_metric(moved, MetricSpec("wasserstein"))
    assert w.value == math.inf and w.verdict == "drift" and "constant" in w.details["note"]
    assert json.loads(json.dumps(w.to_dict()))["value"] == "inf"
    assert evaluate_metric(moved, MetricSpec("psi")).verdict == "drift"


def test_out_of_range_counts_infinities() -> None:
    p = pair(np.arange(100.0), np.array([-5.0, 10.0, 20.0, np.inf, 150.0]))
    r = evaluate_metric(p, MetricSpec("out_of_range"))
    assert r.value == pytest.approx(3 / 5) and (r.details["below"], r.details["above"]) == (1, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (MetricSpec("kss"), "unknown drift metric `kss`"),
        (MetricSpec("chi2"), "does not apply to numeric"),
        (MetricSpec("psi", options={"bins": 0}), "at least 1"),
        (MetricSpec("psi", options={"binz": 5}), "no option `binz`"),
        (MetricSpec("ks", options={"on": "value"}), "must be one of"),
        (MetricSpec("ks", 3.0), "must be within 0 and 1"),
        (MetricSpec("anderson_darling", options={"on": "statistic"}), "needs a threshold"),
        (MetricSpec("wasserstein", options={"normalise": False}), "explicit threshold"),
        (MetricSpec("psi", options={"bins": 2.5}), "must be int"),
    ],
)
def test_bad_specs_are_user_errors(spec: MetricSpec, message: str) -> None:
    with pytest.raises(DriftError, match=re.escape(message)):
        evaluate_metric(pair(np.arange(10.0), np.arange(10.0)), spec)


def test_unknown_metric_suggests_a_close_name() -> None:
    with pytest.raises(DriftError) as err:
        evaluate_metric(pair(np.arange(10.0), np.arange(10.0)), MetricSpec("wasserstien"))
    assert err.value.hint == "did you mean `wasserstein`?"


def test_rebinning_uses_the_values() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=2_000), rng.normal(0.2, 1, 2_000)
    p = pair(a, b)
    r = evaluate_metric(p, MetricSpec("psi", options={"bins": 20}))
    assert r.details["bins"] == 20


def test_thresholds_file(tmp_path: Path) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text(
        "bins = 20\n[numeric]\nks = { threshold = 0.01 }\npsi = 0.25\nwasserstein = true\n"
        '[categorical]\nchi2 = {}\n[columns.age]\nkind = "numeric"\n'
        "psi = { threshold = 0.1, bins = 5 }\n"
        '[columns."st*"]\nskip = true\n'
    )
    cfg = load_config(toml)
    assert cfg.bins == 20
    assert [s.metric for s in cfg.numeric] == ["ks", "psi", "wasserstein"]
    assert cfg.numeric[0].threshold == 0.01 and cfg.numeric[1].threshold == 0.25
    assert cfg.specs_for("age", "numeric") == (MetricSpec("psi", 0.1, {"bins": 5}),)
    assert cfg.skipped("stable") and not cfg.skipped("age")
    (tmp_path / "t.json").write_text(json.dumps({"numeric": {"psi": 0.3}}))
    assert load_config(tmp_path / "t.json").numeric == (MetricSpec("psi", 0.3),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"numerik": {}}, "unknown setting `numerik`"),
        ({"numeric": {"kolmogorov": 0.1}}, "unknown drift metric `kolmogorov`"),
        ({"numeric": {"psi": "high"}}, "must be a threshold"),
        ({"numeric": {"chi2": {}}}, "does not apply to numeric"),
        ({"bins": 0}, "`bins` must be a positive integer"),
        ({"columns": {"x": {"kind": "text"}}}, "`kind` must be"),
        ({"columns": {"x": {"kind": "numeric", "js": {"bins": -1}}}}, "at least 1"),
    ],
)
def test_bad_thresholds_are_user_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(DriftError, match=re.escape(message)):
        config_from_mapping(data)


def test_thresholds_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DriftError, match="no such thresholds file"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("numeric = [")
    with pytest.raises(DriftError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_report_on_frames_finds_the_drifted_columns() -> None:
    ref, cur = frames(shift=1.0)
    report = run_report(ref, cur, plots=True)
    verdicts = {c.column: c.verdict for c in report.columns}
    assert verdicts == {"age": "drift", "dose": "drift", "site": "drift", "stable": "ok"}
    assert report.drifted and len(report.breaches) >= 6
    assert [m.metric for m in report.columns[2].metrics] == ["chi2", "js", "psi"]
    # same distribution: distances stay under their thresholds; tests are not extreme
    # (at α = 0.05 a test on identical distributions is expected to fire 1 time in 20)
    same = run_report(*frames(shift=0.0))
    for col in same.columns:
        for r in col.metrics:
            assert r.verdict == "ok" if r.compared == "value" else r.p_value > 1e-3


def test_report_columns_and_config() -> None:
    ref, cur = frames(shift=1.0)
    cfg = DriftConfig(
        columns={"age": config_from_mapping({"columns": {"age": {"skip": True}}}).columns["age"]}
    )
    report = run_report(ref, cur, columns=["age", "site"], config=cfg)
    assert [c.column for c in report.columns] == ["site"]
    assert report.skipped == (("age", "skipped by configuration"),)
    with pytest.raises(DriftError, match="no column `agee` in the reference") as err:
        run_report(ref, cur, columns=["agee"])
    assert err.value.hint == "did you mean `age`?"
    with pytest.raises(DriftError, match="no column `dose`"):
        run_report(ref, cur.drop("dose"))
    with pytest.raises(DriftError, match="numeric in the reference but categorical"):
        run_report(ref, cur.with_columns(pl.col("age").cast(pl.String)))


def test_report_reads_every_format_and_profiles_alike(tmp_path: Path) -> None:
    ref, cur = frames(shift=0.5, seed=9)
    ref.write_parquet(tmp_path / "ref.parquet")
    cur.write_csv(tmp_path / "cur.csv")
    cur.write_ipc(tmp_path / "cur.arrow")
    cur.write_parquet(tmp_path / "cur.bin")  # detected by magic bytes
    base = run_report(ref, cur).to_dict()
    for current in ("cur.csv", "cur.arrow", "cur.bin"):
        got = run_report(tmp_path / "ref.parquet", tmp_path / current).to_dict()
        for a, b in zip(base["columns"], got["columns"], strict=True):
            assert [m["verdict"] for m in a["metrics"]] == [m["verdict"] for m in b["metrics"]]
            for ma, mb in zip(a["metrics"], b["metrics"], strict=True):
                assert ma["value"] == pytest.approx(mb["value"], rel=1e-9)


def test_cached_reference_and_chunked_window(tmp_path: Path) -> None:
    ref, cur = frames(shift=0.5, seed=5)
    ref.write_parquet(tmp_path / "ref.parquet")
    cur.write_parquet(tmp_path / "cur.parquet")
    first = run_report(tmp_path / "ref.parquet", tmp_path / "cur.parquet", keep_reference=True)
    assert first.reference.digest is None and first.reference_profile is not None
    digest = save_profile(first.reference_profile, tmp_path / "ref.zip")
    again = run_report(tmp_path / "ref.zip", tmp_path / "cur.parquet")
    assert again.reference.digest == digest
    assert json.loads(report_json(again))["columns"] == json.loads(report_json(first))["columns"]
    # a window profiled in chunks against the saved reference compares the same
    reference = profile_source(open_source(tmp_path / "ref.parquet"), batch_rows=700)
    assert reference.digest == digest
    window = profile_source(
        open_source(tmp_path / "cur.parquet"), reference=reference, batch_rows=500
    )
    chunked = run_report(reference, window)
    assert json.loads(report_json(chunked))["columns"] == json.loads(report_json(first))["columns"]


def test_two_pass_reference_when_values_do_not_fit(tmp_path: Path) -> None:
    ref, _ = frames(n=5_000, seed=6)
    ref.write_parquet(tmp_path / "ref.parquet")
    opts = ProfileOptions(max_values=1_000, sketch_size=256)
    prof = profile_source(open_source(tmp_path / "ref.parquet"), options=opts, batch_rows=800)
    age = prof.columns["age"]
    assert age.kind == "numeric" and age.values is None and age.bin_counts is not None  # type: ignore[union-attr]
    assert age.bin_counts.sum() == 5_000  # type: ignore[union-attr]
    # counts land near the deciles of the data (edges come from the sketch)
    assert abs(age.bin_counts - 500).max() < 60  # type: ignore[union-attr]


def test_empty_window_gives_no_data() -> None:
    ref, cur = frames()
    report = run_report(ref, cur.head(0))
    assert all(c.verdict == "no_data" for c in report.columns) and not report.drifted
    # a column that arrives with no values at all (type Null) is missing throughout
    blank = cur.with_columns(pl.lit(None).alias("age"), pl.lit(None).alias("site"))
    report = run_report(ref, blank, columns=["age", "site"])
    assert [c.verdict for c in report.columns] == ["no_data", "no_data"]
    assert report.columns[0].summary["missing_rate"]["current"] == 1.0


def test_renderers() -> None:
    ref, cur = frames(shift=1.0)
    ref = ref.with_columns(pl.Series("site", ["<b>&'\""] * ref.height))
    report = run_report(ref, cur, plots=True)
    text = report_text(report, width=120)
    assert "age" in text and "p < 0.05" in text and "4 columns compared" in text
    doc = json.loads(report_json(report))
    assert doc["format"] == "policyengine.drift.report" and doc["drifted"] is True
    first = doc["columns"][0]["metrics"][0]
    assert set(first) >= {"metric", "value", "p_value", "threshold", "verdict", "details"}
    html = report_html(report)
    assert html.startswith("<!doctype html>") and html.count("<svg") == 4
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"] * 4
    assert "&lt;b&gt;&amp;&#x27;&quot;" in html and "<b>&'" not in html
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        root = ET.fromstring(svg)  # well-formed, with bars in it
        assert len(root.findall("{http://www.w3.org/2000/svg}rect")) > 3


def test_profile_frame_skips_unsupported_types() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0], "tags": [[1], [2]]})
    assert list(profile_frame(frame).columns) == ["x"]
    report = run_report(frame, frame)
    assert report.skipped == (("tags", "type not comparable"),)
