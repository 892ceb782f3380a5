"""The Grafana dashboard only queries metrics (and labels) the server really exports."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from test_server_support import (
    BROKEN,
    ROOT,
    app_client,
    approval,
    deploy,
    key_file,
    registered,
    write_policies,
)

from policyengine.server import ServerSettings, create_app

DASHBOARD = ROOT / "dashboards" / "grafana.json"
MONITOR = 'package ops\nmonitor scores { model "*" numeric score: psi < 0.2 }\n'
METRIC = re.compile(r"\bpolicyengine_[a-z0-9_]+\b")
GROUPING = re.compile(r"\b(?:by|on|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)")
#: Labels Prometheus adds when it scrapes; they are not in the exposition itself.
TARGET_LABELS = {"instance", "job"}


def _exprs(node: Any) -> list[str]:
    """Every PromQL string in the dashboard: targets, annotations, template queries."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                out.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                out.append(value["query"])
            else:
                out.extend(_exprs(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_exprs(item))
    return out


def _exposition(tmp_path: Path) -> str:
    folder = write_policies(tmp_path / "policies")
    (folder / "monitor.policy").write_text(MONITOR)
    s = ServerSettings(
        policies=(str(folder),),
        log_path=str(tmp_path / "log.db"),
        key_path=str(key_file(tmp_path)),
        reload_interval_s=0,
    )
    app = create_app(s)

    async def scenario() -> str:
        async with app_client(app) as c:
            for e in [registered("m", name="abc"), approval("m", "b"), deploy("m")]:
                assert (await c.post("/v1/evaluate", json=e)).status_code == 200
            data = {"columns": {"score": [0.1, 0.2, 0.3, 0.4] * 25}}
            shifted = {"columns": {"score": [0.6, 0.7, 0.8, 0.9] * 25}}
            drift = {"model_version": "m", "reference": data, "current": shifted}
            r = await c.post("/v1/drift", json=drift)
            assert r.status_code == 200 and r.json()["breached"], r.text
            (folder / "gate.policy").write_text(BROKEN)
            assert not await asyncio.to_thread(app.state.service.reload, "test")
            text: str = (await c.get("/metrics")).text
            return text

    text: str = asyncio.run(scenario())
    return text


def _samples(text: str) -> dict[str, set[str]]:
    """{sample name: label names seen on it}."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        if rest:
            labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', rest.split("}")[0]))
        else:
            name, labels = line.split(" ")[0], set()
        out.setdefault(name, set()).update(labels)
    return out


def test_every_dashboard_metric_and_label_is_exported(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = _exprs(dashboard)
    assert len(exprs) >= 15
    samples = _samples(_exposition(tmp_path))
    used: set[str] = set()
    for expr in exprs:
        names = set(METRIC.findall(expr))
        assert names, f"no policyengine metric in `{expr}`"
        missing = names - samples.keys()
        assert not missing, f"`{expr}` uses metrics the server does not export: {missing}"
        used |= names
        labels = set().union(*(samples[n] for n in names))
        for group in GROUPING.findall(expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in labels | TARGET_LABELS, f"`{expr}`: no label `{label}`"
        for label in MATCHER.findall(re.sub(r'"[^"]*"', '""', expr)):
            assert label in labels | TARGET_LABELS, f"`{expr}`: no label `{label}`"
    # the panels the issue asks for
    for wanted in (
        "policyengine_denials_total",
        "policyengine_decisions_total",
        "policyengine_evaluation_duration_seconds_bucket",
        "policyengine_log_leaves",
        "policyengine_log_checkpoint_age_seconds",
        "policyengine_bundle_reloads_total",
    ):
        assert wanted in used


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert {"x", "y", "w", "h"} <= p["gridPos"].keys() and p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}"
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(refs) == len(set(refs))
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "instance"}
