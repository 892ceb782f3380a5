"""Renderings of a trace: the text tree, stable JSON, and DOT and Mermaid that parse back to
the same graph even when ids hold quotes, `#`, `|`, `;`, backslashes and newlines.

No Graphviz or Mermaid parser is installed here, so each test carries a small parser for the
subset of the language the renderer emits; it rejects anything outside that subset.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pseudonyms import pseudonymised

from policyengine.events import parse_event, read_jsonl
from policyengine.lineage import FORMATS, SQLiteLineageStore, Trace, render, trace
from policyengine.lineage.render import JSON_FORMAT, mermaid_text

ROOT = Path(__file__).resolve().parent.parent
ODD = 'ds "q" #1 <b>&amp; | x; y\\z\nnext{}[]`%%'


@pytest.fixture(scope="module")
def store() -> Any:
    with open(ROOT / "examples" / "biotech.jsonl", encoding="utf-8") as fh:
        events = pseudonymised(e for _, e in read_jsonl(fh) if isinstance(e, dict))
    with SQLiteLineageStore(":memory:") as s:
        s.record_many(events)
        yield s


def _event(n: int, type_: str, kind: str, id_: str, **attributes: Any) -> dict[str, Any]:
    return parse_event(
        {
            "id": f"odd-{n}",
            "type": type_,
            "time": f"2026-01-0{n}T00:00:00Z",
            "actor": {"id": "someone"},
            "subject": {"kind": kind, "id": id_},
            "attributes": attributes,
        }
    )


@pytest.fixture(scope="module")
def odd() -> Trace:
    """A trace whose nodes have hostile ids and names."""
    with SQLiteLineageStore(":memory:") as s:
        s.record_many(
            [
                _event(1, "dataset.registered", "dataset", ODD, name='name "with" quotes'),
                _event(2, "dataset.registered", "dataset", "bell\x07id", name="b"),
                _event(
                    3,
                    "features.materialized",
                    "feature_set",
                    'fs "1"',
                    name="f",
                    inputs=[ODD, "bell\x07id"],
                    code_commit="c->1;",
                ),
            ]
        )
        return trace(s, 'feature_set:fs "1"')


# ----------------------------------------------------------------- text


def test_text_is_an_indented_tree_with_relations_and_times(store: Any) -> None:
    t = trace(store, "mv-hepatox-1.0.0")
    lines = render(t, "text").splitlines()
    assert lines[0] == "upstream of model_version:mv-hepatox-1.0.0: 16 nodes, 17 edges"
    assert lines[1] == "model_version:mv-hepatox-1.0.0  hepatox-predictor 1.0.0"
    assert (
        "  <- trained training_run:run-0121  hepatox-gbm  [evt-019 2026-02-02T10:00:00Z]" in lines
    )
    raw = next(line for line in lines if "dataset:ds-hepatox-raw-2026q1" in line)
    assert raw.startswith("        <- derived_from ")  # depth 4 below the root
    assert "hepatox-assay-raw 2026q1, PHI" in raw
    # Every node is expanded once; later arrivals point back with `(see above)`.
    expanded = [line for line in lines[1:] if not line.endswith("(see above)")]
    assert len(expanded) == len(t.nodes)
    assert len(lines) - 1 == len(t.edges) + 1
    assert sum(line.endswith("(see above)") for line in lines) == len(t.edges) - (len(t.nodes) - 1)


def test_text_downstream_and_point_in_time(store: Any) -> None:
    from datetime import datetime

    at = datetime.fromisoformat("2026-03-01T00:00:00Z")
    text = render(trace(store, "endpoint:hepatox-staging", "upstream", at), "text")
    assert text.startswith("upstream of endpoint:hepatox-staging at 2026-03-01T00:00:00Z:")
    assert "served_by model_version:mv-hepatox-1.0.0" in text
    assert "until 2026-04-07T11:08:00Z" in text  # the deployment was superseded later
    down = render(trace(store, "ds-hepatox-raw-2026q1", "downstream"), "text")
    assert "  -> derived_from dataset:ds-hepatox-deid-2026q1" in down


def test_text_escapes_control_characters_so_ids_cannot_forge_lines(odd: Trace) -> None:
    text = render(odd, "text")
    lines = text.splitlines()
    assert len(lines) == 1 + len(odd.edges) + 1  # header, root, one line per edge
    assert "\\u000anext" in text and "bell\\u0007id" in text and "y\\\\z" in text
    assert "\x07" not in text


# ----------------------------------------------------------------- JSON


def test_json_is_stable_and_documented(store: Any) -> None:
    t = trace(store, "pb-2026-0412")
    text = render(t, "json")
    assert text == render(trace(store, "prediction_batch:pb-2026-0412"), "json")
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert doc["format"] == JSON_FORMAT and doc["root"] == "prediction_batch:pb-2026-0412"
    assert doc["direction"] == "upstream" and doc["at"] is None
    assert set(doc["nodes"][0]) == {
        "key", "kind", "id", "name", "label", "depth", "registered", "attrs",
        "first_seen", "last_seen",
    }  # fmt: skip
    assert set(doc["edges"][0]) == {
        "src", "dst", "relation", "event_id", "event_type", "time", "valid_to",
    }  # fmt: skip
    assert [n["depth"] for n in doc["nodes"]] == sorted(n["depth"] for n in doc["nodes"])
    keys = {n["key"] for n in doc["nodes"]}
    assert len(keys) == len(t.nodes)
    assert all(e["src"] in keys and e["dst"] in keys for e in doc["edges"])
    mv = next(n for n in doc["nodes"] if n["key"] == "model_version:mv-hepatox-1.0.0")
    assert mv["attrs"]["version"] == "1.0.0" and mv["depth"] == 1


def test_json_round_trips_odd_ids(odd: Trace) -> None:
    doc = json.loads(render(odd, "json"))
    assert {n["id"] for n in doc["nodes"]} == {'fs "1"', ODD, "bell\x07id", "c->1;"}


# ----------------------------------------------------------------- DOT

_DOT_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:\\.|[^"\\])*")|(?P<arrow>->)|(?P<id>[A-Za-z_][A-Za-z0-9_.]*|\d+)'
    r"|(?P<punct>[{}\[\];,=]))",
    re.S,
)


def _dot_tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _DOT_TOKEN.match(text, pos)
        assert m is not None, f"cannot tokenise DOT at {text[pos : pos + 30]!r}"
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _dot_unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), body, flags=re.S)


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """Nodes (name → attributes) and edges of the DOT subset the renderer writes."""
    toks = _dot_tokens(text)
    assert toks[:3] == [("id", "digraph"), ("id", "lineage"), ("punct", "{")]
    assert toks[-1] == ("punct", "}")
    i, nodes, edges = 3, {}, []

    def attrs() -> dict[str, str]:
        nonlocal i
        out: dict[str, str] = {}
        assert toks[i] == ("punct", "[")
        i += 1
        while toks[i] != ("punct", "]"):
            key, eq, value = toks[i], toks[i + 1], toks[i + 2]
            assert key[0] == "id" and eq == ("punct", "=") and value[0] in ("id", "str")
            out[key[1]] = _dot_unquote(value[1]) if value[0] == "str" else value[1]
            i += 3
            if toks[i] == ("punct", ","):
                i += 1
        i += 1
        return out

    while i < len(toks) - 1:
        kind, value = toks[i]
        assert kind == "id", toks[i]
        if toks[i + 1] == ("punct", "="):  # graph attribute
            assert toks[i + 2][0] == "id"
            i += 3
        elif toks[i + 1] == ("arrow", "->"):
            dst = toks[i + 2]
            assert dst[0] == "id"
            i += 3
            edges.append((value, dst[1], attrs()))
        else:
            i += 1
            a = attrs()
            if value not in ("node", "edge"):
                nodes[value] = a
        assert toks[i] == ("punct", ";"), toks[i]
        i += 1
    return nodes, edges


def test_dot_parses_back_to_the_trace(store: Any) -> None:
    t = trace(store, "mv-hepatox-1.1.0")
    nodes, edges = parse_dot(render(t, "dot"))
    assert len(nodes) == len(t.nodes) and len(edges) == len(t.edges)
    by_name = {name: a["label"].split("\n")[0] for name, a in nodes.items()}
    assert set(by_name.values()) == {str(n.key) for n in t.nodes}
    got = {(by_name[s], by_name[d], a["label"].split("\n")[0]) for s, d, a in edges}
    assert got == {(str(e.src), str(e.dst), e.relation) for e in t.edges}
    assert nodes["n0"].get("penwidth") == "2"  # the root stands out


def test_dot_escapes_odd_ids(odd: Trace) -> None:
    nodes, edges = parse_dot(render(odd, "dot"))
    labels = {a["label"] for a in nodes.values()}
    assert f'dataset:{ODD}\nname "with" quotes' in labels
    assert "dataset:bell\\u0007id\nb" in labels  # shown, not passed through raw
    assert 'feature_set:fs "1"\nf' in labels and "code_commit:c->1;\n(unregistered)" in labels
    assert len(edges) == 3


# ----------------------------------------------------------------- Mermaid

_M_NODE = re.compile(r'^  (n\d+)(\["|\[\("|\[\["|\{\{"|>")([^"]*)("\]|"\)\]|"\]\]|"\}\}|"\])$')
_M_EDGE = re.compile(r'^  (n\d+) (-->|-\.->)\|"([^"|]*)"\| (n\d+)$')
_M_SAFE = re.compile(r"^(?:[A-Za-z0-9 .\-_:/@+,=()'~*!?$]|#\d+;|<br/>)*$")


def _m_decode(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "flowchart LR"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if m := _M_NODE.match(line):
            assert _M_SAFE.match(m.group(3)), line
            nodes[m.group(1)] = m.group(3)
        elif m := _M_EDGE.match(line):
            assert _M_SAFE.match(m.group(3)), line
            edges.append((m.group(1), m.group(4), _m_decode(m.group(3))))
        else:
            assert re.match(r"^  style n\d+ stroke-width:3px$", line), line
    assert all(s in nodes and d in nodes for s, d, _ in edges)
    return nodes, edges


def test_mermaid_parses_back_to_the_trace(store: Any) -> None:
    t = trace(store, "ds-hepatox-raw-2026q1", "downstream")
    nodes, edges = parse_mermaid(render(t, "mermaid"))
    keys = {name: _m_decode(label.split("<br/>")[0]) for name, label in nodes.items()}
    assert set(keys.values()) == {str(n.key) for n in t.nodes}
    got = {(keys[s], keys[d], label.split(" ")[0]) for s, d, label in edges}
    assert got == {(str(e.src), str(e.dst), e.relation) for e in t.edges}
    superseded = [e for e in t.edges if e.valid_to is not None]
    assert render(t, "mermaid").count("-.->") == len(superseded) == 1


def test_mermaid_escapes_odd_ids(odd: Trace) -> None:
    nodes, _ = parse_mermaid(render(odd, "mermaid"))
    decoded = {_m_decode(label.split("<br/>")[0]) for label in nodes.values()}
    assert f"dataset:{ODD}" in decoded and "code_commit:c->1;" in decoded
    assert mermaid_text("a#b") == "a#35;b"


def test_every_format_renders(store: Any) -> None:
    t = trace(store, "pb-2026-0503")
    for fmt in FORMATS:
        assert render(t, fmt).endswith("\n")
    with pytest.raises(ValueError, match="unknown format"):
        render(t, "svg")
