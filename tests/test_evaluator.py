"""Evaluator semantics not covered by the differential tests: outcome folding, overrides,
fail-closed errors, guards, messages, explanation values, rule dependencies and the
engine's judge-then-commit order. Expectations come from spec/language.md (§6, §9,
§13–§16, §18); where a rule is easy to restate, the reference interpreter restates it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reference_interpreter as ref

from policyengine import Engine, EventError, Outcome, compile_sources, parse_event
from policyengine.compiler.bundle import Bundle
from policyengine.events import MemoryStateStore
from policyengine.events.catalog import entity_from_attributes
from policyengine.runtime.decision import Decision, RuleResult

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def event(
    type_: str = "model.deploy_requested",
    subject: str = "mv-1",
    *,
    at: datetime = T,
    actor: str = "u1",
    roles: tuple[str, ...] = (),
    id: str = "evt-1",
    **attributes: Any,
) -> dict[str, Any]:
    kinds = {"dataset": "dataset", "approval": "model_version", "override": "model_version"}
    kind = kinds.get(type_.split(".")[0], "model_version")
    if type_ == "model.deploy_requested" and "target" not in attributes:
        attributes["target"] = {"environment": "production"}
    return parse_event(
        {
            "id": id,
            "type": type_,
            "time": iso(at),
            "actor": {"id": actor, "roles": list(roles)},
            "subject": {"kind": kind, "id": subject},
            "attributes": attributes,
        }
    )


def policy(body: str, package: str = "t") -> Bundle:
    return compile_sources({f"{package}.policy": f"package {package}\n{body}"})


def model(store: MemoryStateStore | None = None, **fields: Any) -> MemoryStateStore:
    store = store if store is not None else MemoryStateStore()
    store.put("model_version", "mv-1", entity_from_attributes("model_version", "mv-1", fields))
    return store


def result(d: Decision, rule: str) -> RuleResult:
    r = d.result(rule)
    assert r is not None, f"{rule} not in {[x.rule for x in d.results]}"
    return r


# A rule whose status is chosen by the event: labels[name] = pass | fail | error | na.
def controlled(name: str, enforce: str, extra: str = "") -> str:
    return f"""
