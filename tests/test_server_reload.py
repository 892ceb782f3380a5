"""Bundle hot reload (atomic swap, rejected bundles, state kept) and state across restarts
(rebuilt from the log, so replay and the restarted server agree)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_server_support import (
    BROKEN,
    GATE,
    GATE_V2,
    app_client,
    approval,
    deploy,
    key_file,
    registered,
    write_policies,
)

import policyengine as pe
from policyengine.audit.replay import replay
from policyengine.log import TransparencyLog, parse_record
from policyengine.server import DecisionService, ServerSettings, create_app, restore_state


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def make(tmp_path: Path, **kw: Any) -> tuple[ServerSettings, Path]:
    folder = write_policies(tmp_path / "policies")
    kw.setdefault("reload_interval_s", 0)
    s = ServerSettings(
        policies=(str(folder),),
        log_path=str(tmp_path / "log.db"),
        key_path=str(key_file(tmp_path)),
        **kw,
    )
    return s, folder / "gate.policy"


def digest(text: str) -> str:
    return pe.compile_sources({"gate.policy": text}).digest


def test_a_good_bundle_swaps_in_and_state_survives_the_reload(tmp_path: Path) -> None:
    s, policy = make(tmp_path)
    app = create_app(s)
    service: DecisionService = app.state.service

    async def scenario() -> None:
        async with app_client(app) as c:
            for e in [
                registered("mv-1"),
                approval("mv-1", "b"),
                approval("mv-1", "c"),
                registered("mv-z"),
            ]:
                r = await c.post("/v1/evaluate", json=e)
                assert r.json()["bundle_digest"] == digest(GATE)
            policy.write_text(GATE_V2)
            assert await asyncio.to_thread(service.reload, "test")
            r = await c.post("/v1/evaluate", json=deploy("mv-1"))
            body = r.json()
            assert body["bundle_digest"] == digest(GATE_V2)
            assert body["decision"]["bundle_digest"] == digest(GATE_V2)
            assert body["outcome"] == "allow"  # approvals from before the reload count
            r = await c.post("/v1/evaluate", json=deploy("mv-z"))
            failed = r.json()["decision"]["results"][0]
            assert failed["message"] == "tox-model needs two approvals (v2)"
            info = (await c.get("/v1/bundle")).json()
            assert info["digest"] == digest(GATE_V2)
            assert info["last_reload"]["ok"] is True
            text = (await c.get("/metrics")).text
            assert 'policyengine_bundle_reloads_total{result="success"} 1.0' in text
            assert f'policyengine_bundle_info{{digest="{digest(GATE_V2)}"}} 1.0' in text
            assert digest(GATE) not in text.split("policyengine_bundle_info")[-1]

    run(scenario())
    # both bundles are stored beside the log, each published before its first decision
    log = TransparencyLog.open(tmp_path / "log.db")
    kinds = [parse_record(data)["kind"] for _, data in log.leaves()]
    assert kinds.count("bundle") == 2
    assert log.store.get_bundle(digest(GATE)) and log.store.get_bundle(digest(GATE_V2))
    assert replay(log).ok
    log.close()


def test_a_bundle_that_does_not_compile_is_rejected_and_the_old_one_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s, policy = make(tmp_path)
    app = create_app(s)
    service: DecisionService = app.state.service

    async def scenario() -> None:
        async with app_client(app) as c:
            policy.write_text(BROKEN)
            assert not await asyncio.to_thread(service.reload, "test")
            r = await c.post("/v1/evaluate", json=registered("mv-2"))
            assert r.status_code == 200 and r.json()["bundle_digest"] == digest(GATE)
            text = (await c.get("/metrics")).text
            assert 'policyengine_bundle_reloads_total{result="failure"} 1.0' in text
            assert "policyengine_bundle_last_reload_success 0.0" in text
            info = (await c.get("/v1/bundle")).json()
            assert info["digest"] == digest(GATE) and info["last_reload"]["ok"] is False
            assert any("gate.policy:" in d for d in info["last_reload"]["diagnostics"])
            assert (await c.get("/v1/ready")).status_code == 200
            # fixing the file recovers
            policy.write_text(GATE_V2)
            assert await asyncio.to_thread(service.reload, "test")
            assert "policyengine_bundle_last_reload_success 1.0" in (await c.get("/metrics")).text

    with caplog.at_level(logging.INFO, logger="policyengine.server"):
        run(scenario())
    rejected = [r for r in caplog.records if getattr(r, "fields", {}).get("result") == "failure"]
    assert len(rejected) == 1 and rejected[0].levelno == logging.ERROR
    fields: dict[str, Any] = getattr(rejected[0], "fields", {})
    assert fields["bundle_digest"] == digest(GATE)
    assert fields["diagnostics"] and all("gate.policy:" in d for d in fields["diagnostics"])
    assert "approvers" in " ".join(fields["diagnostics"])


def test_the_watcher_reloads_changed_files_by_itself(tmp_path: Path) -> None:
    s, policy = make(tmp_path, reload_interval_s=0.05)
    app = create_app(s)

    async def scenario() -> None:
        async with app_client(app) as c:
            policy.write_text(GATE_V2)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if (await c.get("/v1/bundle")).json()["digest"] == digest(GATE_V2):
                    break
                await asyncio.sleep(0.05)
            info = (await c.get("/v1/bundle")).json()
            assert info["digest"] == digest(GATE_V2)
            assert info["last_reload"]["reason"] == "change"

    run(scenario())


def test_every_decision_sees_the_old_or_the_new_bundle_never_a_mix(tmp_path: Path) -> None:
    """Batches decided while bundles are swapped back and forth: within each batch every
    decision names the one bundle the response names."""
    s, policy = make(tmp_path)
    app = create_app(s)
    service: DecisionService = app.state.service
    stop = threading.Event()
    swaps = 0

    def flip() -> None:
        nonlocal swaps
        texts = [GATE_V2, GATE]
        while not stop.is_set():
            policy.write_text(texts[swaps % 2])
            assert service.reload("test")
            swaps += 1

    async def scenario() -> list[dict[str, Any]]:
        async with app_client(app) as c:
            flipper = threading.Thread(target=flip)
            flipper.start()
            try:
                out = []
                for round_ in range(12):
                    batches = [
                        {"events": [registered(f"mv-{round_}-{i}-{k}") for k in range(8)]}
                        for i in range(6)
                    ]
                    rs = await asyncio.gather(
                        *(c.post("/v1/evaluate/batch", json=b) for b in batches)
                    )
                    out.extend(r.json() for r in rs)
            finally:
                stop.set()
                flipper.join()
            return out

    answers = run(scenario())
    assert swaps >= 2
    seen = set()
    for a in answers:
        names = {d["decision"]["bundle_digest"] for d in a["decisions"]}
        assert names == {a["bundle_digest"]}
        seen |= names
    assert seen == {digest(GATE), digest(GATE_V2)}
    log = TransparencyLog.open(tmp_path / "log.db")
    assert replay(log).ok
    log.close()


def _decide(s: ServerSettings, events: list[dict[str, Any]]) -> list[str]:
    async def scenario() -> list[str]:
        async with app_client(create_app(s)) as c:
            out = []
            for e in events:
                r = await c.post("/v1/evaluate", json=e)
                assert r.status_code == 200, r.text
                out.append(r.json()["outcome"])
            return out

    outcomes: list[str] = run(scenario())
    return outcomes


def _kinds(path: Path) -> list[str]:
    with TransparencyLog.open(path) as log:
        return [parse_record(data)["kind"] for _, data in log.leaves()]


def test_a_restarted_server_rebuilds_state_from_its_log(tmp_path: Path) -> None:
    s, _ = make(tmp_path)
    assert (
        _decide(s, [registered("mv-3"), approval("mv-3", "b"), approval("mv-3", "b2")])
        == ["allow"] * 3
    )
    _decide(s, [registered("mv-4"), approval("mv-4", "c")])
    assert _kinds(tmp_path / "log.db").count("session") == 1
    # a new process: the approvals recorded before still count
    assert _decide(s, [deploy("mv-3"), deploy("mv-4")]) == ["allow", "deny"]
    # it continued the session rather than starting an empty one, so replay agrees
    assert _kinds(tmp_path / "log.db").count("session") == 1
    with TransparencyLog.open(tmp_path / "log.db") as log:
        report = replay(log)
        assert report.ok and report.reproduced == 7
        restored = restore_state(log)
        assert restored.decisions == 7 and restored.session_index == 1
        mv3 = restored.state.get("model_version", "mv-3")
        assert mv3 is not None and len(mv3["approvals"]) == 2


def test_fresh_state_starts_a_new_session(tmp_path: Path) -> None:
    s, _ = make(tmp_path)
    _decide(s, [registered("mv-5"), approval("mv-5", "b"), approval("mv-5", "c")])
    fresh = ServerSettings(**{**_fields(s), "restore_state": False})
    assert _decide(fresh, [deploy("mv-5")]) == ["deny"]  # nothing remembered
    assert _kinds(tmp_path / "log.db").count("session") == 2
    with TransparencyLog.open(tmp_path / "log.db") as log:
        assert replay(log).ok
        assert restore_state(log).decisions == 1  # only the fresh session's decision


def _fields(s: ServerSettings) -> dict[str, Any]:
    return {name: getattr(s, name) for name in s.__dataclass_fields__}


def test_restore_ignores_denied_events_and_unreadable_records(tmp_path: Path) -> None:
    """A denied approval never counted live, so it does not count after a restart either."""
    folder = write_policies(tmp_path / "policies")
    (folder / "sign.policy").write_text(
        "package test.sign\n"
        "rule no_self_signing {\n"
        "  layer oversight\n  enforce hard\n  on approval.recorded\n"
        "  require event.signer != subject.created_by\n}\n"
    )
    s = ServerSettings(
        policies=(str(folder),),
        log_path=str(tmp_path / "log.db"),
        key_path=str(key_file(tmp_path)),
        reload_interval_s=0,
    )
    got = _decide(
        s, [registered("mv-6", author="ann"), approval("mv-6", "ann"), approval("mv-6", "b")]
    )
    assert got == ["allow", "deny", "allow"]
    with TransparencyLog.open(tmp_path / "log.db") as log:
        log.append([json.dumps({"v": 1, "kind": "decision", "time": "x"}).encode()])
        restored = restore_state(log)
    approvals = restored.state.get("model_version", "mv-6")
    assert approvals is not None and [a["signer"] for a in approvals["approvals"]] == ["b"]
    assert restored.skipped == 1
