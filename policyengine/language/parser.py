"""Stage one and two of parsing: lark (LALR) parse tree → frozen AST.

Nothing downstream of this module sees a lark object. Syntax errors become
`Diagnostic`s with a span and a human list of what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.tree import Meta
from lark.visitors import _vargs_meta

from policyengine.language import ast
from policyengine.language.ast import DURATION_UNITS, Span
from policyengine.language.diagnostics import Code, CompileError, Diagnostic, did_you_mean

__all__ = ["grammar_text", "parse_expr", "parse_module"]


def grammar_text() -> str:
    return resources.files("policyengine.language").joinpath("grammar.lark").read_text("utf-8")


class _WholeWords:
    """Post-lexer that makes NAME lexable in every parser state.

    The contextual lexer only tries the terminals a state accepts, so where NAME is
    not among them a keyword matched as a prefix: `requirex == 1` lexed as
    `require x == 1` and `requires` split into `require` + `s`. With NAME always
    on offer, lark's keyword handling (NAME tokens equal to a keyword are retyped)
    applies everywhere, so keywords only ever match whole words; a NAME where the
    grammar wants none is an ordinary syntax error that names the whole word.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


@cache
def _parser() -> Lark:
    # LALR with the contextual lexer: linear time, and keywords stay usable as
    # attribute names after `.` because the lexer only offers NAME there.
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_WholeWords(),
        start=["start", "expr"],
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
    )


# ---------------------------------------------------------------- literals

_DURATION_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")


def parse_duration(text: str) -> timedelta:
    total = timedelta()
    for amount, unit in _DURATION_PART.findall(text):
        total += int(amount) * DURATION_UNITS[unit]
    return total


def parse_timestamp(text: str) -> datetime:
    from datetime import UTC

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(UTC)


def decode_string(raw: str) -> str:
    """Decode a STRING token (JSON escapes) into its value."""
    try:
        return str(json.loads(raw))
    except json.JSONDecodeError as exc:
        bad = raw[exc.pos] if 0 <= exc.pos < len(raw) else ""
        if bad and ord(bad) < 0x20:
            raise ValueError(
                f"control character U+{ord(bad):04X} inside a string; "
                f"write it as an escape such as `\\t`"
            ) from None
        raise ValueError(f"bad string {raw}: {exc.msg.lower()}") from None


# ---------------------------------------------------------------- transformer


_DATA_NULL = object()  # `null` in test data, until its list or pair unwraps it


