"""SARIF 2.1.0 logs for compile diagnostics (`check`) and failed rules (`eval`).

SARIF is what code-scanning UIs (GitHub, GitLab, Azure DevOps) ingest, so both
logs locate results in policy files: diagnostics where the problem is, failed
rules at the rule definition. Paths are written relative to `base` (the
checkout root, usually the working directory) under the `%SRCROOT%` base id,
which is how those UIs map results onto repository files.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from policyengine import __version__
from policyengine.compiler.bundle import RuleInfo
from policyengine.language.ast import Span
from policyengine.language.diagnostics import Code, Diagnostic, Severity
from policyengine.reports._common import ENFORCEMENT_LEVEL, failure_reason, subject_label
from policyengine.runtime.decision import Decision

__all__ = [
    "CODE_DESCRIPTIONS",
    "SARIF_SCHEMA_URI",
    "SARIF_VERSION",
    "artifact_uri",
    "decisions_sarif",
    "diagnostics_sarif",
    "information_uri",
]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
# Used until the package metadata names a homepage (`[project.urls]` in pyproject.toml).
_FALLBACK_INFORMATION_URI = "https://policyengine.invalid/docs/cli"

CODE_DESCRIPTIONS: Mapping[Code, str] = {
    Code.SYNTAX: "syntax error",
    Code.UNEXPECTED_EOF: "unexpected end of file",
    Code.UNEXPECTED_CHAR: "unexpected character",
    Code.BAD_LITERAL: "invalid literal",
    Code.BAD_TEMPLATE: "malformed message template",
    Code.UNDEFINED_NAME: "undefined name",
    Code.UNDEFINED_RULE: "undefined rule",
    Code.UNDEFINED_PACKAGE: "undefined package",
    Code.UNKNOWN_ATTRIBUTE: "unknown attribute",
    Code.UNKNOWN_FUNCTION: "unknown function",
    Code.UNKNOWN_EVENT_TYPE: "unknown event type",
    Code.UNKNOWN_ENTITY_KIND: "unknown entity kind",
    Code.SHADOWED_NAME: "variable hides a built-in name",
    Code.UNKNOWN_METRIC: "unknown drift metric",
    Code.TYPE_MISMATCH: "type mismatch",
    Code.WRONG_ARITY: "wrong number of arguments",
    Code.BAD_REGEX: "invalid regular expression",
    Code.NOT_CONSTANT: "value is not a compile-time constant",
    Code.DUPLICATE_RULE: "rule defined more than once",
    Code.DUPLICATE_CONST: "constant defined more than once",
    Code.MISSING_REQUIREMENT: "rule has no requirement",
    Code.DEPENDENCY_CYCLE: "dependency cycle between rules or constants",
    Code.MISSING_CLAUSE: "required clause is missing",
    Code.BAD_CLAUSE_VALUE: "invalid clause value",
    Code.REPEATED_CLAUSE: "clause given more than once",
    Code.DUPLICATE_TEST: "test defined more than once",
    Code.PACKAGE_MISMATCH: "package declaration mismatch",
    Code.DEPENDENCY_NOT_TRIGGERED: "rule outcome read where that rule never triggers",
    Code.FILE_ERROR: "policy file cannot be read",
    Code.NO_POLICIES: "no policy files found",
}


@cache
def information_uri() -> str:
    """The project's homepage from the installed metadata, else a placeholder."""
    try:
        urls = metadata.metadata("policyengine").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        urls = []
    by_label: dict[str, str] = {}
    for entry in urls:
        label, _, url = entry.partition(",")
        by_label[label.strip().lower()] = url.strip()
    for label in ("documentation", "homepage", "source", "repository"):
        if by_label.get(label):
            return by_label[label]
    return _FALLBACK_INFORMATION_URI


def artifact_uri(path: str, base: str | None) -> tuple[str, str | None] | None:
    """`(uri, uriBaseId)` for a span's file, or None for pseudo-files like `<string>`.

    Files under `base` get a relative, percent-encoded URI under `%SRCROOT%`; files
    outside it an absolute `file:` URI. Pure string arithmetic: nothing is read.
    """
    if not path or path.startswith("<"):
        return None
    if base is None:
        if PurePath(path).is_absolute():
            return Path(path).as_uri(), None
        return quote(PurePath(path).as_posix()), None
    full = os.path.normpath(os.path.join(base, path))
    rel = os.path.relpath(full, base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return Path(full).as_uri(), None
    return quote(posixpath.join(*PurePath(rel).parts)), SRCROOT


def _region(span: Span) -> dict[str, int]:
    end_line, end_column = span.end_line, span.end_column
    if end_line < span.line or (end_line == span.line and end_column <= span.column):
        end_line, end_column = span.line, span.column + 1
    return {
        "startLine": max(1, span.line),
        "startColumn": max(1, span.column),
        "endLine": max(1, end_line),
        "endColumn": max(1, end_column),
    }


def _location(span: Span, base: str | None, message: str | None = None) -> dict[str, Any] | None:
    where = artifact_uri(span.file, base)
    if where is None:
        return None
    uri, base_id = where
    artifact: dict[str, Any] = {"uri": uri}
    if base_id is not None:
        artifact["uriBaseId"] = base_id
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact}}
    if span.line >= 1 and not (span.start == span.end == 0 and span.line == span.column == 1):
        loc["physicalLocation"]["region"] = _region(span)
    if message is not None:
        loc["message"] = {"text": message}
    return loc


