"""End to end: SageMaker EventBridge events → `policyengine ingest` → decisions → lineage.

Also runs the SageMaker half of `examples/stacks/` (one policy, two stacks) and its
counter-check: without the second QA approval the production deployment is denied.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from policyengine.cli.main import cli
from policyengine.lineage import SQLiteLineageStore, served_at, trace

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
OVERSIGHT = ["-p", str(POLICIES / "common.policy"), "-p", str(POLICIES / "oversight.policy")]
SCENARIO = ROOT / "tests" / "fixtures" / "sagemaker" / "scenario"
STACK = ROOT / "examples" / "stacks" / "sagemaker" / "events"
PACKAGE = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/hepatox-screen/3"


def ingest(*args: str) -> Result:
    return CliRunner().invoke(cli, ["ingest", "--adapter", "sagemaker", *args],
                              catch_exceptions=False)  # fmt: skip


def decisions(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def outcomes(result: Result) -> list[tuple[str, str]]:
    return [(d["event"]["type"], d["outcome"]) for d in decisions(result)]


def failed_rules(decision: dict[str, Any]) -> set[str]:
    return {r["rule"] for r in decision["results"] if r["status"] in ("fail", "error")}


def test_scenario_is_decided_and_traced(tmp_path: Path) -> None:
    store = tmp_path / "lineage.db"
    result = ingest(str(SCENARIO), "-p", str(POLICIES), "--store", str(store), "--format", "json")
    assert result.exit_code in (0, 1), result.stderr  # 1 only when a decision is blocking
    assert "could not be ingested" not in result.stderr
    by_type = {}
    for d in decisions(result):
        by_type.setdefault(d["event"]["type"], []).append(d)
    assert len(by_type["approval.recorded"]) == 2
    assert [d["outcome"] for d in by_type["approval.recorded"]] == ["allow", "allow"]
    # Released under the full library: two QA approvals, a completed run with a pinned commit
    # and image, a sha256 artifact digest, no open drift at deployment time.
    (deployed,) = by_type["model.deployed"]
    assert deployed["outcome"] == "allow", failed_rules(deployed)
    with SQLiteLineageStore(store) as lineage:
        up = trace(lineage, "hepatox-screen@3", "upstream")
        keys = {str(n.key) for n in up.nodes}
        assert f"model_version:{PACKAGE}" in keys
        assert any(k.startswith("training_run:arn:aws:sagemaker:") for k in keys)
        assert "code_commit:4be1d07c9a3e5f8b2d6a1c0e7f9b3d5a8c2e4f60" in keys
        assert sum(1 for n in up.nodes if n.key.kind == "approval") == 2
        assert any(n.key.kind == "image" for n in up.nodes)
        serving = served_at(lineage, "hepatox-screen-prod", datetime(2026, 3, 7, tzinfo=UTC))
        assert serving is not None and serving.model_version.key.id == PACKAGE
        assert {a.attrs["signer"] for a in serving.approvals} == {
            "elena.varga@helix.example",
            "grace.liu@helix.example",
        }
    # Re-ingesting the same source adds nothing and decides the same way (deterministic ids).
    again = ingest(str(SCENARIO), "-p", str(POLICIES), "--store", str(store), "--format", "json")
    assert again.stdout == result.stdout
    assert "recorded before with other content" not in again.stderr


def test_stack_example_allows_every_step(tmp_path: Path) -> None:
    store = tmp_path / "lineage.db"
    result = ingest(str(STACK), *OVERSIGHT, "--store", str(store), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert outcomes(result) == [
        ("model.registered", "allow"),
        ("approval.recorded", "allow"),
        ("approval.recorded", "allow"),
        ("model.deployed", "allow"),
    ]
    first = decisions(result)[0]["event"]
    assert first["subject"] == {"kind": "model_version", "id": PACKAGE}
    with SQLiteLineageStore(store) as lineage:
        serving = served_at(lineage, "hepatox-screen-prod", datetime(2026, 3, 7, tzinfo=UTC))
        assert serving is not None
        assert serving.model_version.name == "hepatox-screen"
        assert len(serving.approvals) == 2


def test_stack_example_without_the_second_approval_waits_for_review(tmp_path: Path) -> None:
    events = tmp_path / "events"
    shutil.copytree(STACK, events)
    (events / "03-approved-by-grace-liu.json").unlink()
    result = ingest(str(events), *OVERSIGHT, "--format", "json")
    assert result.exit_code == 1
    assert outcomes(result) == [
        ("model.registered", "allow"),
        ("approval.recorded", "allow"),
        ("model.deployed", "review_required"),
    ]
    denied = decisions(result)[-1]
    assert "gxp.oversight.production_deploy_two_person" in failed_rules(denied)


def test_unmapped_signers_never_count_towards_release(tmp_path: Path) -> None:
    # Without the identity mapping the signatures are kept but have no printed name and an
    # unassigned role, so the production deployment waits for review rather than being allowed.
    events = tmp_path / "events"
    shutil.copytree(STACK, events)
    (events / "policyengine-sagemaker.json").unlink()
    result = ingest(str(events), *OVERSIGHT, "--format", "json")
    assert outcomes(result)[-1] == ("model.deployed", "review_required")


def test_bad_records_are_reported_and_the_rest_decided(tmp_path: Path) -> None:
    events = tmp_path / "events"
    shutil.copytree(STACK, events)
    broken = json.loads((events / "02-approved-by-elena-varga.json").read_text())
    broken["detail"]["ModelPackageVersion"] = "three"
    (events / "02-approved-by-elena-varga.json").write_text(json.dumps(broken))
    result = ingest(str(events), *OVERSIGHT, "--format", "json")
    assert result.exit_code == 2
    assert "`detail.ModelPackageVersion`: expected an integer" in result.stderr
    assert "02-approved-by-elena-varga.json" in result.stderr
    assert len(decisions(result)) == 3