rule {name} {{
  layer audit
  enforce {enforce}
  {extra}
  on model.deploy_requested
  when event.labels["{name}"] != "na"
  require (event.labels["{name}"] != "error" or event.labels["absent"] == "x")
      and event.labels["{name}"] == "pass"
}}
"""


def override(rule: str = "t.s", role: str = "qa_lead", **kw: Any) -> dict[str, Any]:
    return {"rule": rule, "signer": "lead", "role": role, "justification": "CAPA-17", **kw}


STATUSES = ("pass", "fail", "error", "na")

# ---------------------------------------------------------------- outcome folding


def test_outcome_folding_matches_reference_for_every_combination() -> None:
    bundle = policy(
        controlled("h", "hard")
        + controlled("s", "soft", 'override by "qa_lead"')
        + controlled("a", "advisory")
    )
    plain = model(name="tox")
    overridden = model(name="tox", overrides=[override(time=iso(T - timedelta(days=1)))])
    seen = set()
    for h, s, a in itertools.product(STATUSES, repeat=3):
        for store, has_override in ((plain, False), (overridden, True)):
            d = bundle.evaluate(event(labels={"h": h, "s": s, "a": a}), store)
            got = {r.rule: r.status for r in d.results}
            want = {
                f"t.{k}": "not_applicable" if v == "na" else v
                for k, v in (("h", h), ("s", s), ("a", a))
            }
            assert got == want
            soft = result(d, "t.s")
            # An override is looked for on a soft *failure* only, never on an error.
            assert (soft.override is not None) == (has_override and s == "fail")
            expected = ref.decision_outcome(
                (r.status, r.enforcement, r.override is not None) for r in d.results
            )
            assert d.outcome.value == expected, (h, s, a, has_override)
            seen.add(expected)
    assert seen == {o.value for o in Outcome}


def test_errors_fail_closed_per_enforcement() -> None:
    bundle = policy(
        controlled("h", "hard")
        + controlled("s", "soft", 'override by "qa_lead"')
        + controlled("a", "advisory")
    )
    store = model(overrides=[override(time=iso(T - timedelta(days=1)))])
    ok = {"h": "pass", "s": "pass", "a": "pass"}

    def outcome(**labels: str) -> Outcome:
        return bundle.evaluate(event(labels={**ok, **labels}), store).outcome

    assert outcome() is Outcome.ALLOW
    assert outcome(h="error") is Outcome.DENY
    # A valid override exists, but it never covers an error: fix the data (spec §9, §14).
    assert outcome(s="error") is Outcome.REVIEW_REQUIRED
    assert outcome(s="fail") is Outcome.ALLOW_WITH_WARNINGS
    assert outcome(a="error") is Outcome.ALLOW_WITH_WARNINGS
    assert outcome(a="error", s="error", h="fail") is Outcome.DENY


def test_no_rules_means_allow() -> None:
    bundle = policy(controlled("h", "hard"))
    d = bundle.evaluate(event("dataset.accessed", "ds-1", purpose="qc"), MemoryStateStore())
    assert d.results == () and d.outcome is Outcome.ALLOW


# ---------------------------------------------------------------- overrides

SOFT = """
rule s {
  layer oversight
  enforce soft
  override by "qa_lead", "qa"
  on model.deploy_requested
  require event.target.environment == "staging"
}
rule h {
  layer oversight
  on model.deploy_requested
  require event.target.environment == "staging"
}
"""

_DAY = timedelta(days=1)
_SEC = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("overrides", "valid", "why"),
    [
        ([override(time=iso(T - _DAY))], 0, "in force, no expiry"),
        ([override(role="qa", time=iso(T - _DAY))], 0, "any role of `override by`"),
        ([override(role="mlops", time=iso(T - _DAY))], None, "role not allowed"),
        ([override(rule="s", time=iso(T - _DAY))], None, "unqualified rule id"),
        ([override(rule="u.s", time=iso(T - _DAY))], None, "another package's rule"),
        ([override(time=iso(T))], 0, "granted at the event's time"),
        ([override(time=iso(T + _SEC))], None, "granted after the event"),
        ([override(time=iso(T - _DAY), expires_at=iso(T + _SEC))], 0, "expires later"),
        ([override(time=iso(T - _DAY), expires_at=iso(T))], None, "expires at the event"),
        ([override(time=iso(T - _DAY), expires_at=iso(T - _SEC))], None, "expired"),
        (
            [
                override(time=iso(T - _DAY), expires_at=iso(T - _SEC)),
                override(role="qa", time=iso(T - _DAY)),
            ],
            1,
            "first one expired, second in force",
        ),
        (
            [override(role="qa", time=iso(T - 2 * _DAY)), override(time=iso(T - _DAY))],
            0,
            "two in force: the first is reported",
        ),
    ],
)
def test_override_validity(overrides: list[dict[str, Any]], valid: int | None, why: str) -> None:
    bundle = policy(SOFT)
    store = model(overrides=overrides)
    # Judged at the event's time, whatever the clock says.
    for now in (T, T + 365 * _DAY, T - 365 * _DAY):
        d = bundle.evaluate(event(), store, now)
        soft = result(d, "t.s")
        assert soft.status == "fail"
        state = store.get("model_version", "mv-1")
        assert state is not None
        expected = ref.active_override(state, "t.s", ("qa_lead", "qa"), T)
        assert (expected is None) == (valid is None), why
        if valid is None:
            assert soft.override is None, why
        else:
            assert expected is state["overrides"][valid]
            assert soft.override is not None
            assert soft.override["role"] == overrides[valid]["role"], why
            assert soft.override["time"] == state["overrides"][valid]["time"]
            assert set(soft.to_dict()["override"]) == {
                "signer",
                "role",
                "justification",
                "time",
                "expires_at",
            }
        # A hard rule is never overridden, even by an override naming it.
        assert result(d, "t.h").override is None
        assert d.outcome is Outcome.DENY


def test_override_never_applies_to_a_hard_rule_named_by_it() -> None:
    bundle = policy(SOFT)
    store = model(overrides=[override(rule="t.h", time=iso(T - _DAY))])
    d = bundle.evaluate(event(), store)
    assert result(d, "t.h").override is None
    assert d.outcome is Outcome.DENY


REFUSING = """
rule s {
  layer oversight
  enforce soft
  override by "qa_lead"
  on model.deploy_requested
  require event.target.environment == "staging"
}
rule overrides_expire {
  layer audit
  on override.recorded
  require has(event.expires_at)
}
"""


def test_overrides_through_the_engine_and_refused_ones_leave_no_trace() -> None:
    engine = Engine(policy(REFUSING), model(name="tox"))
    forever = event(
        "override.recorded",
        at=T - _DAY,
        id="o1",
        rule="t.s",
        role="qa_lead",
        justification="CAPA-17",
    )
    assert engine.evaluate(forever, validated=True).outcome is Outcome.DENY  # refused
    state = engine.state.get("model_version", "mv-1")
    assert state is not None and state["overrides"] == []
    d = engine.evaluate(event(id="d1"), validated=True)
    assert result(d, "t.s").override is None
    assert d.outcome is Outcome.REVIEW_REQUIRED
    limited = event(
        "override.recorded",
        at=T - _DAY,
        id="o2",
        rule="t.s",
        role="qa_lead",
        justification="CAPA-17",
        expires_at=iso(T + _DAY),
    )
    assert engine.evaluate(limited, validated=True).outcome is Outcome.ALLOW
    d = engine.evaluate(event(id="d2"), validated=True)
    soft = result(d, "t.s")
    assert soft.status == "fail" and soft.override is not None
    assert soft.override["signer"] == "u1"  # the override event's actor signs it
    assert d.outcome is Outcome.ALLOW_WITH_WARNINGS
    later = engine.evaluate(event(id="d3", at=T + 2 * _DAY), validated=True)
    assert later.outcome is Outcome.REVIEW_REQUIRED  # expired


# ---------------------------------------------------------------- guards


def test_guard_false_is_not_applicable_and_evaluates_nothing() -> None:
    bundle = policy("""
