"""`POST /v1/drift`: a monitor of the serving bundle over inline or data-root files."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import polars as pl
from test_server_support import ROOT, app_client, key_file

from policyengine.server import ServerSettings, create_app

MONITOR = """package gxp.monitors

monitor assay_drift {
  title "Assay input drift"
  model "hepatox-*"
  baseline "ref-assay-2026-01"
  numeric logP: psi < 0.2, ks.p > 0.01
  categorical assay_type: chi2.p > 0.01
  on breach: alert high; review by "qa" within 48h
}
"""

PROBLEM = "application/problem+json"


def _columns(rng: np.random.Generator, n: int, shift: float, probs: list[float]) -> dict[str, Any]:
    return {
        "logP": rng.normal(2.0 + shift, 1.0, n).round(6).tolist(),
        "assay_type": rng.choice(["elisa", "hts", "lcms"], n, p=probs).tolist(),
    }


def _settings(tmp_path: Path, data_root: Path | None = None) -> ServerSettings:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "monitors.policy").write_text(MONITOR)
    return ServerSettings(
        policies=(str(policies),),
        log_path=str(tmp_path / "log.db"),
        key_path=str(key_file(tmp_path)),
        reload_interval_s=0,
        data_root=str(data_root) if data_root else None,
    )


def test_inline_drift_is_judged_decided_recorded_and_measured(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ref = _columns(rng, 2000, 0.0, [1 / 3, 1 / 3, 1 / 3])
    cur = _columns(rng, 2000, 0.7, [0.2, 0.3, 0.5])
    body = {
        "monitor": "assay_drift",
        "model_version": "mv-hepatox-1.1.0",
        "reference": {"columns": ref},
        "current": {"columns": cur},
        "time": "2026-03-04T12:00:00Z",
    }

    async def scenario() -> tuple[httpx.Response, str, dict[str, Any], httpx.Response]:
        async with app_client(create_app(_settings(tmp_path))) as c:
            r = await c.post("/v1/drift", json=body)
            metrics = (await c.get("/metrics")).text
            doc = (await c.get("/v1/openapi.json")).json()
            first = r.json()["decisions"][0]["decision"]["event"]["id"]
            stored = await c.get(f"/v1/decisions/{first}")
            return r, metrics, doc, stored

    r, metrics, doc, stored = asyncio.run(scenario())
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["breached"] is True and out["recorded"] is True
    (mon,) = out["monitors"]
    assert {(c["feature"], c["condition"], c["breached"]) for c in mon["checks"]} == {
        ("logP", "psi < 0.2", True),
        ("logP", "ks.p > 0.01", True),
        ("assay_type", "chi2.p > 0.01", True),
    }
    assert mon["actions"]["review"]["roles"] == ["qa"]
    assert len(out["decisions"]) == 3
    assert stored.status_code == 200  # the drift decisions are in the signed log
    assert 'policyengine_drift_breaches_total{feature="logP",metric="psi",monitor=' in metrics
    assert 'policyengine_drift_value{feature="logP",metric="psi"' in metrics
    schema = {"$ref": "#/components/schemas/DriftResponse", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(out)
    assert doc["paths"]["/v1/drift"]["post"]["security"] == [{"bearer": []}]


def test_files_only_under_the_data_root(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    root = tmp_path / "data"
    root.mkdir()
    pl.DataFrame(_columns(rng, 1000, 0.0, [1 / 3] * 3)).write_parquet(root / "ref.parquet")
    pl.DataFrame(_columns(rng, 1000, 0.0, [1 / 3] * 3)).write_parquet(root / "cur.parquet")
    (tmp_path / "secret.parquet").write_bytes((root / "ref.parquet").read_bytes())
    base = {"model": "hepatox-predictor", "model_version": "mv-1"}

    async def scenario() -> list[httpx.Response]:
        async with app_client(create_app(_settings(tmp_path, root))) as c:
            ok = await c.post(
                "/v1/drift", json=base | {"reference": "ref.parquet", "current": "cur.parquet"}
            )
            escape = await c.post(
                "/v1/drift",
                json=base | {"reference": "../secret.parquet", "current": "cur.parquet"},
            )
            missing = await c.post(
                "/v1/drift", json=base | {"reference": "nope.parquet", "current": "cur.parquet"}
            )
            return [ok, escape, missing]

    ok, escape, missing = asyncio.run(scenario())
    assert ok.status_code == 200 and ok.json()["breached"] is False
    for bad, text in ((escape, "outside the server's data root"), (missing, "no data file")):
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
        assert text in bad.json()["detail"] and bad.json()["errors"][0]["pointer"] == "#/reference"


def test_bad_drift_requests_are_problems(tmp_path: Path) -> None:
    cols = {"columns": {"logP": [1.0, 2.0], "assay_type": ["a", "b"]}}

    async def scenario() -> list[httpx.Response]:
        async with app_client(create_app(_settings(tmp_path))) as c:
            return [
                await c.post("/v1/drift", json={"reference": cols, "current": cols}),
                await c.post(
                    "/v1/drift",
                    json={"model_version": "m", "reference": "ref.parquet", "current": cols},
                ),
                await c.post(
                    "/v1/drift",
                    json={
                        "model_version": "m",
                        "reference": {"columns": {"logP": [1, 2], "x": [1]}},
                        "current": cols,
                    },
                ),
                await c.post(
                    "/v1/drift",
                    json={
                        "model_version": "m",
                        "monitor": "nope",
                        "reference": cols,
                        "current": cols,
                    },
                ),
                await c.post(
                    "/v1/drift",
                    json={"model_version": "m", "reference": cols, "current": cols, "extra": 1},
                ),
            ]

    no_version, no_root, ragged, unknown, extra = asyncio.run(scenario())
    assert (
        no_version.status_code == 422
        and no_version.json()["errors"][0]["pointer"] == "#/model_version"
    )
    assert no_root.status_code == 422 and "reads no files" in no_root.json()["detail"]
    assert ragged.status_code == 422 and "equal length" in ragged.json()["detail"]
    assert unknown.status_code == 422 and "no monitor `nope`" in unknown.json()["detail"]
    assert extra.status_code == 422 and extra.json()["errors"][0]["pointer"] == "#/extra"
