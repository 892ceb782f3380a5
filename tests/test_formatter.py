"""The policy formatter: round trips, idempotence, comments and the canonical style."""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fmt_strategies import exprs, modules, templates
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from policyengine import CompileError
from policyengine.language import ast
from policyengine.language.diagnostics import Code
from policyengine.language.formatter import collect_comments, format_module, format_source
from policyengine.language.parser import parse_expr, parse_module

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- helpers


def shape(node: Any) -> Any:
    """A type-exact, span-free picture of an AST: `1 == 1.0 == True` in Python,
    but not in a policy, so plain `==` on nodes would hide a formatter bug."""
    if isinstance(node, ast.Module):
        imports = sorted(node.imports, key=lambda i: (i.package.value, shape(i.alias)))
        return ("Module", shape(node.package), shape(imports), *map(shape, (
            node.consts, node.rules, node.tests)))  # fmt: skip
    if is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            *(shape(getattr(node, f.name)) for f in fields(node) if f.compare),
        )
    if isinstance(node, tuple | list):
        return (type(node).__name__, *map(shape, node))
    if isinstance(node, dict):
        return ("dict", *((k, shape(v)) for k, v in node.items()))
    if isinstance(node, float):
        return ("float", repr(node))
    if isinstance(node, datetime):
        return ("datetime", node.isoformat(), node.utcoffset())
    return (type(node).__name__, node)


def roundtrip(src: str, path: str = "<test>") -> str:
    """Format `src` and check the two promises: same meaning, and a fixed point."""
    out = format_source(src, path)
    assert shape(parse_module(out, path)) == shape(parse_module(src, path))
    assert format_source(out, path) == out, "formatting is not idempotent"
    return out


def expr_text(e: ast.Expr) -> str:
    """How the formatter writes one expression (as the value of a constant)."""
    out = format_module(ast.Module(ast.Ident("p"), consts=(ast.Const(ast.Ident("X"), e),)))
    return out.removeprefix("package p\n\nconst X = ").removesuffix("\n")


# ---------------------------------------------------------------- every policy in the repo


def _policy_files() -> list[Path]:
    found: set[Path] = set()
    for pattern in ("policies/**/*.policy", "spec/**/*.policy", "tests/fixtures/**/*.policy"):
        found.update(ROOT.glob(pattern))
    return sorted(found)


def _conformance_policies() -> list[tuple[str, str]]:
    """Policy texts embedded in the conformance suite (lists of lines, or text)."""
    out: list[tuple[str, str]] = []
    for path in sorted((ROOT / "spec" / "conformance").glob("*.json")):
        try:
            cases = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        for i, case in enumerate(cases if isinstance(cases, list) else []):
            policy = case.get("policy") if isinstance(case, dict) else None
            texts = policy.values() if isinstance(policy, dict) else [policy]
            for j, text in enumerate(texts):
                if isinstance(text, list) and all(isinstance(t, str) for t in text):
                    text = "\n".join(text) + "\n"
                if isinstance(text, str):
                    out.append((f"{path.name}[{i}].{j}", text))
    return out


