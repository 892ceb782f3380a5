"""The canonical policy formatter (`policyengine fmt`), in the spirit of gofmt.

One layout for every file means diffs show meaning, not taste. The formatter
prints the AST rather than patching text, so its output is canonical by
construction; comments, which the AST does not hold, are lexed separately and
re-attached to the declaration, clause or test step they were written against.

Nothing is added or dropped: defaults that were not written stay unwritten, and
`parse(format(src)) == parse(src)` (up to import order, which has no meaning).
Layout: `package`, imports sorted, constants, then rules and tests in source
order; rule clauses in one fixed order; two spaces per block level; expressions
break at the loosest `and`/`or`, before `where` and after `:` in quantifiers, and
inside long list, set and data literals, with a hanging indent of two.

Comments: an end-of-line comment stays at the end of the line of what it follows
(a declaration, clause, test step, `and`/`or` operand, or list, set or data
item); a comment on its own line stays before what follows it, or before the
closing `}` of its block. A comment anywhere else inside an expression moves to
just before its clause: never lost, never able to comment out code.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from lark import Token, Tree

from policyengine.language import ast
from policyengine.language.ast import Span
from policyengine.language.diagnostics import Code, CompileError, Diagnostic
from policyengine.language.parser import _parser, parse_module

__all__ = ["WIDTH", "Comment", "collect_comments", "format_module", "format_source"]

WIDTH = 100
"""Lines longer than this are broken where the layout allows (comments and long
string literals may still overrun it; they are never split)."""

CLAUSE_ORDER = (
    "title",
    "layer",
    "severity",
    "enforce",
    "override",
    "review",
    "on",
    "refs",
    "when",
    "require",
    "message",
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
# Identifiers the lexer always reads as keywords or literals where an expression
# name, a call or a `count` variable would go; an AST holding one cannot be written.
_RESERVED_NAMES = frozenset({"true", "false", "null", "not", "all", "any", "none", "count"})


# ---------------------------------------------------------------- comments


@dataclass(frozen=True, slots=True)
class Comment:
    """A `//` or `/* */` comment, verbatim, with its place in the source."""

    text: str
    span: Span


_STRING = re.compile(r'"([^"\\\n]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_INTERESTING = re.compile(r'["/]')


def collect_comments(text: str, file: str = "<string>") -> list[Comment]:
    """Every `//` and `/* */` comment in `text` (not `///` doc lines, which the AST keeps).

    A small scanner is enough: outside comments only string literals can contain
    `//` or `/*`, and their syntax is regular."""
    starts = _line_starts(text)
    out: list[Comment] = []
    pos = 0
    while (m := _INTERESTING.search(text, pos)) is not None:
        i = m.start()
        if text[i] == '"':
            s = _STRING.match(text, i)
            pos = s.end() if s else _line_end(text, i + 1)
        elif text.startswith("///", i):
            pos = _line_end(text, i)
        elif text.startswith("//", i):
            end = _line_end(text, i)
            out.append(Comment(text[i:end], _span_of(file, starts, i, end)))
            pos = end
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            end = len(text) if close < 0 else close + 2
            out.append(Comment(text[i:end], _span_of(file, starts, i, end)))
            pos = end
        else:
            pos = i + 1
    return out


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


def _span_of(file: str, starts: list[int], start: int, end: int) -> Span:
    line = bisect.bisect_right(starts, start)
    end_line = bisect.bisect_right(starts, max(start, end - 1))
    return Span(
        file,
        start,
        end,
        line,
        start - starts[line - 1] + 1,
        end_line,
        end - starts[end_line - 1] + 1,
    )


# ---------------------------------------------------------------- layout documents
# A small Wadler/Prettier document algebra: a group prints flat when it fits in
# what is left of the line, otherwise its line breaks become newlines.


@dataclass(frozen=True, slots=True)
class _Line:
    soft: bool = False  # flat: "" instead of " "


@dataclass(frozen=True, slots=True)
class _Group:
    doc: Doc


@dataclass(frozen=True, slots=True)
class _Nest:
    indent: int
    doc: Doc


@dataclass(frozen=True, slots=True)
class _IfBreak:
    text: str


@dataclass(frozen=True, slots=True)
class _Fill:
    """Words separated by spaces, wrapped only where the next one would overrun."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Comment:
    """A comment inside a clause: ends its line, so groups around it always break."""

    text: str
    own_line: bool = False  # a leading comment: starts a line of its own


Doc: TypeAlias = "str | _Line | _Group | _Nest | _IfBreak | _Fill | _Comment | list[Doc]"

LINE = _Line()
SOFT = _Line(soft=True)
_FLAT, _BREAK = 0, 1
_STEP = 2  # hanging indent of continuation lines, relative to the clause


def _join(sep: Doc, docs: Iterable[Doc]) -> list[Doc]:
    out: list[Doc] = []
    for i, d in enumerate(docs):
        if i:
            out.append(sep)
        out.append(d)
    return out


