"""Unit tests per compiler pass: resolve, type check, constants, rule graph, index.

Each pass is driven directly on parsed modules, so a failure points at the pass
that broke rather than at an end-to-end decision.
"""

from __future__ import annotations

from datetime import timedelta

import networkx as nx
import pytest

from policyengine import CompileError, compile_sources
from policyengine.compiler import types as T
from policyengine.compiler.bundle import _Compiler
from policyengine.compiler.graph import (
    cycle_diagnostics,
    expand_patterns,
    rule_graph,
    topological_order,
)
from policyengine.compiler.resolve import Program, resolve
from policyengine.compiler.schema import default_env
from policyengine.compiler.typecheck import Context, check, literal_type
from policyengine.language import ast
from policyengine.language.diagnostics import Code, Diagnostic
from policyengine.language.parser import parse_module


def program(*sources: str) -> tuple[Program, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    modules = [parse_module(s, f"f{i}.policy") for i, s in enumerate(sources)]
    return resolve(modules, diags), diags


def rule_expr(source: str, rule: str = "p.r") -> ast.Expr:
    prog, diags = program(source)
    assert diags == []
    return prog.rules[rule].decl.requires[0].expr


RULE = "package p\n{consts}\nrule r {{ layer audit on model.deployed require {expr} }}"


def resolved(expr: str, consts: str = "") -> ast.Expr:
    return rule_expr(RULE.format(expr=expr, consts=consts))


# ---------------------------------------------------------------- resolve


def test_roots_and_constants() -> None:
    e = resolved("event.id == subject.id and now > now and X == 1", "const X = 1")
    assert isinstance(e, ast.BoolOp)
    first, second, third = e.operands
    assert isinstance(first, ast.Binary) and isinstance(first.left, ast.Attr)
    assert first.left.obj == ast.Root(id="event")
    assert isinstance(first.right, ast.Attr) and first.right.obj == ast.Root(id="subject")
    assert isinstance(second, ast.Binary) and second.left == ast.Root(id="now")
    assert isinstance(third, ast.Binary) and third.left == ast.ConstRef(qualified="p.X")


def test_quantifier_variables_get_frame_slots() -> None:
    e = resolved("all(x in [1]: any(y in [2]: x == y) and count(x in [3]) == 1)")
    assert isinstance(e, ast.Quantifier) and e.slot == 0
    body = e.body
    assert isinstance(body, ast.BoolOp)
    inner_any, count_eq = body.operands
    assert isinstance(inner_any, ast.Quantifier) and inner_any.slot == 1
    cond = inner_any.body
    assert isinstance(cond, ast.Binary)
    assert cond.left == ast.Var(id="x", slot=0) and cond.left.slot == 0
    assert isinstance(cond.right, ast.Var) and cond.right.slot == 1
    assert isinstance(count_eq, ast.Binary) and isinstance(count_eq.left, ast.Quantifier)
    assert count_eq.left.slot == 1  # a sibling scope reuses the slot


def test_inner_variable_shadows_outer_one() -> None:
    e = resolved("all(x in [1]: any(x in [2]: x == 2))")
    assert isinstance(e, ast.Quantifier) and isinstance(e.body, ast.Quantifier)
    cond = e.body.body
    assert isinstance(cond, ast.Binary) and isinstance(cond.left, ast.Var)
    assert cond.left.slot == 1


def test_variable_is_bound_in_where_body_key_and_comprehension_item() -> None:
    e = resolved("count(distinct a.k for a in [] where a.ok) == len([b.v for b in [] where b.w])")
    assert isinstance(e, ast.Binary) and isinstance(e.left, ast.Quantifier)
    q = e.left
    assert isinstance(q.where, ast.Attr) and q.where.obj == ast.Var(id="a", slot=0)
    assert isinstance(q.distinct_key, ast.Attr) and q.distinct_key.obj == ast.Var(id="a")
    call = e.right
    assert isinstance(call, ast.Call) and isinstance(call.args[0], ast.ListComp)
    comp = call.args[0]
    assert comp.slot == 0 and isinstance(comp.item, ast.Attr)
    assert comp.item.obj == ast.Var(id="b", slot=0)
    # The collection is resolved outside the variable's scope.
    assert comp.collection == ast.ListLit(items=())


def test_rule_references_and_dependencies() -> None:
    prog, diags = program(
        "package gxp.base\nrule signed { layer audit on model.* require true }",
        "package p\nimport gxp.base as b\n"
        "rule local { layer audit on model.* require true }\n"
        'rule r { layer audit on model.* require passed(local) and outcome(b.signed) == "pass" }',
    )
    assert diags == []
    r = prog.rules["p.r"]
    assert r.depends_on == frozenset({"p.local", "gxp.base.signed"})
    e = r.decl.requires[0].expr
    assert isinstance(e, ast.BoolOp)
    passed, eq = e.operands
    assert isinstance(passed, ast.Call) and passed.args == (ast.RuleRef(qualified="p.local"),)
    assert isinstance(eq, ast.Binary) and isinstance(eq.left, ast.Call)
    assert eq.left.args == (ast.RuleRef(qualified="gxp.base.signed"),)
    assert prog.rules["p.local"].depends_on == frozenset()


def test_imported_constants_and_constant_dependencies() -> None:
    prog, diags = program(
        "package gxp.common\nconst A = 1\nconst B = A + 1",
        "package p\nimport gxp.common\nconst C = common.B * 2\n"
        "rule r { layer audit on model.* require C == common.A }",
    )
    assert diags == []
    assert prog.const_deps == {
        "gxp.common.A": frozenset(),
        "gxp.common.B": frozenset({"gxp.common.A"}),
        "p.C": frozenset({"gxp.common.B"}),
    }
    e = prog.rules["p.r"].decl.requires[0].expr
    assert e == ast.Binary(
        op="==", left=ast.ConstRef(qualified="p.C"), right=ast.ConstRef(qualified="gxp.common.A")
    )


def test_message_holes_and_guards_are_resolved() -> None:
    prog, _ = program(
        "package p\nconst N = 1\n"
        'rule r { layer audit on model.* when N > 0 require true message "{N}" }'
    )
    d = prog.rules["p.r"].decl
    assert isinstance(d.when, ast.Binary) and d.when.left == ast.ConstRef(qualified="p.N")
    assert d.message is not None and d.message.parts == (ast.ConstRef(qualified="p.N"),)


def test_test_expectations_resolve_to_qualified_rules() -> None:
    prog, diags = program(
        "package gxp.base\nrule signed { layer audit on model.* require true }",
        "package p\nimport gxp.base\nrule r { layer audit on model.* require true }\n"
        'test "t" { expect pass r expect fail base.signed expect error gxp.base.signed '
        "expect pass nope }",
    )
    (t,) = prog.tests
    assert t.rule_refs == ("p.r", "gxp.base.signed", "gxp.base.signed", None)
    assert [d.code for d in diags] == [Code.UNDEFINED_RULE]


def test_resolve_reports_and_continues() -> None:
    _, diags = program(
        "package p\nconst X = 1\nconst X = 2\nconst now = 3\n"
        "rule r { layer audit on model.* require Y and passed(q) }\n"
        "rule r { layer audit on model.* require true }"
    )
    assert sorted((d.code, d.span.line) for d in diags) == [
        (Code.UNDEFINED_NAME, 5),
        (Code.UNDEFINED_RULE, 5),
        (Code.SHADOWED_NAME, 4),
        (Code.DUPLICATE_RULE, 6),
        (Code.DUPLICATE_CONST, 3),
    ]


# ---------------------------------------------------------------- type check


def typed(expr: str, event: str = "model.deploy_requested", consts: str = "") -> T.Type:
    e = rule_expr(RULE.format(expr=expr, consts=consts).replace("model.deployed", event))
    env = default_env()
    diags: list[Diagnostic] = []
    ctx = Context(env, env.events[event], {}, diags)
    t = check(e, ctx)
    assert diags == [], diags
    assert ctx.types[id(e)] == t  # every checked node's type is recorded
    return t


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1", T.INT),
        ("1.5", T.FLOAT),
        ('"a"', T.STRING),
        ("true", T.BOOL),
        ("null", T.NULL),
        ("1d", T.DURATION),
        ("now", T.TIMESTAMP),
        ("[1, 2]", T.ListOf(T.INT)),
        ("[1, 2.5]", T.ListOf(T.FLOAT)),
        ("[1, null]", T.ListOf(T.Optional(T.INT))),
        ("[]", T.ListOf(T.ANY)),
        ('{"a"}', T.SetOf(T.STRING)),
        ("7 / 2", T.FLOAT),
        ("7 % 2", T.INT),
        ("1 + 2.0", T.FLOAT),
        ("now - now", T.DURATION),
        ("now + 1d", T.TIMESTAMP),
        ("1d / 1h", T.FLOAT),
        ("2 * 1h", T.DURATION),
        ("event.target.environment", T.STRING),
        ("event.target.region", T.Optional(T.STRING)),
        ("event.time", T.TIMESTAMP),
        ("event.actor.roles", T.ListOf(T.STRING)),
        ("event.subject", T.Entity("model_version")),
        ("subject", T.Entity("model_version")),
        ("subject.training_run", T.Optional(T.Entity("training_run"))),
        ("subject.training_run.inputs", T.ListOf(T.Entity("dataset"))),
        ("subject.labels", T.MapOf(T.STRING)),
        ('subject.labels["k"]', T.STRING),
        ("subject.approvals[0].time", T.TIMESTAMP),
        ('event.target.region ?? "x"', T.STRING),
        ("count(a in subject.approvals)", T.INT),
        ("any(a in subject.approvals: true)", T.BOOL),
        ("[a.signer for a in subject.approvals]", T.ListOf(T.STRING)),
        ("keys(subject.labels)", T.ListOf(T.STRING)),
        ("values(subject.labels)", T.ListOf(T.STRING)),
        ("sum([1h])", T.DURATION),
        ("max([now])", T.TIMESTAMP),
        ('matches(event.id, "x")', T.BOOL),
        ("outcome(r)", T.STRING),
    ],
)
def test_types(expr: str, expected: T.Type) -> None:
    assert typed(expr) == expected