@pytest.mark.parametrize("path", _policy_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_repo_policy_round_trips(path: Path) -> None:
    src = path.read_text("utf-8")
    try:
        parse_module(src, str(path))
    except CompileError:
        with pytest.raises(CompileError):  # a deliberately broken fixture
            format_source(src, str(path))
        return
    out = roundtrip(src, str(path))
    assert sorted(c.text for c in collect_comments(out)) == sorted(
        c.text.rstrip() for c in collect_comments(src)
    ), "a comment was lost or duplicated"


def test_conformance_policies_round_trip() -> None:
    cases = _conformance_policies()
    checked = 0
    for name, src in cases:
        try:
            parse_module(src, name)
        except CompileError:
            continue
        try:
            roundtrip(src, name)
        except CompileError as err:  # a case about a repeated clause: refused, not mangled
            assert [d.code for d in err.diagnostics] == [Code.REPEATED_CLAUSE]
            continue
        checked += 1
    assert checked or not cases, "no conformance policy parsed"


def test_the_repo_has_policies_to_check() -> None:
    assert len([p for p in _policy_files() if p.parts[-2] != "broken"]) >= 3


# ---------------------------------------------------------------- tricky inputs

TRICKY = {
    "precedence": """package p
const A = -(a - b)
const B = not (a and b)
const C = (a ?? b).c
const D = (a ?? b) ?? c
const E = a ?? (b ?? c)
const F = -a.b ?? c
const G = (-1).x
const H = a ?? (-1)
const I = 1 - -1
const J = -(-x)
const K = (a == b) == c
const L = a - (b - c)
const M = (a - b) - c
const N = a / (b * c)
const O = not not a
const P = (not a) == b
const Q = (a or b) and (c or d)
const R = a or (b or c)
const S = ((a or b) or c)
const T = -(1 + 2)
const U = -(1)
const V = - -5
const W = (x in y) in z
const X = a not in (b not in c)
const Y = -(-1).x
const Z = (a + b).c[(d)]
""",
    "literals": r"""package p
const A = "tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 é {braces}"
const B = [1.5, 1.0e5, 2.5E-3, 0.1, 100000000000000000000.0, 3.0e-10, 1.0e999]
const C = [90m, 48h, 1h30m, 1500ms, 2w, 0s, 0ms, 7d12h, 1d24h60m, -30d]
const D = [2026-03-01T00:00:00Z, 2026-03-01T01:30:00+01:30, 2026-03-01T00:00:00.250Z]
const E = [true, false, null, -0.0, -7, 123456789012345678901234567890]
const F = {"only"}
const G = [[], [[]], [1, [2, {3}]]]
""",
    "quantifiers": """package p
rule r {
  require all(x in xs) and any(x in xs: x) and none(x in xs where x: not x)
  require count(x in xs) + count(x in xs where x > 1) + count(distinct x.k for x in xs where x)
  require [x * 2 for x in xs where x > 0] == [x for x in (xs ?? [])]
  require count(distinct (a ?? b) for a in [x for x in y] where all(z in a: z)) >= -1
}
""",
    "templates": r"""package p
rule r {
  message "{{literal}} {a.b} and {count(x in xs where x > 1)}{c}}} \"q\" \\ {{{d}}} {[x for x in y]}"
  require a else "else {not a template}"
}
""",  # noqa: E501
    "clauses in any order, keywords as names": """package p
rule r {
  message "m"
  require true
  when in == for
  refs "a", "b"
  on model.*, *
  override by "qa", "qa_lead"
  enforce soft
  severity high
  layer audit
  title "T"
  require event.layer.message.true == distinct(where)
}
""",
    "tests": r"""package p
test "t \"quoted\"" {
  expect allow
  at 2026-03-01T12:00:00+02:00
  given model_version "mv-1" {name: "tox", "two words": 1, "": [], nested: {"k-1": {}},
    times: [2026-01-01T00:00:00Z, "2026-01-01T00:00:00.5+01:00"], n: -1.5e-7, big: 1e400, z: -0}
  event model.deploy_requested "mv-1"
  event model.deployed "mv-1" by "u1" at 2026-03-01T00:00:00Z {target: {environment: "production",},}
  event model.deployed "mv-1" {}
  expect fail gxp.other.rule message "needs {2}"
  expect not_applicable r
}
""",  # noqa: E501
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_inputs_round_trip(name: str) -> None:
    roundtrip(TRICKY[name])


def test_minimal_parentheses() -> None:
    out = roundtrip(TRICKY["precedence"])
    consts = dict(line.removeprefix("const ").split(" = ", 1) for line in out.splitlines()[2:])
    assert consts == {
        "A": "-(a - b)",
        "B": "not (a and b)",
        "C": "(a ?? b).c",
        "D": "(a ?? b) ?? c",
        "E": "a ?? b ?? c",
        "F": "-a.b ?? c",
        "G": "(-1).x",
        "H": "a ?? (-1)",
        "I": "1 - -1",
        "J": "-(-x)",
        "K": "(a == b) == c",
        "L": "a - (b - c)",
        "M": "a - b - c",
        "N": "a / (b * c)",
        "O": "not not a",
        "P": "(not a) == b",
        "Q": "(a or b) and (c or d)",
        "R": "a or (b or c)",
        "S": "(a or b) or c",  # the parentheses are in the AST: kept
        "T": "-(1 + 2)",
        "U": "-1",
        "V": "5",
        "W": "(x in y) in z",
        "X": "a not in (b not in c)",
        "Y": "-(-1).x",
        "Z": "(a + b).c[d]",
    }


def test_literals_are_canonical() -> None:
    out = roundtrip(TRICKY["literals"])
    lines = dict(line.removeprefix("const ").split(" = ", 1) for line in out.splitlines()[2:])
    assert lines["A"] == r'"tab\there \"q\" \\ / é 😀 é {braces}"'
    assert lines["B"] == "[1.5, 100000.0, 0.0025, 0.1, 1.0e+20, 3.0e-10, 1.0e999]"
    assert lines["C"] == "[1h30m, 2d, 1h30m, 1s500ms, 14d, 0s, 0s, 7d12h, 2d1h, -30d]"
    assert lines["D"] == "[2026-03-01T00:00:00Z, 2026-03-01T00:00:00Z, 2026-03-01T00:00:00.25Z]"
    assert lines["E"] == "[true, false, null, -0.0, -7, 123456789012345678901234567890]"
    assert lines["G"] == "[[], [[]], [1, [2, {3}]]]"


def test_floats_round_trip_exactly() -> None:
    for value in (0.1, 1 / 3, 1e-05, 5e-324, 1.7976931348623157e308, 1e16, 2.0**60, 123.0):
        text = expr_text(ast.Literal(value=value))
        parsed = parse_expr(text)
        assert isinstance(parsed, ast.Literal)
        assert parsed.value == value and type(parsed.value) is float, text
        assert parse_expr(expr_text(ast.Literal(value=-value))) == ast.Literal(value=-value)
    assert expr_text(ast.Literal(value=math.inf)) == "1.0e999"


def test_durations_use_the_largest_units() -> None:
    cases = {
        timedelta(hours=48): "2d",
        timedelta(minutes=90): "1h30m",
        timedelta(milliseconds=1500): "1s500ms",
        timedelta(days=30): "30d",
        timedelta(0): "0s",
        timedelta(days=-1, hours=23): "-1h",
        timedelta(seconds=3661, milliseconds=1): "1h1m1s1ms",
    }
    for value, text in cases.items():
        assert expr_text(ast.Literal(value=value)) == text


def test_templates_keep_holes_and_escape_braces() -> None:
    out = roundtrip(TRICKY["templates"])
    assert (
        r'message "{{literal}} {a.b} and {count(x in xs where x > 1)}{c}}} \"q\" \\ {{{d}}} '
        r'{[x for x in y]}"' in out
    )
    assert 'require a else "else {not a template}"' in out


def test_test_blocks_use_bare_keys_and_bare_timestamps() -> None:
    out = roundtrip(TRICKY["tests"])
    assert out == (
        'package p\n\ntest "t \\"quoted\\"" {\n'
        "  at 2026-03-01T10:00:00Z\n"
        "  expect allow\n"
        '  given model_version "mv-1" {\n'
        '    name: "tox",\n'
        '    "two words": 1,\n'
        '    "": [],\n'
        '    nested: { "k-1": {} },\n'
        "    times: [2026-01-01T00:00:00Z, 2026-01-01T00:00:00.5+01:00],\n"
        "    n: -1.5e-07,\n"
        "    big: 1.0e999,\n"
        "    z: 0,\n"
        "  }\n"
        '  event model.deploy_requested "mv-1"\n'
        '  event model.deployed "mv-1" by "u1" at 2026-03-01T00:00:00Z {\n'
        '    target: { environment: "production" },\n'
        "  }\n"
        '  event model.deployed "mv-1"\n'
        '  expect fail gxp.other.rule message "needs {2}"\n'
        "  expect not_applicable r\n"
        "}\n"
    )


def test_nulls_in_test_data_lists_survive() -> None:
    # Found by the module round trip: the parser used to drop `null` list items.
    src = 'package p\ntest "t" {\n  given d "x" { a: [null], b: [1, null], c: [], d: null }\n}\n'
    step = parse_module(roundtrip(src)).tests[0].steps[0]
    assert isinstance(step, ast.GivenEntity)
    assert step.attributes == {"a": [None], "b": [1, None], "c": [], "d": None}


# ---------------------------------------------------------------- property tests

_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check_module(m: ast.Module) -> None:
    text = format_module(m)
    back = parse_module(text)
    assert shape(back) == shape(m), text
    assert format_module(back) == text, "not idempotent"
    assert format_source(text) == text


@_SETTINGS
@given(exprs)
@example(
    ast.Unary(op="-", operand=ast.BoolOp(op="or", operands=(ast.Name(id="a"), ast.Name(id="b"))))
)
@example(ast.Attr(obj=ast.Binary(op="??", left=ast.Name(id="a"), right=ast.Name(id="b")), name="c"))
@example(ast.Binary(op="??", left=ast.Literal(value=-1), right=ast.Literal(value=-2)))
@example(ast.Unary(op="-", operand=ast.Unary(op="-", operand=ast.Literal(value="s"))))
def test_any_expression_round_trips(e: ast.Expr) -> None:
    _check_module(ast.Module(ast.Ident("p"), consts=(ast.Const(ast.Ident("X"), e),)))


@_SETTINGS
@given(modules)
def test_any_module_round_trips(m: ast.Module) -> None:
    _check_module(m)


@_SETTINGS
@given(templates())
def test_any_message_template_round_trips(t: ast.Template) -> None:
    rule = ast.Rule(ast.Ident("r"), message=t)
    _check_module(ast.Module(ast.Ident("p"), rules=(rule,)))


# ---------------------------------------------------------------- line breaking


def test_long_conditions_break_at_and_or_with_a_hanging_indent() -> None:
    src = (
        'package p\nrule r {\n  require has(subject.approvals) and subject.name != "" and '
        'subject.version != "" or subject.owner == "someone with a long name"\n}\n'
    )
    assert roundtrip(src) == (
        "package p\n\nrule r {\n"
        '  require has(subject.approvals) and subject.name != "" and subject.version != ""\n'
        '    or subject.owner == "someone with a long name"\n'
        "}\n"
    )


def test_long_counts_break_before_where_and_else_gets_its_own_line() -> None:
    src = """package p
rule r {
  require count(distinct a.signer for a in subject.approvals where a.meaning == "approved" and a.role in QA_ROLES and a.signer != subject.created_by) >= 2 else "needs two independent approvals"
  require all(fs in subject.training_run.feature_sets: matches(fs.code_commit ?? "", common.COMMIT) and all(d in fs.inputs: matches(d.digest ?? "", common.DIGEST)))
}
"""  # noqa: E501
    out = roundtrip(src)
    assert out == (
        "package p\n\nrule r {\n"
        "  require count(distinct a.signer for a in subject.approvals\n"
        '    where a.meaning == "approved" and a.role in QA_ROLES'
        " and a.signer != subject.created_by) >= 2\n"
        '    else "needs two independent approvals"\n'
        "  require all(fs in subject.training_run.feature_sets:\n"
        '    matches(fs.code_commit ?? "", common.COMMIT)\n'
        '      and all(d in fs.inputs: matches(d.digest ?? "", common.DIGEST)))\n'
        "}\n"
    )
    assert max(map(len, out.splitlines())) <= 100


def test_every_breakable_line_fits_in_100_columns() -> None:
    for path in _policy_files():
        src = path.read_text("utf-8")
        try:
            out = format_source(src, str(path))
        except CompileError:
            continue
        for line in out.splitlines():
            if len(line) > 100:  # only an unbreakable string or comment may overrun
                assert '"' in line or "//" in line, f"{path}: {line}"


# ---------------------------------------------------------------- comments

COMMENTED = """// header: licence text

package   gxp.test   // package trailing
import gxp.z
// about common
import gxp.common as c  /* alias */

/// Doc for the rule,
/// on two lines.
// between doc and rule
rule   r1 {  // header trailing
  // before require
  require a and /* mid */ b
     // own line inside expr
     and c   // trailing of require
  layer audit // layer trailing
  /* block before title */ title "t"
  on model.deployed,
     model.registered // after on
  // dangling at end
}  // after rule close

const X = 1 // x trailing
/* multi
   line */
const Y = {1,
  2, // two
  3}

test "t" { // test header
  at 2026-01-01T00:00:00Z
  given model_version "mv" {
    name: "a", // name
    // own line in data
    v: [1, // one
        2]
    // before the closing brace
  }
  // before event
  event model.deployed "mv" by "u" // event trail
  expect allow
  // dangling test
}
// trailing file comment

/* end block */
"""

COMMENTED_FORMATTED = """// header: licence text

package gxp.test  // package trailing

// about common
import gxp.common as c  /* alias */
import gxp.z

const X = 1  // x trailing

/* multi
   line */
const Y = {
  1,
  2,  // two
  3,
}

// between doc and rule
/// Doc for the rule,
/// on two lines.
rule r1 {  // header trailing
  /* block before title */
  title "t"
  layer audit  // layer trailing
  on model.deployed, model.registered  // after on
  // before require
  require a  /* mid */
    and b
    // own line inside expr
    and c  // trailing of require
  // dangling at end
}  // after rule close

test "t" {  // test header
  at 2026-01-01T00:00:00Z
  given model_version "mv" {
    name: "a",  // name
    // own line in data
    v: [
      1,  // one
      2,
    ],
    // before the closing brace
  }
  // before event
  event model.deployed "mv" by "u"  // event trail
  expect allow
  // dangling test
}

// trailing file comment

/* end block */
"""


def test_comments_stay_where_they_were_written() -> None:
    assert roundtrip(COMMENTED) == COMMENTED_FORMATTED


def test_comments_are_never_lost() -> None:
    out = roundtrip(COMMENTED)
    assert [c.text.rstrip() for c in collect_comments(COMMENTED)] == sorted(
        (c.text for c in collect_comments(out)),
        key=[c.text.rstrip() for c in collect_comments(COMMENTED)].index,
    )


def test_comment_after_the_last_operand_does_not_swallow_code() -> None:
    src = """package p
rule r {
  require count(x in xs where a // first
     and b // second
  ) >= 2
  require (a or // why a
    b)  // after
}
"""
    out = roundtrip(src)
    assert "  ) >= 2" in out
    assert "and b  // second" in out
    assert "a  // why a" in out


def test_comments_like_text_inside_strings_are_not_comments() -> None:
    src = 'package p\nrule r {\n  message "see http://x/*y*/ {a}"  // real\n}\n'
    out = roundtrip(src)
    assert [c.text for c in collect_comments(out)] == ["// real"]
    assert 'message "see http://x/*y*/ {a}"  // real' in out


def test_collect_comments_spans() -> None:
    src = 'package p // one\n/* two\n */ const X = "//"\n/// doc\nconst Y = 1\n'
    got = [(c.text, c.span.line, c.span.column, c.span.end_line) for c in collect_comments(src)]
    assert got == [("// one", 1, 11, 1), ("/* two\n */", 2, 1, 3)]


def test_blank_lines_after_section_comments_are_kept() -> None:
    src = (
        'package p\n\n// section one\n\ntest "a" {\n  expect allow\n}\n\n'
        '// ---- section two\n// more\n\ntest "b" {\n  expect deny\n}\n'
    )
    assert roundtrip(src) == src


# Comments dropped at random between tokens: the formatter must keep every one,
# keep the meaning, never let a `//` swallow code, and reach a fixed point.

_COMMENT_KINDS = ("// c{n}\n", "/* b{n} */", "\n// own{n}\n", "/* m{n}\n  x */")


_STRING = re.compile(r'"([^"\\\n]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')


def _gaps(text: str) -> list[int]:
    """Offsets of whitespace between tokens (not in strings, comments or doc lines)."""
    skip = {c.span.start: c.span.end for c in collect_comments(text)}
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            i = _STRING.match(text, i).end()  # type: ignore[union-attr]
        elif i in skip:  # a comment, and the newline that ends a `//` one
            i = skip[i] + (text[i + 1] == "/")
        elif text.startswith("///", i):
            i = text.find("\n", i) % (len(text) + 1) + 1  # the newline ends the doc line
        else:
            if text[i] in " \n":
                out.append(i)
            i += 1
    return out


def _sprinkle(text: str, picks: list[tuple[int, int]]) -> str:
    gaps = _gaps(text)
    inserts = sorted(((gaps[p % len(gaps)], k, n) for n, (p, k) in enumerate(picks)), reverse=True)
    for pos, kind, n in inserts:
        text = text[:pos] + " " + _COMMENT_KINDS[kind].format(n=n) + text[pos:]
    return text


def _check_comments_survive(src: str) -> None:
    out = roundtrip(src)
    before = [c.text.rstrip() for c in collect_comments(src)]
    after = [c.text for c in collect_comments(out)]
    joined = "\n".join(after)
    assert all(b in joined for b in before), (before, out)
    assert sum(t.count("//") + t.count("/*") for t in after) == sum(
        t.count("//") + t.count("/*") for t in before
    )


_picks = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3)), min_size=1, max_size=6)


