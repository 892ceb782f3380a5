"""A deliberately plain reference interpreter for the policy language.

Differential tests run every generated expression through both this module and
the real engine (`policyengine.compiler.lower`, closures specialised on static
types) and compare. This file is written from the language notes, not from
`lower.py`: one recursive `match` over the *resolved* AST, values as plain
Python data, no specialisation and no caching — slow, but easy to check by eye.

Semantics implemented (spec/language.md; /work/notes/language.md before it existed):

* a missing attribute, a null in the middle of a path and an unknown entity are
  *undefined* errors; `has(x)` and `x ?? y` absorb those and nothing else;
* `and` / `or` short-circuit left to right; a non-boolean in a boolean position
  (operands, `not`, `where`, quantifier bodies, guards, requirements) is an error;
* equality is strict and deep: `true` never equals `1`, lists compare item by
  item, sets as sets, maps key by key; ints and floats compare numerically;
* ordering is defined for number/number, string/string, timestamp/timestamp and
  duration/duration only (so ordering null is an error);
* arithmetic is defined only for the combinations the language documents
  (numbers, `%` on two ints, string concatenation, timestamp and duration arithmetic);
* sets hold distinct plain values (strict equality), never booleans together with
  numbers, and iterate sorted; maps iterate by sorted key;
* `min`/`max` of an empty collection and division by zero are errors.

Entity references are followed by *static* type: the interpreter reads the type
of each node from a `TypeMap` produced by `policyengine.compiler.typecheck`
(re-deriving the schema's entity-ness by hand would only duplicate it).

Mixed-type sets are ordered by kind (null < bool < duration < number < string <
timestamp) and then by value; the notes only promise "sorted", so this choice
mirrors the engine and is documented here rather than invented silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from policyengine.compiler import types as T
from policyengine.language import ast

# ---------------------------------------------------------------- results


class RefError(Exception):
    """Raised inside the interpreter; `undefined` marks what `has`/`??` may absorb."""

    def __init__(self, message: str, *, undefined: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.undefined = undefined


@dataclass(frozen=True, slots=True)
class Error:
    """The result of an expression that could not produce a value."""

    undefined: bool
    message: str


def _undefined(message: str) -> RefError:
    return RefError(message, undefined=True)


# ---------------------------------------------------------------- values

_KIND_RANK = {"null": 0, "bool": 1, "duration": 2, "number": 3, "string": 4, "timestamp": 5}


def kind_of(v: Any) -> str:
    """The language-level kind of a runtime value."""
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
    if isinstance(v, RefSet):
        return "set"
    if isinstance(v, dict):
        return "map"
    raise TypeError(f"not a language value: {v!r}")


def is_plain(v: Any) -> bool:
    """Plain (scalar) values are the only ones a set may hold."""
    return kind_of(v) in _KIND_RANK


def order_key(v: Any) -> tuple[int, Any]:
    """Sort key for set members: by kind, then by value within the kind."""
    return (_KIND_RANK[kind_of(v)], 0 if v is None else v)


def strict_equal(a: Any, b: Any) -> bool:
    """Deep equality that never confuses booleans with numbers."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "set":
        return len(a.items) == len(b.items) and all(b.contains(x) for x in a.items)
    if ka == "map":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


class RefSet:
    """A set value: distinct plain items under strict equality, kept sorted. A set may
    not mix booleans and numbers (the language's rule: in most hosts `true` and `1`
    would be one member)."""

    __slots__ = ("items",)

    def __init__(self, values: Iterable[Any]) -> None:
        distinct: list[Any] = []
        for v in values:
            if not is_plain(v):
                raise RefError("set items must be plain values")
            if not any(strict_equal(v, u) for u in distinct):
                distinct.append(v)
        kinds = {kind_of(v) for v in distinct}
        if {"bool", "number"} <= kinds:
            raise RefError("a set cannot mix booleans and numbers")
        self.items: tuple[Any, ...] = tuple(sorted(distinct, key=order_key))

    def contains(self, v: Any) -> bool:
        return any(strict_equal(v, u) for u in self.items)

    def __repr__(self) -> str:
        return "RefSet(" + ", ".join(repr(i) for i in self.items) + ")"