def _fits(width: int, head: list[tuple[int, int, Doc]], rest: list[tuple[int, int, Doc]]) -> bool:
    """Whether `head` printed flat, plus what follows up to the next line break, fits."""
    stack = list(head)
    rest_i = len(rest)
    while width >= 0:
        if not stack:
            if rest_i == 0:
                return True
            rest_i -= 1
            stack.append(rest[rest_i])
        ind, mode, d = stack.pop()
        if isinstance(d, str):
            width -= len(d)
        elif isinstance(d, list):
            stack.extend((ind, mode, x) for x in reversed(d))
        elif isinstance(d, _Nest):
            stack.append((ind + d.indent, mode, d.doc))
        elif isinstance(d, _Group):
            stack.append((ind, mode, d.doc))
        elif isinstance(d, _Line | _Comment):
            if mode == _BREAK:
                return True
            if isinstance(d, _Comment):
                return False
            width -= 0 if d.soft else 1
        elif isinstance(d, _Fill):
            if mode == _BREAK and len(d.words) > 1:
                return width >= len(d.words[0])
            width -= sum(map(len, d.words)) + len(d.words) - 1
        elif mode == _BREAK:  # _IfBreak
            width -= len(d.text)
    return False


def _render(doc: Doc, indent: int, width: int = WIDTH) -> list[str]:
    """Lay `doc` out as lines, the first starting at column `indent`."""
    lines = [" " * indent]
    stack: list[tuple[int, int, Doc]] = [(indent, _BREAK, doc)]
    after_comment = False  # the current line ends in a comment: code needs a new line

    def text(s: str, ind: int) -> None:
        nonlocal after_comment
        if after_comment and s:
            newline(ind)
        lines[-1] += s

    def newline(ind: int) -> None:
        nonlocal after_comment
        after_comment = False
        lines[-1] = lines[-1].rstrip()
        lines.append(" " * ind)

    while stack:
        ind, mode, d = stack.pop()
        if isinstance(d, str):
            text(d, ind)
        elif isinstance(d, list):
            stack.extend((ind, mode, x) for x in reversed(d))
        elif isinstance(d, _Nest):
            stack.append((ind + d.indent, mode, d.doc))
        elif isinstance(d, _Group):
            flat = mode == _FLAT or _fits(width - len(lines[-1]), [(ind, _FLAT, d.doc)], stack)
            stack.append((ind, _FLAT if flat else _BREAK, d.doc))
        elif isinstance(d, _Line):
            if mode == _BREAK:
                newline(ind)
            else:
                text("" if d.soft else " ", ind)
        elif isinstance(d, _Comment):
            if d.own_line and lines[-1].strip():
                newline(ind)
            _append_comment(lines, d.text, ind)
            after_comment = True
        elif isinstance(d, _Fill):
            for i, word in enumerate(d.words):
                if i == 0:
                    text(word, ind)
                elif mode == _FLAT or len(lines[-1]) + 1 + len(word) <= width:
                    text(" " + word, ind)
                else:
                    newline(ind)
                    text(word, ind)
        elif mode == _BREAK:  # _IfBreak
            text(d.text, ind)
    return lines


def _append_comment(lines: list[str], comment: str, indent: int) -> None:
    """Put `comment` at the end of the last line. After a `//` comment only text that
    stays on that line is safe, so a multi-line block comment then starts a new line."""
    first, *more = comment.split("\n")
    if more and any(c.text.startswith("//") for c in collect_comments(lines[-1])):
        lines.append(" " * indent)
    last = lines[-1]
    lines[-1] = (last + "  " + first if last.strip() else last + first).rstrip()
    lines.extend(m.rstrip() for m in more)


def _flat(doc: Doc) -> str:
    return _render(doc, 0, width=1 << 30)[0]


# ---------------------------------------------------------------- literals


