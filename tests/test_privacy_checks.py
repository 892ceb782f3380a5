"""Privacy checks (policyengine.privacy): k-anonymity, l-diversity, cell sizes and direct
identifiers on small synthetic frames, property-tested against plain-Python references,
and the `dataset.privacy_assessed` event they produce."""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.events import EVENT_TYPES, MemoryStateStore, apply_event, parse_event
from policyengine.privacy import (
    PrivacyError,
    assess,
    assess_file,
    column_words,
    detect_identifiers,
    file_digest,
    k_anonymity,
    kinds_by_name,
    l_diversity,
    min_cell_size,
    scan_data,
)
from policyengine.privacy.render import assessment_json, assessment_text

# --------------------------------------------------------------------------- references


def ref_classes(rows: list[tuple[Any, ...]], qi: list[int]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(r[i] for i in qi) for r in rows)


def ref_entropy_l(values: list[Any]) -> float:
    counts = Counter(values).values()
    total = sum(counts)
    return math.exp(-sum(c / total * math.log(c / total) for c in counts))


COLUMNS = ("a", "b", "c", "s")
cell = st.one_of(st.none(), st.integers(0, 3))
tables = st.lists(st.tuples(cell, cell, st.sampled_from(["x", "y", None]), cell), max_size=60)
qi_sets = st.sampled_from([[0], [1], [0, 1], [0, 2], [0, 1, 2]])


def frame_of(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    schema = {"a": pl.Int64, "b": pl.Int64, "c": pl.String, "s": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


# --------------------------------------------------------------------------- k-anonymity


@settings(max_examples=150, deadline=None)
@given(rows=tables, qi=qi_sets, k=st.integers(1, 6))
def test_k_matches_the_smallest_counter_class(
    rows: list[tuple[Any, ...]], qi: list[int], k: int
) -> None:
    names = [COLUMNS[i] for i in qi]
    result = k_anonymity(frame_of(rows), names, k=k, sample=100)
    classes = ref_classes(rows, qi)
    assert result.rows == len(rows)
    assert result.classes == len(classes)
    assert result.k == (min(classes.values()) if classes else None)
    small = {key: n for key, n in classes.items() if n < k}
    assert result.classes_below == len(small)
    assert result.rows_below == sum(small.values())
    assert {tuple(c.values[n] for n in names): c.size for c in result.offending} == small
    assert result.passed == (bool(classes) and min(classes.values()) >= k)


@settings(max_examples=150, deadline=None)
@given(rows=tables, qi=qi_sets, l_min=st.integers(1, 4))
def test_l_matches_the_fewest_distinct_sensitive_values(
    rows: list[tuple[Any, ...]], qi: list[int], l_min: int
) -> None:
    names = [COLUMNS[i] for i in qi]
    result = l_diversity(frame_of(rows), names, "s", l=l_min, sample=100)
    per_class: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in rows:
        per_class[tuple(r[i] for i in qi)].append(r[3])
    distinct = {key: len(set(vs)) for key, vs in per_class.items()}
    assert result.l == (min(distinct.values()) if distinct else None)
    assert result.classes == len(per_class)
    if per_class:
        expected = min(ref_entropy_l(vs) for vs in per_class.values())
        assert result.entropy_l == pytest.approx(expected, rel=1e-9)
        assert result.entropy_l is not None and result.l is not None
        assert 1.0 - 1e-9 <= result.entropy_l <= result.l + 1e-9
    else:
        assert result.entropy_l is None
    low = {key for key, d in distinct.items() if d < l_min}
    assert result.classes_below == len(low)
    assert result.rows_below == sum(len(per_class[key]) for key in low)


def test_nulls_are_a_value_of_their_own() -> None:
    df = pl.DataFrame({"age": [30, 30, None, None, None], "sex": ["F", "F", "F", "F", None]})
    result = k_anonymity(df, ["age", "sex"], k=2)
    assert (result.k, result.classes) == (1, 3)
    assert [dict(c.values) for c in result.offending] == [{"age": None, "sex": None}]


def test_offending_classes_are_the_smallest_first_and_limited() -> None:
    sizes = {"a": 1, "b": 4, "c": 2, "d": 9, "e": 3}
    df = pl.DataFrame({"g": [g for g, n in sizes.items() for _ in range(n)]})
    result = k_anonymity(df, "g", k=5, sample=3)
    assert [(c.values["g"], c.size) for c in result.offending] == [("a", 1), ("c", 2), ("e", 3)]
    assert (result.classes_below, result.rows_below) == (4, 10)
    assert k_anonymity(df, "g", k=5, sample=0).offending == ()


def test_k_on_a_lazy_frame_and_a_column_called_size() -> None:
    df = pl.DataFrame({"size": ["s", "s", "m"], "len": [1, 1, 1]})
    result = k_anonymity(df.lazy(), ["size", "len"], k=2)
    assert (result.k, result.classes, result.rows_below) == (1, 2, 1)
    assert result.offending[0].values == {"size": "m", "len": 1}


def test_an_empty_frame_has_no_k_and_does_not_pass() -> None:
    result = k_anonymity(pl.DataFrame({"a": []}, schema={"a": pl.Int64}), ["a"])
    assert (result.k, result.classes, result.rows, result.passed) == (None, 0, 0, False)


@pytest.mark.parametrize(
    ("qis", "message", "hint"),
    [
        (["agee"], "unknown column `agee` in the quasi-identifiers", "did you mean `age`?"),
        (["zzz"], "unknown column `zzz`", "the columns are `age`, `sex`"),
        (["age", "age"], "column `age` is named twice", None),
        ([], "no quasi-identifiers are declared", "age,sex,zip3"),
    ],
)
def test_k_input_errors(qis: list[str], message: str, hint: str | None) -> None:
    df = pl.DataFrame({"age": [1], "sex": ["F"]})
    with pytest.raises(PrivacyError) as info:
        k_anonymity(df, qis)
    assert message in info.value.message
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


@pytest.mark.parametrize("k", [0, -1, True])
def test_k_must_be_a_positive_integer(k: int) -> None:
    with pytest.raises(PrivacyError, match="k must be a positive integer"):
        k_anonymity(pl.DataFrame({"a": [1]}), ["a"], k=k)


def test_l_diversity_errors_and_a_uniform_class_is_exact() -> None:
    df = pl.DataFrame({"g": [1, 1, 1, 1], "s": ["x", "y", "x", "y"]})
    result = l_diversity(df, ["g"], "s")
    assert (result.l, result.entropy_l, result.passed) == (2, 2.0, True)
    with pytest.raises(PrivacyError, match="also a quasi-identifier"):
        l_diversity(df, ["g", "s"], "s")
    with pytest.raises(PrivacyError) as info:
        l_diversity(df, ["g"], "ss")
    assert info.value.message == "unknown column `ss` in the sensitive attribute"


# --------------------------------------------------------------------------- cell size


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), max_size=30),
    threshold=st.integers(1, 20),
)
def test_cell_size_matches_a_reference(counts: list[int], threshold: int) -> None:
    df = pl.DataFrame(
        {"cell": list(range(len(counts))), "n": counts}, schema={"cell": pl.Int64, "n": pl.Int64}
    )
    result = min_cell_size(df, count_column="n", threshold=threshold, sample=100)
    positive = [c for c in counts if c > 0]
    assert result.cells == len(counts)
    assert result.total == sum(counts)
    assert result.min_cell_size == (min(positive) if positive else None)
    assert result.empty_cells == counts.count(0)
    assert result.small_cells == sum(1 for c in positive if c < threshold)
    assert sorted(c.count for c in result.smallest) == sorted(c for c in positive if c < threshold)
    assert result.passed == (result.small_cells == 0)


