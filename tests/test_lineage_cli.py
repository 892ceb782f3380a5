"""`policyengine lineage …` end to end: record, trace, served and affected, their exit codes
(0 ok, 2 usage or input error) and messages. Runs in-process with click's CliRunner on the
command group itself (the top-level CLI registers it)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pseudonyms import pseudonym_key_file

from policyengine.cli.lineage import lineage_group

ROOT = Path(__file__).resolve().parent.parent
EVENTS = str(ROOT / "examples" / "biotech.jsonl")
BAD = str(ROOT / "examples" / "bad-input.jsonl")


KEY = str(pseudonym_key_file(Path(tempfile.mkdtemp(prefix="pseudonym-"))))


def run(*args: str, input: str | None = None, key: bool = True) -> Result:
    """The lineage group; `record` gets the test pseudonymisation key (the example events
    carry patient identifiers) unless `key=False`."""
    if args and args[0] == "record" and key:
        args = (*args, "--pseudonym-key", KEY)
    return CliRunner().invoke(lineage_group, list(args), input=input, catch_exceptions=False)


def test_record_refuses_identifiers_without_a_key(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    result = run("record", "--store", path, EVENTS, key=False)
    assert result.exit_code == 2
    assert "carries patient identifiers" in result.stderr
    assert "6 lines of" in result.stderr


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("lineage") / "lineage.db")
    result = run("record", "--store", path, EVENTS)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"recorded 59 events into `{path}`" in result.stderr
    assert "0 already recorded" in result.stderr
    return path


def test_recording_again_adds_nothing(db: str) -> None:
    result = run("record", "--store", db, EVENTS)
    assert result.exit_code == 0
    assert "recorded 0 events" in result.stderr and "59 already recorded" in result.stderr
    assert "(0 nodes and 0 edges added;" in result.stderr


def test_record_reports_bad_lines_with_file_and_line(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    result = run("record", "--store", path, BAD)
    assert result.exit_code == 2
    assert f"error: {BAD}:2: invalid JSON" in result.stderr
    assert f"error: {BAD}:3: unknown event type `model.retired`" in result.stderr
    assert "could not be recorded" in result.stderr
    assert "recorded 2 events" in result.stderr  # the good lines still went in


def test_record_reports_a_reused_event_id(tmp_path: Path) -> None:
    path = str(tmp_path / "l.db")
    first = Path(EVENTS).read_text().splitlines()[0]
    changed = first.replace('"classification":"PHI"', '"classification":"internal"')
    assert changed != first
    assert run("record", "--store", path, "-", input=first + "\n").exit_code == 0
    result = run("record", "--store", path, "-", input="\n" + changed + "\n")
    assert result.exit_code == 2
    assert "error: <stdin>:2: event `evt-001` was already recorded with different content" in (
        result.stderr
    )


def test_record_rejects_a_missing_events_file(tmp_path: Path) -> None:
    result = run("record", "--store", str(tmp_path / "l.db"), str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "is missing" in result.stderr
    assert not (tmp_path / "l.db").exists()  # no empty store left behind
    result = run("record", "--store", str(tmp_path / "l.db"), str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_trace_upstream_text(db: str) -> None:
    result = run("trace", "mv-hepatox-1.0.0", "--store", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("upstream of model_version:mv-hepatox-1.0.0: 16 nodes")
    assert "<- trained training_run:run-0121" in result.stdout
    assert "<- approved approval:evt-022  approved by Elena Varga as qa" in result.stdout


def test_trace_downstream_json_and_output_file(db: str, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    result = run(
        "trace", "hepatox-assay-raw", "--store", db, "--downstream",
        "--format", "json", "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 0 and result.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["root"] == "dataset:ds-hepatox-raw-2026q1" and doc["direction"] == "downstream"
    assert "prediction_batch:pb-2026-0503" in {n["key"] for n in doc["nodes"]}


@pytest.mark.parametrize(
    ("fmt", "start"), [("dot", "digraph lineage {"), ("mermaid", "flowchart LR")]
)
def test_trace_graph_formats(db: str, fmt: str, start: str) -> None:
    result = run("trace", "pb-2026-0412", "--store", db, "--format", fmt)
    assert result.exit_code == 0 and result.stdout.startswith(start)


def test_trace_at_a_time(db: str) -> None:
    result = run(
        "trace", "endpoint:hepatox-staging", "--store", db, "--at", "2026-04-10T00:00:00Z",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["at"] == "2026-04-10T00:00:00Z"
    models = {n["key"] for n in doc["nodes"] if n["kind"] == "model_version"}
    assert models == {"model_version:mv-hepatox-1.1.0"}


def test_an_ambiguous_name_lists_the_candidates(db: str) -> None:
    result = run("trace", "hepatox-predictor", "--store", db)
    assert result.exit_code == 2 and result.stdout == ""
    assert "error: `hepatox-predictor` is ambiguous: it matches 2 nodes" in result.stderr
    assert "`model_version:mv-hepatox-1.0.0 (hepatox-predictor@1.0.0)`" in result.stderr
    assert "`model_version:mv-hepatox-1.1.0 (hepatox-predictor@1.1.0)`" in result.stderr
    assert "hint: pass one of them as `kind:id`" in result.stderr


def test_an_unknown_id_suggests_close_ones(db: str) -> None:
    result = run("trace", "mv-hepatox-1.0.1", "--store", db)
    assert result.exit_code == 2
    assert "error: no lineage node `mv-hepatox-1.0.1`" in result.stderr
    assert "hint: did you mean" in result.stderr and "`model_version:mv-hepatox-1.0.0`" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("yesterday", "`--at` must be an RFC 3339 timestamp, got `yesterday`"),
        ("2026-03-01T00:00:00", "`--at 2026-03-01T00:00:00` has no timezone"),
    ],
)
def test_a_bad_time_is_a_usage_error(db: str, at: str, message: str) -> None:
    result = run("trace", "mv-hepatox-1.0.0", "--store", db, "--at", at)
    assert result.exit_code == 2 and f"error: {message}" in result.stderr


def test_a_missing_or_foreign_store_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = run("trace", "x", "--store", str(missing))
    assert result.exit_code == 2
    assert f"error: no lineage store at `{missing}`" in result.stderr
    assert "hint: `policyengine lineage record --store" in result.stderr
    assert not missing.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    result = run("served", "hepatox-prod", "--store", str(text))
    assert result.exit_code == 2 and "is not a lineage store" in result.stderr


def test_served_before_and_after_a_redeployment(db: str) -> None:
    before = run("served", "hepatox-staging", "--store", db, "--at", "2026-03-01T00:00:00Z")
    assert before.exit_code == 0
    assert before.stdout.startswith(
        "endpoint:hepatox-staging at 2026-03-01T00:00:00Z was served by "
        "model_version:mv-hepatox-1.0.0"
    )
    assert "deployed: evt-024 at 2026-02-10T08:12:00Z until 2026-04-07T11:08:00Z" in before.stdout
    assert "approvals recorded by then (5):" in before.stdout
    after = run(
        "served", "endpoint:hepatox-staging", "--store", db, "--at", "2026-04-10T00:00:00Z",
        "--format", "json",
    )  # fmt: skip
    doc = json.loads(after.stdout)
    assert doc["model_version"]["id"] == "mv-hepatox-1.1.0"
    assert [a["id"] for a in doc["approvals"]] == ["evt-050", "evt-051", "evt-052", "evt-054"]
    assert doc["deployment"]["event_id"] == "evt-056" and doc["deployment"]["valid_to"] is None


def test_served_when_nothing_was_deployed_yet(db: str) -> None:
    result = run("served", "hepatox-prod", "--store", db, "--at", "2026-01-01T00:00:00Z")
    assert result.exit_code == 0
    assert result.stdout == "nothing was deployed to `hepatox-prod` at 2026-01-01T00:00:00Z\n"
    as_json = run(
        "served", "hepatox-prod", "--store", db, "--at", "2026-01-01T00:00:00Z", "--format", "json"
    )
    assert json.loads(as_json.stdout)["model_version"] is None


def test_served_rejects_an_unknown_endpoint(db: str) -> None:
    result = run("served", "hepatox-prd", "--store", db, "--at", "2026-03-01T00:00:00Z")
    assert result.exit_code == 2
    assert "error: no lineage node `endpoint:hepatox-prd`" in result.stderr
    assert "`endpoint:hepatox-prod`" in result.stderr


def test_affected_lists_everything_downstream(db: str) -> None:
    result = run("affected", "ds-hepatox-raw-2026q1", "--store", db)
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("downstream of dataset:ds-hepatox-raw-2026q1  hepatox-assay-raw")
    assert "model versions (2):" in out and "prediction batches (5):" in out
    assert (
        "model_version:mv-hepatox-1.0.0 -> endpoint:hepatox-staging  evt-024 "
        "2026-02-10T08:12:00Z (until 2026-04-07T11:08:00Z)" in out
    )
    plate = run("affected", "ds-plate-2026-0412", "--store", db, "--format", "json")
    doc = json.loads(plate.stdout)
    assert doc["source"]["key"] == "dataset:ds-plate-2026-0412"
    assert [b["id"] for b in doc["prediction_batches"]] == [
        "pb-2026-0412",
        "pb-2026-0501",
        "pb-2026-0502",
        "pb-2026-0503",
    ]
    assert doc["model_versions"] == []