class _Builder(Transformer[Token, Any]):
    """Turns a lark tree into AST nodes. Offsets let message-template holes, parsed
    on their own, report spans in the enclosing file."""

    def __init__(self, file: str, pos: int = 0, line: int = 0, column: int = 0) -> None:
        super().__init__(visit_tokens=True)
        self.file = file
        self._pos = pos
        self._line = line
        self._col = column

    # spans -------------------------------------------------------------
    def _mk(self, start: int, end: int, line: int, col: int, eline: int, ecol: int) -> Span:
        if self._line:  # template hole: always a single line inside the string
            return Span(
                self.file,
                self._pos + start,
                self._pos + end,
                self._line,
                self._col + col - 1,
                self._line,
                self._col + ecol - 1,
            )
        return Span(self.file, start, end, line, col, eline, ecol)

    def tok_span(self, t: Token) -> Span:
        return self._mk(
            t.start_pos or 0,
            t.end_pos or 0,
            t.line or 1,
            t.column or 1,
            t.end_line or 1,
            t.end_column or 1,
        )

    def meta_span(self, m: Meta) -> Span:
        if getattr(m, "empty", True):
            return Span.unknown(self.file)
        return self._mk(m.start_pos, m.end_pos, m.line, m.column, m.end_line, m.end_column)

    def ident(self, t: Token) -> ast.Ident:
        return ast.Ident(str(t), self.tok_span(t))

    # tokens ------------------------------------------------------------
    def STRING(self, t: Token) -> Token:
        return t

    # top level ---------------------------------------------------------
    @v_args(meta=True)
    def start(self, meta: Meta, items: list[Any]) -> ast.Module:
        package, *rest = items
        return ast.Module(
            package=package,
            imports=tuple(i for i in rest if isinstance(i, ast.Import)),
            consts=tuple(i for i in rest if isinstance(i, ast.Const)),
            rules=tuple(i for i in rest if isinstance(i, ast.Rule)),
            tests=tuple(i for i in rest if isinstance(i, ast.Test)),
            monitors=tuple(i for i in rest if isinstance(i, ast.Monitor)),
            path=self.file,
        )

    @v_args(meta=True)
    def dotted_name(self, meta: Meta, parts: list[Token]) -> ast.Ident:
        return ast.Ident(".".join(str(p) for p in parts), self.meta_span(meta))

    def package_decl(self, items: list[ast.Ident]) -> ast.Ident:
        return items[0]

    @v_args(meta=True)
    def import_decl(self, meta: Meta, items: list[Any]) -> ast.Import:
        pkg, alias = items
        return ast.Import(
            pkg, self.ident(alias) if alias is not None else None, self.meta_span(meta)
        )

    def doc(self, lines: list[Token]) -> str:
        return "\n".join(str(line)[3:].strip() for line in lines)

    @v_args(meta=True)
    def const_decl(self, meta: Meta, items: list[Any]) -> ast.Const:
        doc, name, value = items
        return ast.Const(self.ident(name), value, doc, self.meta_span(meta))

    @v_args(meta=True)
    def rule_decl(self, meta: Meta, items: list[Any]) -> ast.Rule:
        doc, name, *clauses = items
        fields: dict[str, Any] = {}
        requires: list[ast.Requirement] = []
        repeated: list[tuple[str, Span]] = []
        for keyword, value, span in clauses:
            if keyword == "require":
                requires.append(value)
            elif keyword in fields:
                repeated.append((keyword, span))
            else:
                fields[keyword] = value
        span = self.meta_span(meta)
        return ast.Rule(
            name=self.ident(name),
            doc=doc,
            title=fields.get("title"),
            layer=fields.get("layer"),
            severity=fields.get("severity"),
            enforce=fields.get("enforce"),
            on=fields.get("on", ()),
            when=fields.get("when"),
            requires=tuple(requires),
            message=fields.get("message"),
            refs=fields.get("refs", ()),
            override_by=fields.get("override", ()),
            review=fields.get("review"),
            span=span,
            repeated=tuple(repeated),
        )

    # rule clauses return (keyword, value, span) -------------------------
    @v_args(meta=True)
    def layer_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("layer", self.ident(items[0]), self.meta_span(meta))

    @v_args(meta=True)
    def severity_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("severity", self.ident(items[0]), self.meta_span(meta))

    @v_args(meta=True)
    def enforce_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("enforce", self.ident(items[0]), self.meta_span(meta))

    @v_args(meta=True)
    def on_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("on", tuple(self.ident(t) for t in items), self.meta_span(meta))

    @v_args(meta=True)
    def when_clause(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        return ("when", items[0], self.meta_span(meta))

    @v_args(meta=True)
    def require_clause(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        expr, msg = items
        span = self.meta_span(meta)
        text = decode_string(str(msg)) if msg is not None else None
        return ("require", ast.Requirement(expr, text, span), span)

    @v_args(meta=True)
    def message_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("message", self.template(items[0]), self.meta_span(meta))

    @v_args(meta=True)
    def refs_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("refs", tuple(decode_string(str(t)) for t in items), self.meta_span(meta))

    @v_args(meta=True)
    def title_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("title", decode_string(str(items[0])), self.meta_span(meta))

    @v_args(meta=True)
    def override_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("override", tuple(decode_string(str(t)) for t in items), self.meta_span(meta))

    @v_args(meta=True)
    def review_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        *roles, within = items
        span = self.meta_span(meta)
        clause = ast.ReviewClause(
            tuple(decode_string(str(r)) for r in roles), parse_duration(str(within)), span
        )
        return ("review", clause, span)

    # monitors ----------------------------------------------------------
    @v_args(meta=True)
    def monitor_decl(self, meta: Meta, items: list[Any]) -> ast.Monitor:
        doc, name, *clauses = items
        fields: dict[str, Any] = {}
        checks: list[ast.FeatureCheck] = []
        repeated: list[tuple[str, Span]] = []
        for keyword, value, span in clauses:
            if keyword == "check":
                checks.append(value)
            elif keyword in fields:
                repeated.append((keyword, span))
            else:
                fields[keyword] = value
        return ast.Monitor(
            name=self.ident(name),
            doc=doc,
            title=fields.get("title"),
            severity=fields.get("severity"),
            refs=fields.get("refs", ()),
            models=fields.get("model", ()),
            baseline=fields.get("baseline"),
            window=fields.get("window"),
            time_column=fields.get("time_column"),
            checks=tuple(checks),
            actions=fields.get("breach", ()),
            span=self.meta_span(meta),
            repeated=tuple(repeated),
        )

    @v_args(meta=True)
    def model_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("model", tuple(decode_string(str(t)) for t in items), self.meta_span(meta))

    @v_args(meta=True)
    def baseline_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("baseline", decode_string(str(items[0])), self.meta_span(meta))

    @v_args(meta=True)
    def window_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        tok = items[0]
        value: timedelta | int = (
            parse_duration(str(tok)) if tok.type == "DURATION" else int(str(tok))
        )
        return ("window", value, self.meta_span(meta))

    @v_args(meta=True)
    def time_column_clause(self, meta: Meta, items: list[Token]) -> tuple[str, Any, Span]:
        return ("time_column", decode_string(str(items[0])), self.meta_span(meta))

    @v_args(meta=True)
    def check_clause(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        kind, *rest = items
        features = tuple(i for i in rest if isinstance(i, ast.Ident))
        conditions = tuple(i for i in rest if isinstance(i, ast.MetricCondition))
        span = self.meta_span(meta)
        return ("check", ast.FeatureCheck(self.ident(kind), features, conditions, span), span)

    def feature(self, items: list[Token]) -> ast.Ident:
        tok = items[0]
        text = decode_string(str(tok)) if tok.type == "STRING" else str(tok)
        return ast.Ident(text, self.tok_span(tok))

    @v_args(meta=True)
    def metric_cond(self, meta: Meta, items: list[Any]) -> ast.MetricCondition:
        name, part, op, number = items
        span = self.meta_span(meta)
        metric = str(name) + (f".{part}" if part is not None else "")
        first = self.tok_span(name)
        last = self.tok_span(part) if part is not None else first
        ident = ast.Ident(
            metric,
            Span(
                first.file,
                first.start,
                last.end,
                first.line,
                first.column,
                last.end_line,
                last.end_column,
            ),
        )
        return ast.MetricCondition(ident, str(op), float(str(number)), span)

    @v_args(meta=True)
    def breach_clause(self, meta: Meta, items: list[Any]) -> tuple[str, Any, Span]:
        return ("breach", tuple(items), self.meta_span(meta))

    @v_args(meta=True)
    def alert_action(self, meta: Meta, items: list[Token]) -> ast.BreachAction:
        return ast.BreachAction("alert", severity=self.ident(items[0]), span=self.meta_span(meta))

    @v_args(meta=True)
    def review_action(self, meta: Meta, items: list[Token]) -> ast.BreachAction:
        *roles, within = items
        return ast.BreachAction(
            "review",
            roles=tuple(decode_string(str(r)) for r in roles),
            within=parse_duration(str(within)),
            span=self.meta_span(meta),
        )

    @v_args(meta=True)
    def trigger_action(self, meta: Meta, items: list[Token]) -> ast.BreachAction:
        return ast.BreachAction("trigger", target=self.ident(items[0]), span=self.meta_span(meta))

    def template(self, tok: Token) -> ast.Template:
        return parse_template(tok, self.file, self.tok_span(tok))

    # tests -------------------------------------------------------------
    @v_args(meta=True)
    def test_decl(self, meta: Meta, items: list[Any]) -> ast.Test:
        name, *stmts = items
        at: datetime | None = None
        steps: list[ast.TestStep] = []
        for s in stmts:
            if isinstance(s, datetime):
                at = s
            else:
                steps.append(s)
        return ast.Test(decode_string(str(name)), at, tuple(steps), self.meta_span(meta))

    def at_stmt(self, items: list[Token]) -> datetime:
        return parse_timestamp(str(items[0]))

    @v_args(meta=True)
    def given_stmt(self, meta: Meta, items: list[Any]) -> ast.GivenEntity:
        kind, ident, data = items
        return ast.GivenEntity(
            self.ident(kind), decode_string(str(ident)), data, self.meta_span(meta)
        )

    @v_args(meta=True)
    def event_stmt(self, meta: Meta, items: list[Any]) -> ast.TestEvent:
        etype, subject, actor, roles, at, data = items
        return ast.TestEvent(
            self.ident(etype),
            decode_string(str(subject)),
            decode_string(str(actor)) if actor is not None else None,
            parse_timestamp(str(at)) if at is not None else None,
            data if data is not None else {},
            self.meta_span(meta),
            tuple(roles) if roles is not None else None,
        )

    @v_args(meta=True)
    def expect_outcome(self, meta: Meta, items: list[Token]) -> ast.ExpectOutcome:
        return ast.ExpectOutcome(str(items[0]), self.meta_span(meta))

    @v_args(meta=True)
    def expect_rule(self, meta: Meta, items: list[Any]) -> ast.ExpectRule:
        status, rule, msg = items
        return ast.ExpectRule(
            str(status),
            rule,
            decode_string(str(msg)) if msg is not None else None,
            self.meta_span(meta),
        )

    def data_object(self, pairs: list[Any]) -> dict[str, Any]:
        return dict(p for p in pairs if p is not None)

    def data_pair(self, items: list[Any]) -> tuple[str, Any]:
        key, value = items
        k = decode_string(str(key)) if key.type == "STRING" else str(key)
        return (k, None if value is _DATA_NULL else value)

    def data_list(self, items: list[Any]) -> list[Any]:
        # A bare None is lark's placeholder for `[]`; a written `null` is _DATA_NULL.
        return [None if i is _DATA_NULL else i for i in items if i is not None]

    def data_string(self, items: list[Token]) -> str:
        return decode_string(str(items[0]))

    def data_number(self, items: list[Token]) -> int | float:
        text = str(items[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def data_timestamp(self, items: list[Token]) -> str:
        return str(items[0])

    def data_true(self, _: list[Any]) -> bool:
        return True

    def data_false(self, _: list[Any]) -> bool:
        return False

    def data_null(self, _: list[Any]) -> object:
        return _DATA_NULL

    # expressions -------------------------------------------------------
    @v_args(meta=True)
    def string(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(value=decode_string(str(items[0])), span=self.meta_span(meta))

    @v_args(meta=True)
    def int(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(value=int(items[0]), span=self.meta_span(meta))

    @v_args(meta=True)
    def float(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(value=float(items[0]), span=self.meta_span(meta))

    @v_args(meta=True)
    def duration(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(value=parse_duration(str(items[0])), span=self.meta_span(meta))

    @v_args(meta=True)
    def timestamp(self, meta: Meta, items: list[Token]) -> ast.Literal:
        return ast.Literal(value=parse_timestamp(str(items[0])), span=self.meta_span(meta))

    @v_args(meta=True)
    def true(self, meta: Meta, _: list[Any]) -> ast.Literal:
        return ast.Literal(value=True, span=self.meta_span(meta))

    @v_args(meta=True)
    def false(self, meta: Meta, _: list[Any]) -> ast.Literal:
        return ast.Literal(value=False, span=self.meta_span(meta))

    @v_args(meta=True)
    def null(self, meta: Meta, _: list[Any]) -> ast.Literal:
        return ast.Literal(value=None, span=self.meta_span(meta))

    @v_args(meta=True)
    def name(self, meta: Meta, items: list[Token]) -> ast.Name:
        return ast.Name(id=str(items[0]), span=self.meta_span(meta))

    @v_args(meta=True)
    def attr(self, meta: Meta, items: list[Any]) -> ast.Attr:
        return ast.Attr(obj=items[0], name=str(items[1]), span=self.meta_span(meta))

    @v_args(meta=True)
    def index(self, meta: Meta, items: list[Any]) -> ast.Index:
        return ast.Index(obj=items[0], key=items[1], span=self.meta_span(meta))

    @v_args(meta=True)
    def call(self, meta: Meta, items: list[Any]) -> ast.Call:
        func, *args = items
        return ast.Call(
            func=str(func), args=tuple(a for a in args if a is not None), span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def list_lit(self, meta: Meta, items: list[Any]) -> ast.ListLit:
        return ast.ListLit(
            items=tuple(i for i in items if i is not None), span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def set_lit(self, meta: Meta, items: list[Any]) -> ast.SetLit:
        return ast.SetLit(items=tuple(items), span=self.meta_span(meta))

    @v_args(meta=True)
    def list_comp(self, meta: Meta, items: list[Any]) -> ast.ListComp:
        item, var, coll, where = items
        return ast.ListComp(
            item=item, var=str(var), collection=coll, where=where, span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def quantifier(self, meta: Meta, items: list[Any]) -> ast.Quantifier:
        kind, var, coll, where, body = items
        return ast.Quantifier(
            kind=str(kind),
            var=str(var),
            collection=coll,
            where=where,
            body=body,
            span=self.meta_span(meta),
        )

    @v_args(meta=True)
    def count(self, meta: Meta, items: list[Any]) -> ast.Quantifier:
        var, coll, where = items
        return ast.Quantifier(
            kind="count", var=str(var), collection=coll, where=where, span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def count_distinct(self, meta: Meta, items: list[Any]) -> ast.Quantifier:
        key, var, coll, where = items
        return ast.Quantifier(
            kind="count",
            var=str(var),
            collection=coll,
            where=where,
            distinct_key=key,
            span=self.meta_span(meta),
        )

    @v_args(meta=True)
    def or_op(self, meta: Meta, items: list[Any]) -> ast.Expr:
        if len(items) == 1:
            return items[0]  # type: ignore[no-any-return]
        return ast.BoolOp(op="or", operands=tuple(items), span=self.meta_span(meta))

    @v_args(meta=True)
    def and_op(self, meta: Meta, items: list[Any]) -> ast.Expr:
        if len(items) == 1:
            return items[0]  # type: ignore[no-any-return]
        return ast.BoolOp(op="and", operands=tuple(items), span=self.meta_span(meta))

    @v_args(meta=True)
    def not_op(self, meta: Meta, items: list[Any]) -> ast.Unary:
        return ast.Unary(op="not", operand=items[0], span=self.meta_span(meta))

    @v_args(meta=True)
    def neg(self, meta: Meta, items: list[Any]) -> ast.Expr:
        operand = items[0]
        # Fold `-<number>` so that negative literals stay literals.
        if isinstance(operand, ast.Literal) and type(operand.value) in (int, float, timedelta):
            return ast.Literal(value=-operand.value, span=self.meta_span(meta))
        return ast.Unary(op="-", operand=operand, span=self.meta_span(meta))

    @v_args(meta=True)
    def compare(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(
            op=str(items[1]), left=items[0], right=items[2], span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def arith(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(
            op=str(items[1]), left=items[0], right=items[2], span=self.meta_span(meta)
        )

    @v_args(meta=True)
    def in_op(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(op="in", left=items[0], right=items[1], span=self.meta_span(meta))

    @v_args(meta=True)
    def not_in_op(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(op="not in", left=items[0], right=items[1], span=self.meta_span(meta))

    @v_args(meta=True)
    def coalesce(self, meta: Meta, items: list[Any]) -> ast.Binary:
        return ast.Binary(op="??", left=items[0], right=items[1], span=self.meta_span(meta))


# ---------------------------------------------------------------- templates

_HOLE = re.compile(r"\{\{|\}\}|\{([^{}\"]*)\}|[{}]")


def parse_template(tok: Token, file: str, span: Span) -> ast.Template:
    """Split a message string into literal text and `{expr}` holes (`{{` and `}}` escape)."""
    raw = str(tok)[1:-1]
    parts: list[str | ast.Expr] = []
    text: list[str] = []
    last = 0

    def flush_text(upto: int) -> None:
        text.append(raw[last:upto])

    for m in _HOLE.finditer(raw):
        flush_text(m.start())
        last = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            text.append(token[0])
            continue
        inner = m.group(1)
        hole_col = span.column + 1 + m.start() + 1  # after the quote and the brace
        if inner is None or not inner.strip():
            bad = Span(
                file,
                span.start + 1 + m.start(),
                span.start + 1 + m.end(),
                span.line,
                hole_col - 1,
                span.line,
                hole_col - 1 + len(token),
            )
            what = {
                "{": "unclosed `{` in message",
                "}": "unmatched `}` in message",
            }.get(token, f"empty placeholder `{token}` in message")
            hint = "write `{expression}` for a value, `{{` or `}}` for a literal brace"
            close = raw.find("}", m.end())
            if token == "{" and close > 0 and '"' in raw[m.end() : close]:
                what = "a placeholder in a message cannot contain a string literal"
                hint = 'name the string with `const`, e.g. `const OWNER = "owner"`, and use it'
            raise CompileError([Diagnostic(Code.BAD_TEMPLATE, what, bad, hint=hint)])
        if "".join(text):
            parts.append(decode_string('"' + "".join(text) + '"'))
        text.clear()
        parts.append(
            parse_expr(
                inner, file, pos=span.start + 1 + m.start() + 1, line=span.line, column=hole_col
            )
        )
    flush_text(len(raw))
    if "".join(text):
        parts.append(decode_string('"' + "".join(text) + '"'))
    return ast.Template(tuple(parts), span)


# ---------------------------------------------------------------- errors

# How each terminal reads in "expected …" lists.
_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": 'a string like `"text"`',
    "INT": "an integer",
    "FLOAT": "a number",
    "DURATION": "a duration like `48h`",
    "TIMESTAMP": "a timestamp like `2026-01-31T00:00:00Z`",
    "EVENT_PATTERN": "an event type like `model.deployed` or `model.*`",
    "CMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
    "QUANT": "`all`, `any` or `none`",
    "OUTCOME": "an outcome (`allow`, `allow_with_warnings`, `review_required`, `deny`)",
    "RULE_STATUS": "a rule status (`pass`, `fail`, `not_applicable`, `error`)",
    "SIGNED_NUMBER": "a number",
    "DOC_LINE": "a doc comment",
    "$END": "the end of the file",
}

# Terminal groups that are summarised in one phrase instead of listed one by one.
_OPERAND = frozenset(
    {
        "NAME", "STRING", "INT", "FLOAT", "DURATION", "TIMESTAMP", "TRUE", "FALSE", "NULL",
        "LPAR", "LSQB", "LBRACE", "QUANT", "COUNT", "NOT", "MINUS",
    }
)  # fmt: skip
_OPERATORS = frozenset({"CMP_OP", "ADD_OP", "MUL_OP", "AND", "OR", "IN", "NOT", "DOT", "LSQB"})
_CLAUSES = {
    "TITLE": "title",
    "LAYER": "layer",
    "SEVERITY": "severity",
    "ENFORCE": "enforce",
    "OVERRIDE": "override",
    "ON": "on",
    "REFS": "refs",
    "WHEN": "when",
    "REQUIRE": "require",
    "MESSAGE": "message",
}
_MONITOR_CLAUSES = {
    "TITLE": "title",
    "SEVERITY": "severity",
    "REFS": "refs",
    "MODEL": "model",
    "BASELINE": "baseline",
    "WINDOW": "window",
    "TIME_COLUMN": "time_column",
    "CHECK_KIND": "numeric",
    "ON": "on breach",
}
_DECLARATIONS = frozenset({"IMPORT", "CONST", "RULE", "MONITOR", "TEST", "DOC_LINE"})
_DECLARATION_TEXT = "a declaration (`import`, `const`, `rule`, `monitor` or `test`)"
_TEST_STEPS = {"AT": "at", "GIVEN": "given", "EVENT": "event", "EXPECT": "expect"}
_OUTCOMES = ("allow", "allow_with_warnings", "review_required", "deny")
_RULE_STATUSES = ("pass", "fail", "not_applicable", "error")
# Words the lexer reads as quantifier keywords wherever an expression may start, so
# they cannot name a constant or a variable that an expression uses.
_QUANT_KEYWORDS = frozenset({"all", "any", "none", "count"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _term_text(term: str, parser: Lark) -> str | None:
    """The literal text of a keyword or punctuation terminal, or None for patterns."""
    try:
        pattern = parser.get_terminal(term).pattern
    except KeyError:
        return None
    return str(pattern.value) if pattern.type == "str" else None


def _join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def _expected_text(expected: set[str], parser: Lark) -> str:
    """A natural-language rendering of lark's set of acceptable terminals.

    Groups read as one phrase ("an expression", "an operator", "a rule clause"),
    so the list stays short and says what the user can actually write next.
    """
    terms = set(expected)
    phrases: list[str] = []
    if "NAME" in terms and len(terms & _OPERAND) >= 3:
        phrases.append("an expression")
        terms -= _OPERAND
    if len(terms & _OPERATORS) >= 3:
        phrases.append("an operator")
        terms = {t for t in terms - _OPERATORS if _term_text(t, parser) != "??"}
    if "MODEL" in terms and "CHECK_KIND" in terms:
        phrases.append("a monitor clause (`model`, `numeric`, `categorical`, `on breach`, …)")
        terms -= _MONITOR_CLAUSES.keys()
    if len(terms & _CLAUSES.keys()) >= 3:
        phrases.append("a rule clause (`layer`, `on`, `require`, …)")
        terms -= _CLAUSES.keys()
    if {"IMPORT", "CONST", "RULE", "TEST"} <= terms:
        phrases.append(_DECLARATION_TEXT)
        terms -= _DECLARATIONS
    if len(terms & _TEST_STEPS.keys()) >= 3:
        phrases.append("a test step (`given`, `event`, `expect` or `at`)")
        terms -= _TEST_STEPS.keys()
    rest: list[str] = []
    end = False
    for term in sorted(terms):
        if term == "$END":
            end = True
        elif term in _TOKEN_NAMES:
            rest.append(_TOKEN_NAMES[term])
        else:
            text = _term_text(term, parser)
            rest.append(f"`{text}`" if text else term.lower())
    # Punctuation and keywords first (they are the likely fix), descriptions after.
    rest.sort(key=lambda n: (not n.startswith("`"), n))
    items = phrases + rest + (["the end of the file"] if end else [])
    if len(items) > 6:
        items = [*items[:6], "…"]
    return _join_or(items)


_EXAMPLES: dict[str, list[str]] = {
    "every file starts with `package NAME` (e.g. `package gxp.deployment`)": [
        "rule r { require true }",
        "const X = 1",
        "import a",
        'test "t" { }',
    ],
    "a rule needs a name: `rule my_rule { … }`": ["package p\nrule { require true }"],
    "a constant is declared as `const NAME = value`": [
        "package p\nconst X 1",
        "package p\nconst = 1",
    ],
    "a message is one string; insert values with `{expression}` holes": [
        'package p\nrule r { message "a" + "b" }',
        'package p\nrule r { message "a" "b" }',
        "package p\nrule r { message subject.name }",
    ],
    'the text after `else` is one string: `require x else "why it failed"`': [
        "package p\nrule r { require true else subject.name }",
        'package p\nrule r { require true else "a" + "b" }',
    ],
    "write the event type without quotes, e.g. `on model.deployed`": [
        'package p\nrule r { on "model.deployed" }'
    ],
    'roles are strings: `override by "qa", "qa_lead"`': [
        "package p\nrule r { override by qa }",
        "package p\nrule r { override qa }",
    ],
    'references are strings: `refs "21 CFR 11.10(a)"`': ["package p\nrule r { refs CFR }"],
    'a title is a string: `title "Two-person rule"`': ["package p\nrule r { title Two }"],
    "write the value without quotes, e.g. `layer audit` or `enforce soft`": [
        'package p\nrule r { layer "audit" }',
        'package p\nrule r { severity "high" }',
        'package p\nrule r { enforce "soft" }',
    ],
    "there is no map literal; a set is written `{a, b}` and the empty list `[]`": [
        'package p\nrule r { require {"a": 1} }',
        "package p\nrule r { require {} }",
        "package p\nrule r { require 1 in {} }",
    ],
    "separate items with `,`": [
        "package p\nrule r { require [1 2] }",
        "package p\nrule r { require f(1 2) }",
    ],
    "a quantifier reads `all(x in items where filter: condition)`": [
        "package p\nrule r { require all(x: x) }",
        "package p\nrule r { require all(x, [1]) }",
        "package p\nrule r { require all([1]) }",
    ],
    "`count` takes a filter, not a condition: `count(x in items where condition)`": [
        "package p\nrule r { require count(x in [1]: true) }",
        "package p\nrule r { require count(x in [1] where true: true) }",
    ],
}


@cache
def _example_errors(start: str) -> tuple[tuple[str, int, frozenset[str], str, str], ...]:
    """Each example's error as (label, LALR state, acceptable terminals, token type,
    token text), computed once per start symbol."""
    parser = _parser()
    out: list[tuple[str, int, frozenset[str], str, str]] = []
    for label, texts in _EXAMPLES.items():
        for text in texts:
            try:
                parser.parse(text, start=start)
            except UnexpectedToken as ex:
                out.append(
                    (label, ex.state.position, frozenset(ex.accepts or ()), ex.token.type, ex.token)
                )
            except UnexpectedInput:
                continue
    return tuple(out)


def _example_hint(err: UnexpectedToken, start: str) -> str | None:
    """The label of the example whose error happened in the same parser state.

    Like lark's `match_examples`, but it compares only the state on top of the stack
    (and what it accepts), not the stack depth, so an example also matches when the
    same mistake sits deeper inside brackets, calls or later clauses.
    """
    state = getattr(err.state, "position", None)
    accepts = frozenset(err.accepts or ())
    found: str | None = None
    for label, position, ex_accepts, token_type, token in _example_errors(start):
        if position != state or ex_accepts != accepts:
            continue
        if token_type == err.token.type and token == err.token:
            return label
        found = found or label
    return found


def _word_at(text: str, pos: int) -> tuple[int, int] | None:
    """The identifier containing `pos`, so that `allowed` is reported whole even
    when the lexer split it into a keyword and a rest."""
    if not (0 <= pos < len(text)) or not (text[pos].isalnum() or text[pos] == "_"):
        return None
    start = pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    m = _WORD.match(text, start)
    return (start, m.end()) if m else None


def _previous_word(text: str, pos: int) -> str | None:
    """The identifier that ends right before `pos` (ignoring white space)."""
    i = pos
    while i > 0 and text[i - 1] in " \t\r\n":
        i -= 1
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
        j -= 1
    return text[j:i] if j < i else None


_OPENERS = {"{": "}", "[": "]", "(": ")"}


def _unclosed(text: str) -> tuple[str, int] | None:
    """The innermost bracket left open at the end of `text` (ignoring strings and
    comments), as (bracket, offset), or None when every bracket is closed."""
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 1
        elif c in _OPENERS:
            stack.append((c, i))
        elif c in ")]}" and stack and _OPENERS[stack[-1][0]] == c:
            stack.pop()
        i += 1
    return stack[-1] if stack else None


def _pos_span(text: str, file: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    eline = text.count("\n", 0, end) + 1
    ecol = end - (text.rfind("\n", 0, end) + 1) + 1
    return Span(file, start, end, line, col, eline, ecol)


def _eof_diagnostic(
    text: str, file: str, expected: set[str], parser: Lark, hint: str | None
) -> Diagnostic:
    # Point just after the last thing written: the line past a trailing newline
    # would render without any source to put a caret under.
    end = len(text.rstrip())
    last = _pos_span(text, file, end, end)
    span = Span(file, end, end, last.line, last.column, last.line, last.column + 1)
    open_ = _unclosed(text)
    if open_ is not None:
        bracket, at = open_
        closer = _OPENERS[bracket]
        opened = _pos_span(text, file, at, at + 1)
        return Diagnostic(
            Code.UNEXPECTED_EOF,
            f"unexpected end of file: the `{bracket}` on line {opened.line} is never closed",
            span,
            hint or f"add the missing `{closer}`",
            notes=((f"unclosed `{bracket}`", opened),),
        )
    return Diagnostic(
        Code.UNEXPECTED_EOF,
        f"unexpected end of file; expected {_expected_text(expected, parser)}",
        span,
        hint,
    )


def _token_hint(
    tok: Token, word: str, expected: set[str], text: str, file: str
) -> tuple[str, str, Span | None] | None:
    """A more precise (message, hint, span or None to keep the token's) for some
    common mistakes, or None."""
    if tok.type == "EQUAL" and "CMP_OP" in expected:
        return (
            "unexpected `=`; expected a comparison",
            "use `==` to compare values; `=` only appears in `const NAME = value`",
            None,
        )
    if tok.type in ("CMP_OP", "IN") and "CMP_OP" not in expected and "ADD_OP" in expected:
        return (
            f"unexpected `{word}`: comparisons do not chain",
            "write `a < b and b < c`, or add parentheses to compare a comparison's result",
            None,
        )
    is_word = _WORD.fullmatch(word) is not None
    if is_word and {"MODEL", "CHECK_KIND"} <= expected:
        words = [*_MONITOR_CLAUSES.values(), "categorical"]
        return (
            f"unknown monitor clause `{word}`",
            did_you_mean(word, words)
            or f"a monitor's clauses are {_join_or([f'`{c}`' for c in words])}",
            None,
        )
    if is_word and len(expected & _CLAUSES.keys()) >= 3:
        clauses = list(_CLAUSES.values())
        return (
            f"unknown rule clause `{word}`",
            did_you_mean(word, clauses)
            or f"a rule's clauses are {_join_or([f'`{c}`' for c in clauses])}",
            None,
        )
    if is_word and {"IMPORT", "CONST", "RULE", "TEST"} <= expected:
        return (
            f"unexpected `{word}`; expected {_DECLARATION_TEXT}",
            did_you_mean(word, ("import", "const", "rule", "monitor", "test"))
            or (
                f"`{word}` is a rule clause; clauses go inside `rule NAME {{ … }}`"
                if word in _CLAUSES.values()
                else "a file holds `import`, `const`, `rule`, `monitor` and `test` declarations"
            ),
            None,
        )
    if is_word and len(expected & _TEST_STEPS.keys()) >= 3:
        return (
            f"unknown test step `{word}`",
            did_you_mean(word, _TEST_STEPS.values())
            or "a test has `at`, `given`, `event` and `expect` steps",
            None,
        )
    if is_word and expected >= {"OUTCOME", "RULE_STATUS"}:
        return (
            f"unknown outcome or rule status `{word}`",
            did_you_mean(word, (*_OUTCOMES, *_RULE_STATUSES))
            or "write `expect deny` (an outcome) or `expect fail my_rule` (a rule status)",
            None,
        )
    if expected == {"LPAR"}:
        prev = _previous_word(text, tok.start_pos or 0)
        if prev in _QUANT_KEYWORDS:
            end = len(text[: tok.start_pos or 0].rstrip())
            return (
                f"`{prev}` is a keyword and cannot be used as a name here",
                f"rename it; `{prev}(…)` is the built-in quantifier",
                _pos_span(text, file, end - len(prev), end),
            )
    return None


_CHAR_HINTS = {
    "'": 'strings use double quotes: `"text"`',
    "&": "`&&`, `||` and `!` are written `and`, `or` and `not`",
    "|": "`&&`, `||` and `!` are written `and`, `or` and `not`",
    "!": "`&&`, `||` and `!` are written `and`, `or` and `not`; `!=` means not equal",
    "#": "comments start with `//` (or `/* … */`)",
    ";": "clauses and statements are not separated by `;`",
    "\u201c": 'use straight double quotes: `"text"`',
    "\u201d": 'use straight double quotes: `"text"`',
    "$": "names are letters, digits and `_`",
}


_PARTIAL_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T[0-9:.]*")


def _offsetless_timestamp(text: str, file: str, pos: int) -> Diagnostic | None:
    """`2026-03-01T00:00:00` lexes as arithmetic followed by junk; say what it is."""
    for m in _PARTIAL_TIMESTAMP.finditer(text, max(0, pos - 40), pos + 40):
        if m.start() <= pos <= m.end():
            ts = m.group(0)
            if re.fullmatch(r".{10}T\d{2}:\d{2}:\d{2}(\.\d+)?", ts):
                message = f"timestamp `{ts}` has no UTC offset"
                hint = f"write `{ts}Z` for UTC, or add an offset such as `+01:00`"
            else:
                message = f"incomplete timestamp `{ts}`"
                hint = f"write date, time and offset in full, e.g. `{ts[:10]}T00:00:00Z`"
            return Diagnostic(
                Code.BAD_LITERAL, message, _pos_span(text, file, m.start(), m.end()), hint
            )
    return None


def _syntax_diagnostic(
    err: UnexpectedInput, text: str, file: str, parser: Lark, start: str = "start"
) -> Diagnostic:
    """Translate a lark error into one diagnostic with a natural expected-list and a hint."""
    if isinstance(err, UnexpectedToken | UnexpectedCharacters):
        pos = err.pos_in_stream if isinstance(err, UnexpectedCharacters) else err.token.start_pos
        bad_ts = _offsetless_timestamp(text, file, pos or 0)
        if bad_ts is not None:
            return bad_ts
    hint: str | None = None
    # Only token errors: an unexpected character shares the parser state of unrelated
    # examples (`1 @` looks like `[1 2]`), so their hints would mislead.
    if isinstance(err, UnexpectedToken) and err.state is not None:
        hint = _example_hint(err, start)

    if isinstance(err, UnexpectedEOF):
        return _eof_diagnostic(text, file, set(err.expected), parser, hint)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        expected = set(err.accepts or err.expected)
        if tok.type == "$END":
            return _eof_diagnostic(text, file, expected, parser, hint)
        start_pos = tok.start_pos or 0
        end_pos = tok.end_pos or start_pos
        word = str(tok)
        bounds = _word_at(text, start_pos)
        if bounds is not None and (bounds[1] > end_pos or bounds[0] < start_pos):
            start_pos, end_pos = bounds
            word = text[start_pos:end_pos]
        span = _pos_span(text, file, start_pos, end_pos)
        special = _token_hint(tok, word, expected, text, file)
        if special is not None:
            message, special_hint, special_span = special
            return Diagnostic(Code.SYNTAX, message, special_span or span, hint or special_hint)
        if expected <= {"DOC_LINE", "CONST", "RULE", "MONITOR"} and hint is None:
            hint = "a doc comment (`///`) must come right before a `rule`, `monitor` or `const`"
        if tok.type == "DOC_LINE" and hint is None:
            hint = (
                "doc comments (`///`) go right before a `rule`, `monitor` or `const`;"
                " use `//` otherwise"
            )
        if tok.type == "RBRACE" and "$END" in expected and hint is None:
            hint = "this `}` has no matching `{`"
        if word in _CLAUSES.values() and hint is None and not expected & _CLAUSES.keys():
            hint = f"`{word}` is a rule clause; clauses go inside `rule NAME {{ … }}`"
        shown = word if len(word) <= 40 else word[:37] + "…"
        return Diagnostic(
            Code.SYNTAX,
            f"unexpected `{shown}`; expected {_expected_text(expected, parser)}",
            span,
            hint,
        )
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        span = _pos_span(text, file, pos, pos + 1)
        if ch == '"':
            return Diagnostic(
                Code.UNEXPECTED_CHAR,
                "unterminated string",
                span,
                hint or 'strings end on the line they start; add the closing `"`',
            )
        hint = _CHAR_HINTS.get(ch) or hint
        allowed = set(err.allowed or ())
        message = f"unexpected character `{ch}`"
        described = _expected_text(allowed, parser) if allowed else ""
        if described and described.count(",") < 3:
            message += f"; expected {described}"
        return Diagnostic(Code.UNEXPECTED_CHAR, message, span, hint)
    span = Span(file, 0, 0, 1, 1, 1, 1)
    return Diagnostic(Code.SYNTAX, f"syntax error: {err}", span)


@cache
def _dispatch() -> dict[str, tuple[Any, bool]]:
    """Rule name → (builder function, whether it takes `meta`), resolved once.

    Walking the tree with this table instead of `Transformer.transform` halves the
    time spent turning parse trees into AST (lark's generic dispatch re-resolves
    the callback and its wrapper for every node)."""
    table: dict[str, tuple[Any, bool]] = {}
    for name in dir(_Builder):
        attr = getattr(_Builder, name, None)
        wrapper = getattr(attr, "visit_wrapper", None)
        base = getattr(attr, "base_func", None)
        if wrapper is not None and base is not None:
            table[name] = (base, wrapper is _vargs_meta)
        elif callable(attr) and not name.startswith("_"):
            table[name] = (attr, False)
    return table


def _walk(tree: Tree[Token], builder: _Builder, table: dict[str, tuple[Any, bool]]) -> Any:
    children = [_walk(c, builder, table) if isinstance(c, Tree) else c for c in tree.children]
    entry = table.get(tree.data)
    if entry is None:  # a rule without a builder method: pass its children through
        return Tree(tree.data, children, tree.meta)
    fn, wants_meta = entry
    try:
        return fn(builder, tree.meta, children) if wants_meta else fn(builder, children)
    except (CompileError, VisitError):
        raise
    except Exception as exc:
        raise VisitError(str(tree.data), tree, exc) from exc  # type: ignore[no-untyped-call]


def _build(tree: Tree[Token], builder: _Builder, text: str) -> Any:
    try:
        return _walk(tree, builder, _dispatch())
    except VisitError as e:
        if isinstance(e.orig_exc, CompileError):
            raise e.orig_exc from None
        if isinstance(e.orig_exc, ValueError):
            node = e.obj
            meta = getattr(node, "meta", None)
            span = builder.meta_span(meta) if meta is not None else Span.unknown(builder.file)
            raise CompileError(
                [Diagnostic(Code.BAD_LITERAL, f"invalid literal: {e.orig_exc}", span)],
                {builder.file: text},
            ) from None
        raise


def parse_module(text: str, file: str = "<string>") -> ast.Module:
    """Parse one policy file. Raises `CompileError` with a single syntax diagnostic."""
    parser = _parser()
    try:
        tree = parser.parse(text, start="start")
    except UnexpectedInput as e:
        raise CompileError([_syntax_diagnostic(e, text, file, parser)], {file: text}) from None
    module: ast.Module = _build(tree, _Builder(file), text)
    return ast.Module(
        package=module.package,
        imports=module.imports,
        consts=module.consts,
        rules=module.rules,
        tests=module.tests,
        monitors=module.monitors,
        path=file,
        source=text,
    )


def parse_expr(
    text: str, file: str = "<expr>", *, pos: int = 0, line: int = 0, column: int = 0
) -> ast.Expr:
    """Parse a single expression (used for message holes, the REPL and tests)."""
    parser = _parser()
    try:
        tree = parser.parse(text, start="expr")
    except UnexpectedInput as e:
        diag = _syntax_diagnostic(e, text, file, parser, start="expr")
        if line:
            sp = diag.span
            message = diag.message
            if diag.code is Code.UNEXPECTED_EOF:  # the hole ended, not the file
                message = f"placeholder `{{{text}}}` ends too early" + (
                    message[message.index(";") :] if ";" in message else ""
                )
            diag = Diagnostic(
                Code.BAD_TEMPLATE if diag.code is Code.UNEXPECTED_EOF else diag.code,
                message,
                Span(
                    file,
                    pos + sp.start,
                    pos + sp.end,
                    line,
                    column + sp.column - 1,
                    line,
                    column + sp.end_column - 1,
                ),
                diag.hint,
            )
        raise CompileError([diag], {file: text}) from None
    expr: ast.Expr = _build(tree, _Builder(file, pos, line, column), text)
    return expr