@settings(_SETTINGS, max_examples=60)
@given(st.sampled_from([*sorted(TRICKY.values()), COMMENTED]), _picks)
def test_random_comments_survive_in_tricky_inputs(src: str, picks: list[tuple[int, int]]) -> None:
    _check_comments_survive(_sprinkle(src, picks))


@settings(_SETTINGS, max_examples=60)
@given(modules, _picks)
def test_random_comments_survive_in_any_module(m: ast.Module, picks: list[tuple[int, int]]) -> None:
    _check_comments_survive(_sprinkle(format_module(m), picks))


def test_random_comments_survive_in_repo_policies() -> None:
    files = [p for p in _policy_files() if p.parts[-2] != "broken"][:4]

    @settings(_SETTINGS, max_examples=40)
    @given(st.sampled_from(files), _picks)
    def check(path: Path, picks: list[tuple[int, int]]) -> None:
        _check_comments_survive(_sprinkle(path.read_text("utf-8"), picks))

    check()


# ---------------------------------------------------------------- golden style


GOLDEN_IN = """package   gxp.deployment
import gxp.zeta as z
const  QA_ROLES={"qa","domain_expert"}
import gxp.common
test "deploy"{event model.deployed "mv-1" by "u1" {target:{environment:"production"}} expect deny}
/// Two approvals.
rule two_person {
  message "{subject.name} needs 2"
  require count(distinct a.signer for a in subject.approvals where a.role in QA_ROLES) >= 2 else "needs two"
  on model.deploy_requested,model.deployed
  enforce soft override by "qa_lead"
  when (event.target.environment == "production")
  layer oversight  severity critical
  title "Two-person rule"
  refs "21 CFR 11.10(g)"
}
const LIMIT = 7d
"""  # noqa: E501

