"""The decision server accepts OpenLineage's HTTP transport at `POST /api/v1/lineage`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from test_server_support import ROOT, app_client, key_file

from policyengine.log import TransparencyLog, parse_record
from policyengine.server import ServerSettings, create_app

EXAMPLES = ROOT / "tests" / "fixtures" / "openlineage" / "examples"


def test_openlineage_events_are_decided_and_recorded(tmp_path: Path) -> None:
    settings = ServerSettings(
        policies=(str(ROOT / "policies"),),
        log_path=str(tmp_path / "log.db"),
        key_path=str(key_file(tmp_path)),
        reload_interval_s=0,
        token="s3cret",
    )
    good = json.loads((EXAMPLES / "event_simple.json").read_text())
    bad = json.loads((EXAMPLES / "event_no_run_id.json").read_text())
    auth = {"authorization": "Bearer s3cret"}

    async def scenario() -> list[httpx.Response]:
        async with app_client(create_app(settings)) as c:
            return [
                await c.post("/api/v1/lineage", json=good),
                await c.post("/api/v1/lineage", json=good, headers=auth),
                await c.post("/api/v1/lineage", json=bad, headers=auth),
                await c.post("/api/v1/lineage/batch", json=[good], headers=auth),
            ]

    anonymous, ok, invalid, batch = asyncio.run(scenario())
    assert anonymous.status_code == 401
    assert ok.status_code == 201, ok.text
    (event_id,) = ok.json()["events"]
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["field"] == "run.runId"
    assert batch.status_code == 201 and batch.json()["events"] == [event_id]
    with TransparencyLog.open(tmp_path / "log.db") as log:
        (index,) = log.find(event_id)  # decided once: the retry is answered from the log
        assert parse_record(log.leaf(index))["event"]["id"] == event_id