rule r {
  layer audit
  on model.deploy_requested
  when event.target.environment == "staging"
  require event.labels["absent"] == "x"
  message "never {subject.name}"
}
""")
    d = bundle.evaluate(event(), model())
    r = result(d, "t.r")
    assert (r.status, r.message, r.requirements) == ("not_applicable", None, ())
    assert d.outcome is Outcome.ALLOW


@pytest.mark.parametrize(
    ("guard", "reason"),
    [
        ('event.labels["absent"] == "x"', "is missing"),
        ('subject.training_run.name == "x"', "is null"),
        ('["a", 1][0]', "must be a boolean"),
    ],
)
def test_guard_errors_fail_closed(guard: str, reason: str) -> None:
    bundle = policy(f"""
rule r {{
  layer audit
  on model.deploy_requested
  when {guard}
  require true
}}
""")
    d = bundle.evaluate(event(), model(name="tox"))
    r = result(d, "t.r")
    assert r.status == "error"
    assert r.requirements == ()
    assert r.message is not None
    assert "could not be evaluated" in r.message or "must be a boolean" in r.message
    assert reason in r.message
    assert d.outcome is Outcome.DENY


def test_guard_error_message_uses_the_template() -> None:
    bundle = policy("""
rule r {
  layer audit
  on model.deploy_requested
  when event.labels["absent"] == "x"
  require true
  message "deploy of {subject.name} blocked"
}
""")
    r = result(bundle.evaluate(event(), model(name="tox")), "t.r")
    assert r.message is not None
    assert r.message.startswith("deploy of tox blocked (could not be evaluated: ")


# ---------------------------------------------------------------- messages

MESSAGES = """
const K = "absent"
const QA = "qa"
const S = {"b", "a"}

rule templated {
  layer audit
  on model.deploy_requested
  require event.target.environment == "staging"
  message "{subject.name} v{subject.version}: {subject.labels[K]}; {{literal}} {now - 49h} {1.0}"
}

rule else_text {
  layer audit
  on model.deploy_requested
  require true else "not shown: passed"
  require event.target.environment == "staging" else "needs staging"
  require event.target.environment == "dev" else "needs dev"
}

rule listed {
  layer audit
  on model.deploy_requested
  require event.target.environment == "staging"
  require  count(a in subject.approvals)   >= 2
  require true
}

rule erroring {
  layer audit
  on model.deploy_requested
  require event.target.environment == "staging"
  require subject.labels[K] == QA
  message "{subject.name} cannot deploy"
}