def test_cell_size_by_group_counts_rows_or_sums_counts() -> None:
    micro = pl.DataFrame({"region": ["n"] * 12 + ["s"] * 3 + [None] * 11})
    rows = min_cell_size(micro, "region", threshold=11)
    assert (rows.cells, rows.min_cell_size, rows.small_cells) == (3, 3, 1)
    assert [(dict(c.values), c.count) for c in rows.smallest] == [({"region": "s"}, 3)]
    split = pl.DataFrame({"region": ["n", "n", "s"], "sex": ["F", "M", "F"], "n": [6, 7, 20]})
    summed = min_cell_size(split, ["region"], "n", threshold=11)
    assert (summed.cells, summed.min_cell_size, summed.passed) == (2, 13, True)
    table = min_cell_size(split, count_column="n", threshold=11)
    assert [dict(c.values) for c in table.smallest] == [
        {"region": "n", "sex": "F"},
        {"region": "n", "sex": "M"},
    ]


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pl.DataFrame({"n": [1, None]}), {"count_column": "n"}, "has 1 null value(s)"),
        (pl.DataFrame({"n": [1, -2]}), {"count_column": "n"}, "has 1 negative value(s)"),
        (pl.DataFrame({"n": [1.5]}), {"count_column": "n"}, "holds Float64, not integers"),
        (pl.DataFrame({"n": [1]}), {}, "needs a count column or group-by columns"),
        (pl.DataFrame({"n": [1]}), {"group_by": ["n"], "count_column": "n"}, "also a group-by"),
    ],
)
def test_cell_size_input_errors(frame: pl.DataFrame, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(PrivacyError) as info:
        min_cell_size(frame, **kwargs)
    assert message in info.value.message


# --------------------------------------------------------------------------- identifiers


def synthetic_people(n: int = 400, seed: int = 11) -> pl.DataFrame:
    """Identifiers in typical layouts next to clinical columns that must not be flagged."""
    rng = np.random.default_rng(seed)
    first = ["Ann", "Ben", "Cleo", "Dev", "Eva"]
    last = ["Okafor", "Smith", "Novak", "Ito", "Garcia"]
    return pl.DataFrame(
        {
            "PatientFirstName": rng.choice(first, n),
            "contact": [f"user{i}@example.org" for i in range(n)],
            "home_tel": [
                f"555-{rng.integers(100, 999)}-{rng.integers(1000, 9999)}" for _ in range(n)
            ],
            "record": [f"MRN-{rng.integers(10**6, 10**7)}" for _ in range(n)],
            "dob": [date(1950, 1, 1)] * n,
            "tax_no": [
                f"{rng.integers(100, 899)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}"
                for _ in range(n)
            ],
            "client": [f"10.0.{rng.integers(0, 255)}.{rng.integers(1, 254)}" for _ in range(n)],
            "signed_by": [f"Dr. {rng.choice(first)} {rng.choice(last)}" for _ in range(n)],
            # clinical columns: numbers, codes, dates as text, free-text categories
            "systolic_bp": rng.normal(125, 15, n),
            "lab_value": rng.integers(1_000_000_000, 9_999_999_999, n),
            "phone_calls": rng.integers(0, 5, n),
            "icd10": rng.choice(["I21.4", "E11.9", "J45.909"], n),
            "visit_date": rng.choice(["2024-01-05", "2023-11-30"], n),
            "site_name": rng.choice(["Boston General", "St Mary Hospital"], n),
            "accession": [str(rng.integers(10**6, 10**7)) for _ in range(n)],
            "dose_mg": [f"{rng.uniform(0, 500):.2f}" for _ in range(n)],
            "drug_name": rng.choice(["Metformin", "Aspirin"], n),
            "finding": rng.choice(["Fracture, Femur", "Neoplasm, Malignant"], n),
        }
    )


def test_identifiers_are_found_by_name_and_by_value() -> None:
    found = {(f.column, f.kind): f for f in detect_identifiers(synthetic_people())}
    assert set(found) == {
        ("PatientFirstName", "name"),
        ("contact", "email"),
        ("home_tel", "phone"),
        ("record", "mrn"),
        ("dob", "date_of_birth"),
        ("tax_no", "ssn"),
        ("client", "ip_address"),
        ("signed_by", "name"),
    }
    assert found[("contact", "email")].share == 1.0
    assert not found[("contact", "email")].name_match
    assert found[("dob", "date_of_birth")].name_match
    assert found[("dob", "date_of_birth")].share is None  # a date column: name evidence only
    assert found[("home_tel", "phone")].name_match and found[("home_tel", "phone")].share == 1.0
    assert "column name" in found[("home_tel", "phone")].evidence


def test_measurement_and_code_columns_are_not_identifiers() -> None:
    clinical = synthetic_people().select(
        "systolic_bp",
        "lab_value",
        "icd10",
        "visit_date",
        "site_name",
        "accession",
        "dose_mg",
        "drug_name",
        "finding",
    )
    assert detect_identifiers(clinical) == []


def test_value_evidence_needs_the_minimum_share_and_uses_a_bounded_sample() -> None:
    notes = ["ok"] * 95 + [f"p{i}@example.org" for i in range(5)]
    df = pl.DataFrame({"notes": notes})
    assert detect_identifiers(df) == []
    found = detect_identifiers(df, min_share=0.05)
    assert [(f.kind, f.share, f.sampled) for f in found] == [("email", 0.05, 100)]
    sampled = detect_identifiers(df, sample=20, min_share=0.01)
    assert all(f.sampled == 20 for f in sampled)
    assert detect_identifiers(df, sample=20, min_share=0.01) == sampled  # seeded


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("email_address", ["email"]),
        ("E-Mail", ["email"]),
        ("ip_address", ["ip_address"]),
        ("StreetAddress", ["street_address"]),
        ("address", ["street_address"]),
        ("name", ["name"]),
        ("date_of_birth", ["date_of_birth"]),
        ("birthDate", ["date_of_birth"]),
        ("SSN", ["ssn"]),
        ("medical_record_no", ["mrn"]),
        ("drug_name", []),
        ("hotel_id", []),
        ("birth_year", []),
        ("username", []),
        ("mobile_app_sessions", []),
        ("phone_calls", []),
        ("dob_year", []),
        ("phone_number_2", ["phone"]),
        ("medical_record_number", ["mrn"]),
        ("home_tel", ["phone"]),
        ("telemetry", []),
    ],
)
def test_kinds_by_column_name(name: str, kinds: list[str]) -> None:
    assert kinds_by_name(name) == kinds


