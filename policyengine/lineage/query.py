"""The inspector's questions over a lineage store.

- `trace`: everything upstream (what it came from) or downstream (what it fed) of a node,
  optionally as the graph stood at an instant;
- `resolve`: turn what a person types (an id, `kind:id`, a name, `name@version`) into a node;
- `served_at`: which model version served an endpoint at an instant, under which approvals;
- `affected_by`: every dataset, model version, endpoint and prediction batch downstream of a
  dataset (the "it contained unconsented data — what is affected?" question).

The store does the traversal (indexed neighbour queries); only the reached subgraph is loaded
into networkx, for depths and for callers that want graph algorithms on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import networkx as nx

from policyengine._gc import gc_paused
from policyengine.lineage.edges import NODE_KINDS, NodeKey
from policyengine.lineage.errors import AmbiguousNodeError, LineageError, UnknownNodeError
from policyengine.lineage.store import STOP_KINDS, Direction, Edge, LineageStore, Node

__all__ = [
    "Affected",
    "Serving",
    "Trace",
    "affected_by",
    "resolve",
    "served_at",
    "trace",
]


@dataclass(frozen=True, slots=True)
class Trace:
    """The subgraph reached from `root`; `depth` is the fewest edges from the root."""

    root: Node
    direction: Direction
    at: datetime | None
    nodes: tuple[Node, ...]
    """Sorted by (depth, kind, id); the root first."""
    edges: tuple[Edge, ...]
    """Sorted by (src, dst, relation, time, event id)."""
    depth: Mapping[NodeKey, int]
    graph: Any = field(repr=False, compare=False)
    """`networkx.MultiDiGraph` of the trace: nodes are `NodeKey`s with a `node` attribute,
    edges run downstream with an `edge` attribute (whatever the trace's direction)."""

    def node(self, key: NodeKey) -> Node:
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def keys(self) -> frozenset[NodeKey]:
        return frozenset(n.key for n in self.nodes)

    def of_kind(self, kind: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)


@dataclass(frozen=True, slots=True)
class Serving:
    """Who served an endpoint at `at`: the deployment in force and its sign-offs then."""

    endpoint: Node
    at: datetime
    model_version: Node
    deployment: Edge
    """The `served_by` edge in force at `at` (its event is the deployment)."""
    approvals: tuple[Node, ...]
    """Every approval node recorded on the version at or before `at`, oldest first, whatever
    its `meaning` (a rejection is part of the record too)."""
    overrides: tuple[Node, ...]
    """Overrides granted at or before `at` that had not expired by `at`."""


@dataclass(frozen=True, slots=True)
class Affected:
    """What lies downstream of `source` (see `affected_by`)."""

    source: Node
    trace: Trace
    datasets: tuple[Node, ...]
    """Datasets derived from the source (directly or not); the source itself excluded."""
    feature_sets: tuple[Node, ...]
    training_runs: tuple[Node, ...]
    model_versions: tuple[Node, ...]
    endpoints: tuple[Node, ...]
    deployments: tuple[Edge, ...]
    """The `served_by` edges of affected versions, with their times (and supersession)."""
    prediction_batches: tuple[Node, ...]


def _as_key(store: LineageStore, node: Node | NodeKey | str) -> Node:
    if isinstance(node, Node):
        return node
    if isinstance(node, NodeKey):
        found = store.node(node)
        if found is None:
            raise UnknownNodeError(str(node), store.suggest(str(node)))
        return found
    return resolve(store, node)


def resolve(store: LineageStore, text: str) -> Node:
    """The node `text` names, tried in this order:

    1. `kind:id` with a known kind → exactly that node;
    2. an id → the node with that id (of any kind);
    3. a name (datasets, feature sets, runs and model versions have one);
    4. `name@version` → the node with that name whose `version` attribute matches.

    Several matches at the first step that has any raise `AmbiguousNodeError` listing them;
    none at all raise `UnknownNodeError` with close suggestions.
    """
    text = text.strip()
    if not text:
        raise LineageError("an empty node name", "pass an entity id, `kind:id` or a name")
    kind, sep, rest = text.partition(":")
    if sep and kind in NODE_KINDS:
        node = store.node(NodeKey(kind, rest))
        if node is not None:
            return node
    for found in (store.nodes_with_id(text), store.nodes_named(text)):
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousNodeError(text, [_candidate(n) for n in found])
    name, at_sign, version = text.rpartition("@")
    if at_sign and name:
        versions = [n for n in store.nodes_named(name) if n.attrs.get("version") == version]
        if len(versions) == 1:
            return versions[0]
        if versions:
            raise AmbiguousNodeError(text, [_candidate(n) for n in versions])
    raise UnknownNodeError(text, store.suggest(rest if sep and kind in NODE_KINDS else text))


def _candidate(node: Node) -> str:
    version = node.attrs.get("version")
    extra = (
        f" ({node.name}{'@' + str(version) if version is not None else ''})" if node.name else ""
    )
    return f"{node.key}{extra}"


def trace(
    store: LineageStore,
    node: Node | NodeKey | str,
    direction: Direction = "upstream",
    at: datetime | None = None,
) -> Trace:
    """Every node and edge reachable from `node` against the edges (`upstream`: what it was
    made from, who approved it) or along them (`downstream`: what it fed).

    With `at`, only edges that existed at `at` count (recorded at or before it) and of the
    deployments only the one in force then. Traversals stop at endpoints (see
    `store.STOP_KINDS`) unless the trace starts at one.
    """
    if at is not None and at.tzinfo is None:
        raise LineageError("`at` must be timezone-aware", "add `Z` or an offset")
    root = _as_key(store, node)
    with gc_paused():  # tens of thousands of long-lived objects: see `policyengine._gc`
        return _trace(store, root, direction, at)


def _trace(store: LineageStore, root: Node, direction: Direction, at: datetime | None) -> Trace:
    reached = store.reach(root.key, direction, at=at, stop_kinds=STOP_KINDS)
    graph = nx.MultiDiGraph()
    for key, n in reached.nodes.items():
        graph.add_node(key, node=n)
    for e in reached.edges:
        graph.add_edge(e.src, e.dst, edge=e)
    walk = graph.reverse(copy=False) if direction == "upstream" else graph
    depth: dict[NodeKey, int] = nx.single_source_shortest_path_length(walk, root.key)
    nodes = sorted(reached.nodes.values(), key=lambda n: (depth.get(n.key, 0), n.kind, n.id))
    return Trace(
        root=reached.nodes.get(root.key, root),
        direction=direction,
        at=at,
        nodes=tuple(nodes),
        edges=tuple(sorted(reached.edges, key=Edge.sort_key)),
        depth=depth,
        graph=graph,
    )


def _endpoint(store: LineageStore, endpoint: Node | NodeKey | str) -> Node:
    if isinstance(endpoint, str):
        text = endpoint.removeprefix("endpoint:")
        found = store.node(NodeKey("endpoint", text))
        if found is None:
            raise UnknownNodeError(
                f"endpoint:{text}", store.suggest(text, kind="endpoint", limit=3)
            )
        return found
    node = _as_key(store, endpoint)
    if node.kind != "endpoint":
        raise LineageError(f"`{node.key}` is not an endpoint")
    return node


def served_at(store: LineageStore, endpoint: Node | NodeKey | str, at: datetime) -> Serving | None:
    """Which model version served `endpoint` at `at`, and under which approvals.

    The version is the one whose deployment to the endpoint is the latest at or before `at`
    (a deployment of another version supersedes it from its own time). `None` when nothing
    had been deployed there yet. An endpoint-less deployment is recorded against its
    environment's name, so `production` works as an endpoint too.
    """
    if at.tzinfo is None:
        raise LineageError("`at` must be timezone-aware", "add `Z` or an offset")
    ep = _endpoint(store, endpoint)
    live = [e for e in store.edges(dst=ep.key, relation="served_by") if e.in_force(at)]
    if not live:
        return None
    deployment = max(live, key=lambda e: (e.time, e.event_id))
    model = store.node(deployment.src)
    if model is None:  # the store's foreign keys make this unreachable
        raise LineageError(f"the store lacks `{deployment.src}`")
    approvals, overrides = [], []
    for e in store.edges(dst=model.key):
        if e.time > at or e.relation not in ("approved", "overrides"):
            continue
        signed = store.node(e.src)
        if signed is None:
            continue
        if e.relation == "approved":
            approvals.append((e.time, signed))
        elif _not_expired(signed, at):
            overrides.append((e.time, signed))
    return Serving(
        endpoint=ep,
        at=at,
        model_version=model,
        deployment=deployment,
        approvals=tuple(n for _, n in sorted(approvals, key=lambda p: (p[0], p[1].id))),
        overrides=tuple(n for _, n in sorted(overrides, key=lambda p: (p[0], p[1].id))),
    )


def _not_expired(override: Node, at: datetime) -> bool:
    expires = override.attrs.get("expires_at")
    if expires is None:
        return True
    return at < datetime.fromisoformat(str(expires))


def affected_by(
    store: LineageStore, dataset: Node | NodeKey | str, at: datetime | None = None
) -> Affected:
    """Everything downstream of `dataset`: derived datasets, feature sets, training runs,
    model versions, the endpoints they were deployed to (with the deployments) and the
    prediction batches they or the data scored. Any node works as the source (a commit, an
    image); `at` restricts to the graph as it stood then."""
    t = trace(store, dataset, "downstream", at)
    rest = [n for n in t.nodes if n.key != t.root.key]

    def kind(k: str) -> tuple[Node, ...]:
        return tuple(sorted((n for n in rest if n.kind == k), key=lambda n: n.id))

    return Affected(
        source=t.root,
        trace=t,
        datasets=kind("dataset"),
        feature_sets=kind("feature_set"),
        training_runs=kind("training_run"),
        model_versions=kind("model_version"),
        endpoints=kind("endpoint"),
        deployments=tuple(e for e in t.edges if e.relation == "served_by"),
        prediction_batches=kind("prediction_batch"),
    )
