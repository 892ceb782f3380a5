"""Pass 1 — name resolution.

Groups modules into packages, checks imports and duplicate declarations, and
rewrites every name in every expression into a `Root`, `Var`, `ConstRef` or
`RuleRef`, so later passes never have to know about scopes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from policyengine.language import ast
from policyengine.language.diagnostics import Code, Diagnostic, did_you_mean

ROOTS = ("event", "subject", "now")
RULE_FUNCTIONS = ("passed", "failed", "outcome")
# Keywords the lexer accepts as a declared name but that an expression reads as
# syntax, so a constant with such a name could never be referred to.
RESERVED = frozenset(
    {"true", "false", "null", "and", "or", "not", "in", "all", "any", "none", "count"}
)


@dataclass(frozen=True, slots=True)
class ResolvedConst:
    qualified: str
    package: str
    decl: ast.Const
    expr: ast.Expr
    module: ast.Module


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    qualified: str
    package: str
    decl: ast.Rule  # expressions already rewritten
    module: ast.Module
    depends_on: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ResolvedTest:
    package: str
    decl: ast.Test
    module: ast.Module
    # Rule names in `expect` steps, fully qualified (None where it did not resolve).
    rule_refs: tuple[str | None, ...] = ()


@dataclass(slots=True)
class Program:
    packages: dict[str, list[ast.Module]] = field(default_factory=dict)
    consts: dict[str, ResolvedConst] = field(default_factory=dict)
    rules: dict[str, ResolvedRule] = field(default_factory=dict)
    tests: list[ResolvedTest] = field(default_factory=list)
    const_deps: dict[str, frozenset[str]] = field(default_factory=dict)


class _Scope:
    """What names mean inside one module."""

    def __init__(self, program: Program, module: ast.Module, diags: list[Diagnostic]) -> None:
        self.program = program
        self.module = module
        self.package = module.package.value
        self.diags = diags
        self.aliases: dict[str, str] = {}
        # Aliases of imports that failed: already reported, so their uses stay quiet.
        self.broken: set[str] = set()
        self.rule_deps: set[str] = set()
        self.const_deps: set[str] = set()

    # -- helpers --------------------------------------------------------
    def _local_consts(self) -> list[str]:
        prefix = self.package + "."
        return [q[len(prefix) :] for q in self.program.consts if q.startswith(prefix)]

    def _local_rules(self) -> list[str]:
        prefix = self.package + "."
        return [q[len(prefix) :] for q in self.program.rules if q.startswith(prefix)]

    def error(self, code: Code, msg: str, span: ast.Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, hint))

    # -- rule references ------------------------------------------------
    def rule_ref(self, e: ast.Expr) -> ast.Expr:
        if isinstance(e, ast.Name):
            q = f"{self.package}.{e.id}"
            if q in self.program.rules:
                self.rule_deps.add(q)
                return ast.RuleRef(qualified=q, span=e.span)
            self.error(
                Code.UNDEFINED_RULE,
                f"undefined rule `{e.id}` in package `{self.package}`",
                e.span,
                did_you_mean(e.id, self._local_rules())
                or _rules_hint(self.package, self._local_rules()),
            )
            return ast.RuleRef(qualified=q, span=e.span)
        if isinstance(e, ast.Attr) and isinstance(e.obj, ast.Name) and e.obj.id in self.aliases:
            pkg = self.aliases[e.obj.id]
            q = f"{pkg}.{e.name}"
            if q in self.program.rules or e.obj.id in self.broken:
                self.rule_deps.add(q)
                return ast.RuleRef(qualified=q, span=e.span)
            names = [r[len(pkg) + 1 :] for r in self.program.rules if r.startswith(pkg + ".")]
            self.error(
                Code.UNDEFINED_RULE,
                f"undefined rule `{e.name}` in package `{pkg}`",
                e.span,
                did_you_mean(e.name, names) or _rules_hint(pkg, names),
            )
            return ast.RuleRef(qualified=q, span=e.span)
        if isinstance(e, ast.Attr) and isinstance(e.obj, ast.Name):
            self.error(
                Code.UNDEFINED_NAME,
                f"`{e.obj.id}` is not an imported package",
                e.obj.span,
                f"add `import <package>` (or `import <package> as {e.obj.id}`), "
                f"then write `{e.obj.id}.{e.name}`",
            )
            return e
        self.error(
            Code.TYPE_MISMATCH,
            "expected a rule name",
            e.span,
            "write the rule's name, or `alias.rule` for a rule of an imported package",
        )
        return e

    # -- expressions ----------------------------------------------------
    def expr(self, e: ast.Expr, bound: tuple[str, ...]) -> ast.Expr:
        r = self.expr
        if isinstance(e, ast.Name):
            if e.id in bound:
                slot = len(bound) - 1 - bound[::-1].index(e.id)
                return ast.Var(id=e.id, slot=slot, span=e.span)
            if e.id in ROOTS:
                return ast.Root(id=e.id, span=e.span)
            q = f"{self.package}.{e.id}"
            if q in self.program.consts:
                self.const_deps.add(q)
                return ast.ConstRef(qualified=q, span=e.span)
            if e.id in self.aliases:
                self.error(
                    Code.UNDEFINED_NAME,
                    f"`{e.id}` is an imported package, not a value",
                    e.span,
                    f"refer to one of its constants as `{e.id}.NAME`",
                )
                return e
            candidates = [*bound, *ROOTS, *self._local_consts()]
            self.error(
                Code.UNDEFINED_NAME,
                f"undefined name `{e.id}`",
                e.span,
                did_you_mean(e.id, candidates)
                or "names are `event`, `subject`, `now`, constants and quantifier variables",
            )
            return e
        if isinstance(e, ast.Attr):
            if (
                isinstance(e.obj, ast.Name)
                and e.obj.id in self.aliases
                and e.obj.id not in bound
                and e.obj.id not in ROOTS
            ):
                pkg = self.aliases[e.obj.id]
                q = f"{pkg}.{e.name}"
                if q in self.program.consts:
                    self.const_deps.add(q)
                    return ast.ConstRef(qualified=q, span=e.span)
                if e.obj.id in self.broken:
                    return e
                names = [c[len(pkg) + 1 :] for c in self.program.consts if c.startswith(pkg + ".")]
                self.error(
                    Code.UNDEFINED_NAME,
                    f"undefined constant `{e.name}` in package `{pkg}`",
                    e.span,
                    did_you_mean(e.name, names),
                )
                return e
            return dataclasses.replace(e, obj=r(e.obj, bound))
        if isinstance(e, ast.Index):
            return dataclasses.replace(e, obj=r(e.obj, bound), key=r(e.key, bound))
        if isinstance(e, ast.Unary):
            return dataclasses.replace(e, operand=r(e.operand, bound))
        if isinstance(e, ast.Binary):
            return dataclasses.replace(e, left=r(e.left, bound), right=r(e.right, bound))
        if isinstance(e, ast.BoolOp):
            return dataclasses.replace(e, operands=tuple(r(o, bound) for o in e.operands))
        if isinstance(e, ast.ListLit | ast.SetLit):
            return dataclasses.replace(e, items=tuple(r(i, bound) for i in e.items))
        if isinstance(e, ast.Call):
            if e.func in RULE_FUNCTIONS and len(e.args) == 1:
                return dataclasses.replace(e, args=(self.rule_ref(e.args[0]),))
            return dataclasses.replace(e, args=tuple(r(a, bound) for a in e.args))
        if isinstance(e, ast.Quantifier | ast.ListComp):
            if e.var in ROOTS:
                self.error(
                    Code.SHADOWED_NAME,
                    f"variable `{e.var}` hides the built-in `{e.var}`",
                    e.span,
                    "pick another variable name",
                )
            inner = (*bound, e.var)
            coll = r(e.collection, bound)
            where = r(e.where, inner) if e.where is not None else None
            slot = len(bound)
            if isinstance(e, ast.ListComp):
                return dataclasses.replace(
                    e, collection=coll, where=where, item=r(e.item, inner), slot=slot
                )
            return dataclasses.replace(
                e,
                slot=slot,
                collection=coll,
                where=where,
                body=r(e.body, inner) if e.body is not None else None,
                distinct_key=r(e.distinct_key, inner) if e.distinct_key is not None else None,
            )
        return e

    def template(self, t: ast.Template) -> ast.Template:
        return dataclasses.replace(
            t, parts=tuple(p if isinstance(p, str) else self.expr(p, ()) for p in t.parts)
        )


def resolve(modules: Sequence[ast.Module], diags: list[Diagnostic]) -> Program:
    """Build the symbol tables and rewrite names. Appends problems to `diags`."""
    program = Program()
    for m in modules:
        program.packages.setdefault(m.package.value, []).append(m)

    # Declarations first, so that order inside and across files does not matter.
    first_rule: dict[str, ast.Rule] = {}
    first_const: dict[str, ast.Const] = {}
    for m in modules:
        pkg = m.package.value
        for c in m.consts:
            q = f"{pkg}.{c.name.value}"
            if c.name.value in ROOTS or c.name.value in RESERVED:
                what = "the built-in" if c.name.value in ROOTS else "the keyword"
                diags.append(
                    Diagnostic(
                        Code.SHADOWED_NAME,
                        f"constant `{c.name.value}` would hide {what} `{c.name.value}`",
                        c.name.span,
                        "pick another name; constants are conventionally UPPER_CASE",
                    )
                )
                continue
            if q in first_const:
                diags.append(
                    Diagnostic(
                        Code.DUPLICATE_CONST,
                        f"constant `{c.name.value}` is defined twice in package `{pkg}`",
                        c.name.span,
                        "rename one of them",
                        notes=(("first defined", first_const[q].name.span),),
                    )
                )
                continue
            first_const[q] = c
            program.consts[q] = ResolvedConst(q, pkg, c, c.value, m)
        for rule in m.rules:
            q = f"{pkg}.{rule.name.value}"
            if q in first_rule:
                diags.append(
                    Diagnostic(
                        Code.DUPLICATE_RULE,
                        f"rule `{rule.name.value}` is defined twice in package `{pkg}`",
                        rule.name.span,
                        "rule ids must be unique within a package; rename one of them",
                        notes=(("first defined", first_rule[q].name.span),),
                    )
                )
                continue
            first_rule[q] = rule
            program.rules[q] = ResolvedRule(q, pkg, rule, m)

    for m in modules:
        scope = _Scope(program, m, diags)
        for imp in m.imports:
            if imp.package.value not in program.packages:
                diags.append(
                    Diagnostic(
                        Code.UNDEFINED_PACKAGE,
                        f"undefined package `{imp.package.value}`",
                        imp.package.span,
                        did_you_mean(
                            imp.package.value, [p for p in program.packages if p != scope.package]
                        )
                        or "is the file that declares it part of the bundle?",
                    )
                )
                scope.aliases[imp.local_name] = imp.package.value
                scope.broken.add(imp.local_name)
                continue
            scope.aliases[imp.local_name] = imp.package.value

        for c in m.consts:
            q = f"{m.package.value}.{c.name.value}"
            if program.consts.get(q, None) is None or program.consts[q].decl is not c:
                continue
            scope.const_deps = set()
            expr = scope.expr(c.value, ())
            program.consts[q] = ResolvedConst(q, m.package.value, c, expr, m)
            program.const_deps[q] = frozenset(scope.const_deps)

        for rule in m.rules:
            q = f"{m.package.value}.{rule.name.value}"
            if q not in program.rules or program.rules[q].decl is not rule:
                continue
            scope.rule_deps = set()
            new = dataclasses.replace(
                rule,
                when=scope.expr(rule.when, ()) if rule.when is not None else None,
                requires=tuple(
                    dataclasses.replace(req, expr=scope.expr(req.expr, ())) for req in rule.requires
                ),
                message=scope.template(rule.message) if rule.message is not None else None,
            )
            program.rules[q] = ResolvedRule(q, m.package.value, new, m, frozenset(scope.rule_deps))

        for t in m.tests:
            refs: list[str | None] = []
            for step in t.steps:
                if isinstance(step, ast.ExpectRule):
                    refs.append(_resolve_rule_name(step.rule, scope, program, diags))
            program.tests.append(ResolvedTest(m.package.value, t, m, tuple(refs)))
    return program


def _rules_hint(package: str, names: list[str]) -> str:
    """What a rule reference may name, for when no name is close to the typo."""
    if not names:
        return f"package `{package}` has no rules; write `alias.rule` for an imported package's"
    shown = ", ".join(f"`{n}`" for n in sorted(names)[:8])
    return f"rules in package `{package}`: {shown}{', …' if len(names) > 8 else ''}"


def _resolve_rule_name(
    ident: ast.Ident, scope: _Scope, program: Program, diags: list[Diagnostic]
) -> str | None:
    """Rule names in tests: `rule`, `alias.rule` or a fully qualified id."""
    name = ident.value
    head, _, rest = name.partition(".")
    candidates = [f"{scope.package}.{name}"]
    if rest and head in scope.aliases:
        candidates.append(f"{scope.aliases[head]}.{rest}")
    candidates.append(name)
    for q in candidates:
        if q in program.rules:
            return q
    diags.append(
        Diagnostic(
            Code.UNDEFINED_RULE,
            f"undefined rule `{name}`",
            ident.span,
            did_you_mean(name, [*scope._local_rules(), *program.rules]),
        )
    )
    return None
