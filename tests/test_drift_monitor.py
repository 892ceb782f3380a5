"""Monitor policies end to end: `policyengine drift --policies …` on real files.

Data is generated with a fixed seed; `logP` and `assay_type` drift in the current window,
the other columns do not.
"""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result

import policyengine as pe
from policyengine.cli.main import cli
from policyengine.drift.monitor import METRIC_MAP, drift_events, run_monitor
from policyengine.events import parse_event

ROOT = Path(__file__).resolve().parent.parent

MONITOR = """package gxp.monitors

/// Assay inputs of the hepatotoxicity models.
monitor assay_drift {
  title "Assay input drift"
  severity high
  model "hepatox-*"
  baseline "ref-assay-2026-01"
  window 2d
  time_column "scored_at"
  numeric logP, mol_weight: psi < 0.2, ks.p > 0.01
  numeric *: wasserstein_norm < 0.1
  categorical assay_type: chi2.p > 0.01, js < 0.1
  on breach: alert high; review by "qa" within 48h; trigger retrain
}

monitor stable_only {
  model "other-model"
  window 1000 rows
  numeric mol_weight: psi < 0.2
}
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _frame(rng: np.random.Generator, n: int, shift: float, probs: list[float], start: str) -> Any:
    begin = pl.datetime(int(start[:4]), int(start[5:7]), int(start[8:10]), time_zone="UTC")
    return pl.DataFrame(
        {
            "logP": rng.normal(2.0 + shift, 1.0, n),
            "mol_weight": rng.normal(350.0, 50.0, n),
            "assay_ph": rng.normal(7.0, 0.2, n),
            "assay_type": rng.choice(["elisa", "hts", "lcms"], n, p=probs),
            "scored_at": pl.datetime_range(
                begin, begin + pl.duration(minutes=n - 1), "1m", eager=True
            ),
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor")
    rng = np.random.default_rng(20260301)
    _frame(rng, 5000, 0.0, [1 / 3, 1 / 3, 1 / 3], "2026-01-01").write_parquet(root / "ref.parquet")
    _frame(rng, 5000, 0.6, [0.2, 0.3, 0.5], "2026-03-01").write_parquet(root / "cur.parquet")
    _frame(rng, 5000, 0.0, [1 / 3, 1 / 3, 1 / 3], "2026-03-01").write_parquet(root / "same.parquet")
    policies = root / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "monitors.policy").write_text(MONITOR)
    return root


def drift_cli(world: Path, current: str, *extra: str) -> Result:
    return run(
        "drift", "-r", str(world / "ref.parquet"), "-c", str(world / current),
        "--policies", str(world / "policies"), *extra,
    )  # fmt: skip


def test_every_language_metric_maps_to_a_drift_metric() -> None:
    from policyengine.compiler.monitors import METRICS
    from policyengine.drift.compare import METRICS as DRIFT_METRICS

    assert set(METRIC_MAP) == set(METRICS)
    for name, (metric, _, reads) in METRIC_MAP.items():
        assert metric in DRIFT_METRICS, name
        assert (reads == "p_value") == name.endswith(".p")


def test_breaches_are_found_per_condition(world: Path) -> None:
    result = drift_cli(world, "cur.parquet", "--monitor", "assay_drift", "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    (mon,) = doc["monitors"]
    verdicts = {(c["feature"], c["condition"]): c["breached"] for c in mon["checks"]}
    assert verdicts == {
        ("logP", "psi < 0.2"): True,
        ("logP", "ks.p > 0.01"): True,
        ("mol_weight", "psi < 0.2"): False,
        ("mol_weight", "ks.p > 0.01"): False,
        ("assay_ph", "wasserstein_norm < 0.1"): False,
        ("assay_type", "chi2.p > 0.01"): True,
        ("assay_type", "js < 0.1"): True,
    }
    # the 2-day window keeps the last 2880 one-minute rows
    assert mon["rows"] == {"reference": 5000, "current": 2880}
    assert mon["baseline"] == "ref-assay-2026-01"
    assert mon["actions"]["review"] == {"roles": ["qa"], "within_seconds": 172800}


def test_no_drift_exits_zero(world: Path) -> None:
    result = drift_cli(world, "same.parquet", "--monitor", "assay_drift")
    assert result.exit_code == 0, result.output
    assert "monitor gxp.monitors.assay_drift (Assay input drift): ok" in result.stdout


def test_monitors_are_chosen_by_model(world: Path) -> None:
    doc = json.loads(
        drift_cli(world, "cur.parquet", "--model", "other-model", "--format", "json").stdout
    )
    assert [m["monitor"] for m in doc["monitors"]] == ["gxp.monitors.stable_only"]
    assert doc["monitors"][0]["rows"]["current"] == 1000
    both = json.loads(drift_cli(world, "cur.parquet", "--format", "json").stdout)
    assert len(both["monitors"]) == 2
    missing = drift_cli(world, "cur.parquet", "--model", "nobody")
    assert missing.exit_code == 2 and "no monitor in the policies watches model" in missing.stderr


def test_events_are_valid_deterministic_and_decided(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    args = ("--monitor", "assay_drift", "--model-version", "mv-hepatox-1.1.0")
    stamp = ("--now", "2026-03-04T12:00:00Z")
    result = drift_cli(world, "cur.parquet", *args, *stamp, "--emit-events", str(out))
    assert result.exit_code == 1
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == 7
    for e in events:
        parse_event(e)
    assert {e["attributes"]["breached"] for e in events} == {True, False}
    again = tmp_path / "again.jsonl"
    drift_cli(world, "cur.parquet", *args, *stamp, "--emit-events", str(again))
    assert again.read_text() == out.read_text()
    # decided by the policies: an open breach now blocks promotion of that model version
    engine = pe.Engine(pe.load_bundle(world / "policies"))
    examples = [
        json.loads(line) for line in (ROOT / "examples/biotech.jsonl").read_text().splitlines()
    ]
    for e in examples:
        engine.evaluate(e)
    for e in events:
        engine.evaluate(e)
    state = engine.state.get("model_version", "mv-hepatox-1.1.0")
    assert state is not None
    assert {(b["feature"], b["metric"]) for b in state["drift_breaches"]} == {
        ("logP", "psi"), ("logP", "ks.p"), ("assay_type", "chi2.p"), ("assay_type", "js"),
    }  # fmt: skip
    promote = engine.evaluate(
        {
            "id": "promote-1", "type": "model.promotion_requested", "time": "2026-03-05T00:00:00Z",
            "actor": {"id": "mlops"},
            "subject": {"kind": "model_version", "id": "mv-hepatox-1.1.0"},
            "attributes": {"to_stage": "production"},
        }
    )  # fmt: skip
    assert promote.outcome is pe.Outcome.DENY
    assert promote.result("no_production_promotion_with_open_drift").status == "fail"  # type: ignore[union-attr]


def test_drift_decisions_go_to_the_log(world: Path, tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    run("keys", "generate", "--out", str(key), "--name", "example.com/drift")
    db = tmp_path / "log.db"
    result = drift_cli(
        world, "cur.parquet", "--monitor", "assay_drift", "--model-version", "mv-1",
        "--log", str(db), "--key", str(key),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "logged 7 drift decisions" in result.stderr
    assert run("log", "verify", "--log", str(db)).exit_code == 0
    assert run("audit", "replay", "--log", str(db)).exit_code == 0


def test_trigger_command_gets_the_result(world: Path, tmp_path: Path) -> None:
    sink = tmp_path / "trigger.json"
    script = tmp_path / "retrain.py"
    script.write_text(f"import sys\nopen({str(sink)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    result = drift_cli(
        world, "cur.parquet", "--monitor", "assay_drift",
        "--on-trigger", f"retrain={sys.executable} {script}",
    )  # fmt: skip
    assert result.exit_code == 1
    got = json.loads(sink.read_text())
    assert got["monitor"] == "gxp.monitors.assay_drift" and got["breached"] is True
    assert got["actions"]["triggers"] == ["retrain"]
    # without a command for the trigger the run warns, and still reports the drift
    result = drift_cli(world, "cur.parquet", "--monitor", "assay_drift")
    assert result.exit_code == 1
    assert "asks for trigger `retrain` but no `--on-trigger retrain=COMMAND`" in result.stderr
    # no breach, no trigger
    sink.unlink()
    drift_cli(
        world, "same.parquet", "--monitor", "assay_drift",
        "--on-trigger", f"retrain={sys.executable} {script}",
    )  # fmt: skip
    assert not sink.exists()


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/drift", received
    finally:
        server.shutdown()


def test_webhook_receives_breaches(world: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    result = drift_cli(
        world, "cur.parquet", "--monitor", "assay_drift", "--webhook", url,
        "--on-trigger", "retrain=true",
    )  # fmt: skip
    assert result.exit_code == 1
    assert len(received) == 1 and received[0]["breached"] is True
    dead = drift_cli(
        world, "cur.parquet", "--monitor", "assay_drift", "--on-trigger", "retrain=true",
        "--webhook", "http://127.0.0.1:9/nowhere",
    )  # fmt: skip
    assert dead.exit_code == 1 and "webhook http://127.0.0.1:9/nowhere failed" in dead.stderr


def test_named_feature_must_exist(world: Path, tmp_path: Path) -> None:
    policies = tmp_path / "p"
    policies.mkdir()
    (policies / "m.policy").write_text(
        'package p\nmonitor m { model "x" numeric logp: psi < 0.2 }\n'
    )
    result = run(
        "drift", "-r", str(world / "ref.parquet"), "-c", str(world / "cur.parquet"),
        "--policies", str(policies),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "monitor `p.m` names `logp`, which the reference does not have" in result.stderr


def test_empty_window_is_a_breach_not_a_pass(world: Path) -> None:
    spec = pe.load_bundle(world / "policies").monitors["gxp.monitors.assay_drift"]
    empty = pl.read_parquet(world / "cur.parquet").head(0)
    result = run_monitor(spec, world / "ref.parquet", empty, model_version="mv-1")
    assert result.breached and all(c.breached for c in result.checks)
    assert all(c.value is None or c.note for c in result.checks)
    events = drift_events(result, time=datetime(2026, 3, 1, tzinfo=UTC))
    assert all(e["attributes"]["breached"] for e in events)
    for e in events:
        parse_event(e)


def test_usage_errors(world: Path) -> None:
    both = drift_cli(world, "cur.parquet", "--thresholds", "x.toml")
    assert both.exit_code == 2 and "--policies takes the metrics from the monitor blocks" in (
        both.stderr
    )
    alone = run("drift", "-r", str(world / "ref.parquet"), "-c", str(world / "cur.parquet"),
                "--monitor", "m")  # fmt: skip
    assert alone.exit_code == 2 and "--monitor need --policies" in alone.stderr
    no_version = drift_cli(world, "cur.parquet", "--emit-events", "-")
    assert no_version.exit_code == 2 and "drift events need --model-version" in no_version.stderr
    html = drift_cli(world, "cur.parquet", "--format", "html")
    assert html.exit_code == 2 and "an HTML report shows one monitor" in html.stderr
    one = drift_cli(world, "cur.parquet", "--monitor", "assay_drift", "--format", "html")
    assert one.exit_code == 1 and one.stdout.lstrip().lower().startswith("<!doctype html>")
