"""Parser: grammar text ↔ spec, AST shapes, precedence, spans, literals, templates, tests.

AST nodes compare without their spans, so expected trees are written without
positions; the span tests then check positions separately.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policyengine import compile_sources
from policyengine.language import ast
from policyengine.language.ast import (
    Attr,
    Binary,
    BoolOp,
    Call,
    Index,
    ListComp,
    ListLit,
    Literal,
    Name,
    Quantifier,
    SetLit,
    Unary,
)
from policyengine.language.diagnostics import Code, CompileError
from policyengine.language.parser import (
    decode_string,
    grammar_text,
    parse_duration,
    parse_expr,
    parse_module,
    parse_timestamp,
)
from policyengine.testing import run_tests

SPEC = Path(__file__).resolve().parent.parent / "spec" / "language.md"


def n(id_: str) -> Name:
    return Name(id=id_)


def lit(v: object) -> Literal:
    return Literal(value=v)


# ---------------------------------------------------------------- grammar ↔ spec


def test_spec_quotes_the_grammar_verbatim() -> None:
    text = SPEC.read_text("utf-8")
    m = re.search(r"<!-- grammar:begin -->\n```lark\n(.*?)```\n<!-- grammar:end -->", text, re.S)
    assert m is not None, "spec/language.md lacks the grammar block between the markers"
    assert m.group(1) == grammar_text(), (
        "spec/language.md quotes an outdated grammar; copy policyengine/language/grammar.lark "
        "between the markers"
    )


# ---------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        (
            "a or b and c",
            BoolOp(op="or", operands=(n("a"), BoolOp(op="and", operands=(n("b"), n("c"))))),
        ),
        ("a or b or c", BoolOp(op="or", operands=(n("a"), n("b"), n("c")))),
        ("a and b and c", BoolOp(op="and", operands=(n("a"), n("b"), n("c")))),
        ("not a and b", BoolOp(op="and", operands=(Unary(op="not", operand=n("a")), n("b")))),
        ("not a == b", Unary(op="not", operand=Binary(op="==", left=n("a"), right=n("b")))),
        ("not not a", Unary(op="not", operand=Unary(op="not", operand=n("a")))),
        (
            "a == b + c",
            Binary(op="==", left=n("a"), right=Binary(op="+", left=n("b"), right=n("c"))),
        ),
        ("a + b * c", Binary(op="+", left=n("a"), right=Binary(op="*", left=n("b"), right=n("c")))),
        ("a - b - c", Binary(op="-", left=Binary(op="-", left=n("a"), right=n("b")), right=n("c"))),
        ("a / b % c", Binary(op="%", left=Binary(op="/", left=n("a"), right=n("b")), right=n("c"))),
        ("-a * b", Binary(op="*", left=Unary(op="-", operand=n("a")), right=n("b"))),
        ("-a ?? b", Unary(op="-", operand=Binary(op="??", left=n("a"), right=n("b")))),
        (
            "a ?? b + c",
            Binary(op="+", left=Binary(op="??", left=n("a"), right=n("b")), right=n("c")),
        ),
        (
            "a ?? b ?? c",
            Binary(op="??", left=n("a"), right=Binary(op="??", left=n("b"), right=n("c"))),
        ),
        ("a ?? -1", Binary(op="??", left=n("a"), right=lit(-1))),
        ("a.b ?? c", Binary(op="??", left=Attr(obj=n("a"), name="b"), right=n("c"))),
        ("a in b", Binary(op="in", left=n("a"), right=n("b"))),
        ("a not in b", Binary(op="not in", left=n("a"), right=n("b"))),
        ("not a in b", Unary(op="not", operand=Binary(op="in", left=n("a"), right=n("b")))),
        (
            "a + 1 in b",
            Binary(op="in", left=Binary(op="+", left=n("a"), right=lit(1)), right=n("b")),
        ),
        (
            "(a or b) and c",
            BoolOp(op="and", operands=(BoolOp(op="or", operands=(n("a"), n("b"))), n("c"))),
        ),
        ("a.b.c", Attr(obj=Attr(obj=n("a"), name="b"), name="c")),
        ("a[0].b", Attr(obj=Index(obj=n("a"), key=lit(0)), name="b")),
        ('a["k"][1]', Index(obj=Index(obj=n("a"), key=lit("k")), key=lit(1))),
        ("f(a, b).c", Attr(obj=Call(func="f", args=(n("a"), n("b"))), name="c")),
        ("f()", Call(func="f", args=())),
    ],
)
def test_precedence_and_associativity(text: str, tree: ast.Expr) -> None:
    assert parse_expr(text) == tree


@pytest.mark.parametrize("text", ["a < b < c", "a == b != c", "a in b in c", "a < b in c"])
def test_comparisons_are_non_associative(text: str) -> None:
    with pytest.raises(CompileError) as info:
        parse_expr(text)
    assert info.value.diagnostics[0].code is Code.SYNTAX


def test_keywords_are_attribute_names_after_a_dot() -> None:
    assert parse_expr("event.rule.on.in.not.count") == Attr(
        obj=Attr(
            obj=Attr(obj=Attr(obj=Attr(obj=n("event"), name="rule"), name="on"), name="in"),
            name="not",
        ),
        name="count",
    )


@pytest.mark.parametrize("word", ["allowed", "anyone", "nonempty", "all_roles", "counter"])
def test_names_that_start_with_a_keyword_stay_names(word: str) -> None:
    # `allowed` used to lex as the quantifier `all` followed by `owed`.
    assert parse_expr(f"{word} == 1") == Binary(op="==", left=n(word), right=lit(1))
    assert parse_expr(f"all({word} in xs: {word})") == Quantifier(
        kind="all", var=word, collection=n("xs"), body=n(word)
    )


@pytest.mark.parametrize(
    "source",
    [
        "package p\nrulex { }",
        "package p\nconstX = 1",
        "package p\nrule r { layerprivacy }",
        "package p\nrule r { requirex == 1 }",
        'package p\ntest "t" { expect allowed }',
    ],
)
def test_keywords_only_match_whole_words(source: str) -> None:
    # All of these used to parse, as `rule x`, `const X`, `layer privacy`, `require x`…
    with pytest.raises(CompileError):
        parse_module(source)


# ---------------------------------------------------------------- expressions


def test_collections_and_comprehensions() -> None:
    assert parse_expr("[1, 2,]") == ListLit(items=(lit(1), lit(2)))
    assert parse_expr("[]") == ListLit(items=())
    assert parse_expr('{"a", "b",}') == SetLit(items=(lit("a"), lit("b")))
    assert parse_expr("[x * 2 for x in xs where x > 1]") == ListComp(
        item=Binary(op="*", left=n("x"), right=lit(2)),
        var="x",
        collection=n("xs"),
        where=Binary(op=">", left=n("x"), right=lit(1)),
    )
    assert parse_expr("[x for x in xs]") == ListComp(item=n("x"), var="x", collection=n("xs"))


def test_quantifier_shapes() -> None:
    assert parse_expr("all(a in xs where a.ok: a.v > 1)") == Quantifier(
        kind="all",
        var="a",
        collection=n("xs"),
        where=Attr(obj=n("a"), name="ok"),
        body=Binary(op=">", left=Attr(obj=n("a"), name="v"), right=lit(1)),
    )
    assert parse_expr("any(a in xs: a)") == Quantifier(
        kind="any", var="a", collection=n("xs"), body=n("a")
    )
    assert parse_expr("none(a in xs where a)") == Quantifier(
        kind="none", var="a", collection=n("xs"), where=n("a")
    )
    assert parse_expr("count(a in xs)") == Quantifier(kind="count", var="a", collection=n("xs"))
    assert parse_expr("count(distinct a.k for a in xs where a.ok)") == Quantifier(
        kind="count",
        var="a",
        collection=n("xs"),
        where=Attr(obj=n("a"), name="ok"),
        distinct_key=Attr(obj=n("a"), name="k"),
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"a\\"b\\\\\\n\\u00e9"', 'a"b\\\né'),
        ("42", 42),
        ("3.5", 3.5),
        ("1.5e3", 1500.0),
        ("-7", -7),
        ("-2.5", -2.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("48h", timedelta(hours=48)),
        ("1h30m", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("2w", timedelta(days=14)),
        ("-1d", timedelta(days=-1)),
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00.25Z", datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_literals(text: str, value: object) -> None:
    e = parse_expr(text)
    assert isinstance(e, Literal)
    assert e.value == value and type(e.value) is type(value)


def test_negation_of_a_non_literal_stays_an_operator() -> None:
    assert parse_expr("-x") == Unary(op="-", operand=n("x"))
    assert parse_expr("-(1)") == lit(-1)


def test_literal_helpers() -> None:
    assert parse_duration("1w2d3h4m5s6ms") == timedelta(
        weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6
    )
    assert parse_timestamp("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=UTC)
    assert decode_string('"\\t"') == "\t"
    with pytest.raises(ValueError, match="control character U\\+0009"):
        decode_string('"\t"')


def test_durations_do_not_swallow_names() -> None:
    # `2days` is not a duration followed by `ays`: the lexer refuses both.
    with pytest.raises(CompileError):
        parse_expr("2days")


# ---------------------------------------------------------------- spans


def test_spans_of_an_expression() -> None:
    e = parse_expr('  event.target.environment == "p"', "f.policy")
    assert isinstance(e, Binary)
    assert (e.span.file, e.span.line, e.span.column, e.span.end_column) == ("f.policy", 1, 3, 34)
    left = e.left
    assert isinstance(left, Attr)
    assert (left.span.start, left.span.end) == (2, 26)
    assert (left.obj.span.column, left.obj.span.end_column) == (3, 15)
    assert (e.right.span.column, e.right.span.end_column) == (31, 34)


def test_spans_across_lines() -> None:
    m = parse_module("package p\nconst X = [\n  1,\n  2]\n")
    span = m.consts[0].value.span
    assert (span.line, span.column, span.end_line, span.end_column) == (2, 11, 4, 5)
    assert m.consts[0].name.span.column == 7


def test_spans_are_not_part_of_equality() -> None:
    a = parse_module("package p\nconst X = 1 + 2\nrule r { layer audit on model.* require X > 1 }")
    b = parse_module(
        "package   p\n\n// comment\nconst X =\n  1 +\n  2\n"
        "rule r {\n  require X > 1\n  on model.*\n  layer audit\n}\n"
    )
    assert a == b
    assert a.consts[0].span != b.consts[0].span


def test_declaration_spans_point_at_names() -> None:
    m = parse_module(
        "package gxp.x\nimport gxp.common as c\n\nrule   r1 {\n  layer audit\n  on model.*\n"
        "  require true\n}\n"
    )
    assert (m.package.span.line, m.package.span.column, m.package.span.end_column) == (1, 9, 14)
    imp = m.imports[0]
    assert imp.package.span.column == 8 and imp.alias is not None and imp.alias.span.column == 22
    r = m.rules[0]
    assert (r.name.span.line, r.name.span.column) == (4, 8)
    assert (r.layer and r.layer.span.line, r.on[0].span.column) == (5, 6)
    assert r.requires[0].span.line == 7 and r.requires[0].expr.span.column == 11


# ---------------------------------------------------------------- declarations


RULE_SOURCE = """package gxp.deployment
import gxp.common
import gxp.util as u
/// Two independent approvals.
/// Second line.
rule two_person {
  title "Two-person rule"
  layer oversight
  severity critical
  enforce soft
  override by "qa_lead", "qa"
  on model.deploy_requested, model.*
  refs "21 CFR 11.10(g)", "EU GMP Annex 11"
  when event.target.environment == "production"
  require len(subject.approvals) >= 2 else "needs two approvals"
  require true
  message "{subject.name} v{subject.version}: {{ok}}"
}
"""


def test_module_shape() -> None:
    m = parse_module(RULE_SOURCE, "d.policy")
    assert m.path == "d.policy" and m.source == RULE_SOURCE
    assert m.package.value == "gxp.deployment"
    assert [(i.package.value, i.local_name) for i in m.imports] == [
        ("gxp.common", "common"),
        ("gxp.util", "u"),
    ]
    (r,) = m.rules
    assert r.name.value == "two_person"
    assert r.doc == "Two independent approvals.\nSecond line."
    assert r.title == "Two-person rule"
    assert (r.layer and r.layer.value, r.severity and r.severity.value) == ("oversight", "critical")
    assert r.enforce is not None and r.enforce.value == "soft"
    assert r.override_by == ("qa_lead", "qa")
    assert [p.value for p in r.on] == ["model.deploy_requested", "model.*"]
    assert r.refs == ("21 CFR 11.10(g)", "EU GMP Annex 11")
    assert r.when == Binary(
        op="==",
        left=Attr(obj=Attr(obj=n("event"), name="target"), name="environment"),
        right=lit("production"),
    )
    assert [q.message for q in r.requires] == ["needs two approvals", None]
    assert r.message is not None
    assert r.message.parts == (
        Attr(obj=n("subject"), name="name"),
        " v",
        Attr(obj=n("subject"), name="version"),
        ": {ok}",
    )
    assert r.repeated == ()


def test_clause_order_does_not_matter_and_repeats_are_recorded() -> None:
    m = parse_module(
        "package p\nrule r { require a on x.y layer audit require b layer privacy on z.w }"
    )
    (r,) = m.rules
    assert [q.expr for q in r.requires] == [n("a"), n("b")]
    assert r.layer is not None and r.layer.value == "audit"
    assert [(k, s.column) for k, s in r.repeated] == [("layer", 49), ("on", 63)]


def test_constants_and_doc_comments() -> None:
    m = parse_module('package p\n/// The QA roles.\nconst QA = {"qa"}\nconst N = 2 // trailing\n')
    assert [(c.name.value, c.doc) for c in m.consts] == [("QA", "The QA roles."), ("N", "")]
    assert m.consts[0].value == SetLit(items=(lit("qa"),))


def test_comments_anywhere() -> None:
    m = parse_module("package p /* a */\n// b\nconst /* c */ X = 1 // d\n/* e\n f */")
    assert m.consts[0].value == lit(1)


def test_template_holes_have_file_positions() -> None:
    m = parse_module(
        'package p\nrule r { layer audit on x.y require true message "a {subject.name} b" }'
    )
    msg = m.rules[0].message
    assert msg is not None
    hole = msg.parts[1]
    assert isinstance(hole, Attr)
    assert (hole.span.line, hole.span.column, hole.span.end_column) == (2, 54, 66)
    assert msg.parts[0] == "a " and msg.parts[2] == " b"


def test_template_escapes_and_json_escapes() -> None:
    m = parse_module(
        'package p\nrule r { layer audit on x.y require true message "{{x}} \\u00e9 \\"q\\"" }'
    )
    assert m.rules[0].message is not None
    assert m.rules[0].message.parts == ('{x} é "q"',)


# ---------------------------------------------------------------- tests


def test_test_blocks() -> None:
    m = parse_module(
        """package p
