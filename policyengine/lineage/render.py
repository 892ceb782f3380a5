"""Renderings of a `Trace`: text (an indented tree), JSON, Graphviz DOT and Mermaid.

Ids come from other systems and may hold anything (quotes, newlines, `#`, `<`), so each
format escapes them its own way: text shows control characters as `\\uXXXX` (a crafted id
cannot forge a line), DOT and Mermaid use synthetic node names (`n0`, `n1`, …) and put the
real id only into escaped labels.

JSON layout (`"format": "policyengine-lineage-trace/1"`), keys sorted:
`root` (`kind:id`), `direction`, `at` (RFC 3339 or null), `nodes` (each: `key`, `kind`, `id`,
`name`, `label`, `depth`, `registered`, `attrs`, `first_seen`, `last_seen`), `edges` (each:
`src`, `dst`, `relation`, `event_id`, `event_type`, `time`, `valid_to`); nodes sorted by
depth, kind, id and edges by src, dst, relation, time, event id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from policyengine.lineage._time import show_time
from policyengine.lineage.edges import NodeKey
from policyengine.lineage.query import Trace
from policyengine.lineage.store import Edge, Node

__all__ = [
    "FORMATS",
    "JSON_FORMAT",
    "describe",
    "dot_string",
    "dumps",
    "edge_dict",
    "mermaid_text",
    "node_dict",
    "render",
    "to_dot",
    "to_json",
    "to_mermaid",
    "to_text",
    "trace_dict",
]

JSON_FORMAT = "policyengine-lineage-trace/1"
FORMATS = ("text", "json", "dot", "mermaid")

_ENTITY_KINDS = (
    "dataset",
    "feature_set",
    "training_run",
    "model_version",
    "prediction_batch",
    "code_commit",
)


def describe(node: Node) -> str:
    """A short human label for a node: name and version, a signer and meaning, …"""
    a = node.attrs
    parts: list[str] = []
    if node.kind == "approval":
        who = a.get("signer_name") or a.get("signer", "?")
        parts.append(f"{a.get('meaning', '?')} by {who} as {a.get('role', '?')}")
    elif node.kind == "override":
        until = f" until {a['expires_at']}" if a.get("expires_at") else ""
        parts.append(
            f"{a.get('rule', '?')} by {a.get('signer', '?')} as {a.get('role', '?')}{until}"
        )
    elif node.kind == "endpoint":
        parts += [str(a[k]) for k in ("environment", "region") if a.get(k)]
    elif node.kind == "prediction_batch":
        if a.get("row_count") is not None:
            parts.append(f"{a['row_count']} rows")
    elif node.kind == "code_commit":
        parts += [str(a["summary"]) if a.get("summary") else ""]
        parts += [f"by {a['author']}" if a.get("author") else ""]
        if "signed" in a:
            signed = "signed" if a["signed"] else "unsigned"
            parts.append("signature verified" if a.get("signature_verified") else signed)
    else:
        name = node.name or ""
        version = a.get("version")
        parts.append(f"{name} {version}" if name and version is not None else name)
        if a.get("classification"):
            parts.append(str(a["classification"]))
    label = ", ".join(p for p in parts if p)
    if node.kind in _ENTITY_KINDS and not node.registered:
        label = f"{label} (unregistered)" if label else "(unregistered)"
    return label


def _clean(text: str) -> str:
    """Printable text only: non-printable characters become `\\uXXXX` and, so that an id
    cannot pass for an escape, a backslash becomes `\\\\` (whenever either occurs)."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        "\\\\" if c == "\\" else c if c.isprintable() else f"\\u{ord(c):04x}" for c in text
    )


def _stamp(edge: Edge) -> str:
    until = f" until {show_time(edge.valid_to)}" if edge.valid_to is not None else ""
    return f"{edge.event_id} {show_time(edge.time)}{until}"


# ----------------------------------------------------------------- text


def to_text(trace: Trace) -> str:
    """An indented tree from the root; a node reached again shows `(see above)`."""
    upstream = trace.direction == "upstream"
    children: dict[NodeKey, list[Edge]] = defaultdict(list)
    for e in trace.edges:
        children[e.dst if upstream else e.src].append(e)
    nodes = {n.key: n for n in trace.nodes}
    arrow = "<-" if upstream else "->"

    def line(node: Node) -> str:
        label = describe(node)
        return _clean(f"{node.key}  {label}" if label else str(node.key))

    at = f" at {show_time(trace.at)}" if trace.at is not None else ""
    out = [
        f"{trace.direction} of {_clean(str(trace.root.key))}{at}: "
        f"{len(trace.nodes)} nodes, {len(trace.edges)} edges",
        line(trace.root),
    ]
    shown = {trace.root.key}
    # Iterative depth-first walk (traces can be deep): (edge, indent) pairs on a stack.
    stack = [(e, 1) for e in sorted(children[trace.root.key], key=_child_order, reverse=True)]
    while stack:
        edge, level = stack.pop()
        other = edge.src if upstream else edge.dst
        node = nodes[other]
        repeat = other in shown
        tail = "  (see above)" if repeat else ""
        out.append(
            f"{'  ' * level}{arrow} {edge.relation} {line(node)}  [{_clean(_stamp(edge))}]{tail}"
        )
        if not repeat:
            shown.add(other)
            below = sorted(children[other], key=_child_order, reverse=True)
            stack.extend((e, level + 1) for e in below)
    return "\n".join(out) + "\n"


