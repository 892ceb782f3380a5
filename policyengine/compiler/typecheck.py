"""Pass 2 — type checking against the event schema.

Each rule is checked once per concrete event type it triggers on, because
`event` and `subject` have different shapes per type. The pass records the type
of every node (keyed by node identity) for the lowering pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import re2

from policyengine.compiler import types as T
from policyengine.compiler.schema import EventType, TypeEnv
from policyengine.language import ast
from policyengine.language.diagnostics import Code, Diagnostic, did_you_mean

TypeMap = dict[int, T.Type]

HASHABLE = (T.STRING, T.INT, T.FLOAT, T.BOOL, T.TIMESTAMP, T.DURATION, T.NULL, T.ANY)


@dataclass(slots=True)
class Context:
    env: TypeEnv
    event: EventType | None  # None while checking constants
    const_types: Mapping[str, T.Type]
    diags: list[Diagnostic]
    types: TypeMap = field(default_factory=dict)
    vars: list[T.Type] = field(default_factory=list)
    # Regexes compiled once at compile time, keyed by pattern text.
    regexes: dict[str, Any] = field(default_factory=dict)
    const_values: Mapping[str, Any] = field(default_factory=dict)

    def error(self, code: Code, msg: str, span: ast.Span, hint: str | None = None) -> T.Type:
        self.diags.append(Diagnostic(code, msg, span, hint))
        return T.ANY


def literal_type(value: Any) -> T.Type:
    if value is None:
        return T.NULL
    if isinstance(value, bool):
        return T.BOOL
    if isinstance(value, int):
        return T.INT
    if isinstance(value, float):
        return T.FLOAT
    if isinstance(value, str):
        return T.STRING
    if isinstance(value, datetime):
        return T.TIMESTAMP
    if isinstance(value, timedelta):
        return T.DURATION
    if isinstance(value, frozenset):
        items = [literal_type(v) for v in value]
        return T.SetOf(_join_all(items))
    if isinstance(value, tuple | list):
        return T.ListOf(_join_all([literal_type(v) for v in value]))
    return T.ANY


def _join_all(types: list[T.Type]) -> T.Type:
    if not types:
        return T.ANY
    out = types[0]
    for t in types[1:]:
        out = T.join(out, t)
    return out


def _describe(e: ast.Expr) -> str:
    if isinstance(e, ast.Root):
        return f"`{e.id}`"
    if isinstance(e, ast.Var):
        return f"`{e.id}`"
    return "this value"


def check(e: ast.Expr, ctx: Context) -> T.Type:
    t = _check(e, ctx)
    ctx.types[id(e)] = t
    return t


def expect_bool(e: ast.Expr, ctx: Context, what: str) -> None:
    t = check(e, ctx)
    if T.strip(t) not in (T.BOOL, T.ANY):
        ctx.error(
            Code.TYPE_MISMATCH,
            f"{what} must be a boolean, found `{t}`",
            e.span,
            'compare the value, e.g. `x == "value"`, or test presence with `has(x)`',
        )


def _check(e: ast.Expr, ctx: Context) -> T.Type:
    if isinstance(e, ast.Literal):
        return literal_type(e.value)
    if isinstance(e, ast.Root):
        if ctx.event is None:  # `now` too: a constant would freeze it at compile time
            return ctx.error(
                Code.NOT_CONSTANT,
                f"`{e.id}` cannot be used in a constant",
                e.span,
                "constants are fixed when the bundle compiles; move this into a rule",
            )
        if e.id == "now":
            return T.TIMESTAMP
        if e.id == "event":
            return ctx.event.record
        return T.Entity(ctx.event.subject_kind)
    if isinstance(e, ast.Var):
        return ctx.vars[e.slot] if e.slot < len(ctx.vars) else T.ANY
    if isinstance(e, ast.ConstRef):
        return ctx.const_types.get(e.qualified, T.ANY)
    if isinstance(e, ast.Name | ast.RuleRef):
        return T.ANY  # already reported by resolve
    if isinstance(e, ast.Attr):
        return _attr(e, ctx)
    if isinstance(e, ast.Index):
        return _index(e, ctx)
    if isinstance(e, ast.Unary):
        t = check(e.operand, ctx)
        if e.op == "not":
            if T.strip(t) not in (T.BOOL, T.ANY):
                return ctx.error(
                    Code.TYPE_MISMATCH, f"`not` needs a boolean, found `{t}`", e.operand.span
                )
            return T.BOOL
        if T.strip(t) in (T.INT, T.FLOAT, T.DURATION, T.ANY):
            return T.strip(t)
        return ctx.error(Code.TYPE_MISMATCH, f"cannot negate `{t}`", e.operand.span)
    if isinstance(e, ast.BoolOp):
        for o in e.operands:
            expect_bool(o, ctx, f"each operand of `{e.op}`")
        return T.BOOL
    if isinstance(e, ast.Binary):
        return _binary(e, ctx)
    if isinstance(e, ast.ListLit):
        return T.ListOf(_join_all([check(i, ctx) for i in e.items]))
    if isinstance(e, ast.SetLit):
        items = [check(i, ctx) for i in e.items]
        for i, t in zip(e.items, items, strict=True):
            if not _hashable(t):
                ctx.error(Code.TYPE_MISMATCH, f"a set cannot hold `{t}` values", i.span)
        stripped = {T.strip(t) for t in items}
        if T.BOOL in stripped and stripped & set(T.NUMERIC):
            ctx.error(
                Code.TYPE_MISMATCH,
                "a set cannot mix booleans and numbers",
                e.span,
                "`true` and `1` would be the same member; use a list, or one kind of value",
            )
        return T.SetOf(_join_all(items))
    if isinstance(e, ast.Quantifier):
        return _quantifier(e, ctx)
    if isinstance(e, ast.ListComp):
        elem = _iterate(e.collection, ctx)
        ctx.vars.append(elem)
        try:
            if e.where is not None:
                expect_bool(e.where, ctx, "a `where` filter")
            item = check(e.item, ctx)
        finally:
            ctx.vars.pop()
        return T.ListOf(item)
    if isinstance(e, ast.Call):
        return _call(e, ctx)
    return T.ANY


def _hashable(t: T.Type) -> bool:
    s = T.strip(t)
    return s in HASHABLE or isinstance(s, T.Entity)


def _fields_of(t: T.Type, ctx: Context) -> tuple[str, Mapping[str, T.Type]] | None:
    s = T.strip(t)
    if isinstance(s, T.Record):
        return s.name, s.fields
    if isinstance(s, T.Entity):
        return s.kind, ctx.env.entity_fields(s.kind)
    return None


def _attr(e: ast.Attr, ctx: Context) -> T.Type:
    obj_t = check(e.obj, ctx)
    s = T.strip(obj_t)
    if s == T.ANY:
        return T.ANY
    if isinstance(s, T.MapOf):
        return s.value
    found = _fields_of(s, ctx)
    if found is None:
        return ctx.error(
            Code.TYPE_MISMATCH,
            f"{_describe(e.obj)} is `{obj_t}`, which has no attribute `{e.name}`",
            e.span,
        )
    owner, fields = found
    if e.name in fields:
        return fields[e.name]
    where = owner
    if isinstance(e.obj, ast.Root) and e.obj.id == "subject" and ctx.event is not None:
        where = f"the subject ({owner}) of `{ctx.event.name}`"
    elif isinstance(e.obj, ast.Root) and e.obj.id == "event" and ctx.event is not None:
        where = f"event `{ctx.event.name}`"
    elif isinstance(s, T.Entity):
        where = f"entity `{owner}`"
    else:
        where = f"`{owner}`"
    hint = did_you_mean(e.name, fields) or (
        f"known attributes: {', '.join(f'`{f}`' for f in sorted(fields))}" if fields else None
    )
    # Point at the attribute name itself, not the whole path.
    span = e.span
    name_span = ast.Span(
        span.file,
        span.end - len(e.name),
        span.end,
        span.end_line,
        span.end_column - len(e.name),
        span.end_line,
        span.end_column,
    )
    return ctx.error(
        Code.UNKNOWN_ATTRIBUTE, f"unknown attribute `{e.name}` for {where}", name_span, hint
    )


def _index(e: ast.Index, ctx: Context) -> T.Type:
    obj_t = T.strip(check(e.obj, ctx))
    key_t = T.strip(check(e.key, ctx))
    if obj_t == T.ANY:
        return T.ANY
    if isinstance(obj_t, T.ListOf):
        if key_t not in (T.INT, T.ANY):
            ctx.error(Code.TYPE_MISMATCH, f"list index must be an int, found `{key_t}`", e.key.span)
        return obj_t.item
    if isinstance(obj_t, T.MapOf):
        if key_t not in (T.STRING, T.ANY):
            ctx.error(Code.TYPE_MISMATCH, f"map key must be a string, found `{key_t}`", e.key.span)
        return obj_t.value
    found = _fields_of(obj_t, ctx)
    if found is not None and isinstance(e.key, ast.Literal) and isinstance(e.key.value, str):
        if e.key.value in found[1]:
            return found[1][e.key.value]
        return ctx.error(
            Code.UNKNOWN_ATTRIBUTE,
            f"unknown attribute `{e.key.value}` for `{found[0]}`",
            e.key.span,
            did_you_mean(e.key.value, found[1]),
        )
    return ctx.error(Code.TYPE_MISMATCH, f"cannot index into `{obj_t}`", e.span)


_ORDERED = (T.INT, T.FLOAT, T.STRING, T.TIMESTAMP, T.DURATION)


def _binary(e: ast.Binary, ctx: Context) -> T.Type:
    lt, rt = check(e.left, ctx), check(e.right, ctx)
    ls, rs = T.strip(lt), T.strip(rt)
    op = e.op
    if op == "??":
        return T.join(ls, rt)
    if op in ("==", "!="):
        if not T.compatible(lt, rt):
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"cannot compare `{lt}` with `{rt}` using `{op}`",
                e.span,
                _mismatch_hint(ls, rs),
            )
        return T.BOOL
    if op in ("<", "<=", ">", ">="):
        ok = (
            ls == T.ANY
            or rs == T.ANY
            or ((ls in T.NUMERIC and rs in T.NUMERIC) or (ls == rs and ls in _ORDERED))
        )
        if not ok:
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"cannot order `{lt}` and `{rt}` with `{op}`",
                e.span,
                _mismatch_hint(ls, rs),
            )
        return T.BOOL
    if op in ("in", "not in"):
        elem = T.element_type(rt)
        if elem is None:
            hint = (
                "use `contains(text, part)` to search inside a string"
                if rs == T.STRING
                else ("the right-hand side of `in` must be a list, set or map")
            )
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"`{op}` needs a collection on the right, found `{rt}`",
                e.right.span,
                hint,
            )
        if not T.compatible(lt, elem):
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"cannot look for `{lt}` in a collection of `{elem}`",
                e.span,
            )
        return T.BOOL
    # arithmetic
    if ls == T.ANY or rs == T.ANY:
        return T.ANY
    if op == "+" and ls == T.STRING and rs == T.STRING:
        return T.STRING
    if ls in T.NUMERIC and rs in T.NUMERIC:
        if op == "/":
            return T.FLOAT
        if op == "%" and (ls != T.INT or rs != T.INT):
            return ctx.error(Code.TYPE_MISMATCH, "`%` needs two ints", e.span)
        return T.INT if ls == rs == T.INT else T.FLOAT
    if ls == T.TIMESTAMP and rs == T.DURATION and op in ("+", "-"):
        return T.TIMESTAMP
    if ls == T.DURATION and rs == T.TIMESTAMP and op == "+":
        return T.TIMESTAMP
    if ls == T.TIMESTAMP and rs == T.TIMESTAMP and op == "-":
        return T.DURATION
    if ls == T.DURATION and rs == T.DURATION and op in ("+", "-"):
        return T.DURATION
    if ls == T.DURATION and rs == T.DURATION and op == "/":
        return T.FLOAT
    if ls == T.DURATION and rs in T.NUMERIC and op in ("*", "/"):
        return T.DURATION
    if ls in T.NUMERIC and rs == T.DURATION and op == "*":
        return T.DURATION
    why: str | None = None
    if T.TIMESTAMP in (ls, rs) or T.DURATION in (ls, rs):
        why = (
            "time arithmetic: `timestamp - timestamp` is a duration, "
            "`timestamp ± duration` a timestamp"
        )
    elif op == "+" and T.STRING in (ls, rs):
        why = (
            "`+` joins two strings and adds numbers; nothing is converted implicitly "
            '(to show a value in a message, write `"… {value} …"`)'
        )
    return ctx.error(Code.TYPE_MISMATCH, f"cannot apply `{op}` to `{lt}` and `{rt}`", e.span, why)


def _mismatch_hint(a: T.Type, b: T.Type) -> str | None:
    pair = {str(a), str(b)}
    if pair == {"timestamp", "string"}:
        return "write timestamps unquoted (`2026-01-31T00:00:00Z`) or convert with `time(text)`"
    if pair == {"timestamp", "int"}:
        return "write a timestamp in full, e.g. `2026-03-01T00:00:00Z`; `2026-03-01` is arithmetic"
    if pair == {"duration", "string"}:
        return "write durations unquoted, e.g. `48h` or `30d`"
    if T.BOOL in (a, b):
        return "booleans are `true` / `false`, unquoted"
    if "int" in pair and "string" in pair:
        return "numbers are written without quotes"
    return None


def _iterate(coll: ast.Expr, ctx: Context) -> T.Type:
    t = check(coll, ctx)
    elem = T.element_type(t)
    if elem is None:
        ctx.error(
            Code.TYPE_MISMATCH,
            f"cannot iterate over `{t}`",
            coll.span,
            "quantifiers range over lists, sets and maps (their keys)",
        )
        return T.ANY
    return elem


def _quantifier(e: ast.Quantifier, ctx: Context) -> T.Type:
    elem = _iterate(e.collection, ctx)
    ctx.vars.append(elem)
    try:
        if e.where is not None:
            expect_bool(e.where, ctx, "a `where` filter")
        if e.body is not None:
            expect_bool(e.body, ctx, f"the condition of `{e.kind}`")
        if e.distinct_key is not None:
            kt = check(e.distinct_key, ctx)
            if not _hashable(kt):
                ctx.error(
                    Code.TYPE_MISMATCH, f"cannot count distinct `{kt}` values", e.distinct_key.span
                )
    finally:
        ctx.vars.pop()
    return T.INT if e.kind == "count" else T.BOOL


# ---------------------------------------------------------------- functions

Sig = Callable[[ast.Call, list[T.Type], Context], T.Type]


def _arity(e: ast.Call, n: int, ctx: Context) -> bool:
    if len(e.args) != n:
        ctx.error(
            Code.WRONG_ARITY,
            f"`{e.func}` takes {n} argument{'s' if n != 1 else ''}, got {len(e.args)}",
            e.span,
            FUNCTION_DOCS.get(e.func),
        )
        return False
    return True


def _want(e: ast.Call, i: int, got: T.Type, ok: tuple[T.Type, ...], ctx: Context) -> None:
    s = T.strip(got)
    if s == T.ANY or s in ok:
        return
    names = " or ".join(f"`{t}`" for t in ok)
    ctx.error(
        Code.TYPE_MISMATCH,
        f"argument {i + 1} of `{e.func}` must be {names}, found `{got}`",
        e.args[i].span,
        FUNCTION_DOCS.get(e.func),
    )


def _string_pred(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 2, ctx):
        _want(e, 0, ts[0], (T.STRING,), ctx)
        _want(e, 1, ts[1], (T.STRING,), ctx)
    return T.BOOL


def _string_fn(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx):
        _want(e, 0, ts[0], (T.STRING,), ctx)
    return T.STRING


def _contains(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if not _arity(e, 2, ctx):
        return T.BOOL
    s = T.strip(ts[0])
    if s == T.STRING:
        _want(e, 1, ts[1], (T.STRING,), ctx)
    elif T.element_type(s) is None:
        ctx.error(
            Code.TYPE_MISMATCH,
            f"argument 1 of `contains` must be a string or a collection, found `{ts[0]}`",
            e.args[0].span,
        )
    return T.BOOL


def _matches(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if not _arity(e, 2, ctx):
        return T.BOOL
    _want(e, 0, ts[0], (T.STRING,), ctx)
    pat = e.args[1]
    value: Any = None
    if isinstance(pat, ast.Literal):
        value = pat.value
    elif isinstance(pat, ast.ConstRef):
        value = ctx.const_values.get(pat.qualified)
    if not isinstance(value, str):
        ctx.error(
            Code.NOT_CONSTANT,
            "the pattern of `matches` must be a string literal or constant",
            pat.span,
            "patterns are compiled once, when the bundle compiles",
        )
        return T.BOOL
    try:
        ctx.regexes[value] = re2.compile(value)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):  # google-re2 reports bytes
            reason = reason.decode("utf-8", "replace")
        ctx.error(
            Code.BAD_REGEX,
            f"invalid regular expression `{value}`: {reason}",
            pat.span,
            "patterns use RE2 syntax (no backreferences or look-around), so matching is linear",
        )
    return T.BOOL


def _len(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx):
        s = T.strip(ts[0])
        if s != T.STRING and T.element_type(s) is None:
            ctx.error(
                Code.TYPE_MISMATCH,
                f"`len` needs a string or a collection, found `{ts[0]}`",
                e.args[0].span,
            )
    return T.INT


def _coll_fn(
    result: Callable[[T.Type], T.Type], numeric: bool = False, ordered: bool = False
) -> Sig:
    def sig(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
        if not _arity(e, 1, ctx):
            return T.ANY
        elem = T.element_type(ts[0])
        if elem is None:
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"`{e.func}` needs a collection, found `{ts[0]}`",
                e.args[0].span,
            )
        if numeric and not T.is_numeric(elem) and T.strip(elem) != T.DURATION:
            return ctx.error(
                Code.TYPE_MISMATCH, f"`{e.func}` needs numbers, found `{elem}`", e.args[0].span
            )
        if ordered and T.strip(elem) not in (*_ORDERED, T.ANY):
            return ctx.error(
                Code.TYPE_MISMATCH,
                f"`{e.func}` needs numbers, strings, timestamps or durations, found `{elem}`",
                e.args[0].span,
            )
        return result(elem)

    return sig


def _map_fn(result: Callable[[T.Type], T.Type]) -> Sig:
    def sig(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
        if not _arity(e, 1, ctx):
            return T.ANY
        s = T.strip(ts[0])
        if isinstance(s, T.MapOf):
            return result(s.value)
        if s == T.ANY:
            return T.ListOf(T.ANY)
        return ctx.error(
            Code.TYPE_MISMATCH, f"`{e.func}` needs a map, found `{ts[0]}`", e.args[0].span
        )

    return sig


def _abs(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx):
        _want(e, 0, ts[0], (T.INT, T.FLOAT, T.DURATION), ctx)
        return T.strip(ts[0])
    return T.ANY


def _time(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx):
        _want(e, 0, ts[0], (T.STRING, T.TIMESTAMP), ctx)
    return T.TIMESTAMP


def _has(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx) and not isinstance(e.args[0], ast.Attr | ast.Index):
        ctx.error(
            Code.TYPE_MISMATCH,
            "`has` needs an attribute path such as `event.target.region`",
            e.args[0].span,
        )
    return T.BOOL


def _entity_arg(e: ast.Call, t: T.Type, ctx: Context) -> T.Entity | None:
    s = T.strip(t)
    if isinstance(s, T.Entity):
        return s
    if s != T.ANY:
        ctx.error(
            Code.TYPE_MISMATCH,
            f"`{e.func}` needs an entity such as `subject` or `subject.training_run`, found `{t}`",
            e.args[0].span,
            FUNCTION_DOCS.get(e.func),
        )
    return None


def _upstream(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if not _arity(e, 2, ctx):
        return T.ANY
    _entity_arg(e, ts[0], ctx)
    arg = e.args[1]
    kind = upstream_kind(arg, ctx.const_values)
    if kind is None:
        return ctx.error(
            Code.NOT_CONSTANT,
            "the kind in `upstream` must be a quoted entity kind or a string constant",
            arg.span,
            'e.g. `upstream(subject, "dataset")`',
        )
    if kind not in ctx.env.entities:
        return ctx.error(
            Code.UNKNOWN_ENTITY_KIND,
            f"unknown entity kind `{kind}`",
            arg.span,
            did_you_mean(kind, ctx.env.entities)
            or "kinds: " + ", ".join(f"`{k}`" for k in sorted(ctx.env.entities)),
        )
    return T.ListOf(T.Entity(kind))


def upstream_kind(arg: ast.Expr, const_values: Mapping[str, Any]) -> str | None:
    """The entity kind named by `upstream`'s second argument: a literal or a constant."""
    if isinstance(arg, ast.Literal) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.ConstRef):
        value = const_values.get(arg.qualified)
        return value if isinstance(value, str) else None
    return None


