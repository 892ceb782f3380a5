"""Shared JUnit XML plumbing: the dialect every CI (Jenkins, GitLab, GitHub
reporters, Azure) reads — testsuites > testsuite > testcase > failure/error/skipped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

# XML 1.0 cannot carry most C0 control characters, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


@dataclass(slots=True)
class Case:
    classname: str
    name: str
    failure: tuple[str, str, str] | None = None  # (type, message, details)
    error: tuple[str, str, str] | None = None
    skipped: str | None = None
    file: str | None = None
    line: int | None = None
    output: str | None = None


@dataclass(slots=True)
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    file: str | None = None


def render(
    name: str,
    suites: Sequence[Suite],
    *,
    duration: float | None = None,
    timestamp: str | None = None,
) -> str:
    """Serialise suites into a JUnit XML document (with an XML declaration)."""
    root = ET.Element("testsuites", {"name": xml_safe(name)})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        counts = {
            "tests": len(suite.cases),
            "failures": sum(1 for c in suite.cases if c.failure is not None),
            "errors": sum(1 for c in suite.cases if c.error is not None),
            "skipped": sum(1 for c in suite.cases if c.skipped is not None),
        }
        for k, v in counts.items():
            totals[k] += v
        attrs = {"name": xml_safe(suite.name), **{k: str(v) for k, v in counts.items()}}
        if timestamp is not None:
            attrs["timestamp"] = timestamp
        if suite.file is not None:
            attrs["file"] = xml_safe(suite.file)
        el = ET.SubElement(root, "testsuite", attrs)
        for case in suite.cases:
            _case(el, case)
    for k, v in totals.items():
        root.set(k, str(v))
    if duration is not None:
        root.set("time", f"{duration:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _case(parent: ET.Element, case: Case) -> None:
    attrs = {"classname": xml_safe(case.classname), "name": xml_safe(case.name)}
    if case.file is not None:
        attrs["file"] = xml_safe(case.file)
    if case.line is not None:
        attrs["line"] = str(case.line)
    el = ET.SubElement(parent, "testcase", attrs)
    for tag, item in (("failure", case.failure), ("error", case.error)):
        if item is not None:
            kind, message, details = item
            sub = ET.SubElement(el, tag, {"type": xml_safe(kind), "message": xml_safe(message)})
            sub.text = xml_safe(details)
    if case.skipped is not None:
        ET.SubElement(el, "skipped", {"message": xml_safe(case.skipped)})
    if case.output:
        ET.SubElement(el, "system-out").text = xml_safe(case.output)