def _string(value: str) -> str:
    """A STRING token: JSON escapes; lone surrogates escaped so the file stays UTF-8."""
    text = json.dumps(value, ensure_ascii=False)
    return re.sub(r"[\ud800-\udfff]", lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _float(value: float) -> str:
    """Shortest text that reads back as exactly `value` (needs digits after the point)."""
    if math.isnan(value):
        raise ValueError("NaN cannot be written as a policy literal")
    if math.isinf(value):
        return "1.0e999"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


_DURATION_STEPS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def _duration(value: timedelta) -> str:
    """Canonical compact form, largest unit first: `2d`, `1h30m`, `1s500ms`.

    Days are the largest unit: retention periods are stated in days, and weeks
    would turn `30d` into the harder-to-read `4w2d`."""
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us % 1000:
        raise ValueError(f"duration `{value}` is not a whole number of milliseconds")
    ms = abs(total_us) // 1000
    parts = []
    for unit, size in _DURATION_STEPS:
        amount, ms = divmod(ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return ("-" if total_us < 0 else "") + ("".join(parts) or "0s")


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamp `{value}` has no UTC offset")
    v = value.astimezone(UTC)
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if v.microsecond:
        text += f".{v.microsecond:06d}".rstrip("0")
    return text + "Z"


def _is_negative(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value < 0
    if isinstance(value, float):
        return math.copysign(1.0, value) < 0
    if isinstance(value, timedelta):
        return value < timedelta(0)
    return False


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ("-" if _is_negative(value) else "") + _float(abs(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    raise ValueError(f"cannot write a literal of type `{type(value).__name__}`")


def _name(text: str, what: str) -> str:
    if not _NAME.fullmatch(text):
        raise ValueError(f"{what} `{text}` is not an identifier")
    return text


# ---------------------------------------------------------------- expressions
# Precedence levels, loosest first, as in grammar.lark.

_OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _COALESCE, _POSTFIX, _ATOM = range(1, 11)
_BINARY_PREC = {
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in", "not in"), _CMP),
    **dict.fromkeys(("+", "-"), _ADD),
    **dict.fromkeys(("*", "/", "%"), _MUL),
    "??": _COALESCE,
}
# Minimum precedence of (left, right) operands; comparisons do not chain, `??`
# groups to the right, arithmetic to the left.
_OPERANDS = {
    _CMP: (_ADD, _ADD),
    _ADD: (_ADD, _MUL),
    _MUL: (_MUL, _NEG),
    _COALESCE: (_POSTFIX, _COALESCE),
}


def _is_coalesce(e: ast.Expr) -> bool:
    return isinstance(e, ast.Binary) and e.op == "??"


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.BoolOp):
        return _OR if e.op == "or" else _AND
    if isinstance(e, ast.Unary):
        return _NOT if e.op == "not" else _NEG
    if isinstance(e, ast.Binary):
        return _BINARY_PREC.get(e.op, _ATOM)
    if isinstance(e, ast.Attr | ast.Index):
        return _POSTFIX
    if isinstance(e, ast.Literal) and _is_negative(e.value):
        return _NEG  # written `-<literal>`
    return _ATOM


# A comment placed inside an expression or data literal is keyed by the id() of
# the list-like node that holds it and the element it sits at (or "open"/"end").
SlotKey = tuple[int, int | str]


@dataclass
class _Notes:
    leading: list[Comment] = field(default_factory=list)  # own lines, before
    trailing: list[Comment] = field(default_factory=list)  # end of the last line
    header: list[Comment] = field(default_factory=list)  # after a block's `{`
    dangling: list[Comment] = field(default_factory=list)  # before a block's `}`


class _Docs:
    """Builds layout documents for expressions, test data and clauses."""

    def __init__(self, slots: dict[SlotKey, _Notes] | None = None) -> None:
        self.slots = slots or {}

    def _slot(self, node: object, at: int | str) -> _Notes | None:
        return self.slots.get((id(node), at)) if self.slots else None

    # expressions -------------------------------------------------------
    def sub(self, e: ast.Expr, minimum: int) -> Doc:
        doc = self.expr(e)
        return ["(", doc, ")"] if _prec(e) < minimum else doc

    def expr(self, e: ast.Expr) -> Doc:
        if isinstance(e, ast.Literal):
            return _literal(e.value)
        if isinstance(e, ast.Name):
            if e.id in _RESERVED_NAMES:
                raise ValueError(f"`{e.id}` is a keyword and cannot be used as a name")
            return _name(e.id, "name")
        if isinstance(e, ast.Attr):
            return [self.sub(e.obj, _POSTFIX), ".", _name(e.name, "attribute")]
        if isinstance(e, ast.Index):
            return [self.sub(e.obj, _POSTFIX), "[", self.expr(e.key), "]"]
        if isinstance(e, ast.Unary):
            return self.unary(e)
        if isinstance(e, ast.Binary):
            if e.op not in _BINARY_PREC:
                raise ValueError(f"unknown operator `{e.op}`")
            left, right = _OPERANDS[_BINARY_PREC[e.op]]
            if e.op != "??":
                # `(x ?? "") == "y"` reads better than the minimal `x ?? "" == "y"`.
                left = _ATOM if _is_coalesce(e.left) else left
                right = _ATOM if _is_coalesce(e.right) else right
            return [self.sub(e.left, left), f" {e.op} ", self.sub(e.right, right)]
        if isinstance(e, ast.BoolOp):
            return self.boolop(e)
        if isinstance(e, ast.ListLit):
            return self.bracketed(e, "[", [self.expr(i) for i in e.items], "]")
        if isinstance(e, ast.SetLit):
            if not e.items:
                raise ValueError("an empty set cannot be written (`{}` is not an expression)")
            return self.bracketed(e, "{", [self.expr(i) for i in e.items], "}")
        if isinstance(e, ast.Call):
            if e.func in _RESERVED_NAMES:
                raise ValueError(f"`{e.func}` is a keyword and cannot be called as a function")
            args = _join(", ", (self.expr(a) for a in e.args))
            return [_name(e.func, "function"), "(", args, ")"]
        if isinstance(e, ast.Quantifier):
            return self.quantifier(e)
        if isinstance(e, ast.ListComp):
            var = _name(e.var, "variable")
            item, coll = self.expr(e.item), self.expr(e.collection)
            return _Group(["[", item, f" for {var} in ", coll, self.where(e.where), "]"])
        raise ValueError(f"cannot format `{type(e).__name__}` (format the unresolved AST)")

    def unary(self, e: ast.Unary) -> Doc:
        if e.op == "not":
            return ["not ", self.sub(e.operand, _NOT)]
        if e.op != "-":
            raise ValueError(f"unknown unary operator `{e.op}`")
        operand = e.operand
        if (isinstance(operand, ast.Unary) and operand.op == "-") or (
            isinstance(operand, ast.Literal) and _is_negative(operand.value)
        ):
            return ["-(", self.expr(operand), ")"]  # `--x` would read like a decrement
        return ["-", self.sub(operand, _NEG)]

    def boolop(self, e: ast.BoolOp) -> Doc:
        if e.op not in ("and", "or") or len(e.operands) < 2:
            raise ValueError(f"malformed `{e.op}` with {len(e.operands)} operand(s)")
        minimum = _AND if e.op == "or" else _NOT
        first: Doc = [self.sub(e.operands[0], minimum), self.trailing(e, 0)]
        others: list[Doc] = []
        for i, o in enumerate(e.operands[1:], 1):
            n = self._slot(e, i)
            lead = _comments(n.leading if n else (), own_line=True)
            others += [LINE, lead, f"{e.op} ", self.sub(o, minimum), self.trailing(e, i)]
        return _Group([first, _Nest(_STEP, others)])

    def trailing(self, node: object, at: int | str) -> Doc:
        n = self._slot(node, at)
        return _comments(n.trailing if n else ())

    def bracketed(
        self, node: object, open_: str, items: list[Doc], close: str, pad: Doc = SOFT
    ) -> Doc:
        """`[a, b]`; broken one item a line with a trailing comma (and any comments)."""
        if not self.slots or not any(
            (id(node), at) in self.slots for at in (*range(len(items)), "open", "end")
        ):
            if not items:
                return open_ + close
            inner = [pad, _join([",", LINE], items)]
            return _Group([open_, _Nest(_STEP, inner), _IfBreak(","), pad, close])
        body: list[Doc] = []
        for i, item in enumerate(items):
            n = self._slot(node, i)
            lead = _comments(n.leading if n else (), own_line=True)
            body += [LINE, lead, item, ",", self.trailing(node, i)]
        end = self._slot(node, "end")
        if end:
            body += [LINE, _comments(end.leading, own_line=True)]
        return _Group([open_, self.trailing(node, "open"), _Nest(_STEP, body), SOFT, close])

    def where(self, cond: ast.Expr | None) -> Doc:
        return [] if cond is None else _Nest(_STEP, [LINE, "where ", self.expr(cond)])

    def quantifier(self, q: ast.Quantifier) -> Doc:
        var = _name(q.var, "variable")
        if q.kind == "count":
            if q.body is not None:
                raise ValueError("`count` takes no `: body`")
            if var == "distinct":
                raise ValueError("`distinct` cannot name the variable of `count`")
            if q.distinct_key is not None:
                head: Doc = ["count(distinct ", self.expr(q.distinct_key), f" for {var} in "]
            else:
                head = f"count({var} in "
        elif q.kind in ("all", "any", "none"):
            if q.distinct_key is not None:
                raise ValueError(f"`{q.kind}` takes no `distinct` key")
            head = f"{q.kind}({var} in "
        else:
            raise ValueError(f"unknown quantifier `{q.kind}`")
        # Under a `where`, the body sits one step deeper so the two do not read as one.
        step = _STEP if q.where is None else 2 * _STEP
        body: Doc = [] if q.body is None else [":", _Nest(step, [LINE, self.expr(q.body)])]
        return _Group([head, self.expr(q.collection), self.where(q.where), body, ")"])

    def template(self, t: ast.Template) -> str:
        out = []
        for part in t.parts:
            if isinstance(part, str):
                out.append(_string(part)[1:-1].replace("{", "{{").replace("}", "}}"))
                continue
            text = _flat(_Docs().expr(part))
            if any(c in text for c in '"{}'):
                raise ValueError(
                    f"`{text}` cannot be a message placeholder (no strings or sets in `{{…}}`)"
                )
            out.append("{" + text + "}")
        return '"' + "".join(out) + '"'

    # test data ---------------------------------------------------------
    def data(self, value: Any) -> Doc:
        if isinstance(value, dict):
            pairs: list[Doc] = [[_key(k), ": ", self.data(v)] for k, v in value.items()]
            return self.bracketed(value, "{", pairs, "}", pad=LINE)
        if isinstance(value, list):
            return self.bracketed(value, "[", [self.data(v) for v in value], "]")
        if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
            return value  # timestamps may be bare, and read back as the same text
        if isinstance(value, float):
            return ("-" if _is_negative(value) else "") + _float(abs(value))
        if value is None or isinstance(value, bool | int | str):
            return _literal(value)
        raise ValueError(f"cannot write test data of type `{type(value).__name__}`")

    # declarations ------------------------------------------------------
    def clauses(self, rule: ast.Rule) -> list[tuple[Key, Doc]]:
        """The written clauses of `rule`, in canonical order, keyed like the layout."""
        out: list[tuple[Key, Doc]] = []
        for clause in CLAUSE_ORDER:
            if clause == "title" and rule.title is not None:
                out.append((("title",), ["title ", _string(rule.title)]))
            elif clause in ("layer", "severity", "enforce"):
                ident: ast.Ident | None = getattr(rule, clause)
                if ident is not None:
                    out.append(((clause,), [f"{clause} ", _name(ident.value, clause)]))
            elif clause == "override" and rule.override_by:
                words = [_string(v) for v in rule.override_by]
                out.append((("override",), _words("override by ", words)))
            elif clause == "review" and rule.review is not None:
                words = [_string(v) for v in rule.review.roles]
                roles = _words("review by ", words)
                out.append((("review",), [roles, " within ", _duration(rule.review.within)]))
            elif clause == "on" and rule.on:
                patterns = [_event_pattern(i.value) for i in rule.on]
                out.append((("on",), _words("on ", patterns)))
            elif clause == "refs" and rule.refs:
                out.append((("refs",), _words("refs ", [_string(v) for v in rule.refs])))
            elif clause == "when" and rule.when is not None:
                out.append((("when",), ["when ", self.expr(rule.when)]))
            elif clause == "require":
                for j, req in enumerate(rule.requires):
                    doc: Doc = ["require ", self.expr(req.expr)]
                    if req.message is not None:
                        doc = _Group([doc, _Nest(_STEP, [LINE, "else ", _string(req.message)])])
                    out.append((("require", str(j)), doc))
            elif clause == "message" and rule.message is not None:
                out.append((("message",), ["message ", self.template(rule.message)]))
        return out

    def monitor_clauses(self, mon: ast.Monitor) -> list[tuple[Key, Doc]]:
        """The clauses of a monitor in canonical order, keyed like the layout."""
        out: list[tuple[Key, Doc]] = []
        if mon.title is not None:
            out.append((("title",), ["title ", _string(mon.title)]))
        if mon.severity is not None:
            out.append((("severity",), "severity " + _name(mon.severity.value, "severity")))
        if mon.models:
            out.append((("model",), _words("model ", [_string(m) for m in mon.models])))
        if mon.baseline is not None:
            out.append((("baseline",), "baseline " + _string(mon.baseline)))
        if isinstance(mon.window, timedelta):
            out.append((("window",), "window " + _duration(mon.window)))
        elif isinstance(mon.window, int):
            out.append((("window",), f"window {mon.window} rows"))
        if mon.time_column is not None:
            out.append((("time_column",), "time_column " + _string(mon.time_column)))
        if mon.refs:
            out.append((("refs",), _words("refs ", [_string(v) for v in mon.refs])))
        for j, check in enumerate(mon.checks):
            features = ", ".join(_feature(f.value) for f in check.features)
            conditions = [
                f"{c.metric.value} {c.op} {_threshold(c.threshold)}" for c in check.conditions
            ]
            head = f"{_name(check.kind.value, 'check kind')} {features}: "
            out.append((("check", str(j)), _words(head, conditions)))
        if mon.actions:
            out.append((("breach",), _words("on breach: ", [_action(a) for a in mon.actions], ";")))
        return out

    def steps(self, test: ast.Test) -> list[tuple[Key, Doc]]:
        out: list[tuple[Key, Doc]] = []
        if test.at is not None:
            out.append((("at",), "at " + _timestamp(test.at)))
        for j, step in enumerate(test.steps):
            key = ("step", str(j))
            if isinstance(step, ast.GivenEntity):
                kind = _name(step.kind.value, "entity kind")
                head = f"given {kind} {_string(step.id)} "
                out.append((key, [head, self.data(step.attributes)]))
            elif isinstance(step, ast.TestEvent):
                doc: list[Doc] = [
                    f"event {_event_pattern(step.type.value)} {_string(step.subject_id)}"
                ]
                if step.actor is not None:
                    doc.append(f" by {_string(step.actor)}")
                    if step.actor_roles is not None:
                        doc += [" roles ", self.data(list(step.actor_roles))]
                if step.time is not None:
                    doc.append(f" at {_timestamp(step.time)}")
                if (
                    step.attributes
                    or self._slot(step.attributes, "open")
                    or self._slot(step.attributes, "end")
                ):
                    doc += [" ", self.data(step.attributes)]
                out.append((key, doc))
            elif isinstance(step, ast.ExpectOutcome):
                out.append((key, f"expect {_name(step.outcome, 'outcome')}"))
            elif isinstance(step, ast.ExpectRule):
                doc = [f"expect {_name(step.status, 'status')} {_dotted(step.rule.value)}"]
                if step.message_contains is not None:
                    doc.append(f" message {_string(step.message_contains)}")
                out.append((key, doc))
            else:
                raise ValueError(f"cannot format test step `{type(step).__name__}`")
        return out


def _comments(comments: Iterable[Comment], own_line: bool = False) -> list[Doc]:
    return [_Comment(c.text, own_line) for c in comments]


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError(f"data keys must be strings, not `{key!r}`")
    return key if _NAME.fullmatch(key) else _string(key)


def _words(keyword: str, words: Sequence[str], sep: str = ",") -> Doc:
    """`keyword a, b, c`, wrapped like prose with a hanging indent."""
    commas = tuple(w + sep for w in words[:-1]) + tuple(words[-1:])
    return [keyword, _Nest(_STEP, _Fill(commas))]


_EVENT_PATTERN = re.compile(r"[a-z*][a-z0-9_*]*(\.[a-z0-9_*]+)*")


_FEATURE_GLOB = re.compile(r"[A-Za-z0-9_]*\*[A-Za-z0-9_*]*")


def _feature(text: str) -> str:
    if _NAME.fullmatch(text) or _FEATURE_GLOB.fullmatch(text):
        return text
    return _string(text)


def _threshold(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return ("-" if _is_negative(value) else "") + _float(abs(value))


def _action(action: ast.BreachAction) -> str:
    if action.kind == "alert" and action.severity is not None:
        return "alert " + _name(action.severity.value, "severity")
    if action.kind == "review" and action.within is not None:
        roles = ", ".join(_string(r) for r in action.roles)
        return f"review by {roles} within {_duration(action.within)}"
    if action.kind == "trigger" and action.target is not None:
        return "trigger " + _name(action.target.value, "trigger")
    raise ValueError(f"cannot write breach action `{action.kind}`")


def _event_pattern(text: str) -> str:
    if not _EVENT_PATTERN.fullmatch(text):
        raise ValueError(f"`{text}` is not an event type or pattern")
    return text


def _dotted(text: str) -> str:
    for part in text.split("."):
        _name(part, "name")
    return text


# ---------------------------------------------------------------- comment placement

Key = tuple[str, ...]


@dataclass
class _Slots:
    """A list-like node inside a clause (`and`/`or` operands, list, set or data
    items) whose elements can carry comments of their own."""

    node: object
    start: int
    end: int
    elements: list[tuple[int, int]]
    bracketed: bool  # has brackets: comments may follow the opening or precede the close


@dataclass
class _Unit:
    """Where something the formatter prints sat in the source."""

    key: Key
    start: int
    end: int
    body: int = -1  # offset of a block's `{`
    children: list[_Unit] = field(default_factory=list)
    slots: list[_Slots] = field(default_factory=list)


def _expr_slots(e: ast.Expr | None, out: list[_Slots]) -> None:
    if e is None:
        return
    parts: tuple[ast.Expr, ...] = ()
    if isinstance(e, ast.BoolOp):
        parts = e.operands
    elif isinstance(e, ast.ListLit | ast.SetLit):
        parts = e.items
    if parts and e.span.end > 0 and all(p.span.end > 0 for p in parts):
        spans = [(p.span.start, p.span.end) for p in parts]
        out.append(_Slots(e, e.span.start, e.span.end, spans, not isinstance(e, ast.BoolOp)))
    for f in fields(e):
        value = getattr(e, f.name)
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, ast.Expr):
                _expr_slots(v, out)


def _data_slots(tree: Any, value: Any, out: list[_Slots]) -> None:
    if not isinstance(tree, Tree):
        return
    items = [c for c in tree.children if isinstance(c, Tree)]
    spans = [(c.meta.start_pos, c.meta.end_pos) for c in items]
    if tree.data == "data_object" and isinstance(value, dict) and len(items) == len(value):
        out.append(_Slots(value, tree.meta.start_pos, tree.meta.end_pos, spans, True))
        for pair, v in zip(items, value.values(), strict=True):
            _data_slots(pair.children[1], v, out)
    elif tree.data == "data_list" and isinstance(value, list) and len(items) == len(value):
        out.append(_Slots(value, tree.meta.start_pos, tree.meta.end_pos, spans, True))
        for item, v in zip(items, value, strict=True):
            _data_slots(item, v, out)


def _layout(module: ast.Module, comments: Sequence[Comment]) -> list[_Unit]:
    """Source extents of declarations, clauses, test steps and their parts.

    The AST does not keep a span for every clause, so the source is parsed
    again; `module` must be what `parse_module` returned for `module.source`."""
    text = module.source
    tree = _parser().parse(text, start="start")
    in_comment = sorted((c.span.start, c.span.end) for c in comments)

    def brace_after(pos: int) -> int:
        while True:
            i = text.index("{", pos)
            k = bisect.bisect_right(in_comment, (i, len(text) + 1)) - 1
            if k < 0 or not in_comment[k][0] <= i < in_comment[k][1]:
                return i
            pos = in_comment[k][1]

    units: list[_Unit] = []
    count = {"import": 0, "const": 0, "rule": 0, "test": 0, "monitor": 0}
    expected = {
        "import": len(module.imports),
        "const": len(module.consts),
        "rule": len(module.rules),
        "test": len(module.tests),
        "monitor": len(module.monitors),
    }
    for item in tree.children:
        assert isinstance(item, Tree)
        kind = str(item.data).removesuffix("_decl")
        if kind == "package":
            units.append(_Unit(("package",), item.meta.start_pos, item.meta.end_pos))
            continue
        index = count[kind]
        count[kind] += 1
        if index >= expected[kind]:
            break
        unit = _Unit((kind, str(index)), item.meta.start_pos, item.meta.end_pos)
        units.append(unit)
        if kind == "const":
            _expr_slots(module.consts[index].value, unit.slots)
        elif kind == "rule":
            rule = module.rules[index]
            name = item.children[1]
            assert isinstance(name, Token)
            unit.body = brace_after(name.end_pos or 0)
            requires = 0
            for clause in item.children[2:]:
                assert isinstance(clause, Tree)
                key: Key = (*unit.key, str(clause.data).removesuffix("_clause"))
                child = _Unit(key, clause.meta.start_pos, clause.meta.end_pos)
                if key[-1] == "require" and requires < len(rule.requires):
                    child.key += (str(requires),)
                    _expr_slots(rule.requires[requires].expr, child.slots)
                    requires += 1
                elif key[-1] == "when" and not rule.repeated:
                    _expr_slots(rule.when, child.slots)
                unit.children.append(child)
        elif kind == "monitor":
            name = item.children[1]
            assert isinstance(name, Token)
            unit.body = brace_after(name.end_pos or 0)
            checks = 0
            for clause in item.children[2:]:
                assert isinstance(clause, Tree)
                key = (*unit.key, str(clause.data).removesuffix("_clause"))
                if key[-1] == "check":
                    key += (str(checks),)
                    checks += 1
                unit.children.append(_Unit(key, clause.meta.start_pos, clause.meta.end_pos))
        elif kind == "test":
            test = module.tests[index]
            name = item.children[0]
            assert isinstance(name, Token)
            unit.body = brace_after(name.end_pos or 0)
            steps = ats = 0
            for stmt in item.children[1:]:
                assert isinstance(stmt, Tree)
                if stmt.data == "at_stmt":
                    unit.children.append(
                        _Unit((*unit.key, "at"), stmt.meta.start_pos, stmt.meta.end_pos)
                    )
                    ats += 1
                    continue
                child = _Unit(
                    (*unit.key, "step", str(steps)), stmt.meta.start_pos, stmt.meta.end_pos
                )
                step = test.steps[steps] if steps < len(test.steps) else None
                if isinstance(step, ast.GivenEntity | ast.TestEvent):
                    _data_slots(stmt.children[-1], step.attributes, child.slots)
                unit.children.append(child)
                steps += 1
            if ats > 1:
                _repeated("at", f"test {_string(test.name)}", test.span, text)
    if count != expected:
        raise ValueError("the module does not match its `source`; pass comments=() or re-parse")
    return units


def _repeated(clause: str, where: str, span: Span, text: str) -> None:
    raise CompileError(
        [
            Diagnostic(
                Code.REPEATED_CLAUSE,
                f"`{clause}` is written more than once in {where}",
                span,
                hint="keep one; the formatter will not drop either silently",
            )
        ],
        {span.file: text},
    )


def _attach(
    units: list[_Unit], comments: Sequence[Comment], text: str
) -> tuple[dict[Key, _Notes], dict[SlotKey, _Notes]]:
    """Decide, for each comment, which printed thing it belongs to and where.

    An end-of-line comment stays at the end of the line of the thing it follows;
    a comment on its own line goes before the next thing in its block (or before
    the block's `}` when nothing follows). Inside a clause or a constant the same
    holds for `and`/`or` operands and list, set and data items; anywhere else in
    an expression, the comment moves to just before its clause."""
    notes: dict[Key, _Notes] = {}
    slots: dict[SlotKey, _Notes] = {}
    comment_at = {c.span.end - 1: c.span.start for c in comments}
    starts = _line_starts(text)

    def line(pos: int) -> int:
        return bisect.bisect_right(starts, pos)

    def note(key: Key) -> _Notes:
        return notes.setdefault(key, _Notes())

    def slot(s: _Slots, at: int | str) -> _Notes:
        return slots.setdefault((id(s.node), at), _Notes())

    def containing(units: list[_Unit], pos: int) -> _Unit | None:
        return next((u for u in units if u.start <= pos < u.end), None)

    def innermost(unit: _Unit, pos: int) -> _Slots | None:
        # A closing bracket belongs with the list as a whole, not with its last item.
        inside = [s for s in unit.slots if s.start <= pos < s.end - (1 if s.bracketed else 0)]
        return min(inside, key=lambda s: s.end - s.start, default=None)

    def place_after_code(unit: _Unit, c: Comment, code: int) -> None:
        """An end-of-line comment after `code`, inside a leaf `unit`."""
        if line(unit.end - 1) == c.span.line:
            note(unit.key).trailing.append(c)
            return
        opened = [s for s in unit.slots if s.bracketed and s.start == code]
        if opened:  # right after `[` or `{`
            slot(opened[0], "open").trailing.append(c)
            return
        # The outermost list whose element (at or before the code) ends on this
        # line takes the comment after that element. Outermost, because inner
        # lists can disappear into their element when parentheses are dropped.
        for s in sorted(unit.slots, key=lambda s: s.start - s.end):
            if not s.start <= code < s.end - (1 if s.bracketed else 0):
                continue
            at = max((i for i, (a, _) in enumerate(s.elements) if a <= code), default=None)
            if at is not None and line(s.elements[at][1] - 1) == c.span.line:
                slot(s, at).trailing.append(c)
                return
        note(unit.key).leading.append(c)

    def place_own_line(unit: _Unit, c: Comment) -> None:
        """A comment on its own line inside a leaf `unit`."""
        pos = c.span.start
        s = innermost(unit, pos)
        if s is not None:
            at = next((i for i, (_, b) in enumerate(s.elements) if b > pos), None)
            if at is not None and (at > 0 or s.bracketed):
                slot(s, at).leading.append(c)
                return
            if at is None and s.bracketed:
                slot(s, "end").leading.append(c)
                return
        note(unit.key).leading.append(c)

    for c in comments:
        code = c.span.start - 1  # last code character before the comment
        while code >= 0 and (text[code].isspace() or code in comment_at):
            code = comment_at[code] - 1 if code in comment_at else code - 1
        if code >= 0 and line(code) == c.span.line:
            unit = containing(units, code)
            assert unit is not None, "code outside any declaration"
            if unit.body >= 0:
                child = containing(unit.children, code)
                if child is None and code == unit.end - 1:
                    note(unit.key).trailing.append(c)
                elif child is None and code >= unit.body:
                    note(unit.key).header.append(c)
                elif child is None:  # between `rule`/`test` and `{`
                    note(unit.key).leading.append(c)
                else:
                    place_after_code(child, c, code)
            else:
                place_after_code(unit, c, code)
            continue
        pos = c.span.start
        block = containing(units, pos)
        if block is not None and (block.body < 0 or pos < block.body):
            if block.body < 0 and pos > block.start:
                place_own_line(block, c)
            else:
                note(block.key).leading.append(c)
            continue
        siblings = block.children if block is not None else units
        target = containing(siblings, pos)
        if target is not None:
            place_own_line(target, c)
            continue
        target = next((u for u in siblings if u.start > pos), None)
        if target is not None:
            note(target.key).leading.append(c)
        else:
            note(block.key if block is not None else ("file",)).dangling.append(c)
    for n in (*notes.values(), *slots.values()):
        n.leading.sort(key=lambda c: c.span.start)
    return notes, slots


# ---------------------------------------------------------------- printing


class _Printer:
    def __init__(self, notes: dict[Key, _Notes], docs: _Docs, source: str) -> None:
        self.notes = notes
        self.docs = docs
        self.source = source
        self.lines: list[str] = []

    def _note(self, key: Key) -> _Notes:
        return self.notes.get(key) or _Notes()

    def _blank_after(self, c: Comment) -> bool:
        rest = self.source[c.span.end :]
        gap = rest[: len(rest) - len(rest.lstrip())]
        return gap.count("\n") >= 2

    def comment_lines(self, comments: Sequence[Comment], indent: int, *, last_gap: bool) -> None:
        for i, c in enumerate(comments):
            first, *more = c.text.split("\n")
            self.lines.append(" " * indent + first.rstrip())
            self.lines.extend(m.rstrip() for m in more)
            if (i < len(comments) - 1 or last_gap) and self._blank_after(c):
                self.lines.append("")

    def append_trailing(self, comments: Sequence[Comment]) -> None:
        for c in comments:
            _append_comment(self.lines, c.text, 0)

    def leaf(self, key: Key, doc: Doc, indent: int, head: Sequence[str] = ()) -> None:
        n = self._note(key)
        self.comment_lines(n.leading, indent, last_gap=True)
        self.lines.extend(" " * indent + h for h in head)
        self.lines.extend(_render(doc, indent))
        self.append_trailing(n.trailing)

    def block(self, key: Key, head: list[str], children: list[tuple[Key, Doc]]) -> None:
        n = self._note(key)
        self.comment_lines(n.leading, 0, last_gap=True)
        self.lines.extend(head)
        if not children and not n.header and not n.dangling:
            self.lines[-1] += "}"
        else:
            self.append_trailing(n.header)
            for child_key, doc in children:
                self.leaf((*key, *child_key), doc, 2)
            self.comment_lines(n.dangling, 2, last_gap=False)
            self.lines.append("}")
        self.append_trailing(n.trailing)

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def module(self, m: ast.Module) -> str:
        self.leaf(("package",), "package " + _dotted(m.package.value), 0)
        order = sorted(range(len(m.imports)), key=lambda i: _import_key(m.imports[i]))
        for k, i in enumerate(order):
            if k == 0:
                self.blank()
            imp = m.imports[i]
            alias = f" as {_name(imp.alias.value, 'alias')}" if imp.alias else ""
            self.leaf(("import", str(i)), f"import {_dotted(imp.package.value)}{alias}", 0)
        previous_multiline = False
        for i, const in enumerate(m.consts):
            key = ("const", str(i))
            doc = [
                "const ",
                _name(const.name.value, "constant"),
                " = ",
                self.docs.expr(const.value),
            ]
            multiline = len(_render(doc, 0)) > 1
            if i == 0 or const.doc or self._note(key).leading or multiline or previous_multiline:
                self.blank()
            self.leaf(key, doc, 0, head=_doc_lines(const.doc))
            previous_multiline = multiline
        decls = [(r.span.start, 0, i) for i, r in enumerate(m.rules)]
        decls += [(t.span.start, 1, i) for i, t in enumerate(m.tests)]
        decls += [(mon.span.start, 2, i) for i, mon in enumerate(m.monitors)]
        for _, kind, i in sorted(decls):
            self.blank()
            if kind == 0:
                rule = m.rules[i]
                if rule.repeated:
                    word, span = rule.repeated[0]
                    _repeated(word, f"rule `{rule.name.value}`", span, self.source)
                head = [*_doc_lines(rule.doc), f"rule {_name(rule.name.value, 'rule')} {{"]
                self.block(("rule", str(i)), head, self.docs.clauses(rule))
            elif kind == 2:
                mon = m.monitors[i]
                if mon.repeated:
                    word, span = mon.repeated[0]
                    _repeated(word, f"monitor `{mon.name.value}`", span, self.source)
                head = [*_doc_lines(mon.doc), f"monitor {_name(mon.name.value, 'monitor')} {{"]
                self.block(("monitor", str(i)), head, self.docs.monitor_clauses(mon))
            else:
                test = m.tests[i]
                head = [f"test {_string(test.name)} {{"]
                self.block(("test", str(i)), head, self.docs.steps(test))
        dangling = self._note(("file",)).dangling
        if dangling:
            self.blank()
            self.comment_lines(dangling, 0, last_gap=False)
        return "\n".join(line.rstrip() for line in self.lines) + "\n"


def _import_key(imp: ast.Import) -> tuple[str, str]:
    return (imp.package.value, imp.alias.value if imp.alias else "")


def _doc_lines(doc: str) -> list[str]:
    if not doc:
        return []
    return [f"/// {line}".rstrip() for line in doc.split("\n")]


# ---------------------------------------------------------------- entry points


def format_module(module: ast.Module, comments: Sequence[Comment] = ()) -> str:
    """Print `module` in canonical style.

    `comments` (from `collect_comments(module.source)`) are placed using the
    module's source, so they need a module fresh from `parse_module`. Raises
    `ValueError` for an AST no source text could produce (an empty set, a name
    that is a keyword, …) and `CompileError` for a clause written twice, which
    the AST would otherwise silently drop."""
    notes: dict[Key, _Notes] = {}
    slots: dict[SlotKey, _Notes] = {}
    if comments:
        if not module.source:
            raise ValueError("placing comments needs the module's source; pass comments=()")
        notes, slots = _attach(_layout(module, comments), comments, module.source)
    return _Printer(notes, _Docs(slots), module.source).module(module)


def format_source(text: str, path: str = "<string>") -> str:
    """Format one policy file, keeping its comments. Raises `CompileError` on syntax errors."""
    module = parse_module(text, path)
    comments = collect_comments(text, path)
    if not comments:
        _layout(module, comments)  # still catches a repeated `at` in a test
    return format_module(module, comments)
