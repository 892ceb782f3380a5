"""Lineage graph: a persistent store of what was made from what, and the inspector's queries.

Events (already validated by `policyengine.events.parse_event`) are turned into nodes and
downstream edges by `lineage_of`, recorded idempotently in a `SQLiteLineageStore` (which may
share the decision log's file) and queried with `trace`, `resolve`, `served_at` and
`affected_by`; `render` draws a trace as text, JSON, DOT or Mermaid. See spec/lineage.md.
"""

from policyengine.lineage.edges import (
    DECLARING_EVENTS,
    EXCLUSIVE_RELATIONS,
    LINEAGE_ONLY_KINDS,
    NODE_KINDS,
    REF_RELATIONS,
    RELATIONS,
    EdgeDelta,
    LineageDelta,
    NodeDelta,
    NodeKey,
    lineage_of,
)
from policyengine.lineage.errors import AmbiguousNodeError, LineageError, UnknownNodeError
from policyengine.lineage.query import (
    Affected,
    Serving,
    Trace,
    affected_by,
    resolve,
    served_at,
    trace,
)
from policyengine.lineage.render import FORMATS, describe, render
from policyengine.lineage.store import (
    STOP_KINDS,
    BulkEdge,
    BulkNode,
    Direction,
    Edge,
    LineageStore,
    Node,
    Reach,
    RecordResult,
    SQLiteLineageStore,
)

__all__ = [
    "DECLARING_EVENTS",
    "EXCLUSIVE_RELATIONS",
    "FORMATS",
    "LINEAGE_ONLY_KINDS",
    "NODE_KINDS",
    "REF_RELATIONS",
    "RELATIONS",
    "STOP_KINDS",
    "Affected",
    "AmbiguousNodeError",
    "BulkEdge",
    "BulkNode",
    "Direction",
    "Edge",
    "EdgeDelta",
    "LineageDelta",
    "LineageError",
    "LineageStore",
    "Node",
    "NodeDelta",
    "NodeKey",
    "Reach",
    "RecordResult",
    "SQLiteLineageStore",
    "Serving",
    "Trace",
    "UnknownNodeError",
    "affected_by",
    "describe",
    "lineage_of",
    "render",
    "resolve",
    "served_at",
    "trace",
]