GOLDEN_OUT = """package gxp.deployment

import gxp.common
import gxp.zeta as z

const QA_ROLES = {"qa", "domain_expert"}
const LIMIT = 7d

test "deploy" {
  event model.deployed "mv-1" by "u1" { target: { environment: "production" } }
  expect deny
}

/// Two approvals.
rule two_person {
  title "Two-person rule"
  layer oversight
  severity critical
  enforce soft
  override by "qa_lead"
  on model.deploy_requested, model.deployed
  refs "21 CFR 11.10(g)"
  when event.target.environment == "production"
  require count(distinct a.signer for a in subject.approvals where a.role in QA_ROLES) >= 2
    else "needs two"
  message "{subject.name} needs 2"
}
"""


def test_golden_canonical_style() -> None:
    assert roundtrip(GOLDEN_IN) == GOLDEN_OUT
    assert format_source(GOLDEN_OUT) == GOLDEN_OUT


def test_defaults_that_were_not_written_stay_unwritten() -> None:
    out = roundtrip("package p\nrule r { on * require true }\n")
    assert out == "package p\n\nrule r {\n  on *\n  require true\n}\n"


def test_empty_blocks() -> None:
    assert roundtrip('package p\nrule r {}\ntest "t" {}') == (
        'package p\n\nrule r {}\n\ntest "t" {}\n'
    )


