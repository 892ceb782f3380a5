"""`policyengine drift`: formats, exit codes (0 no breach, 1 breach, 2 user error) and
error messages without tracebacks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result

from policyengine.cli.drift import drift
from policyengine.cli.main import PolicyEngineGroup


@click.group(cls=PolicyEngineGroup)
def cli() -> None:
    """The command as the main group will mount it (same error handling)."""


cli.add_command(drift)


def run(args: Sequence[str]) -> Result:
    env = {"NO_COLOR": "1", "COLUMNS": "120", "POLICYENGINE_DEBUG": None}
    return CliRunner().invoke(cli, ["drift", *args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)

    def frame(shift: float, n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "age": rng.normal(50 + 8 * shift, 10, n),
                "dose": rng.exponential(1.0, n),
                "site": rng.choice(
                    ["a", "b", "c"], n, p=[0.5, 0.3 - 0.2 * shift, 0.2 + 0.2 * shift]
                ),
            }
        )

    frame(0.0, 4_000).write_parquet(d / "ref.parquet")
    frame(0.0, 3_000).write_parquet(d / "same.parquet")
    frame(1.0, 3_000).write_csv(d / "drifted.csv")
    (d / "thresholds.toml").write_text("[numeric]\npsi = 0.25\n[categorical]\njs = 0.5\n")
    (d / "bad.toml").write_text("[numeric]\nkss = 0.1\n")
    (d / "garbage.parquet").write_bytes(b"PAR1 but not really")
    return d


def test_text_report_and_exit_code_for_drift(data: Path) -> None:
    res = run(["-r", str(data / "ref.parquet"), "-c", str(data / "drifted.csv")])
    assert res.exit_code == 1, res.output
    assert "age" in res.stdout and "drift" in res.stdout and "p < 0.05" in res.stdout
    # age and site moved; dose did not
    assert "3 columns compared: 2 drifted" in res.stdout


def test_exit_zero_without_breach(data: Path) -> None:
    res = run(
        [
            "-r",
            str(data / "ref.parquet"),
            "-c",
            str(data / "same.parquet"),
            "--columns",
            "dose,site",
        ]
    )
    assert res.exit_code == 0, res.output
    assert "2 columns compared: 0 drifted" in res.stdout


def test_json_report(data: Path) -> None:
    res = run(
        ["-r", str(data / "ref.parquet"), "-c", str(data / "drifted.csv"), "--format", "json"]
    )
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["drifted"] is True and doc["summary"]["columns"] == 3
    for col in doc["columns"]:
        for m in col["metrics"]:
            assert {"value", "p_value", "threshold", "verdict"} <= set(m)
    assert "3 columns compared" in res.stderr


def test_html_report_to_a_file(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = run(
        [
            "-r",
            str(data / "ref.parquet"),
            "-c",
            str(data / "drifted.csv"),
            "--format",
            "html",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 1 and res.stdout == ""
    html = out.read_text()
    assert html.count("<svg") == 3 and "<script" not in html


def test_thresholds_file(data: Path) -> None:
    res = run(
        [
            "-r",
            str(data / "ref.parquet"),
            "-c",
            str(data / "drifted.csv"),
            "--thresholds",
            str(data / "thresholds.toml"),
            "--columns",
            "site",
            "--format",
            "json",
        ]
    )
    doc = json.loads(res.stdout)
    assert [m["metric"] for m in doc["columns"][0]["metrics"]] == ["js"]
    assert doc["columns"][0]["metrics"][0]["threshold"] == 0.5 and res.exit_code == 0


def test_saved_reference_names_the_baseline(data: Path, tmp_path: Path) -> None:
    profile = tmp_path / "ref.zip"
    first = run(
        [
            "-r",
            str(data / "ref.parquet"),
            "-c",
            str(data / "drifted.csv"),
            "--save-reference",
            str(profile),
            "--format",
            "json",
        ]
    )
    digest = json.loads(first.stdout)["reference"]["digest"]
    assert digest.startswith("sha256:") and f"saved to {profile}" in first.stderr
    again = run(["-r", str(profile), "-c", str(data / "drifted.csv"), "--format", "json"])
    doc = json.loads(again.stdout)
    assert doc["reference"]["digest"] == digest and again.exit_code == 1
    assert doc["columns"] == json.loads(first.stdout)["columns"]


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["-r", "nope.parquet", "-c", "{d}/same.parquet"],
            "error: no such file `nope.parquet`",
            "hint: check",
        ),
        (["-r", "{d}/ref.parquet", "-c", "{d}"], "is a directory", None),
        (
            ["-r", "{d}/ref.parquet", "-c", "{d}/same.parquet", "--columns", "agee"],
            "no column `agee`",
            "hint: did you mean `age`?",
        ),
        (
            ["-r", "{d}/ref.parquet", "-c", "{d}/same.parquet", "--columns", ","],
            "`--columns` names no columns",
            None,
        ),
        (
            ["-r", "{d}/ref.parquet", "-c", "{d}/same.parquet", "--thresholds", "{d}/bad.toml"],
            "unknown drift metric `kss`",
            "did you mean `ks`?",
        ),
        (["-r", "{d}/ref.parquet", "-c", "{d}/garbage.parquet"], "cannot read `", None),
        (
            ["-r", "{d}/ref.parquet", "-c", "{d}/same.parquet", "-o", "{d}/no/such/dir/x.txt"],
            "cannot write",
            None,
        ),
        (["-r", "{d}/ref.parquet"], "Missing option '--current'", None),
    ],
)
def test_user_errors_exit_2_without_traceback(
    data: Path, args: list[str], message: str, hint: str | None
) -> None:
    res = run([a.replace("{d}", str(data)) for a in args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.output
    if hint:
        assert hint in res.stderr


def test_profile_as_current_is_refused(data: Path, tmp_path: Path) -> None:
    profile = tmp_path / "p.zip"
    run(
        [
            "-r",
            str(data / "ref.parquet"),
            "-c",
            str(data / "same.parquet"),
            "--save-reference",
            str(profile),
        ]
    )
    res = run(["-r", str(data / "ref.parquet"), "-c", str(profile)])
    assert res.exit_code == 2 and "is a saved profile, not data" in res.stderr


def test_empty_window_warns(data: Path, tmp_path: Path) -> None:
    pl.read_parquet(data / "same.parquet").head(0).write_parquet(tmp_path / "empty.parquet")
    res = run(["-r", str(data / "ref.parquet"), "-c", str(tmp_path / "empty.parquet")])
    assert res.exit_code == 0 and "warning: no data to compare in 3 columns" in res.stderr
