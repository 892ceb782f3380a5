"""Frozen AST nodes of the policy language.

Every node carries a `span` for diagnostics; spans are excluded from equality
and hashing so that the same program parsed from differently laid-out text
compares equal (round-trip tests rely on this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open byte range plus 1-based line/column of its start and end."""

    file: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def unknown(file: str = "<unknown>") -> Span:
        return Span(file, 0, 0, 1, 1, 1, 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def _span() -> Any:
    return field(default_factory=Span.unknown, compare=False, hash=False, repr=False)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Expr:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    """A constant: str, int, float, bool, None, timedelta (duration) or datetime."""

    value: Any = None


@dataclass(frozen=True, slots=True)
class Name(Expr):
    """A bare identifier: a bound variable, a constant, `event`, `subject` or `now`."""

    id: str = ""


@dataclass(frozen=True, slots=True)
class Attr(Expr):
    obj: Expr = field(default_factory=Expr)
    name: str = ""


@dataclass(frozen=True, slots=True)
class Index(Expr):
    obj: Expr = field(default_factory=Expr)
    key: Expr = field(default_factory=Expr)


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    op: str = ""  # "not" | "-"
    operand: Expr = field(default_factory=Expr)


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    """Comparison (`==` … `>`), membership (`in`, `not in`), arithmetic or `??`."""

    op: str = ""
    left: Expr = field(default_factory=Expr)
    right: Expr = field(default_factory=Expr)


@dataclass(frozen=True, slots=True)
class BoolOp(Expr):
    """`and` / `or` over two or more operands, evaluated left to right, short-circuiting."""

    op: str = ""
    operands: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class ListLit(Expr):
    items: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class SetLit(Expr):
    items: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class Call(Expr):
    func: str = ""
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True, slots=True)
class Quantifier(Expr):
    """`all|any|none(x in coll where cond: body)` and `count(x in coll where cond)`.

    `distinct_key` is set only for `count(distinct key for x in coll where cond)`;
    `body` only for all/any/none.
    """

    kind: str = ""  # "all" | "any" | "none" | "count"
    var: str = ""
    collection: Expr = field(default_factory=Expr)
    where: Expr | None = None
    body: Expr | None = None
    distinct_key: Expr | None = None
    slot: int = field(default=0, compare=False)  # frame index of `var`, set by resolve


@dataclass(frozen=True, slots=True)
class ListComp(Expr):
    """`[item for x in coll where cond]`."""

    item: Expr = field(default_factory=Expr)
    var: str = ""
    collection: Expr = field(default_factory=Expr)
    where: Expr | None = None
    slot: int = field(default=0, compare=False)  # frame index of `var`, set by resolve


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Template:
    """A message with `{expr}` holes; `parts` alternates literal text and expressions."""

    parts: tuple[str | Expr, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Requirement:
    expr: Expr
    message: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Ident:
    """An identifier written in a declaration, kept with its own span."""

    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ReviewClause:
    """Who must review a failing rule's subject, and how soon."""

    roles: tuple[str, ...]
    within: timedelta
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Rule:
    name: Ident
    doc: str = ""
    title: str | None = None
    layer: Ident | None = None
    severity: Ident | None = None
    enforce: Ident | None = None
    on: tuple[Ident, ...] = ()
    when: Expr | None = None
    requires: tuple[Requirement, ...] = ()
    message: Template | None = None
    refs: tuple[str, ...] = ()
    override_by: tuple[str, ...] = ()
    # `review by "qa", "domain_expert" within 72h`: a failure opens a review instead of denying.
    review: ReviewClause | None = None
    span: Span = _span()
    # Clauses written more than once: (clause keyword, span of the repeat).
    repeated: tuple[tuple[str, Span], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Const:
    name: Ident
    value: Expr
    doc: str = ""
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Import:
    package: Ident
    alias: Ident | None = None
    span: Span = _span()

    @property
    def local_name(self) -> str:
        return self.alias.value if self.alias else self.package.value.rsplit(".", 1)[-1]


# ---------------------------------------------------------------- monitors


@dataclass(frozen=True, slots=True)
class MetricCondition:
    """`psi < 0.2`: what must hold for a feature to count as *not* drifted."""

    metric: Ident
    op: str
    threshold: float
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class FeatureCheck:
    """`numeric logP, assay_*: psi < 0.2, ks.p > 0.01`."""

    kind: Ident
    features: tuple[Ident, ...]
    conditions: tuple[MetricCondition, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BreachAction:
    """One of `alert high`, `review by "qa" within 48h`, `trigger retrain`."""

    kind: str
    severity: Ident | None = None
    roles: tuple[str, ...] = ()
    within: timedelta | None = None
    target: Ident | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Monitor:
    name: Ident
    doc: str = ""
    title: str | None = None
    severity: Ident | None = None
    refs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    baseline: str | None = None
    #: A duration (`window 7d`) or a row count (`window 50000 rows`).
    window: timedelta | int | None = None
    time_column: str | None = None
    checks: tuple[FeatureCheck, ...] = ()
    actions: tuple[BreachAction, ...] = ()
    span: Span = _span()
    repeated: tuple[tuple[str, Span], ...] = field(default=(), compare=False)


# ---------------------------------------------------------------- tests


@dataclass(frozen=True, slots=True)
class GivenEntity:
    kind: Ident
    id: str
    attributes: dict[str, Any]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class TestEvent:
    type: Ident
    subject_id: str
    actor: str | None = None
    time: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    span: Span = _span()
    # `by "u1" roles ["qa"]`: the actor's roles (None when not written).
    actor_roles: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True)
class ExpectOutcome:
    outcome: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ExpectRule:
    status: str
    rule: Ident
    message_contains: str | None = None
    span: Span = _span()


TestStep = GivenEntity | TestEvent | ExpectOutcome | ExpectRule


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    at: datetime | None = None
    steps: tuple[TestStep, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Module:
    """One policy file."""

    package: Ident
    imports: tuple[Import, ...] = ()
    consts: tuple[Const, ...] = ()
    rules: tuple[Rule, ...] = ()
    tests: tuple[Test, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    path: str = field(default="<string>", compare=False)
    source: str = field(default="", compare=False, repr=False)


DURATION_UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


# ---------------------------------------------------------------- resolved names
# The resolve pass rewrites `Name` (and `alias.CONST`) into one of these, so the
# later passes never re-derive what a name means.


@dataclass(frozen=True, slots=True)
class Root(Expr):
    """`event`, `subject` or `now`."""

    id: str = ""


@dataclass(frozen=True, slots=True)
class Var(Expr):
    """A variable bound by a quantifier or comprehension; `slot` is its frame index."""

    id: str = ""
    slot: int = 0


@dataclass(frozen=True, slots=True)
class ConstRef(Expr):
    """A reference to a constant, by fully qualified name (`gxp.common.QA_ROLES`)."""

    qualified: str = ""


@dataclass(frozen=True, slots=True)
class RuleRef(Expr):
    """The argument of `passed`/`failed`/`outcome`: a rule, fully qualified."""

    qualified: str = ""