# ---------------------------------------------------------------- errors


def test_syntax_errors_raise_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        format_source("package p\nrule r { require }\n", "bad.policy")
    assert err.value.diagnostics[0].span.file == "bad.policy"


def test_a_clause_written_twice_is_not_silently_dropped() -> None:
    with pytest.raises(CompileError) as err:
        format_source('package p\nrule r {\n  title "a"\n  title "b"\n}\n')
    assert err.value.diagnostics[0].code == Code.REPEATED_CLAUSE
    assert "`title`" in err.value.diagnostics[0].message
    with pytest.raises(CompileError) as err:
        format_source(
            'package p\ntest "t" {\n  at 2026-01-01T00:00:00Z\n  at 2026-01-02T00:00:00Z\n}'
        )
    assert err.value.diagnostics[0].code == Code.REPEATED_CLAUSE


@pytest.mark.parametrize(
    "expr",
    [
        ast.SetLit(items=()),
        ast.Name(id="true"),
        ast.Call(func="count"),
        ast.Literal(value=math.nan),
        ast.Literal(value=datetime(2026, 1, 1)),
        ast.Literal(value=timedelta(microseconds=1)),
        ast.BoolOp(op="and", operands=(ast.Name(id="a"),)),
        ast.Quantifier(kind="count", var="distinct", collection=ast.Name(id="xs")),
    ],
)
def test_asts_no_source_could_produce_are_refused(expr: ast.Expr) -> None:
    with pytest.raises(ValueError):
        expr_text(expr)


def test_placeholders_that_cannot_be_written_are_refused() -> None:
    rule = ast.Rule(ast.Ident("r"), message=ast.Template((ast.Literal(value="s"),)))
    with pytest.raises(ValueError, match="placeholder"):
        format_module(ast.Module(ast.Ident("p"), rules=(rule,)))


def test_comments_need_the_source() -> None:
    module = parse_module("package p // c\n")
    comments = collect_comments(module.source)
    assert format_module(module, comments) == "package p  // c\n"
    bare = ast.Module(module.package)
    with pytest.raises(ValueError, match="source"):
        format_module(bare, comments)
