"""Differential testing: the engine against the reference interpreter.

A thousand generated, well-typed expressions (tests/strategies.py), each with every
closed sub-expression, are evaluated in random events and entity state twice — by the
real pipeline
(parser → resolve → type check → `Lowerer` closures / `Bundle.evaluate`) and by
tests/reference_interpreter.py — and the results must agree:

* values of expressions of every type (the engine side calls `Lowerer.expr` on
  the typed AST, exactly what a compiled rule runs);
* rule status (pass / fail / error) of `require <expr>` and the
  not_applicable / pass / error of `when <expr>` in a compiled bundle;
* the values an explanation reports for a top-level comparison.

Known engine bugs found this way are pinned by the strict-xfail regression tests
at the end, and the generator keeps away from them (`strategies.KNOWN_ENGINE_BUGS`),
so that one known bug does not mask everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
import reference_interpreter as ref
import strategies as S
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine import Decision, compile_sources
from policyengine.compiler import types as T
from policyengine.compiler.lower import Lowerer
from policyengine.compiler.resolve import resolve
from policyengine.compiler.schema import default_env
from policyengine.compiler.typecheck import Context, check
from policyengine.events import parse_event
from policyengine.events.catalog import entity_from_attributes
from policyengine.language import ast
from policyengine.language.parser import parse_module
from policyengine.runtime.errors import EvalError
from policyengine.runtime.frame import Frame

DIFF_SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class DictState:
    """A read-only `StateReader` over the `{(kind, id): entity}` dict the strategies build."""

    def __init__(self, entities: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        self.entities = entities

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        return self.entities.get((kind, id))


def _consts_source() -> str:
    return "\n".join(f"const {name} = {src}" for name, (src, _) in S.CONSTS.items())


def policy_source(event_type: str, expr: str) -> str:
    """Rule `r` requires the expression; rule `g` uses it as its guard."""
    return (
        f"package {S.PACKAGE}\n{_consts_source()}\n"
        f"rule r {{\n  layer audit\n  on {event_type}\n  require {expr}\n}}\n"
        f"rule g {{\n  layer audit\n  on {event_type}\n  when {expr}\n  require true\n}}\n"
    )


@dataclass(frozen=True)
class Consts:
    types: dict[str, T.Type]
    engine: dict[str, Any]
    reference: dict[str, Any]


@cache
def constants() -> Consts:
    """The prelude's constants, computed by each side on its own."""
    module = parse_module(policy_source("model.deployed", "true"), "diff.policy")
    diags: list[Any] = []
    program = resolve([module], diags)
    assert not diags, diags
    out = Consts({}, {}, {})
    env = default_env()
    dummy = {"attributes": {}, "subject": {"kind": "", "id": ""}}
    for q, c in program.consts.items():
        ctx = Context(env, None, out.types, diags, const_values=out.engine)
        out.types[q] = check(c.expr, ctx)
        assert not diags, diags
        low = Lowerer(ctx.types, out.engine, ctx.regexes, module.source)
        fn = low.expr(c.expr)
        out.engine[q] = fn(Frame(dummy, DictState({}), S.T0, low.max_slot + 1))
        renv = ref.Env(dummy, {}, S.T0, ctx.types, out.reference)
        value = ref.evaluate(c.expr, renv)
        assert not isinstance(value, ref.Error), (q, value)
        out.reference[q] = value
    return out


@dataclass
class Prepared:
    expr: ast.Expr
    types: dict[int, T.Type]
    static: T.Type
    lowerer: Lowerer
    source: str


def prepare(case: S.Case) -> Prepared | None:
    """Parse, resolve and type check the case's expression; None if it is ill-typed
    (the generator aims to avoid that, and the tests check that it rarely happens)."""
    text = policy_source(case.event_type, case.source)
    module = parse_module(text, "diff.policy")
    diags: list[Any] = []
    program = resolve([module], diags)
    assert not diags, diags
    expr = program.rules[S.RULE_ID].decl.requires[0].expr
    consts = constants()
    env = default_env()
    ctx = Context(
        env,
        env.events[case.event_type],
        consts.types,
        diags,
        const_values=consts.engine,
    )
    static = check(expr, ctx)
    if diags:
        return None
    return Prepared(
        expr, ctx.types, static, Lowerer(ctx.types, consts.engine, ctx.regexes, text), text
    )


