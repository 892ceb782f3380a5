"""A real `policyengine serve` on loopback, driven by a real HTTP client (httpx): bounded load
with no failed requests and no lost decisions, kill -9 mid-load and restart, reload by file
change and by SIGHUP, and the command's start-up errors.

Every request loop here is bounded in count and time and targets 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from test_server_support import (
    BROKEN,
    GATE,
    GATE_V2,
    ServerProcess,
    approval,
    deploy,
    key_file,
    registered,
    running,
    serve_command,
    write_policies,
)

import policyengine as pe
from policyengine.audit.replay import replay
from policyengine.log import TransparencyLog, load_verifier, parse_record

MARKER = "PAYLOAD-MARKER-5521"  # in every event; must never reach the server's logs


def story(prefix: str, worker: int, round_: int) -> list[tuple[dict[str, Any], str]]:
    """Events for one model and the outcome each must get, in order (deterministic ids)."""
    model = f"mv-{prefix}-{worker}-{round_}"
    steps = [
        (registered(model, name=f"tox-{MARKER}"), "allow"),
        (approval(model, f"qa-{worker}"), "allow"),
        (deploy(model), "deny"),
        (approval(model, f"qa2-{worker}"), "allow"),
        (deploy(model), "allow"),
    ]
    for k, (event, _) in enumerate(steps):
        event["id"] = f"{model}-{k}"
    return steps


async def load(
    url: str,
    prefix: str,
    workers: int,
    rounds: int,
    acked: list[tuple[dict[str, Any], dict[str, Any]]],
    *,
    sent: dict[str, dict[str, Any]] | None = None,
    seconds: float = 20.0,
    check_outcomes: bool = True,
) -> int:
    """Run `workers` clients, each deciding `rounds` stories in order; returns failures.
    Stops at the first transport error (a killed server) or after `seconds`."""
    failures = 0
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            for r in range(rounds):
                for event, outcome in story(prefix, w, r):
                    if time.monotonic() > deadline:
                        return
                    if sent is not None:
                        sent[event["id"]] = event
                    try:
                        resp = await client.post("/v1/evaluate", json=event)
                    except httpx.TransportError:
                        return
                    if resp.status_code != 200:
                        failures += 1
                        continue
                    body = resp.json()
                    if check_outcomes and body["outcome"] != outcome:
                        failures += 1
                    acked.append((event, body))

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return failures


def check_log(path: Path, acked: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """The log verifies and holds every acknowledged decision, byte for byte."""
    with TransparencyLog.open(path) as log:
        key = log.verifier_key
        assert key is not None
        report = log.audit(load_verifier(key))
        assert report.ok, report.problems
        for event, body in acked:
            index = body["log_index"]
            assert index in log.find(event["id"])
            record = parse_record(log.leaf(index))
            assert record["decision"] == body["decision"]
            assert record["event"]["id"] == event["id"]


def test_sustained_concurrent_load_loses_nothing(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies")
    db = tmp_path / "log.db"
    args = ["-p", str(policies), "--log", str(db), "--key", str(key_file(tmp_path))]
    server = ServerProcess(args, tmp_path).start()
    try:
        acked: list[tuple[dict[str, Any], dict[str, Any]]] = []
        started = time.monotonic()
        failures = asyncio.run(load(server.url, "a", workers=24, rounds=25, acked=acked))
        elapsed = time.monotonic() - started
        assert failures == 0
        assert len(acked) == 24 * 25 * 5  # 3,000 decisions
        assert elapsed < 30
        metrics = httpx.get(server.url + "/metrics").text
        assert 'policyengine_decisions_total{outcome="deny"} 600.0' in metrics
        # SIGTERM: graceful (uvicorn re-raises the signal once shut down, as a shell expects)
        assert server.stop() in (0, -signal.SIGTERM)
    finally:
        server.kill()
    check_log(db, acked)
    lines = server.log_lines()  # every stderr line is a JSON object
    requests = [x for x in lines if x.get("event") == "http_request"]
    assert len(requests) >= 3000 and all(x["status"] == 200 for x in requests)
    assert any(x.get("event") == "stopped" for x in lines)
    assert MARKER not in server.stderr()


def test_kill_9_mid_load_then_restart_keeps_every_acknowledged_decision(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies")
    db = tmp_path / "log.db"
    args = ["-p", str(policies), "--log", str(db), "--key", str(key_file(tmp_path))]
    acked: list[tuple[dict[str, Any], dict[str, Any]]] = []
    sent: dict[str, dict[str, Any]] = {}
    server = ServerProcess(args, tmp_path).start()

    async def crash() -> int:
        loader = asyncio.create_task(
            load(server.url, "a", workers=16, rounds=1000, acked=acked, sent=sent, seconds=15)
        )
        while len(acked) < 400 and not loader.done():
            await asyncio.sleep(0.01)
        server.kill()  # SIGKILL while requests are in flight
        return await loader

    try:
        assert asyncio.run(crash()) == 0
    finally:
        server.kill()
    assert len(acked) >= 400
    check_log(db, acked)  # before any restart: nothing acknowledged was lost
    restarted = ServerProcess(args, tmp_path).start()
    try:
        check_log(db, acked)
        # requests in flight at the crash: retried, each is decided once
        answered = {e["id"] for e, _ in acked}
        in_flight = [e for i, e in sent.items() if i not in answered]
        assert in_flight
        with httpx.Client(base_url=restarted.url) as client:
            for e in in_flight:
                r = client.post("/v1/evaluate", json=e)
                assert r.status_code == 200, r.text
                again = client.post("/v1/evaluate", json=e).json()
                assert again["already_recorded"] is True
                assert again["decision"] == r.json()["decision"]
        # state survived the crash: every approval sent before it (acknowledged or retried
        # just now) counts, and nothing else does
        checked = 0
        for w in range(16):
            for r in range(1000):
                steps = [e for e, _ in story("a", w, r)]
                if steps[1]["id"] not in sent:
                    break
                twice = steps[3]["id"] in sent
                resp = httpx.post(restarted.url + "/v1/evaluate", json=deploy(f"mv-a-{w}-{r}"))
                assert resp.json()["outcome"] == ("allow" if twice else "deny")
                checked += 1
        assert checked >= 16
        more: list[tuple[dict[str, Any], dict[str, Any]]] = []
        failures = asyncio.run(load(restarted.url, "b", workers=8, rounds=1, acked=more))
        assert failures == 0 and len(more) == 8 * 5
        assert restarted.stop() in (0, -signal.SIGTERM)
    finally:
        restarted.kill()
    check_log(db, acked + more)
    with TransparencyLog.open(db) as log:
        report = replay(log)  # the decisions reproduce across the crash and restart
        assert report.ok and report.differing == 0
    started = [x for x in restarted.log_lines() if x.get("event") == "started"]
    assert started and started[0]["restored_decisions"] >= len(acked)


def test_reload_on_change_rejects_a_broken_bundle(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies")
    old, new = (pe.compile_sources({"gate.policy": t}).digest for t in (GATE, GATE_V2))
    with running(["-p", str(policies), "--reload-interval", "0.05"], tmp_path) as server:

        def digest() -> str:
            return str(httpx.get(server.url + "/v1/bundle").json()["digest"])

        assert digest() == old
        (policies / "gate.policy").write_text(GATE_V2)
        assert _until(lambda: digest() == new)
        r = httpx.post(server.url + "/v1/evaluate", json=registered("mv-r"))
        assert r.json()["bundle_digest"] == new
        (policies / "gate.policy").write_text(BROKEN)

        def failed() -> bool:
            text = httpx.get(server.url + "/metrics").text
            return 'policyengine_bundle_reloads_total{result="failure"} 1.0' in text

        assert _until(failed)
        assert digest() == new  # the old bundle keeps serving
        r = httpx.post(server.url + "/v1/evaluate", json=registered("mv-s"))
        assert r.status_code == 200 and r.json()["bundle_digest"] == new
    rejected = [x for x in server.log_lines() if x.get("result") == "failure"]
    assert len(rejected) == 1 and rejected[0]["level"] == "error"
    assert rejected[0]["bundle_digest"] == new
    assert any("gate.policy:" in d for d in rejected[0]["diagnostics"])
    # no log: said at start-up
    assert any(x.get("event") == "no_log" for x in server.log_lines())


def test_sighup_reloads_and_the_token_guards_writes(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies")
    new = pe.compile_sources({"gate.policy": GATE_V2}).digest
    env = {"POLICYENGINE_TOKEN": "tok-123"}
    with running(["-p", str(policies), "--reload-interval", "0"], tmp_path, env) as server:
        (policies / "gate.policy").write_text(GATE_V2)
        time.sleep(0.3)
        assert httpx.get(server.url + "/v1/bundle").json()["digest"] != new  # no polling
        server.signal(signal.SIGHUP)
        assert _until(lambda: httpx.get(server.url + "/v1/bundle").json()["digest"] == new)
        e = registered("mv-t")
        assert httpx.post(server.url + "/v1/evaluate", json=e).status_code == 401
        auth = {"authorization": "Bearer tok-123"}
        assert httpx.post(server.url + "/v1/evaluate", json=e, headers=auth).status_code == 200
    assert "tok-123" not in server.stderr()
    reloads = [x for x in server.log_lines() if x.get("event") == "bundle_reload"]
    assert [x["reason"] for x in reloads] == ["signal"]


def _until(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def _serve(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*serve_command(), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_errors_are_clean(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies")
    broken = write_policies(tmp_path / "broken", BROKEN)
    key_file(tmp_path)
    loose = tmp_path / "token"
    loose.write_text("t")
    loose.chmod(0o644)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        cases = [
            (["-p", str(broken)], "the policies do not compile"),
            (["-p", str(policies), "--log", str(tmp_path / "l.db")], "--log and --key go together"),
            (
                ["-p", str(policies), "--log", str(tmp_path / "l.db"), "--key", "nokey"],
                "no key file",
            ),
            (["-p", str(policies), "--token-file", str(loose)], "accessible by other users"),
            (["-p", str(policies), "--port", port], "cannot listen on 127.0.0.1:" + port),
            (["-p", str(policies), "--now", "yesterday"], "`--now` must be"),
        ]
        for args, message in cases:
            done = _serve(args, tmp_path)
            assert done.returncode == 2, (args, done.stderr)
            assert message in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr


def test_serve_help_lists_the_options() -> None:
    done = subprocess.run([*serve_command(), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for option in ("--policies", "--log", "--key", "--host", "--port", "--token-file",
                   "--max-body", "--reload-interval", "--now", "--fresh-state"):  # fmt: skip
        assert option in done.stdout
