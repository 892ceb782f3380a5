"""Pass 5 — lowering: typed AST → Python closures.

Prepare once, evaluate many: every expression becomes a tree of small closures
specialised on the static types the checker found (entity look-ups, strict
equality only where a value is untyped). No user text ever reaches eval/exec.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from policyengine.compiler import types as T
from policyengine.compiler.schema import ENVELOPE_FIELDS, default_env
from policyengine.compiler.typecheck import TypeMap, upstream_kind
from policyengine.language import ast
from policyengine.runtime.errors import EvalError
from policyengine.runtime.frame import Frame
from policyengine.runtime.values import format_value, iterate, sort_key

Fn = Callable[[Frame], Any]
_NOT_CONST: Any = object()
Detail = tuple[tuple[str, Any], ...]
ExplainFn = Callable[[Frame], tuple[Any, Detail]]


def _bool_error(v: Any, span: ast.Span, what: str) -> EvalError:
    return EvalError(f"{what} must be a boolean, got `{format_value(v)}`", span)


def strict_eq(a: Any, b: Any) -> bool:
    """Equality that never confuses `true` with `1` (Python does), at any depth."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_eq(a[k], b[k]) for k in a)
    if isinstance(a, frozenset | set) and isinstance(b, frozenset | set):
        return len(a) == len(b) and all(any(strict_eq(x, y) for y in b) for x in a)
    return bool(a == b)