def test_event_record_depends_on_the_event_type() -> None:
    assert typed("event.purpose", "dataset.accessed") == T.STRING
    assert typed("subject", "dataset.accessed") == T.Entity("dataset")
    assert typed("event.inputs", "run.started") == T.ListOf(T.Entity("dataset"))


def test_approval_record_type() -> None:
    t = typed("subject.approvals")
    assert isinstance(t, T.ListOf) and isinstance(t.item, T.Record)
    assert t.item.name == "Approval" and t.item.fields["meaning"] == T.STRING


def test_literal_type_and_join() -> None:
    assert literal_type(frozenset({"a"})) == T.SetOf(T.STRING)
    assert literal_type([1, "a"]) == T.ListOf(T.ANY)
    assert literal_type(timedelta(1)) == T.DURATION
    assert T.join(T.INT, T.NULL) == T.Optional(T.INT)
    assert T.join(T.Optional(T.INT), T.INT) == T.Optional(T.INT)
    assert T.join(T.Entity("dataset"), T.STRING) == T.STRING
    assert T.compatible(T.Entity("dataset"), T.STRING)
    assert not T.compatible(T.ListOf(T.INT), T.SetOf(T.INT))
    assert not T.compatible(T.BOOL, T.INT)
    assert T.compatible(T.INT, T.FLOAT) and T.compatible(T.NULL, T.STRING)