def closed_subexpressions(e: ast.Expr) -> list[ast.Expr]:
    """`e` and every sub-expression that does not mention a quantifier variable bound
    inside `e`, outermost first: each can be evaluated on its own, so an inner
    disagreement shows even when the outer expression masks it (an error, a `??`)."""
    out: list[ast.Expr] = [e]
    if isinstance(e, ast.Quantifier | ast.ListComp):
        return out + closed_subexpressions(e.collection)  # the rest sees the variable
    children: tuple[ast.Expr | None, ...] = ()
    if isinstance(e, ast.Attr):
        children = (e.obj,)
    elif isinstance(e, ast.Index):
        children = (e.obj, e.key)
    elif isinstance(e, ast.Unary):
        children = (e.operand,)
    elif isinstance(e, ast.Binary):
        children = (e.left, e.right)
    elif isinstance(e, ast.BoolOp | ast.ListLit | ast.SetLit):
        children = e.operands if isinstance(e, ast.BoolOp) else e.items
    elif isinstance(e, ast.Call) and e.func not in ("passed", "failed", "outcome"):
        children = e.args
    for c in children:
        # Bare `event` is the engine's envelope dict, not a language value: skip it.
        if c is not None and not isinstance(c, ast.Literal | ast.Root):
            out += closed_subexpressions(c)
    return out


def engine_value(p: Prepared, w: S.World, node: ast.Expr | None = None) -> Any:
    fn = p.lowerer.expr(p.expr if node is None else node)
    frame = Frame(w.event, DictState(w.state), w.now, p.lowerer.max_slot + 1)
    try:
        return fn(frame)
    except EvalError as err:
        return ref.Error(err.undefined, err.message)


def reference_env(p: Prepared, w: S.World) -> ref.Env:
    return ref.Env(w.event, w.state, w.now, p.types, constants().reference)


def same_result(engine: Any, reference: Any) -> bool:
    if isinstance(engine, ref.Error) or isinstance(reference, ref.Error):
        return (
            isinstance(engine, ref.Error)
            and isinstance(reference, ref.Error)
            and engine.undefined == reference.undefined
        )
    return bool(ref.canonical(engine) == ref.canonical(reference))


def describe(case: S.Case, w: S.World, engine: Any, reference: Any) -> str:
    return f"{case!r}\n  {w!r}\n  engine:    {engine!r}\n  reference: {reference!r}"


# ---------------------------------------------------------------- generated cases

_ill_typed: list[str] = []
_checked: list[str] = []


@DIFF_SETTINGS
@given(case=S.cases())
def test_values_agree_with_reference(case: S.Case) -> None:
    p = prepare(case)
    if p is None:
        _ill_typed.append(case.source)
        return
    _checked.append(case.source)
    nodes = closed_subexpressions(p.expr)
    for w in case.worlds:
        env = reference_env(p, w)
        for node in nodes:
            engine = engine_value(p, w, node)
            reference = ref.evaluate(node, env)
            where = "" if node is p.expr else f"\n  in sub-expression: {p.lowerer.text(node)}"
            assert same_result(engine, reference), describe(case, w, engine, reference) + where


def test_generator_produces_well_typed_expressions() -> None:
    """Guards the differential test above against silently checking nothing."""
    if not _checked:
        pytest.skip("run together with test_values_agree_with_reference")
    total = len(_checked) + len(_ill_typed)
    assert len(_ill_typed) <= total // 20, _ill_typed[:10]


@DIFF_SETTINGS
@given(case=S.cases(wants=(S.T.BOOL,)))
def test_rule_status_agrees_with_reference(case: S.Case) -> None:
    p = prepare(case)
    if p is None:
        return
    bundle = compile_sources({"diff.policy": p.source})
    for w in case.worlds:
        decision = bundle.evaluate(w.event, DictState(w.state), w.now)
        check_decision(p, case, w, decision)
        # The batch path is a separate loop: it must decide exactly the same.
        (batched,) = bundle.evaluate_batch([w.event], DictState(w.state), w.now)
        assert batched.to_json() == decision.to_json()


def check_decision(p: Prepared, case: S.Case, w: S.World, decision: Decision) -> None:
    statuses = {r.rule: r for r in decision.results}
    env = reference_env(p, w)
    expected = ref.rule_status(None, [p.expr], env)
    got = statuses[S.RULE_ID]
    assert got.status == expected, describe(case, w, got.to_dict(), expected)
    guard = ref.rule_status(p.expr, [ast.Literal(value=True)], env)
    g = statuses[f"{S.PACKAGE}.g"]
    assert g.status == guard, describe(case, w, g.to_dict(), guard)
    outcome = ref.decision_outcome((r.status, r.enforcement, False) for r in decision.results)
    assert decision.outcome.value == outcome
    # Explanations of a top-level comparison report the operands' values.
    e = p.expr
    (req,) = got.requirements
    if isinstance(e, ast.Binary) and e.op != "??" and got.status != "error":
        shown = [
            side
            for side in (e.left, e.right)
            if not isinstance(side, ast.Literal | ast.ConstRef | ast.SetLit | ast.ListLit)
        ]
        assert [t for t, _ in req.values] == [p.lowerer.text(side) for side in shown]
        for (text, value), side in zip(req.values, shown, strict=True):
            expected_value = ref.evaluate(side, env)
            assert same_result(value, expected_value), describe(
                case, w, (text, value), expected_value
            )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(S.EVENT_TYPE_NAMES), st.data())
