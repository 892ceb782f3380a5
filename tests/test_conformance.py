"""Run the data-driven conformance suite in spec/conformance/ (format: its README.md).

Each case compiles a policy with `compile_sources` and either checks the
diagnostics it reports or feeds events through an `Engine` (seeded state, fixed
or event-time clock) and checks each decision: outcome, per-rule status,
messages, requirement results and, optionally, part of the canonical JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from policyengine import (
    CompileError,
    Decision,
    Engine,
    MemoryStateStore,
    RuleResult,
    compile_sources,
    event_time,
    fixed,
)
from policyengine.events import EVENT_TYPES
from policyengine.events.catalog import entity_from_attributes

SUITE = Path(__file__).resolve().parent.parent / "spec" / "conformance"
DEFAULTS_FILE = "_defaults.json"
DEFAULTS: dict[str, Any] = json.loads((SUITE / DEFAULTS_FILE).read_text("utf-8"))

CASE_KEYS = {
    "name", "doc", "policy", "expr", "consts", "state", "events", "event", "now", "expect",
    "expect_errors", "status", "error_contains", "message_contains", "values", "xfail",
}  # fmt: skip
STATUSES = {"pass", "fail", "not_applicable", "error", "not_triggered"}


# ---------------------------------------------------------------- loading


def _cases() -> Iterator[Any]:
    for path in sorted(SUITE.glob("*.json")):
        if path.name == DEFAULTS_FILE:
            continue
        cases = json.loads(path.read_text("utf-8"))
        assert isinstance(cases, list), f"{path.name}: a conformance file is a list of cases"
        seen: set[str] = set()
        for case in cases:
            name = case.get("name", "")
            assert name and name not in seen, f"{path.name}: missing or repeated name `{name}`"
            seen.add(name)
            marks = []
            if "xfail" in case:
                marks.append(pytest.mark.xfail(reason=case["xfail"], strict=True))
            yield pytest.param(case, id=f"{path.stem}::{name}", marks=marks)


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "\n".join(value) + "\n"


def policy_sources(case: Mapping[str, Any]) -> dict[str, str]:
    """The case's policy files: `policy` (text, lines or {path: text|lines}) or the
    `expr` shorthand, which is wrapped in the template documented in the README."""
    if "expr" in case:
        event_type = case.get("event", DEFAULTS["event"]).get("type", DEFAULTS["event"]["type"])
        lines = [
            "package conformance",
            *case.get("consts", []),
            "rule r {",
            "  layer audit",
            f"  on {event_type}",
            f"  require {case['expr']}",
            "}",
        ]
        return {"main.policy": _text(lines)}
    policy = case["policy"]
    if isinstance(policy, dict):
        return {path: _text(text) for path, text in policy.items()}
    return {"main.policy": _text(policy)}


def complete_event(raw: Mapping[str, Any], n: int) -> dict[str, Any]:
    """Fill the envelope fields a case may leave out (see the README)."""
    event = dict(raw)
    event.setdefault("id", f"evt-{n}")
    event.setdefault("time", DEFAULTS["time"])
    actor = event.get("actor", DEFAULTS["actor"])
    event["actor"] = {"id": actor} if isinstance(actor, str) else actor
    subject = event.get("subject", DEFAULTS["subject"])
    if isinstance(subject, str):
        spec = EVENT_TYPES.get(event["type"])
        subject = {"kind": spec.subject_kind if spec else "", "id": subject}
    event["subject"] = subject
    event.setdefault("attributes", {})
    return event


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- checks


def check_errors(err: CompileError, expected: list[Mapping[str, Any]]) -> None:
    got: list[dict[str, Any]] = [d.to_dict() for d in err.diagnostics]
    shown = err.render()
    assert len(got) == len(expected), f"expected {len(expected)} diagnostics, got:\n{shown}"
    for want, d in zip(expected, got, strict=True):
        assert d["code"] == want["code"], shown
        for key in ("file", "line", "column", "end_line", "end_column", "message", "hint"):
            if key in want:
                assert d[key] == want[key], f"{key}: {d[key]!r} != {want[key]!r}\n{shown}"
        if "message_contains" in want:
            assert want["message_contains"] in d["message"], shown
        if "hint_contains" in want:
            assert want["hint_contains"] in (d["hint"] or ""), shown


def _subset(want: Any, got: Any, where: str = "decision") -> None:
    """Every key/value of `want` appears in `got` (lists compare item by item)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for k, v in want.items():
            assert k in got, f"{where}: missing `{k}` in {got!r}"
            _subset(v, got[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            _subset(w, g, f"{where}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


def check_requirements(result: RuleResult, want: list[Any], where: str) -> None:
    got = [r.to_dict() for r in result.requirements]
    assert len(got) == len(want), f"{where}: requirements {got}"
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        if isinstance(w, str):
            w = {"status": w}
        assert g["status"] == w["status"], f"{where}: requirement {i + 1}: {g}"
        if "values" in w:
            values = {v["expr"]: v["value"] for v in g["values"]}
            _subset(w["values"], values, f"{where}: requirement {i + 1} values")
        if "message" in w:
            assert g.get("message") == w["message"], f"{where}: requirement {i + 1}: {g}"
        if "error_contains" in w:
            assert w["error_contains"] in g.get("error", ""), f"{where}: requirement {i + 1}: {g}"


def check_rule(decision: Decision, rule: str, want: str | Mapping[str, Any]) -> None:
    spec: Mapping[str, Any] = {"status": want} if isinstance(want, str) else want
    assert spec["status"] in STATUSES, f"bad expected status {spec['status']!r}"
    where = f"{decision.event_id}: rule `{rule}`"
    result = decision.result(rule)
    if spec["status"] == "not_triggered":
        assert result is None, f"{where} was evaluated ({result.status if result else ''})"
        return
    assert result is not None, (
        f"{where} was not evaluated; got {[r.rule for r in decision.results]}"
    )
    assert result.status == spec["status"], f"{where}: `{result.status}`: {result.message}"
    message = result.message or ""
    if "message" in spec:
        assert result.message == spec["message"], f"{where}: message {result.message!r}"
    for part in _as_list(spec.get("message_contains")):
        assert part in message, f"{where}: message {message!r} lacks {part!r}"
    if "requirements" in spec:
        check_requirements(result, spec["requirements"], where)
    if "overridden" in spec:
        assert (result.override is not None) == spec["overridden"], f"{where}: {result.override}"
    if "override_role" in spec:
        assert result.override is not None and result.override["role"] == spec["override_role"]


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def check_decision(decision: Decision, want: Mapping[str, Any]) -> None:
    if "outcome" in want:
        assert decision.outcome.value == want["outcome"], (
            f"{decision.event_id}: outcome `{decision.outcome.value}`, expected "
            f"`{want['outcome']}`; results: "
            + "; ".join(f"{r.rule} {r.status}: {r.message}" for r in decision.results)
        )
    for rule, status in want.get("rules", {}).items():
        check_rule(decision, rule, status)
    if "order" in want:
        assert [r.rule for r in decision.results] == want["order"]
    if "decision" in want:
        _subset(want["decision"], json.loads(decision.to_json()))


# ---------------------------------------------------------------- the suite


def run_case(case: Mapping[str, Any]) -> None:
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"unknown keys {sorted(unknown)}"
    sources = policy_sources(case)
    if "expect_errors" in case:
        with pytest.raises(CompileError) as info:
            compile_sources(sources)
        check_errors(info.value, case["expect_errors"])
        return
    try:
        bundle = compile_sources(sources)
    except CompileError as err:
        pytest.fail(f"the policy does not compile:\n{err.render()}")
    store = MemoryStateStore()
    shorthand = "expr" in case
    state = case.get("state", DEFAULTS["state"] if shorthand else [])
    for entity in state:
        kind, id_ = entity["kind"], entity["id"]
        store.put(kind, id_, entity_from_attributes(kind, id_, entity.get("attributes", {})))
    clock = fixed(_timestamp(case["now"])) if "now" in case else event_time
    engine = Engine(bundle, store, clock)
    if shorthand:
        decision = engine.evaluate(complete_event(case.get("event", DEFAULTS["event"]), 1))
        want: dict[str, Any] = {"status": case.get("status", "pass")}
        for key in ("message_contains",):
            if key in case:
                want[key] = case[key]
        req: dict[str, Any] = {"status": want["status"]}
        if "values" in case:
            req["values"] = case["values"]
        if "error_contains" in case:
            req["error_contains"] = case["error_contains"]
        want["requirements"] = [req]
        check_rule(decision, "conformance.r", want)
        return
    events = case["events"]
    expect = case["expect"]
    assert len(events) == len(expect), "`expect` needs one entry per event"
    for n, (raw, want_decision) in enumerate(zip(events, expect, strict=True), start=1):
        decision = engine.evaluate(complete_event(raw, n))
        check_decision(decision, want_decision)


@pytest.mark.parametrize("case", list(_cases()))
def test_conformance(case: Mapping[str, Any]) -> None:
    run_case(case)


def test_suite_is_large_and_covers_every_diagnostic_it_claims() -> None:
    """The suite should stay broad: at least 150 cases, and compile-error cases for
    most diagnostic codes (file-level codes need real files, see test_diagnostics)."""
    cases = [p.values[0] for p in _cases()]
    assert len(cases) >= 150
    codes = {e["code"] for c in cases for e in c.get("expect_errors", [])}
    assert len(codes) >= 20, sorted(codes)
