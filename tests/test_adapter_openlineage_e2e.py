"""End to end: events written by the real `openlineage-python` client (its file transport)
→ `policyengine ingest --adapter openlineage` → decisions under the shipped policies, a
signed decision log → lineage traced from the model back to its datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openlineage_scenario as S
from click.testing import CliRunner, Result
from openlineage.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport

from policyengine.cli.main import cli
from policyengine.lineage import SQLiteLineageStore, affected_by, trace

ROOT = Path(__file__).resolve().parent.parent
POLICIES = str(ROOT / "policies")
EHR = f"{S.DB}/{S.EHR}@{S.EHR_VERSION}"
FEATURES = f"{S.DB}/{S.FEATURES}"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def emitted(path: Path) -> Path:
    """The scenario as the client's file transport writes it: one event per line."""
    client = OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(path), append=True)),
        config={"facets": {"source_code_location": {"disabled": True}}},
    )
    for event in S.scenario():
        client.emit(event)
    return path


def decisions(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def failed_rules(decision: dict[str, Any]) -> set[str]:
    return {r["rule"] for r in decision["results"] if r["status"] in ("fail", "error")}


def test_openlineage_pipeline_is_decided_logged_and_traced(tmp_path: Path) -> None:
    source = emitted(tmp_path / "openlineage.json")
    key = tmp_path / "log.key"
    assert run("keys", "generate", "--out", str(key), "--name", "example.com/ol").exit_code == 0
    store, log = tmp_path / "lineage.db", tmp_path / "decisions.db"
    args = ["ingest", "--adapter", "openlineage", str(source), "--policies", POLICIES,
            "--store", str(store), "--format", "json"]  # fmt: skip
    result = run(*args, "--log", str(log), "--key", str(key))
    assert result.exit_code == 1, result.stderr  # the misuse run is denied
    assert "could not be ingested" not in result.stderr
    decided = decisions(result)
    summary = [(d["event"]["type"], d["event"]["subject"]["id"], d["outcome"]) for d in decided]
    assert summary == [
        ("dataset.registered", EHR, "allow"),
        ("dataset.registered", FEATURES, "allow"),
        ("dataset.registered", FEATURES, "allow"),
        ("run.started", S.RUN_TRAIN, "allow"),
        ("run.completed", S.RUN_TRAIN, "allow"),
        ("dataset.registered", f"{S.LAKE}/reports/cardio-risk/1.0.0/eval.parquet", "allow"),
        ("model.registered", "cardio-risk@1.0.0", "allow"),
        ("run.started", S.RUN_BAD, "deny"),
        ("run.completed", S.RUN_BAD, "allow"),
    ]
    # Identifiable PHI, read for a purpose its owner never allowed (and, advisory, no
    # pinned code or image).
    assert failed_rules(decided[7]) == {
        "gxp.privacy.training_data_deidentified",
        "gxp.privacy.training_purpose_allowed",
        "gxp.audit.training_environment_pinned",
    }
    assert run("log", "verify", "--log", str(log)).exit_code == 0

    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "model_version:cardio-risk@1.0.0", "upstream")
        keys = {str(n.key) for n in up.nodes}
        assert {
            "model_version:cardio-risk@1.0.0",
            f"training_run:{S.RUN_TRAIN}",
            f"dataset:{FEATURES}",
            f"dataset:{EHR}",  # through the ETL job's derived_from
            f"code_commit:{S.COMMIT}",
            f"image:{S.IMAGE}",
        } <= keys
        assert not any(S.RUN_BAD in k for k in keys)
        # Forward: what the EHR extract fed, including the denied run (its lineage is kept).
        hit = affected_by(lineage, f"dataset:{EHR}")
        assert {n.key.id for n in hit.model_versions} == {"cardio-risk@1.0.0"}
        assert {n.key.id for n in hit.training_runs} == {S.RUN_TRAIN, S.RUN_BAD}
    text = run("lineage", "trace", "cardio-risk@1.0.0", "--store", str(store))
    assert text.exit_code == 0 and f"dataset:{EHR}" in text.stdout

    # Re-ingesting the same file adds nothing and decides the same way (deterministic ids).
    again = run(*args)
    assert again.stdout == result.stdout
    assert "recorded before with other content" not in again.stderr


def test_naive_event_times_are_refused_unless_configured(tmp_path: Path) -> None:
    events = [S.as_dict(e) for e in S.scenario()[:3]]
    events[0]["eventTime"] = "2024-05-01T09:00:00"  # no offset
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in events))
    args = ["ingest", "-a", "openlineage", str(source), "-p", POLICIES, "--format", "json"]
    refused = run(*args)
    assert refused.exit_code == 2
    assert f"{source}:1: `eventTime`: `2024-05-01T09:00:00` has no UTC offset" in refused.stderr
    assert len(decisions(refused)) == 1  # the ETL output is still decided
    accepted = CliRunner(env={"POLICYENGINE_OPENLINEAGE_NAIVE_TIME": "utc"}).invoke(
        cli, args, catch_exceptions=False
    )
    assert accepted.exit_code == 0, accepted.stderr
    assert decisions(accepted)[0]["event"]["time"] == "2024-05-01T09:00:00Z"