def contains(collection: Any, needle: Any) -> bool:
    """Membership by strict equality; a map contains its keys."""
    k = kind_of(collection)
    if k == "list":
        return any(strict_equal(needle, x) for x in collection)
    if k == "set":
        return bool(collection.contains(needle))
    if k == "map":
        return any(strict_equal(needle, key) for key in collection)
    raise RefError(f"`{collection!r}` is not a collection")


def iterate(collection: Any) -> list[Any]:
    """Lists in order, sets sorted, maps by sorted key; anything else is an error."""
    k = kind_of(collection)
    if k == "list":
        return list(collection)
    if k == "set":
        return list(collection.items)
    if k == "map":
        return sorted(collection)
    raise RefError(f"`{collection!r}` is not a collection")


def canonical(v: Any) -> Any:
    """A hashable, kind-tagged form for comparing engine values with reference values.

    Python sets (the engine's representation) and `RefSet` (ours) both map to a
    frozenset of tagged items, so `{true, 1}` and `{true}` stay distinguishable.
    """
    if v is None:
        return ("null",)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("number", v)
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, datetime):
        return ("timestamp", v)
    if isinstance(v, timedelta):
        return ("duration", v)
    if isinstance(v, list | tuple):
        return ("list", tuple(canonical(x) for x in v))
    if isinstance(v, RefSet):
        return ("set", frozenset(canonical(x) for x in v.items))
    if isinstance(v, frozenset | set):
        return ("set", frozenset(canonical(x) for x in v))
    if isinstance(v, dict):
        return ("map", frozenset((k, canonical(x)) for k, x in v.items()))
    return ("other", repr(v))


# ---------------------------------------------------------------- environment


@dataclass(frozen=True)
class Env:
    """What an expression can see. `event` is the `parse_event` output; `state` maps
    `(kind, id)` to entity dicts; `types` is the type checker's map for this AST."""

    event: Mapping[str, Any]
    state: Mapping[tuple[str, str], Mapping[str, Any]]
    now: datetime
    types: Mapping[int, T.Type]
    consts: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, str] = field(default_factory=dict)

    def event_view(self) -> dict[str, Any]:
        """`event` as policies see it: envelope fields, the subject's id and the
        type's attributes side by side."""
        e = self.event
        view = dict(e["attributes"])
        view.update(
            id=e["id"], type=e["type"], time=e["time"], actor=e["actor"], subject=e["subject"]["id"]
        )
        return view

    def entity_kind(self, node: ast.Expr) -> str | None:
        t = T.strip(self.types.get(id(node), T.ANY))
        return t.kind if isinstance(t, T.Entity) else None

    def lookup(self, kind: str, ref: Any, what: str) -> Mapping[str, Any]:
        if ref is None:
            raise _undefined(f"`{what}` is null")
        entity = self.state.get((kind, ref))
        if entity is None:
            raise _undefined(f"{kind} `{ref}` is not known")
        return entity


def evaluate(e: ast.Expr, env: Env) -> Any:
    """The value of `e`, or an `Error` marker."""
    try:
        return _eval(e, env, {})
    except RefError as err:
        return Error(err.undefined, err.message)


# ---------------------------------------------------------------- evaluation


def _bool(v: Any, what: str) -> bool:
    if v is True or v is False:
        return v
    raise RefError(f"{what} must be a boolean, got `{v!r}`")


def _eval(e: ast.Expr, env: Env, bound: dict[int, Any]) -> Any:
    if isinstance(e, ast.Literal):
        return e.value
    if isinstance(e, ast.ConstRef):
        return env.consts[e.qualified]
    if isinstance(e, ast.Root):
        if e.id == "now":
            return env.now
        if e.id == "subject":
            return env.event["subject"]["id"]
        return env.event_view()
    if isinstance(e, ast.Var):
        return bound[e.slot]
    if isinstance(e, ast.Attr):
        return _attr(e, env, bound)
    if isinstance(e, ast.Index):
        return _index(e, env, bound)
    if isinstance(e, ast.Unary):
        v = _eval(e.operand, env, bound)
        if e.op == "not":
            return not _bool(v, "the operand of `not`")
        if kind_of(v) in ("number", "duration"):
            return -v
        raise RefError(f"cannot negate `{v!r}`")
    if isinstance(e, ast.BoolOp):
        stop = e.op == "or"
        for o in e.operands:
            if _bool(_eval(o, env, bound), f"an operand of `{e.op}`") is stop:
                return stop
        return not stop
    if isinstance(e, ast.Binary):
        return _binary(e, env, bound)
    if isinstance(e, ast.ListLit):
        return [_eval(i, env, bound) for i in e.items]
    if isinstance(e, ast.SetLit):
        return RefSet(_eval(i, env, bound) for i in e.items)
    if isinstance(e, ast.Quantifier):
        return _quantifier(e, env, bound)
    if isinstance(e, ast.ListComp):
        out = []
        for x in iterate(_eval(e.collection, env, bound)):
            inner = {**bound, e.slot: x}
            if e.where is None or _bool(_eval(e.where, env, inner), "a `where` filter"):
                out.append(_eval(e.item, env, inner))
        return out
    if isinstance(e, ast.Call):
        return _call(e, env, bound)
    raise RefError(f"cannot evaluate {type(e).__name__}")