# ---------------------------------------------------------------- constants


def fold(*sources: str) -> tuple[dict[str, object], list[Diagnostic]]:
    prog, diags = program(*sources)
    compiler = _Compiler(default_env(), diags)
    compiler.constants(prog)
    return compiler.const_values, diags


def test_constants_are_folded_in_dependency_order() -> None:
    values, diags = fold(
        'package p\nconst C = A * B\nconst A = 2\nconst B = A + 1\nconst S = {"b", "a"}\n'
        'const L = [A, B]\nconst W = 7d + 12h\nconst T = "x" + "y"\nconst N = len(S)'
    )
    assert diags == []
    assert values == {
        "p.A": 2,
        "p.B": 3,
        "p.C": 6,
        "p.S": frozenset({"a", "b"}),
        "p.L": [2, 3],
        "p.W": timedelta(days=7, hours=12),
        "p.T": "xy",
        "p.N": 2,
    }


def test_constant_errors() -> None:
    _, diags = fold('package p\nconst A = 1 / 0\nconst B = event.id\nconst C = 1 + "a"')
    assert [(d.code, d.span.line) for d in diags] == [
        (Code.NOT_CONSTANT, 2),
        (Code.NOT_CONSTANT, 3),
        (Code.TYPE_MISMATCH, 4),
    ]