def _driver(rules: list[dict[str, Any]], tool_version: str) -> dict[str, Any]:
    return {
        "name": "policyengine",
        "version": tool_version,
        "semanticVersion": tool_version,
        "informationUri": information_uri(),
        "rules": rules,
    }


def _log(run: dict[str, Any], base: str | None) -> dict[str, Any]:
    if base is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": Path(base).as_uri().rstrip("/") + "/"}}
    run["columnKind"] = "unicodeCodePoints"
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))


def diagnostics_sarif(
    diagnostics: Sequence[Diagnostic],
    *,
    base: str | None = None,
    tool_version: str = __version__,
) -> dict[str, Any]:
    """A SARIF log with one result per compile diagnostic; `rules` lists every code."""
    codes = list(Code)
    index = {c: i for i, c in enumerate(codes)}
    rules = [
        {
            "id": c.value,
            "name": _pascal(c.name),
            "shortDescription": {
                "text": CODE_DESCRIPTIONS.get(c, c.name.lower().replace("_", " "))
            },
            "defaultConfiguration": {"level": "error"},
        }
        for c in codes
    ]
    results: list[dict[str, Any]] = []
    for d in diagnostics:
        text = d.message if not d.hint else f"{d.message}\nhelp: {d.hint}"
        result: dict[str, Any] = {
            "ruleId": d.code.value,
            "ruleIndex": index[d.code],
            "level": "error" if d.severity is Severity.ERROR else "warning",
            "message": {"text": text},
        }
        loc = _location(d.span, base)
        if loc is not None:
            result["locations"] = [loc]
        related: list[dict[str, Any]] = []
        for i, (note, span) in enumerate(d.notes):
            rel = _location(span, base, note)
            if rel is not None:
                related.append({"id": i, **rel})
        if related:
            result["relatedLocations"] = related
        results.append(result)
    return _log({"tool": {"driver": _driver(rules, tool_version)}, "results": results}, base)


def _rule_descriptor(info: RuleInfo) -> dict[str, Any]:
    short = info.title or info.name.replace("_", " ")
    descriptor: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "shortDescription": {"text": short},
        "defaultConfiguration": {"level": ENFORCEMENT_LEVEL.get(info.enforcement, "warning")},
        "properties": {
            "tags": [info.layer, info.severity, info.enforcement],
            "layer": info.layer,
            "severity": info.severity,
            "enforcement": info.enforcement,
            "refs": list(info.refs),
        },
    }
    if info.doc:
        descriptor["fullDescription"] = {"text": info.doc}
    if info.doc or info.refs:
        help_text = info.doc
        if info.refs:
            help_text = (
                (help_text + "\n\n" if help_text else "") + "References: " + "; ".join(info.refs)
            )
        descriptor["help"] = {"text": help_text}
    return descriptor


def decisions_sarif(
    decisions: Iterable[Decision],
    rules: Mapping[str, RuleInfo],
    *,
    base: str | None = None,
    bundle_digest: str | None = None,
    tool_version: str = __version__,
) -> dict[str, Any]:
    """A SARIF log with one result per failed (or errored) rule per event, located at
    the rule's definition. A fingerprint per (event, rule) keeps code-scanning UIs
    from folding different events into one alert."""
    order = sorted(rules)
    index = {rid: i for i, rid in enumerate(order)}
    descriptors = [_rule_descriptor(rules[rid]) for rid in order]
    results: list[dict[str, Any]] = []
    for d in decisions:
        for r in d.results:
            if not r.failed:
                continue
            text = f"{d.event_id} ({d.event_type} {subject_label(d)}): {failure_reason(r)}"
            if r.override is not None:
                text += " [overridden]"
            result: dict[str, Any] = {
                "ruleId": r.rule,
                "level": ENFORCEMENT_LEVEL.get(r.enforcement, "warning"),
                "message": {"text": text},
                "partialFingerprints": {
                    "policyengineEvent/v1": hashlib.sha256(
                        f"{d.event_id}\x00{r.rule}".encode()
                    ).hexdigest()
                },
                "properties": {
                    "eventId": d.event_id,
                    "eventType": d.event_type,
                    "subject": subject_label(d),
                    "outcome": d.outcome.value,
                    "status": r.status,
                    "layer": r.layer,
                    "severity": r.severity,
                    "enforcement": r.enforcement,
                },
            }
            if r.rule in index:
                result["ruleIndex"] = index[r.rule]
                loc = _location(rules[r.rule].span, base)
                if loc is not None:
                    result["locations"] = [loc]
            results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": _driver(descriptors, tool_version)},
        "results": results,
    }
    if bundle_digest is not None:
        run["properties"] = {"bundleDigest": bundle_digest}
    return _log(run, base)