def value_kind(v: Any) -> str:
    """The language-level kind of a run-time value, for checks on untyped data."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, datetime):
        return "timestamp"
    if isinstance(v, timedelta):
        return "duration"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, frozenset | set):
        return "set"
    if isinstance(v, dict):
        return "map"
    return "other"


_ORDERED_KINDS = frozenset({"number", "string", "timestamp", "duration"})
# (operator, left kind, right kind) combinations the language defines.
_ARITH = frozenset(
    {(op, "number", "number") for op in "+-*/%"}
    | {
        ("+", "string", "string"),
        ("+", "timestamp", "duration"),
        ("-", "timestamp", "duration"),
        ("+", "duration", "timestamp"),
        ("-", "timestamp", "timestamp"),
        ("+", "duration", "duration"),
        ("-", "duration", "duration"),
        ("/", "duration", "duration"),
        ("*", "duration", "number"),
        ("/", "duration", "number"),
        ("*", "number", "duration"),
    }
)


def _allowed(op: str, a: Any, b: Any) -> bool:
    """Whether `a op b` is defined by the language (checked only for untyped values)."""
    ka, kb = value_kind(a), value_kind(b)
    if op in ("<", "<=", ">", ">="):
        return ka == kb and ka in _ORDERED_KINDS
    return (op, ka, kb) in _ARITH


def _undefined_path(text: str, span: ast.Span) -> EvalError:
    return EvalError(f"`{text}` is missing", span, undefined=True)


_SNIPPET = re.compile(r'"(?:[^"\\]|\\.)*"|\s+')


def snippet(source: str, span: ast.Span) -> str:
    """The source text of a span on one line: runs of white space outside string
    literals become one space (strings keep theirs, they are values)."""
    if span.end <= span.start or not source:
        return "?"
    text = source[span.start : span.end]
    return _SNIPPET.sub(lambda m: m.group(0) if m.group(0)[0] == '"' else " ", text).strip()


def _unknown_entity(kind: str, ref: Any, obj_text: str, text: str, span: ast.Span) -> EvalError:
    if ref is None:
        return EvalError(f"`{obj_text}` is null, so `{text}` is missing", span, undefined=True)
    return EvalError(f"{kind} `{ref}` is not known, so `{text}` is missing", span, undefined=True)


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _parse_time(text: Any, span: ast.Span) -> datetime:
    if isinstance(text, datetime):
        return text
    if not isinstance(text, str):
        raise EvalError(f"`time` needs a string, got `{format_value(text)}`", span)
    if not _RFC3339.fullmatch(text):
        raise EvalError(
            f"`{text}` is not an RFC 3339 timestamp (e.g. `2026-03-01T09:30:00Z`)", span
        )
    try:
        value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise EvalError(f"`{text}` is not a valid date and time", span) from None
    return value.astimezone(UTC)


@cache
def entity_references() -> dict[str, tuple[tuple[str, str, bool], ...]]:
    """{entity kind: ((field, referenced kind, is a list), …)} from the entity models."""
    out: dict[str, tuple[tuple[str, str, bool], ...]] = {}
    for kind, record in default_env().entities.items():
        refs: list[tuple[str, str, bool]] = []
        for name, t in record.fields.items():
            s = T.strip(t)
            if isinstance(s, T.Entity):
                refs.append((name, s.kind, False))
            elif isinstance(s, T.ListOf) and isinstance(T.strip(s.item), T.Entity):
                item = T.strip(s.item)
                assert isinstance(item, T.Entity)
                refs.append((name, item.kind, True))
        out[kind] = tuple(refs)
    return out


class Lowerer:
    def __init__(
        self,
        types: TypeMap,
        const_values: Mapping[str, Any],
        regexes: Mapping[str, Any],
        source: str,
    ) -> None:
        self.types = types
        self.consts = const_values
        self.regexes = regexes
        self.source = source
        self.max_slot = -1

    def text(self, e: ast.Expr) -> str:
        return snippet(self.source, e.span)

    def type_of(self, e: ast.Expr) -> T.Type:
        return self.types.get(id(e), T.ANY)

    # ------------------------------------------------------------ values
    def expr(self, e: ast.Expr) -> Fn:
        if isinstance(e, ast.Literal):
            v = e.value
            return lambda f: v
        if isinstance(e, ast.ConstRef):
            c = self.consts[e.qualified]
            return lambda f: c
        if isinstance(e, ast.Root):
            if e.id == "now":
                return lambda f: f.now
            if e.id == "subject":
                return lambda f: f.subject_id
            return lambda f: f.event
        if isinstance(e, ast.Var):
            slot = e.slot
            return lambda f: f.vars[slot]
        if isinstance(e, ast.Attr):
            return self._attr(e)
        if isinstance(e, ast.Index):
            return self._index(e)
        if isinstance(e, ast.Unary):
            return self._unary(e)
        if isinstance(e, ast.BoolOp):
            return self._boolop(e)
        if isinstance(e, ast.Binary):
            return self._binary(e)
        if isinstance(e, ast.ListLit):
            items = [self.expr(i) for i in e.items]
            return lambda f: [i(f) for i in items]
        if isinstance(e, ast.SetLit):
            folded = self._constant(e)
            if folded is not _NOT_CONST:
                return lambda f: folded
            return self._set(e)
        if isinstance(e, ast.Quantifier):
            return self._quantifier(e)
        if isinstance(e, ast.ListComp):
            return self._listcomp(e)
        if isinstance(e, ast.Call):
            return self._call(e)
        span = e.span
        message = f"cannot evaluate `{self.text(e)}`"

        def unresolved(f: Frame) -> Any:
            raise EvalError(message, span)

        return unresolved

    def _set(self, e: ast.SetLit) -> Fn:
        items = [self.expr(i) for i in e.items]
        span = e.span

        def make(f: Frame) -> frozenset[Any]:
            values = [i(f) for i in items]
            if not _uniform(values):
                raise EvalError("a set cannot mix booleans and numbers", span)
            try:
                return frozenset(values)
            except TypeError:
                raise EvalError("set items must be plain values", span) from None

        return make

    # ------------------------------------------------------------ paths
    def _attr(self, e: ast.Attr) -> Fn:
        name = e.name
        span = e.span
        text = self.text(e)
        obj_t = T.strip(self.type_of(e.obj))
        obj = e.obj
        if isinstance(obj, ast.Root) and obj.id == "event":
            if name == "subject":
                return lambda f: f.subject_id
            if name in ENVELOPE_FIELDS:
                return lambda f: f.event[name]

            def event_attr(f: Frame) -> Any:
                try:
                    return f.attrs[name]
                except KeyError:
                    raise _undefined_path(text, span) from None

            return event_attr
        if isinstance(obj, ast.Root) and obj.id == "subject":
            kind_text = text

            def subject_attr(f: Frame) -> Any:
                s = f._subject
                if s is None:
                    s = f.subject()
                    if s is None:
                        raise EvalError(
                            f"the subject {f.subject_kind} `{f.subject_id}` is not known, "
                            f"so `{kind_text}` is missing",
                            span,
                            undefined=True,
                        )
                try:
                    return s[name]
                except KeyError:
                    raise _undefined_path(kind_text, span) from None

            return subject_attr
        if isinstance(obj, ast.Var) and not isinstance(obj_t, T.Entity):
            return self._var_field(obj, name, text, span)
        inner = self.expr(obj)
        if isinstance(obj_t, T.Entity):
            kind = obj_t.kind
            obj_text = self.text(obj)
            if isinstance(obj, ast.Var):
                slot = obj.slot

                def var_entity_attr(f: Frame) -> Any:
                    ref = f.vars[slot]
                    ent = f.state.get(kind, ref) if ref is not None else None
                    if ent is None:
                        raise _unknown_entity(kind, ref, obj_text, text, span)
                    try:
                        return ent[name]
                    except KeyError:
                        raise _undefined_path(text, span) from None

                return var_entity_attr

            def entity_attr(f: Frame) -> Any:
                ref = inner(f)
                ent = f.state.get(kind, ref) if ref is not None else None
                if ent is None:
                    raise _unknown_entity(kind, ref, obj_text, text, span)
                try:
                    return ent[name]
                except KeyError:
                    raise _undefined_path(text, span) from None

            return entity_attr
        obj_text = self.text(obj)

        def field(f: Frame) -> Any:
            v = inner(f)
            try:
                return v[name]
            except (KeyError, TypeError, IndexError):
                if v is None:
                    raise EvalError(
                        f"`{obj_text}` is null, so `{text}` is missing", span, undefined=True
                    ) from None
                if isinstance(v, dict):
                    raise _undefined_path(text, span) from None
                raise EvalError(
                    f"`{obj_text}` is `{format_value(v)}`, which has no attribute `{name}`", span
                ) from None

        return field

    def _var_field(self, var: ast.Var, name: str, text: str, span: ast.Span) -> Fn:
        """`x.name` for a quantifier variable: the commonest path, in one closure."""
        slot = var.slot
        var_text = var.id

        def var_field(f: Frame) -> Any:
            v = f.vars[slot]
            try:
                return v[name]
            except (KeyError, TypeError, IndexError):
                if v is None:
                    raise EvalError(
                        f"`{var_text}` is null, so `{text}` is missing", span, undefined=True
                    ) from None
                if isinstance(v, dict):
                    raise _undefined_path(text, span) from None
                raise EvalError(
                    f"`{var_text}` is `{format_value(v)}`, which has no attribute `{name}`", span
                ) from None

        return var_field

    def _index(self, e: ast.Index) -> Fn:
        obj, key = self.expr(e.obj), self.expr(e.key)
        obj_t = T.strip(self.type_of(e.obj))
        span, text = e.span, self.text(e)
        if isinstance(e.obj, ast.Root) and e.obj.id in ("event", "subject"):
            return self._root_index(e.obj.id, key, text, span)
        entity_kind = obj_t.kind if isinstance(obj_t, T.Entity) else None
        obj_text = self.text(e.obj)

        def index(f: Frame) -> Any:
            v, k = obj(f), key(f)
            if entity_kind is not None:
                ref = v
                v = f.state.get(entity_kind, ref) if ref is not None else None
                if v is None:
                    raise _unknown_entity(entity_kind, ref, obj_text, text, span)
            if isinstance(k, bool):
                raise EvalError(f"`{text}`: an index cannot be a boolean", span)
            if isinstance(v, str):
                raise EvalError(f"`{text}`: text cannot be indexed", span)
            try:
                return v[k]
            except (KeyError, IndexError):
                raise _undefined_path(text, span) from None
            except TypeError:
                if v is None:
                    raise _undefined_path(text, span) from None
                raise EvalError(f"cannot index `{format_value(v)}` with `{k}`", span) from None

        return index

    def _root_index(self, root: str, key: Fn, text: str, span: ast.Span) -> Fn:
        """`event["name"]` / `subject["name"]`: the same as `.name`, with the name computed."""

        def root_index(f: Frame) -> Any:
            k = key(f)
            if not isinstance(k, str):
                raise EvalError(f"`{text}`: the key must be a string", span)
            if root == "event":
                if k == "subject":
                    return f.subject_id
                source = f.event if k in ENVELOPE_FIELDS else f.attrs
            else:
                s = f.subject()
                if s is None:
                    raise _unknown_entity(f.subject_kind, f.subject_id, "subject", text, span)
                source = s
            try:
                return source[k]
            except KeyError:
                raise _undefined_path(text, span) from None

        return root_index

    # ------------------------------------------------------------ operators
    def _unary(self, e: ast.Unary) -> Fn:
        inner = self.expr(e.operand)
        span = e.span
        if e.op == "not":

            def not_(f: Frame) -> bool:
                v = inner(f)
                if v is True:
                    return False
                if v is False:
                    return True
                raise _bool_error(v, span, "the operand of `not`")

            return not_

        def neg(f: Frame) -> Any:
            v = inner(f)
            if isinstance(v, bool) or v is None:
                raise EvalError(f"cannot negate `{format_value(v)}`", span)
            try:
                return -v
            except TypeError:
                raise EvalError(f"cannot negate `{format_value(v)}`", span) from None

        return neg

    def _boolop(self, e: ast.BoolOp) -> Fn:
        ops = tuple(self.expr(o) for o in e.operands)
        spans = tuple(o.span for o in e.operands)
        what = f"each operand of `{e.op}`"
        if e.op == "and":
            if len(ops) == 2:
                a, b = ops

                def and2(f: Frame) -> bool:
                    v = a(f)
                    if v is False:
                        return False
                    if v is not True:
                        raise _bool_error(v, spans[0], what)
                    v = b(f)
                    if v is True or v is False:
                        return v
                    raise _bool_error(v, spans[1], what)

                return and2

            def and_(f: Frame) -> bool:
                for o in ops:
                    v = o(f)
                    if v is False:
                        return False
                    if v is not True:
                        raise _bool_error(v, spans[ops.index(o)], what)
                return True

            return and_

        def or_(f: Frame) -> bool:
            for o in ops:
                v = o(f)
                if v is True:
                    return True
                if v is not False:
                    raise _bool_error(v, spans[ops.index(o)], what)
            return False

        return or_

    def _binary(self, e: ast.Binary) -> Fn:
        left, right = self.expr(e.left), self.expr(e.right)
        if e.op == "??":

            def coalesce(f: Frame) -> Any:
                try:
                    v = left(f)
                except EvalError as err:
                    if not err.undefined:
                        raise
                    return right(f)
                return right(f) if v is None else v

            return coalesce
        if e.op in ("==", "!=") and not self._untyped(e):
            # The hot path: typed equality needs no checks at all.
            const = self._constant(e.right)
            if const is not _NOT_CONST:
                c = const
                if e.op == "==":
                    return lambda f: left(f) == c
                return lambda f: left(f) != c
            if e.op == "==":
                return lambda f: left(f) == right(f)
            return lambda f: left(f) != right(f)
        if e.op in ("in", "not in") and not self._untyped(e):
            hay = self._constant(e.right)
            if isinstance(hay, frozenset | list | tuple | dict) and _uniform(hay):
                members = hay
                negate = e.op == "not in"
                ltext = self.text(e.left)
                span = e.span

                def member_const(f: Frame) -> bool:
                    try:
                        return (left(f) in members) is not negate
                    except TypeError:  # unhashable value against a set
                        raise EvalError(f"cannot look for `{ltext}` in a set", span) from None

                return member_const
        apply = self._binary_op(e)
        if e.op == "in" and not self._untyped(e):

            def member_typed(f: Frame) -> Any:
                a, b = left(f), right(f)
                try:
                    return a in b
                except TypeError:
                    return apply(a, b)  # words the error

            return member_typed
        return lambda f: apply(left(f), right(f))

    def _constant(self, e: ast.Expr) -> Any:
        """The value of a literal, constant reference or set/list of those, else
        `_NOT_CONST` — folded once here instead of rebuilt per event."""
        if isinstance(e, ast.Literal):
            return e.value
        if isinstance(e, ast.ConstRef):
            return self.consts[e.qualified]
        if isinstance(e, ast.SetLit | ast.ListLit):
            items = [self._constant(i) for i in e.items]
            if any(i is _NOT_CONST for i in items):
                return _NOT_CONST
            if isinstance(e, ast.ListLit):
                return items
            if not _uniform(items):
                return _NOT_CONST
            try:
                return frozenset(items)
            except TypeError:
                return _NOT_CONST
        return _NOT_CONST

    def _untyped(self, e: ast.Binary) -> bool:
        """Whether either side may hold values of any type at run time, so equality
        must be strict (Python's `True == 1` must not leak into the language)."""
        left, right = self.type_of(e.left), self.type_of(e.right)
        if T.has_any(left) or T.has_any(right):
            return True
        if e.op in ("in", "not in"):
            elem = T.element_type(right)
            return elem is None or T.is_any(elem)
        return False

    def _binary_op(self, e: ast.Binary) -> Callable[[Any, Any], Any]:
        """The operator of `e` as a function of its two operand values."""
        op, span = e.op, e.span
        untyped = self._untyped(e)
        if op in ("==", "!="):
            negate = op == "!="
            if untyped:
                return lambda a, b: strict_eq(a, b) is not negate
            return (lambda a, b: a != b) if negate else (lambda a, b: a == b)
        if op in ("in", "not in"):
            negate = op == "not in"
            rtext = self.text(e.right)

            def member(needle: Any, hay: Any) -> bool:
                if not isinstance(hay, list | tuple | frozenset | set | dict):
                    raise EvalError(f"`{rtext}` is `{format_value(hay)}`, not a collection", span)
                try:
                    if untyped:
                        keys = hay.keys() if isinstance(hay, dict) else hay
                        found = any(strict_eq(needle, x) for x in keys)
                    else:
                        found = needle in hay
                except TypeError:
                    raise EvalError(
                        f"cannot look for `{format_value(needle)}` in `{rtext}`", span
                    ) from None
                return found is not negate

            return member
        pyop = _OPS[op]
        ltext, rtext = self.text(e.left), self.text(e.right)
        verb = "apply" if op in ("+", "-", "*", "/", "%") else "compare"

        def binop(a: Any, b: Any) -> Any:
            if untyped and not _allowed(op, a, b):
                raise EvalError(
                    f"cannot {verb} `{format_value(a)}` and `{format_value(b)}` with `{op}`", span
                )
            try:
                return pyop(a, b)
            except ZeroDivisionError:
                raise EvalError(f"division by zero in `{ltext} {op} {rtext}`", span) from None
            except (TypeError, OverflowError):
                raise EvalError(
                    f"cannot {verb} `{format_value(a)}` and `{format_value(b)}` with `{op}`", span
                ) from None

        return binop

    # ------------------------------------------------------------ quantifiers
    def _quantifier(self, e: ast.Quantifier) -> Fn:
        """Loops are written out per shape (filter or not, body or not): the inner
        loop is the hot path, so each check is inlined rather than called."""
        src, slow = self._collection_parts(e.collection)
        slot = self._slot(e)
        kind = e.kind
        where = self.expr(e.where) if e.where is not None else _always
        wspan = e.where.span if e.where is not None else e.span
        if kind == "count":
            if e.distinct_key is not None:
                key = self.expr(e.distinct_key)
                kspan = e.distinct_key.span
                if T.is_any(self.type_of(e.distinct_key)):
                    raw_key = key
                    key = lambda f: _strict_key(raw_key(f))  # noqa: E731

                def count_distinct(f: Frame) -> int:
                    seen: set[Any] = set()
                    fv = f.vars
                    v = src(f)
                    for x in v if type(v) is list else slow(v):
                        fv[slot] = x
                        v = where(f)
                        if v is True:
                            try:
                                seen.add(key(f))
                            except TypeError:
                                raise EvalError(
                                    "cannot count distinct values of this kind", kspan
                                ) from None
                        elif v is not False:
                            raise _bool_error(v, wspan, "a `where` filter")
                    return len(seen)

                return count_distinct

            def count(f: Frame) -> int:
                n = 0
                fv = f.vars
                c = src(f)
                for x in c if type(c) is list else slow(c):
                    fv[slot] = x
                    v = where(f)
                    if v is True:
                        n += 1
                    elif v is not False:
                        raise _bool_error(v, wspan, "a `where` filter")
                return n

            return count
        body = self.expr(e.body) if e.body is not None else _always
        bspan = e.body.span if e.body is not None else e.span
        what = f"the condition of `{kind}`"
        # all: stop at the first kept element whose body is false → False.
        # any: stop at the first kept element whose body is true → True. none = not any.
        stop_on = kind != "all"
        result_on_stop = kind == "any"

        def quantify(f: Frame) -> bool:
            fv = f.vars
            c = src(f)
            for x in c if type(c) is list else slow(c):
                fv[slot] = x
                v = where(f)
                if v is False:
                    continue
                if v is not True:
                    raise _bool_error(v, wspan, "a `where` filter")
                b = body(f)
                if b is stop_on:
                    return result_on_stop
                if b is not (not stop_on):
                    raise _bool_error(b, bspan, what)
            return not result_on_stop

        return quantify

    def _slot(self, e: ast.Quantifier | ast.ListComp) -> int:
        self.max_slot = max(self.max_slot, e.slot)
        return e.slot

    def _collection(self, e: ast.Expr) -> Callable[[Frame], Any]:
        inner, slow = self._collection_parts(e)

        def items(f: Frame) -> Any:
            v = inner(f)
            return v if type(v) is list else slow(v)

        return items

    def _collection_parts(self, e: ast.Expr) -> tuple[Fn, Callable[[Any], Any]]:
        """The collection's closure plus the slow path for anything but a list
        (sets sorted, maps by key, non-collections an error), for inlined loops."""
        inner = self.expr(e)
        span, text = e.span, self.text(e)

        def slow(v: Any) -> Any:
            try:
                return iterate(v)
            except TypeError:
                raise EvalError(
                    f"`{text}` is `{format_value(v)}`, not a collection", span
                ) from None

        return inner, slow

    def _listcomp(self, e: ast.ListComp) -> Fn:
        coll = self._collection(e.collection)
        slot = self._slot(e)
        where = self.expr(e.where) if e.where is not None else None
        item = self.expr(e.item)
        wspan = e.where.span if e.where is not None else e.span

        def comp(f: Frame) -> list[Any]:
            out = []
            fv = f.vars
            for x in coll(f):
                fv[slot] = x
                if where is not None:
                    v = where(f)
                    if v is False:
                        continue
                    if v is not True:
                        raise _bool_error(v, wspan, "a `where` filter")
                out.append(item(f))
            return out

        return comp

    # ------------------------------------------------------------ lineage
    def _lineage(self, e: ast.Call) -> Fn:
        """`upstream(x, "kind")` walks the Ref fields of entity state breadth-first from x;
        `known(x)` says whether x is in the state store. Pure reads of state, so lineage
        rules stay as reproducible as any other."""
        start_t = T.strip(self.type_of(e.args[0]))
        start_kind = start_t.kind if isinstance(start_t, T.Entity) else ""
        arg = self.expr(e.args[0])
        span = e.span
        if e.func == "known":

            def known(f: Frame) -> bool:
                ref = arg(f)
                return ref is not None and f.state.get(start_kind, ref) is not None

            return known
        target = upstream_kind(e.args[1], self.consts) or ""
        refs = entity_references()

        def upstream(f: Frame) -> list[Any]:
            ref = arg(f)
            if not isinstance(ref, str):
                raise EvalError(f"`upstream` needs an entity id, got `{format_value(ref)}`", span)
            seen = {(start_kind, ref)}
            queue = [(start_kind, ref)]
            out: list[Any] = []
            while queue:
                kind, ident = queue.pop(0)
                ent = f.state.get(kind, ident)
                if ent is None:
                    continue
                for field_name, ref_kind, many in refs.get(kind, ()):
                    value = ent.get(field_name)
                    for v in value if many and isinstance(value, list) else (value,):
                        if isinstance(v, str) and (ref_kind, v) not in seen:
                            seen.add((ref_kind, v))
                            queue.append((ref_kind, v))
                            if ref_kind == target:
                                out.append(v)
            return out

        return upstream

    # ------------------------------------------------------------ calls
    def _call(self, e: ast.Call) -> Fn:
        name, span = e.func, e.span
        if name in ("passed", "failed", "outcome"):
            arg = e.args[0]
            rule = arg.qualified if isinstance(arg, ast.RuleRef) else ""
            if name == "passed":
                return lambda f: f.results.get(rule) == "pass"
            if name == "failed":
                return lambda f: f.results.get(rule) in ("fail", "error")
            return lambda f: f.results.get(rule, "not_applicable")
        if name == "has":
            inner = self.expr(e.args[0])

            def has(f: Frame) -> bool:
                try:
                    return inner(f) is not None
                except EvalError as err:
                    if err.undefined:
                        return False
                    raise

            return has
        if name == "matches":
            pattern = e.args[1]
            text = (
                pattern.value
                if isinstance(pattern, ast.Literal)
                else (self.consts[pattern.qualified] if isinstance(pattern, ast.ConstRef) else "")
            )
            regex = self.regexes[text]
            subject = self.expr(e.args[0])

            def matches(f: Frame) -> bool:
                s = subject(f)
                if not isinstance(s, str):
                    raise EvalError(f"`matches` needs a string, got `{format_value(s)}`", span)
                return regex.search(s) is not None

            return matches
        if name in ("upstream", "known"):
            return self._lineage(e)
        args = tuple(self.expr(a) for a in e.args)
        if name == "time":
            only = args[0]
            return lambda f: _parse_time(only(f), span)
        impl = _FUNCS[name]
        if name == "sum" and T.strip(T.element_type(self.type_of(e.args[0])) or T.ANY) == (
            T.DURATION
        ):
            impl = _sum_durations

        def call(f: Frame) -> Any:
            values = [a(f) for a in args]
            try:
                return impl(*values)
            except EvalError:
                raise
            except (TypeError, ValueError, AttributeError) as exc:
                shown = ", ".join(format_value(v) for v in values)
                detail = str(exc) if isinstance(exc, ValueError) else "wrong kind of value"
                raise EvalError(f"`{name}({shown})` failed: {detail}", span) from None

        return call

    # ------------------------------------------------------------ explanations
    def explained(self, e: ast.Expr) -> ExplainFn:
        """Like `expr`, but also returns the values that decided the result. Kept to
        the top of the expression so it costs a few tuple builds, not a trace."""
        if isinstance(e, ast.BoolOp):
            subs = tuple(self.explained(o) for o in e.operands)
            spans = tuple(o.span for o in e.operands)
            stop = e.op == "or"  # `or` stops at the first true, `and` at the first false
            what = f"each operand of `{e.op}`"

            def boolop(f: Frame) -> tuple[Any, Detail]:
                details: list[tuple[str, Any]] = []
                for i, s in enumerate(subs):
                    v, d = s(f)
                    details.extend(d)
                    if v is stop:
                        return stop, tuple(details)
                    if v is not (not stop):
                        raise _bool_error(v, spans[i], what)
                return (not stop), tuple(details)

            return boolop
        if isinstance(e, ast.Binary) and e.op != "??":
            apply = self._binary_op(e)
            lf, rf = self.expr(e.left), self.expr(e.right)
            lt, rt = self.text(e.left), self.text(e.right)
            show_l, show_r = _worth_showing(e.left), _worth_showing(e.right)
            if show_l and show_r:

                def binary2(f: Frame) -> tuple[Any, Detail]:
                    a, b = lf(f), rf(f)
                    return apply(a, b), ((lt, a), (rt, b))

                return binary2
            fast = _OPS.get(e.op) if not self._untyped(e) else None
            if (
                show_l
                and not show_r
                and fast is not None
                and ((c := self._constant(e.right)) is not _NOT_CONST)
            ):
                # `expr OP constant`, typed: the raw operator, falling back to the careful
                # version only to word the error when it raises.
                const = c

                def binary_const(f: Frame) -> tuple[Any, Detail]:
                    a = lf(f)
                    try:
                        r = fast(a, const)
                    except (TypeError, ZeroDivisionError, OverflowError):
                        r = apply(a, const)
                    return r, ((lt, a),)

                return binary_const
            if show_l or show_r:

                def binary1(f: Frame) -> tuple[Any, Detail]:
                    a, b = lf(f), rf(f)
                    return apply(a, b), (((lt, a),) if show_l else ((rt, b),))

                return binary1
            return lambda f: (apply(lf(f), rf(f)), ())
        if isinstance(e, ast.Quantifier) and e.kind in ("all", "none", "any"):
            return self._explained_quantifier(e)
        fn = self.expr(e)
        text = self.text(e)
        if isinstance(e, ast.Literal):
            return lambda f: (fn(f), ())
        return lambda f: (v := fn(f), ((text, v),))

    def _explained_quantifier(self, e: ast.Quantifier) -> ExplainFn:
        """all/none report the first element that broke them; any the first that made it."""
        fn = self._quantifier(e)
        coll = self._collection(e.collection)
        slot = self._slot(e)
        where = self.expr(e.where) if e.where is not None else None
        body = self.expr(e.body) if e.body is not None else None
        text = self.text(e)
        var = e.var
        kind = e.kind

        def quant(f: Frame) -> tuple[Any, Detail]:
            result = fn(f)
            decisive = (kind == "any") == result  # any→true, all→false, none→false
            if not decisive:
                return result, ((text, result),)
            for x in coll(f):
                f.vars[slot] = x
                if where is not None and where(f) is not True:
                    continue
                b = True if body is None else body(f)
                if (kind == "all" and b is False) or (kind != "all" and b is True):
                    return result, ((text, result), (var, x))
            return result, ((text, result),)

        return quant


def _always(f: Frame) -> bool:
    return True


def _worth_showing(e: ast.Expr) -> bool:
    """Constants add nothing to an explanation; the values read from data do."""
    return not isinstance(e, ast.Literal | ast.ConstRef | ast.SetLit | ast.ListLit)


def _strict_key(v: Any) -> Any:
    """A hashing key under which `true` and `1` stay different."""
    return (True, v) if isinstance(v, bool) else (False, v)


def _distinct(xs: Any) -> list[Any]:
    """First occurrences, under the language's strict equality; unhashable items
    (lists, maps) are compared pairwise."""
    out: list[Any] = []
    seen: set[Any] = set()
    for x in iterate(xs):
        try:
            k = _strict_key(x)
            if k in seen:
                continue
            seen.add(k)
        except TypeError:
            if any(strict_eq(x, y) for y in out):
                continue
        out.append(x)
    return out


def _uniform(values: Any) -> bool:
    """No mix of booleans and numbers, so Python's `in` is the language's `in`."""
    has_bool = any(isinstance(x, bool) for x in values)
    has_num = any(isinstance(x, int | float) and not isinstance(x, bool) for x in values)
    return not (has_bool and has_num)


def _minmax(fn: Callable[..., Any]) -> Callable[[Any], Any]:
    def impl(xs: Any) -> Any:
        items = list(iterate(xs))
        if not items:
            raise ValueError("empty collection")
        kinds = {value_kind(x) for x in items}
        if len(kinds) != 1 or not kinds <= _ORDERED_KINDS:
            raise ValueError("items must all be numbers, strings, timestamps or durations")
        return fn(items)

    return impl


def _sum(xs: Any) -> Any:
    items = list(iterate(xs))
    kinds = {value_kind(x) for x in items}
    if kinds == {"duration"}:
        return _sum_durations(items)
    if not kinds <= {"number"}:
        raise ValueError("items must all be numbers or all durations")
    return sum(items)


def _sum_durations(xs: Any) -> Any:
    total = timedelta()
    for x in iterate(xs):
        if not isinstance(x, timedelta):
            raise ValueError("items must all be durations")
        total += x
    return total


def _contains(hay: Any, needle: Any) -> bool:
    if isinstance(hay, str):
        if not isinstance(needle, str):
            raise ValueError("can only look for text inside text")
        return needle in hay
    if isinstance(hay, dict):
        hay = hay.keys()
    if not isinstance(hay, list | tuple | frozenset | set | type({}.keys())):
        raise ValueError("expected text or a collection")
    return any(strict_eq(needle, x) for x in hay)


def _keys(m: Any) -> list[Any]:
    if not isinstance(m, dict):
        raise ValueError("expected a map")
    return sorted(m)


def _values(m: Any) -> list[Any]:
    if not isinstance(m, dict):
        raise ValueError("expected a map")
    return [m[k] for k in sorted(m)]


def _len(x: Any) -> int:
    if isinstance(x, str | list | tuple | dict | frozenset | set):
        return len(x)
    raise ValueError(f"`{format_value(x)}` has no length")


def _str_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def impl(*args: Any) -> Any:
        if not all(isinstance(a, str) for a in args):
            raise ValueError("expected text")
        return fn(*args)

    return impl


def _abs(x: Any) -> Any:
    if isinstance(x, bool):
        raise ValueError("expected a number")
    return abs(x)


_FUNCS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "starts_with": _str_fn(str.startswith),
    "ends_with": _str_fn(str.endswith),
    "contains": _contains,
    "lower": _str_fn(str.lower),
    "upper": _str_fn(str.upper),
    "trim": _str_fn(str.strip),
    "distinct": _distinct,
    "sum": _sum,
    "min": _minmax(lambda xs: min(xs, key=sort_key)),
    "max": _minmax(lambda xs: max(xs, key=sort_key)),
    "keys": _keys,
    "values": _values,
    "abs": _abs,
}


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}