def test_column_words() -> None:
    assert column_words("PatientFirstName") == ("patient", "first", "name")
    assert column_words("HTTPServer_IPAddress") == ("http", "server", "ip", "address")


# --------------------------------------------------------------------------- assessment


def cohort(n: int = 600, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "age_band": rng.choice(["20-39", "40-59", "60+"], n),
            "sex": rng.choice(["F", "M"], n),
            "zip3": rng.choice(["021", "100"], n),
            "diagnosis": rng.choice(["I21", "I50", "E11"], n),
            "hba1c": rng.normal(6.5, 1.0, n),
        }
    )


def test_assess_combines_the_checks_and_reports_failures() -> None:
    clean = assess(cohort(), ["age_band", "sex", "zip3"], "diagnosis", group_by=["zip3"])
    assert clean.passed and clean.failures == []
    assert clean.rows == 600 and clean.digest is None
    leaky = cohort().with_columns(pl.Series("email", [f"u{i}@x.org" for i in range(600)]))
    result = assess(leaky, ["age_band", "sex", "zip3", "hba1c"], "diagnosis", k=5)
    assert [f.split(":")[0] for f in result.failures] == [
        "k-anonymity",
        "l-diversity",
        "direct identifiers",
    ]
    assert "`email` (email)" in result.failures[2]