rule values {
  layer audit
  on model.deploy_requested
  require false
  message "{[3, 1]} {S} {{S}} {1.5} {2.0} {null} {true} {subject.created_at} {2w + 1d + 90m}"
}
"""


@pytest.fixture(scope="module")
def messages() -> Decision:
    store = model(name="tox", created_at="2026-02-01T00:00:00Z")
    return policy(MESSAGES).evaluate(event(), store)


def test_template_shows_missing_values_instead_of_hiding_the_message(messages: Decision) -> None:
    r = result(messages, "t.templated")
    assert r.status == "fail"
    assert r.message is not None
    assert r.message.startswith("tox vnull: <")
    assert "is missing>; {literal} 2026-02-27T11:00:00Z 1" in r.message


def test_message_falls_back_to_else_text_then_to_the_failing_requirements(
    messages: Decision,
) -> None:
    r = result(messages, "t.else_text")
    assert r.message == "needs staging"
    assert [q.to_dict().get("message") for q in r.requirements] == [
        None,
        "needs staging",
        "needs dev",
    ]
    listed = result(messages, "t.listed")
    assert listed.message == (
        'requirement not met: event.target.environment == "staging"; '
        "count(a in subject.approvals) >= 2"
    )


def test_error_message_combines_template_and_reason(messages: Decision) -> None:
    r = result(messages, "t.erroring")
    assert r.status == "error"
    assert r.message is not None
    assert r.message.startswith("tox cannot deploy (could not be evaluated: ")
    assert "is missing" in r.message
    statuses = [q.status for q in r.requirements]
    assert statuses == ["fail", "error"]  # every requirement is evaluated; error outranks fail
    assert r.requirements[1].error is not None and r.requirements[0].error is None


def test_template_values_use_the_language_syntax(messages: Decision) -> None:
    r = result(messages, "t.values")
    assert r.message == "[3, 1] [a, b] {S} 1.5 2 null true 2026-02-01T00:00:00Z 15d1h30m"


def test_passing_and_not_applicable_rules_carry_no_message() -> None:
    bundle = policy(
        'rule r {\n layer audit\n on model.deploy_requested\n require true\n message "never"\n}\n'
    )
    r = result(bundle.evaluate(event(), MemoryStateStore()), "t.r")
    assert (r.status, r.message) == ("pass", None)


# ---------------------------------------------------------------- explanation values

EXPLAIN = """
const LIMIT = 2
const ROLES = {"zeta", "qa", "alpha"}

rule cmp {
  layer audit
  on model.deploy_requested
  require count(a in subject.approvals) >= LIMIT
}

rule both {
  layer audit
  on model.deploy_requested
  require subject.name == event.target.environment
}

rule conj {
  layer audit
  on model.deploy_requested
  require event.target.environment == "production" and count(a in subject.approvals) >= 2
    and subject.name == "never reached"
}

rule disj {
  layer audit
  on model.deploy_requested
  require event.target.environment == "staging" or subject.name == "tox" or 1 / 0 > 1
}

rule all_ {
  layer audit
  on model.deploy_requested
  require all(a in subject.approvals: a.role == "qa")
}

rule any_ {
  layer audit
  on model.deploy_requested
  require any(r in ROLES: r in event.actor.roles)
}

rule none_ {
  layer audit
  on model.deploy_requested
  require none(r in ROLES where r != "zeta": r in event.actor.roles)
}

rule all_true {
  layer audit
  on model.deploy_requested
  require all(r in ROLES: len(r) > 1)
}
"""


def _approval(signer: str, role: str) -> dict[str, Any]:
    return {"signer": signer, "role": role, "meaning": "approved", "time": "2026-02-01T00:00:00Z"}


@pytest.fixture(scope="module")
def explained() -> Decision:
    store = model(
        name="tox",
        approvals=[_approval("u2", "qa"), _approval("u3", "mlops"), _approval("u4", "dev")],
    )
    return policy(EXPLAIN).evaluate(event(roles=("zeta", "qa")), store)


def values(d: Decision, rule: str) -> list[tuple[str, Any]]:
    (req,) = result(d, rule).requirements
    return [(v["expr"], v["value"]) for v in req.to_dict()["values"]]


def test_comparison_values_omit_literals_and_constants(explained: Decision) -> None:
    assert values(explained, "t.cmp") == [("count(a in subject.approvals)", 3)]
    assert values(explained, "t.both") == [
        ("subject.name", "tox"),
        ("event.target.environment", "production"),
    ]


def test_and_or_report_operands_up_to_the_deciding_one(explained: Decision) -> None:
    assert result(explained, "t.conj").status == "fail"
    assert values(explained, "t.conj") == [
        ("event.target.environment", "production"),
        ("count(a in subject.approvals)", 3),
        ("subject.name", "tox"),
    ]
    assert result(explained, "t.disj").status == "pass"  # 1 / 0 is never evaluated
    assert values(explained, "t.disj") == [
        ("event.target.environment", "production"),
        ("subject.name", "tox"),
    ]


# The signature fields every approval record carries when nobody signed it.
UNSIGNED = {
    "record_digest": None,
    "review": None,
    "signature": None,
    "signature_status": "unsigned",
    "signature_problem": None,
}


def test_quantifier_witnesses(explained: Decision) -> None:
    first_bad = _approval("u3", "mlops")
    first_bad["time"] = "2026-02-01T00:00:00Z"
    assert values(explained, "t.all_") == [
        ('all(a in subject.approvals: a.role == "qa")', False),
        ("a", {**first_bad, "comment": None, "signer_name": None, **UNSIGNED}),
    ]
    # Sets iterate sorted: "alpha" is not held, "qa" is the first that is.
    assert values(explained, "t.any_") == [
        ("any(r in ROLES: r in event.actor.roles)", True),
        ("r", "qa"),
    ]
    assert values(explained, "t.none_") == [
        ('none(r in ROLES where r != "zeta": r in event.actor.roles)', False),
        ("r", "qa"),
    ]
    assert values(explained, "t.all_true") == [("all(r in ROLES: len(r) > 1)", True)]


# ---------------------------------------------------------------- rule dependencies

DEPENDENT = (
    controlled("z_base", "advisory")
    + """