def test_constant_cycles_stop_folding() -> None:
    values, diags = fold("package p\nconst A = B\nconst B = A\nconst C = 1")
    assert [d.code for d in diags] == [Code.DEPENDENCY_CYCLE]
    assert values == {}


# ---------------------------------------------------------------- graph


GRAPH_SOURCE = """package p
rule a { layer audit on model.* require true }
rule b { layer audit on model.* require passed(a) }
rule c { layer audit on model.* require passed(a) and failed(b) }
rule d { layer audit on model.* require true }
"""


def test_rule_graph_edges_point_from_dependency_to_dependent() -> None:
    prog, _ = program(GRAPH_SOURCE)
    g = rule_graph(prog)
    assert sorted(g.nodes) == ["p.a", "p.b", "p.c", "p.d"]
    assert sorted(g.edges) == [("p.a", "p.b"), ("p.a", "p.c"), ("p.b", "p.c")]
    assert g.nodes["p.b"]["layer"] == "audit" and g.nodes["p.b"]["line"] == 3


def test_topological_order_is_dependencies_first_then_by_id() -> None:
    prog, _ = program(GRAPH_SOURCE.replace("rule d", "rule aa"))
    assert topological_order(rule_graph(prog)) == ["p.a", "p.aa", "p.b", "p.c"]


def test_cycle_detection() -> None:
    g = nx.DiGraph([("x", "y"), ("y", "x"), ("s", "s"), ("a", "b")])
    spans = {k: ast.Span("f", 0, 1, i + 1, 1, i + 1, 2) for i, k in enumerate("abxys")}
    diags = cycle_diagnostics(g, spans, "rule")
    assert sorted(d.message for d in diags) == [
        "rule dependency cycle: `s` → `s`",
        "rule dependency cycle: `x` → `y` → `x`",
    ]
    assert all(d.code is Code.DEPENDENCY_CYCLE for d in diags)


# ---------------------------------------------------------------- index


def test_glob_expansion() -> None:
    types = ["model.deployed", "model.registered", "run.completed", "run.started"]
    diags: list[Diagnostic] = []
    pats = [ast.Ident(p) for p in ("model.*", "run.completed", "model.deployed")]
    assert expand_patterns(pats, types, diags) == (
        "model.deployed",
        "model.registered",
        "run.completed",
    )
    assert expand_patterns([ast.Ident("*")], types, diags) == tuple(types)
    assert expand_patterns([ast.Ident("*.started")], types, diags) == ("run.started",)
    assert diags == []
    assert expand_patterns([ast.Ident("modle.*")], types, diags) == ()
    assert [(d.code, d.hint) for d in diags] == [
        (Code.UNKNOWN_EVENT_TYPE, "did you mean `model.*`?")
    ]


def test_index_maps_event_types_to_rules_in_graph_order() -> None:
    bundle = compile_sources(
        {
            "main.policy": GRAPH_SOURCE
            + "rule e { layer audit on model.deployed require true }\n"
            + "rule f { layer audit on dataset.* require true }\n"
        }
    )
    assert bundle.rules_for("model.deployed") == ("p.a", "p.b", "p.c", "p.d", "p.e")
    assert bundle.rules_for("model.registered") == ("p.a", "p.b", "p.c", "p.d")
    assert bundle.rules_for("dataset.accessed") == ("p.f",)
    assert bundle.rules_for("run.started") == ()
    info = bundle.rules["p.c"]
    assert info.depends_on == ("p.a", "p.b")
    assert "model.deploy_requested" in info.event_types and info.on == ("model.*",)
    assert info.requirements == ("passed(a) and failed(b)",)
    assert (info.layer, info.severity, info.enforcement) == ("audit", "medium", "hard")


def test_a_rule_is_type_checked_per_event_type() -> None:
    with pytest.raises(CompileError) as info:
        compile_sources(
            {
                "m.policy": "package p\n"
                'rule r { layer audit on model.* require event.target.environment != "" }'
            }
        )
    # `target` exists on deploy events only: one error per event type that lacks it.
    messages = {d.message for d in info.value.diagnostics}
    assert "unknown attribute `target` for event `model.registered`" in messages
    assert not any("model.deployed`" in m for m in messages)