def test_assess_an_aggregated_table_without_quasi_identifiers() -> None:
    table = pl.DataFrame({"region": ["n", "s", "e"], "n": [40, 12, 0]})
    result = assess(table, count_column="n")
    assert result.k_anonymity is None and result.aggregated and result.rows == 3
    assert result.passed
    with pytest.raises(PrivacyError, match="no quasi-identifiers"):
        assess(table)
    with pytest.raises(PrivacyError, match="l-diversity needs quasi-identifiers"):
        assess(table, sensitive="region", count_column="n")


def test_the_event_records_figures_but_no_data_values() -> None:
    leaky = cohort(40).with_columns(pl.Series("email", [f"u{i}@x.org" for i in range(40)]))
    result = assess(leaky, ["age_band", "sex", "zip3"], "diagnosis", digest="sha256:ab")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    event = result.to_event("ds-1", actor="svc", time=at)
    assert event == result.to_event("ds-1", actor="svc", time=at)  # same id on re-emit
    assert event["id"] != result.to_event("ds-2", actor="svc", time=at)["id"]
    text = str(event)
    assert "@x.org" not in text and "20-39" not in text
    parsed = parse_event(event)
    store = MemoryStateStore()
    apply_event(store, parsed)
    state = store.get("dataset", "ds-1")
    assert state is not None
    privacy = state["privacy"]
    assert privacy["data_digest"] == "sha256:ab"
    assert result.k_anonymity is not None and privacy["k"] == result.k_anonymity.k
    assert privacy["direct_identifiers"] == [
        {"column": "email", "kind": "email", "name_match": True, "share": 1.0}
    ]
    assert (privacy["assessed_by"], privacy["assessed_at"]) == ("svc", at)


def test_catalogue_example_replays_into_dataset_privacy() -> None:
    store = MemoryStateStore()
    for name in ("dataset.registered", "dataset.privacy_assessed", "dataset.released"):
        apply_event(store, parse_event(EVENT_TYPES[name].example))
    state = store.get("dataset", "ds-ehr-cardio-2024q1")
    assert state is not None and state["privacy"]["k"] == 7
    assert state["privacy"]["data_digest"] == state["digest"]


@pytest.mark.parametrize("suffix", ["parquet", "csv", "arrow"])
def test_files_are_read_lazily_and_digested(tmp_path: Path, suffix: str) -> None:
    df = cohort(300)
    path = tmp_path / f"cohort.{suffix}"
    {"parquet": df.write_parquet, "csv": df.write_csv, "arrow": df.write_ipc}[suffix](path)
    result = assess_file(path, quasi_identifiers=["age_band", "sex"], sensitive="diagnosis")
    assert result.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.digest == file_digest(path)
    in_memory = k_anonymity(df, ["age_band", "sex"])
    assert result.k_anonymity is not None and result.k_anonymity.k == in_memory.k
    assert isinstance(scan_data(path), pl.LazyFrame)


def test_unreadable_inputs_are_privacy_errors(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="no such file"):
        scan_data(tmp_path / "missing.csv")
    with pytest.raises(PrivacyError, match="is a directory"):
        scan_data(tmp_path)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(PrivacyError, match="cannot read"):
        k_anonymity(scan_data(bad), ["a"])


def test_renderings() -> None:
    result = assess(cohort(30), ["age_band", "sex", "zip3"], "diagnosis", group_by="zip3")
    text = assessment_text(result)
    assert "k-anonymity" in text and "FAIL" in text and "smallest classes over" in text
    assert text.rstrip().endswith("failed")
    assert '"k_anonymity"' in assessment_json(result)
