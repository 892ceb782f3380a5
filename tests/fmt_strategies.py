"""Hypothesis strategies for random, well-formed policy ASTs (formatter round trips).

Unlike `tests/strategies.py` (source text of well-typed expressions), these build
AST nodes directly, with every node kind and no regard for types, so the
formatter has to find the parentheses, escapes and line breaks itself.

Only ASTs that some source text can produce are generated; the exclusions are
exactly the parser's own normalisations:
* `-` applied to a number or duration literal is folded into a negative literal
  by the parser, so `Unary("-", Literal(<number>))` never occurs;
* `true`, `false`, `null`, `not`, `all`, `any`, `none` and `count` are never
  names (and never called), and `distinct` never names a `count` variable;
* message placeholders contain no strings or sets (`"`, `{`, `}` end a hole);
* sets are never empty (`{}` is not an expression);
* adjacent literal parts of a message are merged, as the parser merges them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from policyengine.language import ast

__all__ = [
    "data_values",
    "exprs",
    "hole_exprs",
    "modules",
    "rules",
    "templates",
    "tests_",
]

# Keywords of the language that the contextual lexer still reads as names in
# expression position are included on purpose.
NAMES = [*"abx", "y2", "_t", "subject", "event", "now", "QA_ROLES", "in", "or", "and", "for"]
NAMES += ["where", "distinct", "layer", "message", "pass", "allow", "at", "by", "else"]
ATTRS = [*NAMES, "true", "null", "not", "all", "count", "approvals", "environment"]
FUNCS = ["has", "len", "matches", "lower", "sum", "distinct", "passed", "f_1"]
EVENT_PATTERNS = ["model.deployed", "model.*", "*", "dataset.registered", "a1.b_2.c*"]

names = st.sampled_from(NAMES)
idents = st.sampled_from(["r", "rule_2", "two_person", "QA", "audit", "hard", "x_y"])
dotted = st.lists(idents, min_size=1, max_size=3).map(".".join)
# No surrogates: a policy file is UTF-8 text.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
line_texts = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20).map(
    str.strip
)

durations = st.integers(-(10**12), 10**12).map(lambda ms: timedelta(milliseconds=ms))
timestamps = st.datetimes(
    min_value=datetime(1000, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
).map(lambda d: d.astimezone(UTC))
numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    durations,
)


def _lit(value: Any) -> ast.Literal:
    return ast.Literal(value=value)


def _literals(with_strings: bool) -> st.SearchStrategy[ast.Expr]:
    values: list[st.SearchStrategy[Any]] = [
        numbers,
        timestamps,
        st.booleans(),
        st.none(),
    ]
    if with_strings:
        values.append(texts)
    return st.one_of(values).map(_lit)


def _is_number_literal(e: ast.Expr) -> bool:
    return isinstance(e, ast.Literal) and type(e.value) in (int, float, timedelta)


def _extend(children: st.SearchStrategy[ast.Expr], sets: bool) -> st.SearchStrategy[ast.Expr]:
    some = st.lists(children, min_size=0, max_size=3).map(tuple)
    optional = st.none() | children
    options: list[st.SearchStrategy[ast.Expr]] = [
        st.builds(ast.Attr, obj=children, name=st.sampled_from(ATTRS)),
        st.builds(ast.Index, obj=children, key=children),
        st.builds(ast.Unary, op=st.just("not"), operand=children),
        st.builds(
            ast.Unary,
            op=st.just("-"),
            operand=children.filter(lambda e: not _is_number_literal(e)),
        ),
        st.builds(
            ast.Binary,
            op=st.sampled_from(
                ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "+", "-", "*", "/", "%", "??"]
            ),
            left=children,
            right=children,
        ),
        st.builds(
            ast.BoolOp,
            op=st.sampled_from(["and", "or"]),
            operands=st.lists(children, min_size=2, max_size=4).map(tuple),
        ),
        st.builds(ast.ListLit, items=some),
        st.builds(ast.Call, func=st.sampled_from(FUNCS), args=some),
        st.builds(
            ast.Quantifier,
            kind=st.sampled_from(["all", "any", "none"]),
            var=names,
            collection=children,
            where=optional,
            body=optional,
        ),
        st.builds(
            ast.Quantifier,
            kind=st.just("count"),
            var=names.filter(lambda n: n != "distinct"),
            collection=children,
            where=optional,
            distinct_key=optional,
        ),
        st.builds(ast.ListComp, item=children, var=names, collection=children, where=optional),
    ]
    if sets:
        items = st.lists(children, min_size=1, max_size=3).map(tuple)
        options.append(st.builds(ast.SetLit, items=items))
    return st.one_of(options)


def _exprs(with_strings: bool) -> st.SearchStrategy[ast.Expr]:
    base = _literals(with_strings) | st.builds(ast.Name, id=names)
    return st.recursive(base, lambda c: _extend(c, sets=with_strings), max_leaves=12)


exprs = _exprs(with_strings=True)
hole_exprs = _exprs(with_strings=False)


@st.composite
def templates(draw: st.DrawFn) -> ast.Template:
    parts: list[str | ast.Expr] = []
    for part in draw(st.lists(st.one_of(texts.filter(bool), hole_exprs), max_size=4)):
        if isinstance(part, str) and parts and isinstance(parts[-1], str):
            parts[-1] += part
        else:
            parts.append(part)
    return ast.Template(tuple(parts))


def _ident(value: str) -> ast.Ident:
    return ast.Ident(value)


docs = st.lists(line_texts, max_size=3).map("\n".join)
optional_text = st.none() | texts
words = st.lists(texts, max_size=3).map(tuple)

rules = st.builds(
    ast.Rule,
    name=idents.map(_ident),
    doc=docs,
    title=optional_text,
    layer=st.none() | idents.map(_ident),
    severity=st.none() | idents.map(_ident),
    enforce=st.none() | idents.map(_ident),
    on=st.lists(st.sampled_from(EVENT_PATTERNS).map(_ident), max_size=3).map(tuple),
    when=st.none() | exprs,
    requires=st.lists(
        st.builds(ast.Requirement, expr=exprs, message=optional_text), max_size=3
    ).map(tuple),
    message=st.none() | templates(),
    refs=words,
    override_by=words,
    review=st.none()
    | st.builds(
        ast.ReviewClause,
        roles=st.lists(texts, min_size=1, max_size=3).map(tuple),
        within=st.integers(1, 10**12).map(lambda ms: timedelta(milliseconds=ms)),
    ),
)

timestamp_texts = st.tuples(timestamps, st.sampled_from(["Z", "+01:00", "-05:30"])).map(
    lambda t: t[0].strftime("%Y-%m-%dT%H:%M:%S") + (".25" if t[0].microsecond else "") + t[1]
)
data_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
        timestamp_texts,
    ),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(texts | names, c, max_size=3),
    max_leaves=8,
)
data_objects = st.dictionaries(texts | names | st.sampled_from(ATTRS), data_values, max_size=4)

steps = st.one_of(
    st.builds(ast.GivenEntity, kind=idents.map(_ident), id=texts, attributes=data_objects),
    st.builds(
        ast.TestEvent,
        type=st.sampled_from(EVENT_PATTERNS).map(_ident),
        subject_id=texts,
        actor=optional_text,
        time=st.none() | timestamps,
        attributes=data_objects,
        actor_roles=st.none() | st.lists(texts, max_size=3).map(tuple),
    ).filter(lambda e: e.actor is not None or e.actor_roles is None),
    st.builds(
        ast.ExpectOutcome,
        outcome=st.sampled_from(["allow", "allow_with_warnings", "deny", "review_required"]),
    ),
    st.builds(
        ast.ExpectRule,
        status=st.sampled_from(["pass", "fail", "not_applicable", "error"]),
        rule=dotted.map(_ident),
        message_contains=optional_text,
    ),
)

tests_ = st.builds(
    ast.Test,
    name=texts,
    at=st.none() | timestamps,
    steps=st.lists(steps, max_size=5).map(tuple),
)


def _sorted_imports(imports: list[ast.Import]) -> tuple[ast.Import, ...]:
    """The formatter sorts imports; generate them in that order."""
    return tuple(sorted(imports, key=lambda i: (i.package.value, i.alias.value if i.alias else "")))


modules = st.builds(
    ast.Module,
    package=dotted.map(_ident),
    imports=st.lists(
        st.builds(ast.Import, package=dotted.map(_ident), alias=st.none() | idents.map(_ident)),
        max_size=3,
    ).map(_sorted_imports),
    consts=st.lists(
        st.builds(ast.Const, name=idents.map(_ident), value=exprs, doc=docs), max_size=3
    ).map(tuple),
    rules=st.lists(rules, max_size=3).map(tuple),
    tests=st.lists(tests_, max_size=2).map(tuple),
)