def _attr(e: ast.Attr, env: Env, bound: dict[int, Any]) -> Any:
    v = _eval(e.obj, env, bound)
    kind = env.entity_kind(e.obj)
    if kind is not None:
        v = env.lookup(kind, v, e.name)
    if v is None:
        raise _undefined(f"null before `.{e.name}`")
    if isinstance(v, Mapping):
        if e.name in v:
            return v[e.name]
        raise _undefined(f"`{e.name}` is missing")
    raise RefError(f"`{v!r}` has no attribute `{e.name}`")


def _index(e: ast.Index, env: Env, bound: dict[int, Any]) -> Any:
    v = _eval(e.obj, env, bound)
    k = _eval(e.key, env, bound)
    kind = env.entity_kind(e.obj)
    if kind is not None:
        v = env.lookup(kind, v, "index")
    if isinstance(k, bool):
        raise RefError("an index cannot be a boolean")
    if v is None:
        raise _undefined("null before `[...]`")
    vk = kind_of(v) if not isinstance(v, Mapping) else "map"
    if vk == "list":
        if not isinstance(k, int):
            raise RefError(f"a list index must be an int, got `{k!r}`")
        if -len(v) <= k < len(v):
            return v[k]
        raise _undefined(f"index {k} is out of range")
    if vk == "map":
        if isinstance(k, str) and k in v:
            return v[k]
        raise _undefined(f"key `{k!r}` is missing")
    raise RefError(f"cannot index `{v!r}`")


# ---------------------------------------------------------------- operators

_ORDERED_KINDS = ("number", "string", "timestamp", "duration")


def _binary(e: ast.Binary, env: Env, bound: dict[int, Any]) -> Any:
    op = e.op
    if op == "??":
        try:
            v = _eval(e.left, env, bound)
        except RefError as err:
            if not err.undefined:
                raise
            return _eval(e.right, env, bound)
        return _eval(e.right, env, bound) if v is None else v
    a = _eval(e.left, env, bound)
    b = _eval(e.right, env, bound)
    return apply_binary(op, a, b)


def apply_binary(op: str, a: Any, b: Any) -> Any:
    """A binary operator on two values (everything except `??`)."""
    if op == "==":
        return strict_equal(a, b)
    if op == "!=":
        return not strict_equal(a, b)
    if op in ("in", "not in"):
        if kind_of(b) not in ("list", "set", "map"):
            raise RefError(f"`{b!r}` is not a collection")
        return contains(b, a) is (op == "in")
    ka, kb = kind_of(a), kind_of(b)
    if op in ("<", "<=", ">", ">="):
        if ka != kb or ka not in _ORDERED_KINDS:
            raise RefError(f"cannot order `{a!r}` and `{b!r}`")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    try:
        return _arith(op, a, b, ka, kb)
    except ZeroDivisionError:
        raise RefError("division by zero") from None
    except OverflowError:
        raise RefError("arithmetic overflow") from None