def _child_order(edge: Edge) -> tuple[str, str, str, str]:
    return (edge.relation, str(edge.src), str(edge.dst), edge.event_id)


# ----------------------------------------------------------------- JSON


def trace_dict(trace: Trace) -> dict[str, Any]:
    return {
        "format": JSON_FORMAT,
        "root": str(trace.root.key),
        "direction": trace.direction,
        "at": show_time(trace.at) if trace.at is not None else None,
        "nodes": [node_dict(n, trace.depth.get(n.key)) for n in trace.nodes],
        "edges": [edge_dict(e) for e in trace.edges],
    }


def node_dict(node: Node, depth: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": str(node.key),
        "kind": node.kind,
        "id": node.id,
        "name": node.name,
        "label": describe(node),
        "registered": node.registered,
        "attrs": dict(node.attrs),
        "first_seen": show_time(node.first_seen),
        "last_seen": show_time(node.last_seen),
    }
    if depth is not None:
        out["depth"] = depth
    return out


def edge_dict(edge: Edge) -> dict[str, Any]:
    return {
        "src": str(edge.src),
        "dst": str(edge.dst),
        "relation": edge.relation,
        "event_id": edge.event_id,
        "event_type": edge.event_type,
        "time": show_time(edge.time),
        "valid_to": show_time(edge.valid_to) if edge.valid_to is not None else None,
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def to_json(trace: Trace) -> str:
    return dumps(trace_dict(trace))


# ----------------------------------------------------------------- DOT

_DOT_SHAPES = {
    "dataset": "cylinder",
    "feature_set": "parallelogram",
    "training_run": "box",
    "model_version": "box3d",
    "prediction_batch": "note",
    "code_commit": "component",
    "image": "component",
    "endpoint": "hexagon",
    "approval": "octagon",
    "override": "diamond",
}


def dot_string(text: str) -> str:
    """A DOT double-quoted string: `\\` and `"` escaped, line breaks as `\\n`, other control
    characters shown as `\\uXXXX` text (DOT has no escape for them)."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif not c.isprintable():
            out.append(f"\\\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _names(trace: Trace) -> dict[NodeKey, str]:
    return {n.key: f"n{i}" for i, n in enumerate(trace.nodes)}


def to_dot(trace: Trace) -> str:
    names = _names(trace)
    rankdir = "LR"
    lines = [
        "digraph lineage {",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for n in trace.nodes:
        label = str(n.key) + ("\n" + describe(n) if describe(n) else "")
        attrs = f"label={dot_string(label)}, shape={_DOT_SHAPES.get(n.kind, 'box')}"
        if n.key == trace.root.key:
            attrs += ", penwidth=2"
        lines.append(f"  {names[n.key]} [{attrs}];")
    for e in trace.edges:
        label = f"{e.relation}\n{show_time(e.time)}"
        style = ", style=dashed" if e.valid_to is not None else ""
        lines.append(f"  {names[e.src]} -> {names[e.dst]} [label={dot_string(label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- Mermaid

_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-_:/@+,=()'~*!?$"
)
_MERMAID_SHAPES = {
    "dataset": ('[("', '")]'),
    "model_version": ('[["', '"]]'),
    "endpoint": ('{{"', '"}}'),
    "approval": ('>"', '"]'),
    "override": ('>"', '"]'),
}


def mermaid_text(text: str) -> str:
    """Label text for a quoted Mermaid label: everything outside a small safe set becomes a
    numeric entity code (`#35;`), which Mermaid decodes; quotes, `#`, `|`, `<`, `;`, `%` and
    newlines therefore cannot end the label or the statement, or start a comment."""
    return "".join(c if c in _MERMAID_SAFE else f"#{ord(c)};" for c in text)


def to_mermaid(trace: Trace) -> str:
    names = _names(trace)
    lines = ["flowchart LR"]
    for n in trace.nodes:
        label = mermaid_text(str(n.key))
        if describe(n):
            label += "<br/>" + mermaid_text(describe(n))
        open_, close = _MERMAID_SHAPES.get(n.kind, ('["', '"]'))
        lines.append(f"  {names[n.key]}{open_}{label}{close}")
    for e in trace.edges:
        label = mermaid_text(f"{e.relation} {show_time(e.time)}")
        arrow = "-.->" if e.valid_to is not None else "-->"
        lines.append(f'  {names[e.src]} {arrow}|"{label}"| {names[e.dst]}')
    lines.append(f"  style {names[trace.root.key]} stroke-width:3px")
    return "\n".join(lines) + "\n"


def render(trace: Trace, fmt: str) -> str:
    """`fmt` is one of `FORMATS`."""
    if fmt == "text":
        return to_text(trace)
    if fmt == "json":
        return to_json(trace)
    if fmt == "dot":
        return to_dot(trace)
    if fmt == "mermaid":
        return to_mermaid(trace)
    raise ValueError(f"unknown format `{fmt}`; expected one of {', '.join(FORMATS)}")
