"""Stage one and two of parsing: lark (LALR) parse tree → frozen AST.

Nothing downstream of this module sees a lark object. Syntax errors become
`Diagnostic`s with a span and a human list of what was expected.
"""

from __future__ import annotations

import json
import re
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

from policyengine.language import ast
from policyengine.language.ast import DURATION_UNITS, Span
from policyengine.language.diagnostics import Code, CompileError, Diagnostic

__all__ = ["grammar_text", "parse_expr", "parse_module"]


def grammar_text() -> str:
    return resources.files("policyengine.language").joinpath("grammar.lark").read_text("utf-8")


@cache
def _parser() -> Lark:
    # LALR with the contextual lexer: linear time, and keywords stay usable as
    # attribute names after `.` because the lexer only offers NAME there.
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
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
    return str(json.loads(raw))


# ---------------------------------------------------------------- transformer


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
        etype, subject, actor, at, data = items
        return ast.TestEvent(
            self.ident(etype),
            decode_string(str(subject)),
            decode_string(str(actor)) if actor is not None else None,
            parse_timestamp(str(at)) if at is not None else None,
            data if data is not None else {},
            self.meta_span(meta),
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
        return (k, value)

    def data_list(self, items: list[Any]) -> list[Any]:
        return [i for i in items if i is not None] if items != [None] else []

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

    def data_null(self, _: list[Any]) -> None:
        return None

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
        return ast.ListLit(items=tuple(i for i in items if i is not None), span=self.meta_span(meta))

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
            raise CompileError(
                [
                    Diagnostic(
                        Code.BAD_TEMPLATE,
                        f"malformed placeholder `{token}` in message",
                        bad,
                        hint="write `{expression}` for a value, `{{` or `}}` for a literal brace",
                    )
                ]
            )
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

_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "DURATION": "a duration like `48h`",
    "TIMESTAMP": "a timestamp like `2026-01-31T00:00:00Z`",
    "EVENT_PATTERN": "an event type like `model.deploy_requested` or `model.*`",
    "CMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
    "QUANT": "`all`, `any` or `none`",
    "OUTCOME": "an outcome (`allow`, `deny`, `review_required`, `allow_with_warnings`)",
    "RULE_STATUS": "a rule status (`pass`, `fail`, `not_applicable`, `error`)",
    "SIGNED_NUMBER": "a number",
    "DOC_LINE": "a doc comment",
    "$END": "end of file",
}


def _expected_text(expected: set[str], parser: Lark) -> str:
    names: set[str] = set()
    for term in expected:
        if term in _TOKEN_NAMES:
            names.add(_TOKEN_NAMES[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
            value = pattern.value if pattern.type == "str" else None
        except KeyError:
            value = None
        names.add(f"`{value}`" if value else term.lower())
    ordered = sorted(names, key=lambda n: (not n.startswith("`"), n))
    if len(ordered) > 8:
        ordered = [*ordered[:8], "…"]
    return ", ".join(ordered)


_EXAMPLES: dict[str, list[str]] = {
    "use `==` to compare values; `=` only appears in `const NAME = value`": [
        'package p\nrule r { require event.x = 1 }',
        'package p\nrule r { when event.x = "a" require true }',
    ],
    "a rule needs a name: `rule my_rule { … }`": ['package p\nrule { require true }'],
    "every file starts with `package NAME` (e.g. `package gxp.deployment`)": [
        "rule r { require true }",
        'const X = 1',
        "import a",
    ],
    "`&&`, `||` and `!` are written `and`, `or` and `not`": [
        "package p\nrule r { require true && false }",
        "package p\nrule r { require true || false }",
    ],
}


def _syntax_diagnostic(err: UnexpectedInput, text: str, file: str, parser: Lark) -> Diagnostic:
    hint: str | None = None
    try:
        label = err.match_examples(parser.parse, _EXAMPLES, use_accepts=True)
        hint = str(label) if label else None
    except Exception:  # match_examples re-parses; never let a hint crash the report
        hint = None

    if isinstance(err, UnexpectedEOF):
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        span = Span(file, len(text), len(text), line, col, line, col)
        exp = _expected_text(set(err.expected), parser)
        return Diagnostic(
            Code.UNEXPECTED_EOF,
            f"unexpected end of file; expected {exp}",
            span,
            hint or "a `{` may be missing its closing `}`",
        )
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            line = text.count("\n") + 1
            col = len(text) - (text.rfind("\n") + 1) + 1
            span = Span(file, len(text), len(text), line, col, line, col)
            exp = _expected_text(set(err.accepts or err.expected), parser)
            return Diagnostic(
                Code.UNEXPECTED_EOF,
                f"unexpected end of file; expected {exp}",
                span,
                hint or "a `{` may be missing its closing `}`",
            )
        span = Span(
            file,
            tok.start_pos or 0,
            tok.end_pos or 0,
            tok.line or 1,
            tok.column or 1,
            tok.end_line or 1,
            tok.end_column or 1,
        )
        exp = _expected_text(set(err.accepts or err.expected), parser)
        if tok.type == "DOC_LINE" and hint is None:
            hint = "doc comments (`///`) go right before a `rule` or `const`; use `//` otherwise"
        return Diagnostic(Code.SYNTAX, f"unexpected `{tok}`; expected {exp}", span, hint)
    if isinstance(err, UnexpectedCharacters):
        line, col = err.line, err.column
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        span = Span(file, err.pos_in_stream, err.pos_in_stream + 1, line, col, line, col + 1)
        exp = _expected_text(set(err.allowed or ()), parser)
        if ch == '"' and hint is None:
            hint = "strings cannot span lines; check for a missing closing `\"`"
        if ch == "'" and hint is None:
            hint = 'strings use double quotes: `"text"`'
        return Diagnostic(
            Code.UNEXPECTED_CHAR, f"unexpected character `{ch}`; expected {exp}", span, hint
        )
    span = Span(file, 0, 0, 1, 1, 1, 1)
    return Diagnostic(Code.SYNTAX, f"syntax error: {err}", span)


def _build(tree: Tree[Token], builder: _Builder, text: str) -> Any:
    try:
        return builder.transform(tree)
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
        diag = _syntax_diagnostic(e, text, file, parser)
        if line:
            sp = diag.span
            diag = Diagnostic(
                diag.code,
                diag.message,
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