def _arith(op: str, a: Any, b: Any, ka: str, kb: str) -> Any:
    pair = (ka, kb)
    if pair == ("number", "number"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%" and isinstance(a, int) and isinstance(b, int):
            return a % b  # floor modulo: the sign of the divisor
    if pair == ("string", "string") and op == "+":
        return a + b
    if pair == ("timestamp", "timestamp") and op == "-":
        return a - b
    if pair == ("timestamp", "duration") and op in ("+", "-"):
        return a + b if op == "+" else a - b
    if pair == ("duration", "timestamp") and op == "+":
        return a + b
    if pair == ("duration", "duration") and op in ("+", "-", "/"):
        return a + b if op == "+" else (a - b if op == "-" else a / b)
    if pair == ("duration", "number") and op in ("*", "/"):
        return a * b if op == "*" else a / b
    if pair == ("number", "duration") and op == "*":
        return a * b
    raise RefError(f"cannot apply `{op}` to {ka} and {kb}")


# ---------------------------------------------------------------- quantifiers


def _quantifier(e: ast.Quantifier, env: Env, bound: dict[int, Any]) -> Any:
    items = iterate(_eval(e.collection, env, bound))
    if e.kind == "count":
        kept: list[Any] = []
        n = 0
        for x in items:
            inner = {**bound, e.slot: x}
            if e.where is not None and not _bool(_eval(e.where, env, inner), "a `where` filter"):
                continue
            n += 1
            if e.distinct_key is not None:
                key = _eval(e.distinct_key, env, inner)
                if not any(strict_equal(key, k) for k in kept):
                    kept.append(key)
        return len(kept) if e.distinct_key is not None else n
    for x in items:
        inner = {**bound, e.slot: x}
        if e.where is not None and not _bool(_eval(e.where, env, inner), "a `where` filter"):
            continue
        holds = e.body is None or _bool(_eval(e.body, env, inner), f"the condition of `{e.kind}`")
        if e.kind == "all" and not holds:
            return False
        if e.kind == "any" and holds:
            return True
        if e.kind == "none" and holds:
            return False
    return e.kind != "any"


def witness(e: ast.Quantifier, env: Env) -> tuple[bool, Any] | None:
    """For all/any/none: the first element that decided the result (the one that broke
    `all`/`none`, or satisfied `any`), as `(found, element)`; None when none decided."""
    items = iterate(_eval(e.collection, env, {}))
    for x in items:
        inner = {e.slot: x}
        if e.where is not None and not _bool(_eval(e.where, env, inner), "a `where` filter"):
            continue
        holds = e.body is None or _bool(_eval(e.body, env, inner), "a condition")
        if (e.kind == "all" and not holds) or (e.kind != "all" and holds):
            return (True, x)
    return None


# ---------------------------------------------------------------- functions

# RFC 3339 §5.6 `date-time`: "T"/"Z" may be lower case; any number of fraction digits.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 `date-time` (with a required offset) → aware UTC datetime, truncated to
    microseconds (the language's precision)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise RefError(f"`{text}` is not an RFC 3339 timestamp")
    date, clock, fraction, offset = m.groups()
    micros = f".{(fraction + '00000')[:6]}" if fraction else ""
    norm = f"{date}T{clock}{micros}{'+00:00' if offset in ('Z', 'z') else offset}"
    try:
        return datetime.fromisoformat(norm).astimezone(UTC)
    except ValueError:
        raise RefError(f"`{text}` is not a valid date") from None


def _want(v: Any, *kinds: str) -> Any:
    if kind_of(v) not in kinds:
        raise RefError(f"expected {' or '.join(kinds)}, got `{v!r}`")
    return v


def _static_item(env: Env, node: ast.Expr) -> T.Type:
    elem = T.element_type(env.types.get(id(node), T.ANY))
    return T.strip(elem) if elem is not None else T.ANY


def _call(e: ast.Call, env: Env, bound: dict[int, Any]) -> Any:
    name = e.func
    if name in ("passed", "failed", "outcome"):
        arg = e.args[0]
        rule = arg.qualified if isinstance(arg, ast.RuleRef) else ""
        status = env.results.get(rule, "not_applicable")
        if name == "passed":
            return status == "pass"
        if name == "failed":
            return status in ("fail", "error")
        return status
    if name == "has":
        try:
            return _eval(e.args[0], env, bound) is not None
        except RefError as err:
            if err.undefined:
                return False
            raise
    if name == "matches":
        pat = e.args[1]
        pattern = pat.value if isinstance(pat, ast.Literal) else env.consts[pat.qualified]  # type: ignore[attr-defined]
        s = _want(_eval(e.args[0], env, bound), "string")
        return re.search(pattern, s) is not None
    args: Sequence[Any] = [_eval(a, env, bound) for a in e.args]
    if name == "len":
        v = _want(args[0], "string", "list", "set", "map")
        return len(v.items) if isinstance(v, RefSet) else len(v)
    if name in ("starts_with", "ends_with"):
        s, part = _want(args[0], "string"), _want(args[1], "string")
        return s.startswith(part) if name == "starts_with" else s.endswith(part)
    if name == "contains":
        hay, needle = args
        if kind_of(hay) == "string":
            return _want(needle, "string") in hay
        _want(hay, "list", "set", "map")
        return contains(hay, needle)
    if name in ("lower", "upper", "trim"):
        s = _want(args[0], "string")
        return s.lower() if name == "lower" else (s.upper() if name == "upper" else s.strip())
    if name == "distinct":
        out: list[Any] = []
        for x in iterate(args[0]):
            if not any(strict_equal(x, y) for y in out):
                out.append(x)
        return out
    if name == "sum":
        items = iterate(args[0])
        if not items:
            return timedelta(0) if _static_item(env, e.args[0]) == T.DURATION else 0
        kinds = {kind_of(x) for x in items}
        if kinds == {"number"}:
            return sum(items)
        if kinds == {"duration"}:
            return sum(items, timedelta(0))
        raise RefError("`sum` needs numbers or durations")
    if name in ("min", "max"):
        items = iterate(args[0])
        if not items:
            raise RefError(f"`{name}` of an empty collection")
        kinds = {kind_of(x) for x in items}
        if len(kinds) != 1 or next(iter(kinds)) not in _ORDERED_KINDS:
            raise RefError(f"`{name}` needs values that can be ordered")
        return min(items) if name == "min" else max(items)
    if name in ("keys", "values"):
        m = _want(args[0], "map")
        return sorted(m) if name == "keys" else [m[k] for k in sorted(m)]
    if name == "abs":
        return abs(_want(args[0], "number", "duration"))
    if name == "time":
        v = _want(args[0], "string", "timestamp")
        return v if isinstance(v, datetime) else parse_rfc3339(v)
    raise RefError(f"unknown function `{name}`")


# ---------------------------------------------------------------- rules and decisions


def requirement_status(e: ast.Expr, env: Env) -> str:
    v = evaluate(e, env)
    if isinstance(v, Error):
        return "error"
    if v is True:
        return "pass"
    if v is False:
        return "fail"
    return "error"


def rule_status(guard: ast.Expr | None, requirements: Sequence[ast.Expr], env: Env) -> str:
    """pass | fail | not_applicable | error. Every requirement is evaluated (errors win
    over failures: a rule that could not be evaluated must not look like a plain fail)."""
    if guard is not None:
        g = evaluate(guard, env)
        if g is False:
            return "not_applicable"
        if g is not True:
            return "error"
    statuses = [requirement_status(r, env) for r in requirements]
    if "error" in statuses:
        return "error"
    if "fail" in statuses:
        return "fail"
    return "pass"


def override_in_force(
    override: Mapping[str, Any], rule: str, roles: Sequence[str], at: datetime
) -> bool:
    """Granted for this rule, by an authorised role, in force at `at`: from its own
    time (inclusive) until `expires_at` (exclusive); no expiry means for good."""
    expires = override.get("expires_at")
    return (
        override.get("rule") == rule
        and override.get("role") in roles
        and override["time"] <= at
        and (expires is None or at < expires)
    )


def active_override(
    subject: Mapping[str, Any] | None, rule: str, roles: Sequence[str], at: datetime
) -> Mapping[str, Any] | None:
    """The first override of the subject in force for `rule` at `at`."""
    for o in (subject or {}).get("overrides") or ():
        if override_in_force(o, rule, roles, at):
            return o
    return None


def decision_outcome(results: Iterable[tuple[str, str, bool]]) -> str:
    """Fold `(status, enforcement, overridden)` triples into a decision outcome:
    hard fail/error → deny; soft fail/error without a valid override → review_required;
    advisory fail/error or an overridden soft failure → allow_with_warnings; else allow.
    An override covers a soft *failure* only, never an error (spec §14)."""
    failing = [
        (enf, overridden and status == "fail")
        for status, enf, overridden in results
        if status in ("fail", "error")
    ]
    if any(enf == "hard" for enf, _ in failing):
        return "deny"
    if any(enf == "soft" and not overridden for enf, overridden in failing):
        return "review_required"
    if failing:
        return "allow_with_warnings"
    return "allow"
