"""examples/fastapi_guard.py: a FastAPI promotion endpoint guarded with one engine call."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime
from types import ModuleType

import httpx
from test_server_support import ROOT

import policyengine as pe

EVENTS = [
    json.loads(line) for line in (ROOT / "examples" / "biotech.jsonl").read_text().splitlines()
]


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fastapi_guard", ROOT / "examples" / "fastapi_guard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guard_blocks_then_allows_a_promotion(tmp_path: object) -> None:
    """The biotech story: promotion while output drift is open is refused (403, naming the
    rule); after the drift review is overridden and closed, the same request is allowed."""
    clock = [datetime(2026, 3, 9, 10, tzinfo=UTC)]
    app = _example().create_app(now=lambda: clock[0])
    request = {
        "to_stage": "production",
        "requested_by": "priya.raman@helixbio.example",
        "roles": ["ml_engineer", "model_owner"],
    }
    by_id = {e["id"]: e for e in EVENTS}
    before = [e for e in EVENTS if e["id"] < "evt-038"]
    between = [e for e in EVENTS if "evt-038" < e["id"] < "evt-045"]

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
            for e in before:
                assert (await c.post("/lineage", json=e)).status_code == 200
            r = await c.post("/models/mv-hepatox-1.0.0/promote", json=request)
            assert r.status_code == 403
            detail = r.json()["detail"]
            assert detail["outcome"] == "deny"
            assert [f["rule"] for f in detail["failures"]] == [
                "gxp.monitoring.no_production_promotion_with_open_drift"
            ]
            assert detail["bundle_digest"] == pe.load_bundle(ROOT / "policies").digest
            for e in between:
                assert (await c.post("/lineage", json=e)).status_code == 200
            clock[0] = datetime.fromisoformat(by_id["evt-045"]["time"])
            r = await c.post("/models/mv-hepatox-1.0.0/promote", json=request)
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "production"
            r = await c.post("/lineage", json={"id": "x"})
            assert r.status_code == 422

    asyncio.run(scenario())


def test_the_guard_logs_decisions_when_given_a_recorder(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    signer = pe.Signer.generate("test.example/registry")
    log = pe.TransparencyLog.open(folder / "log.db", signer, create=True)
    app = _example().create_app(
        now=lambda: datetime(2026, 3, 9, 10, tzinfo=UTC), recorder=pe.DecisionRecorder(log)
    )

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
            r = await c.post(
                "/models/mv-unknown/promote", json={"to_stage": "staging", "requested_by": "u"}
            )
            assert r.status_code == 403  # an unknown model fails closed

    asyncio.run(scenario())
    assert log.size() == 3  # bundle, session, the decision
    assert log.audit(signer.verifier).ok
    log.close()