rule a_passed {
  layer audit
  enforce advisory
  on model.deploy_requested
  require passed(z_base)
}
rule b_failed {
  layer audit
  enforce advisory
  on model.deploy_requested
  require failed(z_base)
}
rule c_outcome {
  layer audit
  enforce advisory
  on model.deploy_requested
  require outcome(z_base) == event.labels["want"]
}
rule d_elsewhere {
  layer audit
  on model.deployed
  require false
}
rule e_untriggered {
  layer audit
  enforce advisory
  on model.deploy_requested
  require not passed(d_elsewhere) and not failed(d_elsewhere)
    and outcome(d_elsewhere) == "not_applicable"
}
rule f_guarded {
  layer audit
  enforce advisory
  on model.deploy_requested
  when failed(z_base)
  require false
}
"""
)


@pytest.mark.parametrize("base", STATUSES)
def test_passed_failed_outcome_read_the_same_event(base: str) -> None:
    bundle = policy(DEPENDENT)
    status = "not_applicable" if base == "na" else base
    d = bundle.evaluate(event(labels={"z_base": base, "want": status}), MemoryStateStore())
    order = [r.rule for r in d.results]
    assert order.index("t.z_base") < min(
        order.index(f"t.{n}") for n in ("a_passed", "b_failed", "c_outcome", "f_guarded")
    )
    got = {r.rule.split(".")[1]: r.status for r in d.results}
    assert got["z_base"] == status
    assert got["a_passed"] == ("pass" if status == "pass" else "fail")
    assert got["b_failed"] == ("pass" if status in ("fail", "error") else "fail")
    assert got["c_outcome"] == "pass"
    assert got["e_untriggered"] == "pass"
    assert got["f_guarded"] == ("fail" if status in ("fail", "error") else "not_applicable")
    assert "t.d_elsewhere" not in got


# ---------------------------------------------------------------- the engine

STATEFUL = """
rule sees_own_approval {
  layer oversight
  enforce advisory
  on approval.recorded
  require count(a in subject.approvals where a.signer == event.signer) >= 1
}
rule no_self_approval {
  layer oversight
  on approval.recorded
  require event.signer != subject.created_by
}
rule registered_sees_itself {
  layer audit
  on model.registered
  require subject.created_by == event.actor.id and subject.stage == "none"
}
"""


def _approve(signer: str, n: int) -> dict[str, Any]:
    return event(
        "approval.recorded",
        at=T + n * _SEC,
        id=f"a{n}",
        actor=signer,
        signer=signer,
        role="qa",
        meaning="approved",
    )


def test_engine_judges_the_state_the_event_leaves_then_commits_unless_denied() -> None:
    engine = Engine(policy(STATEFUL))
    reg = engine.evaluate(
        event("model.registered", at=T, id="r", actor="author", name="tox", version="1"),
        validated=True,
    )
    assert result(reg, "t.registered_sees_itself").status == "pass"
    ok = engine.evaluate(_approve("u2", 1), validated=True)
    assert result(ok, "t.sees_own_approval").status == "pass"
    assert ok.outcome is Outcome.ALLOW
    denied = engine.evaluate(_approve("author", 2), validated=True)
    assert result(denied, "t.sees_own_approval").status == "pass"  # judged with it...
    assert denied.outcome is Outcome.DENY
    state = engine.state.get("model_version", "mv-1")
    assert state is not None
    assert [a["signer"] for a in state["approvals"]] == ["u2"]  # ...but never committed
    assert isinstance(engine.state, MemoryStateStore)
    before = dict(engine.state.items())
    engine.evaluate(event(id="req"), validated=True)  # a request changes nothing
    assert dict(engine.state.items()) == before


def test_bundle_evaluate_never_writes_state() -> None:
    bundle = policy(STATEFUL)
    store = MemoryStateStore()
    bundle.evaluate(event("model.registered", id="r", name="tox", version="1"), store)
    bundle.evaluate_batch([_approve("u2", 1), _approve("u3", 2)], store)
    assert len(store) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "model.deployd"},
        {"time": "2026-03-01T12:00:00"},
        {"subject": {"kind": "dataset", "id": "mv-1"}},
        {"attributes": {"signer": "u2", "role": "qa"}},
        {"attributes": {"signer": "u2", "role": "qa", "meaning": "approved", "extra": 1}},
        {"actor": {"id": ""}},
    ],
)
def test_invalid_events_raise_without_touching_state(bad: dict[str, Any]) -> None:
    engine = Engine(policy(STATEFUL))
    engine.evaluate(
        event("model.registered", id="r", actor="author", name="tox", version="1"), validated=True
    )
    good = {
        "id": "a9",
        "type": "approval.recorded",
        "time": "2026-03-01T12:00:00Z",
        "actor": {"id": "u2"},
        "subject": {"kind": "model_version", "id": "mv-1"},
        "attributes": {"signer": "u2", "role": "qa", "meaning": "approved"},
    }
    raw = {**good, **bad}
    assert isinstance(engine.state, MemoryStateStore)
    before = dict(engine.state.items())
    with pytest.raises(EventError):
        engine.evaluate(raw)
    with pytest.raises(EventError) as info:
        engine.evaluate_batch([good, raw])
    assert info.value.line == 2  # reported at its position; the good event is not applied
    assert dict(engine.state.items()) == before
    out = list(engine.evaluate_many([raw, good]))
    assert isinstance(out[0], EventError) and isinstance(out[1], Decision)
    state = engine.state.get("model_version", "mv-1")
    assert state is not None and [a["signer"] for a in state["approvals"]] == ["u2"]


REVIEWED = """
rule two {
  layer oversight
  review by "qa", "domain_expert" within 72h
  on model.deploy_requested
  require count(a in subject.approvals where a.meaning == "approved") >= 2
}
rule intended {
  layer oversight
  review by "qa" within 1d
  on model.deploy_requested
  require len(subject.intended_use) > 0
}
"""


def test_a_failing_rule_with_review_by_waits_for_review_and_names_the_deadline() -> None:
    d = policy(REVIEWED).evaluate(event(), model(intended_use="screening"))
    assert d.outcome is Outcome.REVIEW_REQUIRED
    [waiting] = d.reviews
    assert waiting.rule == "t.two"
    assert waiting.to_dict()["review"] == {
        "roles": ["qa", "domain_expert"],
        "within": "3d",
        "deadline": iso(T + timedelta(hours=72)),
    }
    assert "review" not in result(d, "t.intended").to_dict()  # passed: nothing to review


def test_an_error_in_a_reviewed_rule_still_denies() -> None:
    d = policy(REVIEWED).evaluate(event(), model())  # intended_use is missing: an error
    assert result(d, "t.intended").status == "error"
    assert d.outcome is Outcome.DENY
    assert [r.rule for r in d.reviews] == []  # nothing waits on people when the answer is deny


def test_a_hard_failure_without_review_outranks_a_review() -> None:
    bundle = policy(
        REVIEWED
        + """
rule pinned {
  layer audit
  on model.deploy_requested
  require has(subject.artifact_digest)
}
"""
    )
    d = bundle.evaluate(event(), model(intended_use="screening"))
    assert d.outcome is Outcome.DENY
    assert d.reviews == ()


def test_enough_approvals_pass_the_reviewed_rule() -> None:
    approvals = [
        {"signer": s, "role": "qa", "meaning": "approved", "time": iso(T - timedelta(days=1))}
        for s in ("u2", "u3")
    ]
    d = policy(REVIEWED).evaluate(event(), model(intended_use="screening", approvals=approvals))
    assert d.outcome is Outcome.ALLOW and d.reviews == ()