def test_events_and_state_are_valid(event_type: str, data: st.DataObject) -> None:
    """The data strategies produce what `parse_event` accepts, with unknown references."""
    event = data.draw(S.events(event_type))
    state = data.draw(S.entity_states())
    assert event["type"] == event_type
    assert all(not i.endswith("-unknown") for _, i in state)
    assert isinstance(event["time"], datetime) and event["time"].tzinfo is UTC


# ---------------------------------------------------------------- regressions
# Minimal reproducers of engine bugs these tests found (all fixed). The engine and
# the reference interpreter must both give the expected answer. A newly found bug is
# pinned here as a strict xfail, with its construct added to `S.KNOWN_ENGINE_BUGS` so
# the generator stays away from it until the fix lands.


def _fixture_case(source: str) -> S.Case:
    event = parse_event(
        {
            "id": "evt-1",
            "type": "model.deploy_requested",
            "time": "2026-03-01T00:00:00Z",
            "actor": {"id": "u1", "roles": ["mlops"]},
            "subject": {"kind": "model_version", "id": "mv-1"},
            "attributes": {"target": {"environment": "production"}},
        }
    )
    state = {
        ("model_version", "mv-1"): entity_from_attributes("model_version", "mv-1", {"name": "tox"})
    }
    return S.Case("model.deploy_requested", source, T.ANY, (S.World(event, state, S.T0),))


def _check(source: str, expected: Any, *, engine: bool = True, reference: bool = True) -> None:
    case = _fixture_case(source)
    p = prepare(case)
    assert p is not None, f"`{source}` does not type check"
    (w,) = case.worlds
    if reference:
        got = ref.evaluate(p.expr, reference_env(p, w))
        assert same_result(got, expected), f"reference: {got!r}"
    if engine:
        got = engine_value(p, w)
        assert same_result(got, expected), f"engine: {got!r}"


_ERROR = ref.Error(False, "")
_UNDEFINED = ref.Error(True, "")


REGRESSIONS = [
    pytest.param(
        'time("2026-03-01t00:00:00z")',
        S.T0,
        id="time-lower-case",
    ),
    pytest.param(
        'time("20260301T000000Z")',
        _ERROR,
        id="time-basic-format",
    ),
    pytest.param(
        "min([true, 1])",
        _ERROR,
        id="min-of-booleans",
    ),
    pytest.param(
        'min([subject.version, "b"])',
        _ERROR,
        id="min-with-null",
    ),
    pytest.param(
        "distinct([[1], [1], [2]])",
        [[1], [2]],
        id="distinct-of-lists",
    ),
    pytest.param(
        'event["target"].environment',
        "production",
        id="event-index-attribute",
    ),
    pytest.param(
        'event["subject"].name',
        "tox",
        id="event-index-subject",
    ),
    pytest.param(
        "sum([1h for x in []])",
        timedelta(0),
        id="sum-empty-durations",
    ),
    pytest.param(
        "contains([1, 2], true)",
        False,
        id="contains-bool-in-ints",
    ),
    pytest.param(
        '[true, "a"] == [1, "a"]',
        False,
        id="list-equality",
    ),
    pytest.param(
        '["a", 1][0] * 3',
        _ERROR,
        id="string-times-int",
    ),
    pytest.param(
        '["abc", 1][0][0]',
        _ERROR,
        id="index-string",
    ),
    pytest.param(
        '[[1], "a"][0] < [[2], "a"][0]',
        _ERROR,
        id="order-lists",
    ),
    pytest.param(
        'keys(["ba", 1][0])',
        _ERROR,
        id="keys-of-string",
    ),
]


@pytest.mark.parametrize(("source", "expected"), REGRESSIONS)
def test_regression(source: str, expected: Any) -> None:
    _check(source, expected)


def test_known_engine_bugs_are_pinned() -> None:
    """A generator exclusion without a pinned reproducer would hide a bug for good."""
    assert frozenset() == S.KNOWN_ENGINE_BUGS
