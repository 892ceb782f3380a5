"""The compiler driver and the compiled, immutable `Bundle`.

Passes run in a fixed order — parse, resolve, structure, constants, graph,
type check, index + lower — and each appends diagnostics instead of stopping,
so one run reports every problem it can find, sorted by location.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import networkx as nx

from policyengine import __version__
from policyengine._gc import gc_paused
from policyengine.canonical import dumps as canonical_dumps
from policyengine.compiler import types as T
from policyengine.compiler.graph import (
    cycle_diagnostics,
    expand_patterns,
    rule_graph,
    topological_order,
    untriggered_dependencies,
)
from policyengine.compiler.lower import Lowerer, snippet
from policyengine.compiler.monitors import MonitorSpec, compile_monitors
from policyengine.compiler.resolve import Program, ResolvedRule, ResolvedTest, resolve
from policyengine.compiler.schema import TypeEnv, default_env
from policyengine.compiler.typecheck import Context, check, expect_bool, literal_type
from policyengine.language import ast
from policyengine.language.diagnostics import (
    Code,
    CompileError,
    Diagnostic,
    Severity,
    did_you_mean,
)
from policyengine.language.parser import parse_module
from policyengine.runtime.decision import Decision
from policyengine.runtime.evaluator import (
    RequirementProgram,
    RuleProgram,
    evaluate,
    evaluate_batch,
)
from policyengine.runtime.frame import Frame, StateReader

LAYERS = ("privacy", "monitoring", "audit", "oversight")
SEVERITIES = ("info", "low", "medium", "high", "critical")
ENFORCEMENTS = ("advisory", "soft", "hard")
POLICY_SUFFIX = ".policy"


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What reports need to know about a rule, independent of any event."""

    id: str
    name: str
    package: str
    layer: str
    severity: str
    enforcement: str
    doc: str
    title: str | None
    refs: tuple[str, ...]
    on: tuple[str, ...]
    event_types: tuple[str, ...]
    requirements: tuple[str, ...]
    override_by: tuple[str, ...]
    depends_on: tuple[str, ...]
    span: ast.Span
    #: `review by` roles and deadline, when a failure opens a review rather than denying.
    review: tuple[tuple[str, ...], timedelta] | None = None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A compiled policy bundle: immutable, so one instance serves every thread."""

    digest: str
    rules: Mapping[str, RuleInfo]
    graph: nx.DiGraph
    index: Mapping[str, tuple[RuleProgram, ...]]
    tests: tuple[ResolvedTest, ...]
    sources: Mapping[str, str]
    nvars: int
    engine_version: str = __version__
    warnings: tuple[Diagnostic, ...] = field(default=())
    #: {path relative to the bundle root: source}; its canonical JSON hashes to `digest`.
    files: Mapping[str, str] = field(default_factory=dict)
    #: Drift monitors by qualified id (`package.name`).
    monitors: Mapping[str, MonitorSpec] = field(default_factory=dict)

    def rules_for(self, event_type: str) -> tuple[str, ...]:
        return tuple(p.rule for p in self.index.get(event_type, ()))

    def evaluate(
        self, event: dict[str, Any], state: StateReader, now: datetime | None = None
    ) -> Decision:
        """Decide one validated event against `state`. `now` defaults to the event's time,
        which keeps decisions reproducible; pass a clock reading to judge at wall time."""
        return evaluate(
            event,
            state,
            now if now is not None else event["time"],
            self.index,
            self.nvars,
            self.digest,
            self.engine_version,
        )

    def evaluate_batch(
        self,
        events: Iterable[dict[str, Any]],
        state: StateReader,
        now: datetime | None = None,
    ) -> list[Decision]:
        """Decide many validated events against one state (which this does not change):
        the same decisions as calling `evaluate` on each, with less per-event overhead."""
        return evaluate_batch(
            events, state, now, self.index, self.nvars, self.digest, self.engine_version
        )


# ---------------------------------------------------------------- loading


def discover(paths: Iterable[str | Path]) -> dict[str, str]:
    """Read `*.policy` files from files and directories, keyed by a display path."""
    found: dict[str, str] = {}
    for p in paths:
        path = Path(p)
        files = sorted(path.rglob(f"*{POLICY_SUFFIX}")) if path.is_dir() else [path]
        for f in files:
            key = f.as_posix()
            try:
                found[key] = f.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise CompileError(
                    [
                        Diagnostic(
                            Code.FILE_ERROR,
                            f"`{key}` is not UTF-8 text (byte {exc.start} cannot be decoded)",
                            ast.Span.unknown(key),
                            "policy files are UTF-8; re-save the file with that encoding",
                        )
                    ]
                ) from None
            except OSError as exc:
                raise CompileError(
                    [
                        Diagnostic(
                            Code.FILE_ERROR,
                            f"cannot read `{key}`: {exc.strerror or exc}",
                            ast.Span.unknown(key),
                        )
                    ]
                ) from None
    return found


def relative_sources(sources: Mapping[str, str], root: str | None = None) -> dict[str, str]:
    """{path relative to `root`: source}: what a bundle *is*, wherever it was checked out."""
    rel: dict[str, str] = {}
    for path, text in sources.items():
        key = path
        if root is not None:
            try:
                key = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
            except ValueError:
                key = Path(path).as_posix()
        rel[key] = text
    return rel


def canonical_sources(files: Mapping[str, str]) -> bytes:
    """RFC 8785 bytes of {relative path: source}: the content-addressed form of a bundle."""
    return canonical_dumps(dict(files))


def bundle_digest(sources: Mapping[str, str], root: str | None = None) -> str:
    """SHA-256 over the canonical JSON of {relative path: source}, so the digest
    names the policy text and nothing about where it was checked out."""
    blob = canonical_sources(relative_sources(sources, root))
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def load_bundle(*paths: str | Path, env: TypeEnv | None = None) -> Bundle:
    """Compile every policy file under the given files or directories."""
    sources: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for p in paths:
        if not Path(p).exists():
            diags.append(
                Diagnostic(
                    Code.FILE_ERROR,
                    f"no such file or directory `{p}`",
                    ast.Span.unknown(str(p)),
                )
            )
    if diags:
        raise CompileError(diags)
    try:
        sources = discover(paths)
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(
            [Diagnostic(Code.FILE_ERROR, f"cannot read policy file: {exc}", ast.Span.unknown())]
        ) from None
    if not sources:
        shown = ", ".join(f"`{p}`" for p in paths)
        raise CompileError(
            [
                Diagnostic(
                    Code.NO_POLICIES,
                    f"no `*{POLICY_SUFFIX}` files found in {shown}",
                    ast.Span.unknown(str(paths[0]) if paths else "<none>"),
                    "policy files end in `.policy`",
                )
            ]
        )
    # Digest keys are relative to the deepest folder holding every given path, so the
    # same files give the same digest wherever they are checked out.
    bases = [Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in paths]
    root = os.path.commonpath([b.as_posix() for b in bases])
    return compile_sources(sources, env=env, root=root)


def compile_sources(
    sources: Mapping[str, str], *, env: TypeEnv | None = None, root: str | None = None
) -> Bundle:
    """Compile policy text (path → source). Raises `CompileError` with every problem."""
    env = env or default_env()
    diags: list[Diagnostic] = []
    modules: list[ast.Module] = []
    with gc_paused():
        for path in sorted(sources):
            try:
                modules.append(parse_module(sources[path], path))
            except CompileError as err:
                diags.extend(err.diagnostics)
        compiler = _Compiler(env, diags)
        bundle = compiler.run(modules, sources, root)
    errors = [d for d in diags if d.severity is Severity.ERROR]
    if errors or bundle is None:
        raise CompileError(_dedupe(diags), dict(sources))
    return bundle


def _dedupe(diags: Sequence[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, int, int, str]] = set()
    out: list[Diagnostic] = []
    for d in diags:
        key = (d.code.value, d.span.file, d.span.line, d.span.column, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


class _Compiler:
    def __init__(self, env: TypeEnv, diags: list[Diagnostic]) -> None:
        self.env = env
        self.diags = diags
        self.const_values: dict[str, Any] = {}
        self.const_types: dict[str, T.Type] = {}
        self.regexes: dict[str, Any] = {}

    def error(self, code: Code, msg: str, span: ast.Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, span, hint))

    def run(
        self, modules: list[ast.Module], sources: Mapping[str, str], root: str | None
    ) -> Bundle | None:
        program = resolve(modules, self.diags)
        for r in program.rules.values():
            self.check_structure(r)
        self.check_tests(program.tests)
        monitors = compile_monitors(modules, self.diags)
        self.constants(program)
        graph = rule_graph(program)
        spans = {q: r.decl.name.span for q, r in program.rules.items()}
        self.diags.extend(cycle_diagnostics(graph, spans, "rule"))
        order = topological_order(graph) if nx.is_directed_acyclic_graph(graph) else []
        event_types = {q: self.event_types(r) for q, r in program.rules.items()}
        self.diags.extend(untriggered_dependencies(program, event_types))
        index: dict[str, list[RuleProgram]] = {t: [] for t in self.env.events}
        nvars = 0
        infos: dict[str, RuleInfo] = {}
        for q in order or sorted(program.rules):
            r = program.rules[q]
            for et in event_types[q]:
                prog, used = self.compile_rule(r, et, recorded=graph.out_degree(q) > 0)
                nvars = max(nvars, used)
                if prog is not None:
                    index[et].append(prog)
            infos[q] = self.info(r, event_types[q])
        if any(d.severity is Severity.ERROR for d in self.diags):
            return None
        files = relative_sources(sources, root)
        return Bundle(
            digest="sha256:" + hashlib.sha256(canonical_sources(files)).hexdigest(),
            rules=MappingProxyType(infos),
            graph=nx.freeze(graph),
            index=MappingProxyType({t: tuple(ps) for t, ps in index.items()}),
            tests=tuple(program.tests),
            sources=MappingProxyType(dict(sources)),
            nvars=nvars,
            warnings=tuple(d for d in self.diags if d.severity is Severity.WARNING),
            files=MappingProxyType(files),
            monitors=MappingProxyType(monitors),
        )

    # ------------------------------------------------------------ structure
    def check_structure(self, r: ResolvedRule) -> None:
        d = r.decl
        name = d.name.value
        for keyword, span in d.repeated:
            self.error(
                Code.REPEATED_CLAUSE,
                f"`{keyword}` is given more than once in rule `{name}`",
                span,
                "keep one; only `require` may repeat",
            )
        self._enum_clause(d, "layer", d.layer, LAYERS, required=True)
        self._enum_clause(d, "severity", d.severity, SEVERITIES, required=False)
        self._enum_clause(d, "enforce", d.enforce, ENFORCEMENTS, required=False)
        if not d.on:
            self.error(
                Code.MISSING_CLAUSE,
                f"rule `{name}` does not say which events trigger it",
                d.name.span,
                "add `on <event type>`, e.g. `on model.deploy_requested` or `on model.*`",
            )
        if not d.requires:
            self.error(
                Code.MISSING_REQUIREMENT,
                f"rule `{name}` has no requirement",
                d.name.span,
                "add at least one `require <condition>`",
            )
        enforce = d.enforce.value if d.enforce else "hard"
        if enforce == "soft" and not d.override_by:
            self.error(
                Code.MISSING_CLAUSE,
                f"soft rule `{name}` does not say who may override it",
                d.enforce.span if d.enforce else d.name.span,
                'add `override by "qa"` (one or more roles)',
            )
        if enforce != "soft" and d.override_by:
            self.error(
                Code.BAD_CLAUSE_VALUE,
                f"`override by` only applies to soft rules; `{name}` is {enforce}",
                d.name.span,
                "use `enforce soft`, or drop `override by`",
            )
        if d.review is not None:
            if enforce == "advisory":
                self.error(
                    Code.BAD_CLAUSE_VALUE,
                    f"`review by` needs a rule that blocks; `{name}` is advisory",
                    d.review.span,
                    "use `enforce hard` or `enforce soft`, or drop `review by`",
                )
            if d.review.within <= timedelta(0):
                self.error(
                    Code.BAD_CLAUSE_VALUE,
                    f"the review deadline of rule `{name}` must be positive",
                    d.review.span,
                    "e.g. `within 48h`",
                )

    def check_tests(self, tests: Sequence[ResolvedTest]) -> None:
        """Test fixtures are checked statically too: a typo in a `given` kind or an
        event type is a compile error, not a test that fails for the wrong reason."""
        first: dict[tuple[str, str], ast.Test] = {}
        for t in tests:
            key = (t.package, t.decl.name)
            if key in first:
                self.diags.append(
                    Diagnostic(
                        Code.DUPLICATE_TEST,
                        f"test `{t.decl.name}` is defined twice in package `{t.package}`",
                        t.decl.span,
                        "test names identify results in reports; rename one of them",
                        notes=(("first defined", first[key].span),),
                    )
                )
            else:
                first[key] = t.decl
            for step in t.decl.steps:
                if isinstance(step, ast.GivenEntity) and step.kind.value not in self.env.entities:
                    self.error(
                        Code.UNKNOWN_ENTITY_KIND,
                        f"unknown entity kind `{step.kind.value}`",
                        step.kind.span,
                        did_you_mean(step.kind.value, self.env.entities)
                        or "kinds: " + ", ".join(f"`{k}`" for k in sorted(self.env.entities)),
                    )
                elif isinstance(step, ast.TestEvent) and step.type.value not in self.env.events:
                    self.error(
                        Code.UNKNOWN_EVENT_TYPE,
                        f"unknown event type `{step.type.value}`",
                        step.type.span,
                        did_you_mean(step.type.value, self.env.events)
                        or "a test event names one concrete event type; see spec/events.md",
                    )

    def _enum_clause(
        self,
        d: ast.Rule,
        keyword: str,
        value: ast.Ident | None,
        allowed: Sequence[str],
        *,
        required: bool,
    ) -> None:
        if value is None:
            if required:
                self.error(
                    Code.MISSING_CLAUSE,
                    f"rule `{d.name.value}` has no `{keyword}`",
                    d.name.span,
                    f"add `{keyword} <{' | '.join(allowed)}>`",
                )
            return
        if value.value not in allowed:
            what = "enforcement level" if keyword == "enforce" else keyword
            self.error(
                Code.BAD_CLAUSE_VALUE,
                f"unknown {what} `{value.value}`",
                value.span,
                did_you_mean(value.value, allowed)
                or f"expected one of {', '.join(f'`{a}`' for a in allowed)}",
            )

    def event_types(self, r: ResolvedRule) -> tuple[str, ...]:
        return expand_patterns(r.decl.on, self.env.events, self.diags)

    # ------------------------------------------------------------ constants
    def constants(self, program: Program) -> None:
        g = nx.DiGraph()
        for q in program.consts:
            g.add_node(q)
            for dep in program.const_deps.get(q, ()):
                g.add_edge(dep, q)
        spans = {q: c.decl.name.span for q, c in program.consts.items()}
        cycles = cycle_diagnostics(g, spans, "constant")
        self.diags.extend(cycles)
        if cycles:
            return
        for q in nx.lexicographical_topological_sort(g):
            c = program.consts[q]
            ctx = Context(
                self.env,
                None,
                self.const_types,
                self.diags,
                const_values=self.const_values,
                regexes=self.regexes,
            )
            before = len(self.diags)
            check(c.expr, ctx)
            # A constant built on one that failed has no value to compute (already reported).
            failed_dep = any(dep not in self.const_values for dep in program.const_deps.get(q, ()))
            if len(self.diags) > before or failed_dep:
                continue
            lowerer = Lowerer(ctx.types, self.const_values, self.regexes, c.module.source)
            fn = lowerer.expr(c.expr)
            frame = Frame(
                {"attributes": {}, "subject": {"kind": "", "id": ""}},
                _NoState(),
                datetime.fromtimestamp(0, UTC),
                lowerer.max_slot + 1,
            )
            try:
                value = fn(frame)
            except Exception as exc:  # constants are evaluated once, here
                self.error(
                    Code.NOT_CONSTANT,
                    f"constant `{c.decl.name.value}` cannot be computed: {exc}",
                    c.decl.value.span,
                )
                continue
            if isinstance(value, list):
                value = list(value)
            self.const_values[q] = value
            self.const_types[q] = (
                literal_type(value)
                if not isinstance(value, list)
                else (ctx.types.get(id(c.expr), literal_type(value)))
            )

    # ------------------------------------------------------------ rules
    def compile_rule(
        self, r: ResolvedRule, event_type: str, *, recorded: bool = False
    ) -> tuple[RuleProgram | None, int]:
        d = r.decl
        ctx = Context(
            self.env,
            self.env.events[event_type],
            self.const_types,
            self.diags,
            regexes=self.regexes,
            const_values=self.const_values,
        )
        before = len(self.diags)
        if d.when is not None:
            expect_bool(d.when, ctx, "a `when` guard")
        for req in d.requires:
            expect_bool(req.expr, ctx, "a requirement")
        if d.message is not None:
            for part in d.message.parts:
                if not isinstance(part, str):
                    check(part, ctx)
        # Any error means no bundle is built; lowering could meet a constant that has no value.
        if len(self.diags) > before or any(d.severity is Severity.ERROR for d in self.diags):
            return None, 0
        low = Lowerer(ctx.types, self.const_values, self.regexes, r.module.source)
        guard = low.expr(d.when) if d.when is not None else None
        reqs = tuple(
            RequirementProgram(low.explained(q.expr), low.text(q.expr), q.message, q.span)
            for q in d.requires
        )
        message = (
            tuple(p if isinstance(p, str) else low.expr(p) for p in d.message.parts)
            if d.message is not None
            else None
        )
        prog = RuleProgram(
            rule=r.qualified,
            layer=d.layer.value if d.layer else "audit",
            severity=d.severity.value if d.severity else "medium",
            enforcement=d.enforce.value if d.enforce else "hard",
            refs=d.refs,
            override_by=d.override_by,
            review=(d.review.roles, d.review.within) if d.review is not None else None,
            guard=guard,
            requirements=reqs,
            message=message,
            recorded=recorded,
        )
        return prog, low.max_slot + 1

    def info(self, r: ResolvedRule, event_types: tuple[str, ...]) -> RuleInfo:
        d = r.decl
        source = r.module.source
        texts = tuple(snippet(source, q.expr.span) for q in d.requires)
        return RuleInfo(
            id=r.qualified,
            name=d.name.value,
            package=r.package,
            layer=d.layer.value if d.layer else "",
            severity=d.severity.value if d.severity else "medium",
            enforcement=d.enforce.value if d.enforce else "hard",
            doc=d.doc,
            title=d.title,
            refs=d.refs,
            on=tuple(p.value for p in d.on),
            event_types=event_types,
            requirements=texts,
            override_by=d.override_by,
            depends_on=tuple(sorted(r.depends_on)),
            span=d.name.span,
            review=(d.review.roles, d.review.within) if d.review is not None else None,
        )


class _NoState:
    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        return None