def _known(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
    if _arity(e, 1, ctx):
        _entity_arg(e, ts[0], ctx)
    return T.BOOL


def _rule_fn(result: T.Type) -> Sig:
    def sig(e: ast.Call, ts: list[T.Type], ctx: Context) -> T.Type:
        _arity(e, 1, ctx)
        return result

    return sig


FUNCTIONS: dict[str, Sig] = {
    "has": _has,
    "passed": _rule_fn(T.BOOL),
    "failed": _rule_fn(T.BOOL),
    "outcome": _rule_fn(T.STRING),
    "len": _len,
    "starts_with": _string_pred,
    "ends_with": _string_pred,
    "contains": _contains,
    "matches": _matches,
    "lower": _string_fn,
    "upper": _string_fn,
    "trim": _string_fn,
    "distinct": _coll_fn(T.ListOf),
    "sum": _coll_fn(lambda t: T.strip(t), numeric=True),
    "min": _coll_fn(lambda t: T.strip(t), ordered=True),
    "max": _coll_fn(lambda t: T.strip(t), ordered=True),
    "keys": _map_fn(lambda _v: T.ListOf(T.STRING)),
    "values": _map_fn(T.ListOf),
    "abs": _abs,
    "time": _time,
    "upstream": _upstream,
    "known": _known,
}

FUNCTION_DOCS: dict[str, str] = {
    "has": "`has(path)` is true when the attribute exists and is not null",
    "passed": "`passed(rule)` is true when that rule passed for this event",
    "failed": "`failed(rule)` is true when that rule failed (or errored) for this event",
    "outcome": '`outcome(rule)` is `"pass"`, `"fail"`, `"not_applicable"` or `"error"`',
    "len": "`len(x)` counts characters of a string or items of a collection",
    "starts_with": "`starts_with(text, prefix)`",
    "ends_with": "`ends_with(text, suffix)`",
    "contains": "`contains(text, part)` or `contains(collection, item)`",
    "matches": '`matches(text, "pattern")`, RE2 syntax, searched anywhere in text',
    "lower": "`lower(text)`",
    "upper": "`upper(text)`",
    "trim": "`trim(text)` strips surrounding white space",
    "distinct": "`distinct(list)` drops repeated items, keeping first occurrences",
    "sum": "`sum(list)` of numbers or durations",
    "min": "`min(list)`; an error on an empty list",
    "max": "`max(list)`; an error on an empty list",
    "keys": "`keys(map)` as a sorted list",
    "values": "`values(map)` in key order",
    "abs": "`abs(number)` or `abs(duration)`",
    "time": "`time(text)` parses an RFC 3339 timestamp",
    "upstream": '`upstream(entity, "kind")`: every entity of that kind its lineage references,'
    " transitively",
    "known": "`known(entity)` is true when the referenced entity has been registered",
}


def _call(e: ast.Call, ctx: Context) -> T.Type:
    sig = FUNCTIONS.get(e.func)
    if e.func in ("passed", "failed", "outcome"):
        return sig(e, [], ctx) if sig else T.ANY
    ts = [check(a, ctx) for a in e.args]
    if sig is None:
        sp = e.span  # point at the name, not the whole call
        name_span = ast.Span(
            sp.file, sp.start, sp.start + len(e.func), sp.line, sp.column, sp.line,
            sp.column + len(e.func),
        )  # fmt: skip
        return ctx.error(
            Code.UNKNOWN_FUNCTION,
            f"unknown function `{e.func}`",
            name_span,
            did_you_mean(e.func, FUNCTIONS)
            or f"built-in functions: {', '.join(f'`{f}`' for f in sorted(FUNCTIONS))}",
        )
    return sig(e, ts, ctx)
