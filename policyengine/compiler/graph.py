"""Passes 3 and 4 — dependency/cycle check and rule-graph construction, plus the
index from concrete event type to the rules it can trigger."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping

import networkx as nx

from policyengine.compiler.resolve import Program
from policyengine.language import ast
from policyengine.language.diagnostics import Code, Diagnostic, Severity, did_you_mean


def rule_graph(program: Program) -> nx.DiGraph:
    """Nodes are rule ids; an edge `a → b` means rule `b` reads the outcome of `a`."""
    g = nx.DiGraph()
    for q, r in sorted(program.rules.items()):
        d = r.decl
        g.add_node(
            q,
            package=r.package,
            layer=d.layer.value if d.layer else None,
            file=r.module.path,
            line=d.name.span.line,
        )
    for q, r in sorted(program.rules.items()):
        for dep in sorted(r.depends_on):
            if dep in program.rules:
                g.add_edge(dep, q)
    return g


def cycle_diagnostics(
    g: nx.DiGraph, spans: Mapping[str, ast.Span], what: str, code: Code = Code.DEPENDENCY_CYCLE
) -> list[Diagnostic]:
    """One diagnostic per strongly connected component that contains a cycle."""
    out: list[Diagnostic] = []
    for comp in nx.strongly_connected_components(g):
        members = sorted(comp)
        head = members[0]
        if len(members) == 1 and not g.has_edge(head, head):
            continue
        # Walk the reversed graph so the arrows read "uses the outcome of".
        cycle = nx.find_cycle(g.subgraph(members).reverse(copy=True), source=head)
        path = [u for u, _ in cycle] + [head]
        shown = " → ".join(f"`{_short(x)}`" for x in path)
        out.append(
            Diagnostic(
                code,
                f"{what} dependency cycle: {shown}",
                spans[head],
                f"a {what} cannot depend on its own {'value' if what == 'constant' else 'outcome'}"
                "; break the cycle by removing one of these references",
                notes=tuple(("part of the cycle", spans[m]) for m in members[1:]),
            )
        )
    return out


def _short(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def topological_order(g: nx.DiGraph) -> list[str]:
    """Dependencies first; ties broken by rule id so evaluation order is stable."""
    return list(nx.lexicographical_topological_sort(g))


def expand_patterns(
    patterns: Iterable[ast.Ident], event_types: Iterable[str], diags: list[Diagnostic]
) -> tuple[str, ...]:
    """Concrete event types matched by `on` globs; a glob that matches nothing is an error."""
    known = sorted(event_types)
    matched: set[str] = set()
    for p in patterns:
        hits = [t for t in known if fnmatch.fnmatchcase(t, p.value)]
        if not hits:
            families = sorted({t.split(".")[0] + ".*" for t in known})
            diags.append(
                Diagnostic(
                    Code.UNKNOWN_EVENT_TYPE,
                    f"`on {p.value}` matches no event type",
                    p.span,
                    did_you_mean(p.value, [*known, *families])
                    or "see spec/events.md for the event types",
                )
            )
        matched.update(hits)
    return tuple(sorted(matched))


def _rule_refs(node: object) -> list[ast.RuleRef]:
    """Every `RuleRef` inside an expression, template or requirement."""
    found: list[ast.RuleRef] = []
    stack: list[object] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.RuleRef):
            found.append(n)
        elif isinstance(n, tuple | list):
            stack.extend(n)
        elif isinstance(n, ast.Expr | ast.Template | ast.Requirement):
            stack.extend(getattr(n, f.name) for f in dataclasses.fields(n))
    return found


def untriggered_dependencies(
    program: Program, event_types: Mapping[str, tuple[str, ...]]
) -> list[Diagnostic]:
    """Warn where `passed(d)` / `failed(d)` / `outcome(d)` can only ever see `d` as
    `not_applicable`, because `d` is not triggered by an event type the rule is."""
    out: list[Diagnostic] = []
    for q, r in sorted(program.rules.items()):
        d = r.decl
        refs = _rule_refs([d.when, *d.requires, d.message])
        for ref in sorted(refs, key=lambda x: (x.span.line, x.span.column)):
            dep_types = event_types.get(ref.qualified)
            if dep_types is None:
                continue
            missing = [t for t in event_types.get(q, ()) if t not in dep_types]
            if not missing:
                continue
            shown = ", ".join(f"`{t}`" for t in missing)
            out.append(
                Diagnostic(
                    Code.DEPENDENCY_NOT_TRIGGERED,
                    f"`{ref.qualified.rsplit('.', 1)[-1]}` is never triggered by {shown}, so "
                    f"on those events it is `not_applicable` here",
                    ref.span,
                    "make both rules trigger on the same events, or narrow this rule's `on`",
                    severity=Severity.WARNING,
                )
            )
    return out