test "one approval" {
  at 2026-03-01T12:00:00Z
  given model_version "mv-1" { name: "tox", "odd key": 1, approvals: [
      {signer: "u2", time: 2026-02-01T00:00:00Z, n: -1.5e2, ok: true, none: null},
  ], }
  event model.deploy_requested "mv-1" by "u3" at 2026-03-02T00:00:00+01:00 {
    target: { environment: "production" }
  }
  expect deny
  expect fail two_person message "needs 2"
  event approval.recorded "mv-1"
  expect pass gxp.x.rule
}
"""
    )
    (t,) = m.tests
    assert t.name == "one approval"
    assert t.at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    given, ev, out, rule, ev2, rule2 = t.steps
    assert isinstance(given, ast.GivenEntity)
    assert (given.kind.value, given.id) == ("model_version", "mv-1")
    assert given.attributes == {
        "name": "tox",
        "odd key": 1,
        "approvals": [
            {"signer": "u2", "time": "2026-02-01T00:00:00Z", "n": -150.0, "ok": True, "none": None}
        ],
    }
    assert isinstance(ev, ast.TestEvent)
    assert (ev.type.value, ev.subject_id, ev.actor) == ("model.deploy_requested", "mv-1", "u3")
    assert ev.time == datetime(2026, 3, 1, 23, tzinfo=UTC)
    assert ev.attributes == {"target": {"environment": "production"}}
    assert out == ast.ExpectOutcome("deny")
    assert rule == ast.ExpectRule("fail", ast.Ident("two_person"), "needs 2")
    assert ev2 == ast.TestEvent(ast.Ident("approval.recorded"), "mv-1")
    assert rule2 == ast.ExpectRule("pass", ast.Ident("gxp.x.rule"))


def test_empty_file_needs_a_package() -> None:
    with pytest.raises(CompileError) as info:
        parse_module("")
    assert info.value.diagnostics[0].code is Code.UNEXPECTED_EOF
    assert parse_module("package p") == ast.Module(package=ast.Ident("p"))


def _spec_policy_blocks() -> list[str]:
    return re.findall(r"```policy\n(.*?)```", SPEC.read_text("utf-8"), re.S)


def test_spec_first_example_compiles_and_its_test_passes() -> None:
    first = _spec_policy_blocks()[0]
    report = run_tests(compile_sources({"first.policy": first}))
    assert report.passed and len(report.results) == 1


def test_spec_policy_test_example_passes() -> None:
    (example,) = [b for b in _spec_policy_blocks() if b.startswith("test ")]
    source = (
        "package gxp.deployment\n"
        "rule validation_reviewed {\n  layer audit\n  enforce soft\n"
        '  override by "qa_lead"\n  on model.deploy_requested\n'
        '  require has(subject.labels["validation_report"]) else "validation not reviewed"\n'
        "}\n" + example
    )
    report = run_tests(compile_sources({"example.policy": source}))
    assert report.passed, [(r.name, r.failures, r.error) for r in report.results]
