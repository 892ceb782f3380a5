"""`policyengine privacy check`: reports, exit codes (0 pass, 1 failed check, 2 user error)
without tracebacks, and the emitted `dataset.privacy_assessed` event deciding a release
through `policyengine eval` with the shipped policies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result

from policyengine.cli.main import cli
from policyengine.privacy import file_digest

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NOW = "2026-03-01T09:00:00Z"


def run(args: Sequence[str]) -> Result:
    env = {"NO_COLOR": "1", "COLUMNS": "120", "POLICYENGINE_DEBUG": None}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def check(*args: str) -> Result:
    return run(["privacy", "check", *args])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("privacy")
    rng = np.random.default_rng(2026)
    n = 1_200
    coarse = pl.DataFrame(
        {
            "age_band": rng.choice(["18-39", "40-64", "65+"], n),
            "sex": rng.choice(["F", "M"], n),
            "zip3": rng.choice(["021", "100", "606"], n),
            "diagnosis": rng.choice(["I21", "I50", "E11", "J45"], n),
            "ldl": rng.normal(3.1, 0.8, n),
        }
    )
    coarse.write_parquet(d / "coarse.parquet")
    # Exact ages make many classes of one or two people.
    fine = coarse.with_columns(pl.Series("age", rng.integers(18, 90, n)))
    fine.write_csv(d / "fine.csv")
    coarse.with_columns(pl.Series("email", [f"p{i}@example.org" for i in range(n)])).write_ipc(
        d / "leaky.arrow"
    )
    pl.DataFrame({"region": ["n", "s", "e", "w"], "n": [40, 12, 0, 3]}).write_csv(d / "table.csv")
    (d / "garbage.parquet").write_bytes(b"PAR1 but not really")
    return d


def test_passing_check_exits_0_with_a_table(data: Path) -> None:
    res = check(str(data / "coarse.parquet"), "-q", "age_band,sex,zip3", "--sensitive", "diagnosis")
    assert res.exit_code == 0, res.output
    assert "k-anonymity" in res.stdout and "l-diversity" in res.stdout
    assert "all checks passed" in res.stdout
    assert file_digest(data / "coarse.parquet") in res.stdout


def test_failing_k_exits_1_and_lists_the_smallest_classes(data: Path) -> None:
    res = check(str(data / "fine.csv"), "-q", "age,sex,zip3", "--k", "5")
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.stdout and "smallest classes over age, sex, zip3" in res.stdout
    assert "1 of 2 checks failed" in res.stdout


def test_direct_identifiers_fail_and_their_values_are_never_shown(data: Path) -> None:
    res = check(str(data / "leaky.arrow"), "-q", "age_band,sex", "--format", "json")
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert [f["column"] for f in report["direct_identifiers"]] == ["email"]
    assert "@example.org" not in res.output
    assert "direct identifiers: `email` (email)" in res.stderr


def test_aggregated_table_cell_sizes(data: Path) -> None:
    res = check(str(data / "table.csv"), "--cell-size-column", "n", "--format", "json")
    assert res.exit_code == 1, res.output
    cells = json.loads(res.stdout)["cell_size"]
    assert (cells["min_cell_size"], cells["small_cells"], cells["empty_cells"]) == (3, 1, 1)
    ok = check(str(data / "table.csv"), "--cell-size-column", "n", "--cell-threshold", "3")
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["fine.csv", "-q", "age,sexx"], "fine.csv: unknown column `sexx`", "did you mean `sex`?"),
        (["missing.csv", "-q", "a"], "no such file `", "check the path"),
        (["garbage.parquet", "-q", "a"], "cannot read `", None),
        (["fine.csv"], "`--quasi-identifiers` is required", "--cell-size-column"),
        (["fine.csv", "-q", " , "], "`--quasi-identifiers` names no columns", None),
        (["fine.csv", "-q", "age", "--emit-event", "e.jsonl"], "needs `--dataset`", None),
        (["fine.csv", "-q", "age", "--dataset", "ds"], "`--dataset` names the subject", None),
        (["fine.csv", "-q", "age", "--sensitive", "age"], "also a quasi-identifier", None),
        (["table.csv", "--cell-size-column", "region"], "holds String, not integers", None),
        (
            ["fine.csv", "-q", "age", "--emit-event", "e", "--dataset", "d", "--now", "x"],
            "invalid --now `x`",
            None,
        ),
    ],
)
def test_input_errors_exit_2(
    data: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str, hint: str | None
) -> None:
    monkeypatch.chdir(data)
    res = check(*args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    if hint is not None:
        assert f"hint: {hint}" in res.stderr or hint in res.stderr


def test_bad_option_values_are_usage_errors(data: Path) -> None:
    res = check(str(data / "fine.csv"), "-q", "age", "--k", "0")
    assert res.exit_code == 2


# --------------------------------------------------------------------------- end to end


def _events(path: Path, *events: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")


def _event(n: int, type_: str, time: str, **attributes: Any) -> dict[str, Any]:
    return {
        "id": f"evt-{type_}-{n}",
        "type": type_,
        "time": time,
        "actor": {"id": "steward@example.com", "roles": ["data_steward"]},
        "subject": {"kind": "dataset", "id": "ds-cohort"},
        "attributes": attributes,
    }


def _release_decision(tmp_path: Path, data_file: Path, qis: str) -> dict[str, Any]:
    """Register the file as a PHI cohort, assess it with the CLI, then ask to release it."""
    stream = tmp_path / "events.jsonl"
    _events(
        stream,
        _event(
            1,
            "dataset.registered",
            "2026-03-01T08:00:00Z",
            name="cardio-cohort",
            classification="PHI",
            deidentified=True,
            deidentification_method="expert-determination",
            digest=file_digest(data_file),
            owner="steward@example.com",
            allowed_purposes=["cardiac-research"],
            region="eu-west-1",
            quasi_identifiers=qis.split(","),
        ),
    )
    emitted = tmp_path / "assessment.jsonl"
    res = check(
        str(data_file),
        "-q",
        qis,
        "--emit-event",
        str(emitted),
        "--dataset",
        "ds-cohort",
        "--actor",
        "svc-privacy",
        "--now",
        NOW,
    )
    assert res.exit_code in (0, 1), res.output
    assert "wrote `dataset.privacy_assessed` for `ds-cohort`" in res.stderr
    stream.write_text(stream.read_text() + emitted.read_text())
    _events(
        stream,
        _event(
            3,
            "dataset.released",
            "2026-03-01T10:00:00Z",
            recipient="university-consortium",
            purpose="cardiac-research",
        ),
    )
    out = run(["eval", "-p", str(POLICIES), "-e", str(stream), "--format", "json"])
    assert out.exit_code in (0, 1), out.output
    decisions = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [d["event"]["type"] for d in decisions] == [
        "dataset.registered",
        "dataset.privacy_assessed",
        "dataset.released",
    ]
    assert decisions[1]["outcome"] == "allow"
    release: dict[str, Any] = decisions[2]
    return release


def _status(decision: dict[str, Any], rule: str) -> str:
    for result in decision["results"]:
        if result["rule"] == f"gxp.privacy.{rule}":
            return str(result["status"])
    raise AssertionError(f"{rule} not in the decision")


def test_release_with_k_below_5_is_denied(data: Path, tmp_path: Path) -> None:
    decision = _release_decision(tmp_path, data / "fine.csv", "age,sex,zip3")
    assert decision["outcome"] == "deny"
    assert _status(decision, "released_cohort_k_anonymous") == "fail"
    assert _status(decision, "release_assessment_current") == "pass"


def test_release_with_k_of_5_or_more_is_allowed(data: Path, tmp_path: Path) -> None:
    decision = _release_decision(tmp_path, data / "coarse.parquet", "age_band,sex,zip3")
    assert decision["outcome"] == "allow", decision
    assert _status(decision, "released_cohort_k_anonymous") == "pass"
    assert _status(decision, "release_free_of_direct_identifiers") == "pass"


def test_emitted_event_to_stdout(data: Path) -> None:
    res = check(
        str(data / "coarse.parquet"),
        "-q",
        "age_band,sex",
        "--emit-event",
        "-",
        "--dataset",
        "ds-1",
        "--output",
        "/dev/null",
        "--now",
        NOW,
    )
    assert res.exit_code == 0, res.output
    event = json.loads(res.stdout)
    assert event["type"] == "dataset.privacy_assessed" and event["time"] == NOW
    assert event["attributes"]["data_digest"] == file_digest(data / "coarse.parquet")
    clash = check(str(data / "coarse.parquet"), "-q", "sex", "--emit-event", "-", "--dataset", "d")
    assert clash.exit_code == 2 and "both go to stdout" in clash.stderr
