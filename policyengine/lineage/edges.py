"""From one validated event to the lineage it implies: nodes, and edges pointing downstream.

`lineage_of` is pure, so the store, replays and tests all derive the same graph from the same
events. Entity references are found by introspecting the event catalogue's attribute models
(fields typed `Annotated[str, Ref(kind)]`, also inside lists and nested models): a new `Ref`
field yields an edge `referenced entity → subject` without a change here. Only what the
models cannot say is special-cased: images (plain strings), deployments
(an endpoint, and the version serving it, changes over time), prediction batches' endpoints,
and approvals and overrides (one node per signed event).
"""

from __future__ import annotations

import types as pytypes
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from pydantic import BaseModel

from policyengine.events.catalog import ENTITY_KINDS, EVENT_TYPES
from policyengine.events.refs import Ref
from policyengine.lineage._time import show_time

__all__ = [
    "DECLARING_EVENTS",
    "EXCLUSIVE_RELATIONS",
    "LINEAGE_ONLY_KINDS",
    "NODE_KINDS",
    "REF_RELATIONS",
    "RELATIONS",
    "EdgeDelta",
    "LineageDelta",
    "NodeDelta",
    "NodeKey",
    "lineage_of",
    "ref_fields",
]


class NodeKey(NamedTuple):
    """A node's identity: its kind and its id within that kind; printed `kind:id`."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


LINEAGE_ONLY_KINDS = ("image", "endpoint", "approval", "override")
"""Node kinds that exist only in the lineage graph, with no entity state in the engine."""

NODE_KINDS = (*ENTITY_KINDS, *LINEAGE_ONLY_KINDS)

REF_RELATIONS: Mapping[str, str] = {
    "derived_from": "derived_from",
    "inputs": "input_of",
    "feature_sets": "features_of",
    "training_run": "trained",
    "model_version": "scored",
    "input_dataset": "scored_data",
    "code_commit": "code_of",
}
"""Relation name for an edge made from a `Ref` field, by field name. A field not listed here
(a new one) gets its dotted path as the relation name."""

_VALUE_NODES: Mapping[str, tuple[str, str]] = {
    "image": ("image", "image_of"),
}
"""String attributes that name a lineage-only node: field → (node kind, relation)."""

RELATIONS: Mapping[str, str] = {
    **{rel: "a `Ref` field" for rel in REF_RELATIONS.values()},
    "code_of": "`code_commit` field: code commit → feature set / training run",
    "image_of": "`image` attribute: image → training run",
    "approved": "`approval.recorded`: approval → model version",
    "overrides": "`override.recorded`: override → model version",
    "served_by": "`model.deployed`: model version → endpoint (superseded by the next deployment)",
    "scored_via": "`prediction.batch_completed` `endpoint`: endpoint → prediction batch",
}
"""Every relation this module emits (for docs and tests)."""

EXCLUSIVE_RELATIONS = frozenset({"served_by"})
"""At most one edge of these relations into a node is in force at a time: a later one (by
event time) ends the earlier one. They are kept per event, never merged."""

DECLARING_EVENTS = frozenset(
    {
        "dataset.registered",
        "code.committed",
        "features.materialized",
        "run.started",
        "model.registered",
        "prediction.batch_completed",
        "model.deployed",
        "approval.recorded",
        "override.recorded",
    }
)
"""Event types that describe their node itself (not just refer to it): after one, the node is
`registered`. A node only ever referenced (a dataset nobody registered) stays unregistered,
which is what lineage-completeness checks look for."""

_SHOWN: Mapping[str, tuple[str, ...]] = {
    "dataset": (
        "name",
        "version",
        "uri",
        "digest",
        "classification",
        "deidentified",
        "allowed_purposes",
        "consent_scope",
        "region",
        "owner",
    ),
    "feature_set": ("name", "version"),
    "training_run": ("name", "purpose", "status"),
    "model_version": ("name", "version", "artifact_digest"),
    "prediction_batch": ("row_count",),
    "code_commit": (
        "repository",
        "summary",
        "author",
        "authored_at",
        "committed_at",
        "ref",
        "signed",
        "signature_verified",
    ),
}
"""Subject attributes worth showing beside a node (the rest stays in the entity state)."""


@dataclass(frozen=True, slots=True)
class NodeDelta:
    """A node an event mentions, with the attributes it states (non-null values only)."""

    key: NodeKey
    name: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    registered: bool = False


@dataclass(frozen=True, slots=True)
class EdgeDelta:
    """An edge `src → dst` (downstream: from what was used to what was made or served)."""

    src: NodeKey
    dst: NodeKey
    relation: str

    @property
    def exclusive(self) -> bool:
        return self.relation in EXCLUSIVE_RELATIONS


@dataclass(frozen=True, slots=True)
class LineageDelta:
    """Everything one event adds to the graph; every edge end is among `nodes`."""

    event_id: str
    event_type: str
    time: datetime
    nodes: tuple[NodeDelta, ...]
    edges: tuple[EdgeDelta, ...]


# ----------------------------------------------------------------- Ref introspection


@dataclass(frozen=True, slots=True)
class RefField:
    """A `Ref` somewhere in an attribute model: its path (lists flattened) and target kind."""

    path: tuple[str, ...]
    kind: str

    @property
    def relation(self) -> str:
        return REF_RELATIONS.get(self.path[-1], ".".join(self.path))


def _ref_targets(ann: Any, metadata: Sequence[Any] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """`(sub-path, kind)` for every Ref reachable through one annotation."""
    for m in metadata:
        if isinstance(m, Ref):
            yield (), m.kind
            return
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        yield from _ref_targets(args[0], args[1:])
    elif origin in (typing.Union, pytypes.UnionType, list, tuple, set, frozenset):
        for arg in args:
            yield from _ref_targets(arg)
    elif origin is dict and len(args) == 2:
        yield from _ref_targets(args[1])
    elif isinstance(ann, type) and issubclass(ann, BaseModel):
        for sub in ref_fields(ann):
            yield sub.path, sub.kind


@cache
def ref_fields(model: type[BaseModel]) -> tuple[RefField, ...]:
    """The `Ref` fields of a pydantic model, nested models included (dotted paths)."""
    found: list[RefField] = []
    for name, info in model.model_fields.items():
        for sub, kind in _ref_targets(info.annotation, tuple(info.metadata)):
            found.append(RefField((name, *sub), kind))
    return tuple(found)


def _values_at(value: Any, path: Sequence[str]) -> Iterator[Any]:
    """Values at `path` in a model dump, flattening lists, dict values and skipping nulls."""
    if value is None:
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _values_at(item, path)
        return
    if not path:
        if isinstance(value, Mapping):  # dict[str, Ref]: the values are the ids
            for item in value.values():
                yield from _values_at(item, path)
        else:
            yield value
        return
    if isinstance(value, Mapping):
        yield from _values_at(value.get(path[0]), path[1:])


# ----------------------------------------------------------------- the derivation


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return show_time(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _shown(kind: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _jsonable(attributes[name])
        for name in _SHOWN.get(kind, ())
        if attributes.get(name) is not None
    }


_Parts = tuple[list[NodeDelta], list[EdgeDelta]]


def _deployed(event: Mapping[str, Any], subject: NodeKey) -> _Parts:
    target = event["attributes"]["target"]
    # An endpoint-less deployment serves "the environment": that slot is what gets replaced.
    endpoint = NodeKey("endpoint", target.get("endpoint") or target["environment"])
    attrs = {k: target[k] for k in ("environment", "region") if target.get(k) is not None}
    return [NodeDelta(endpoint, None, attrs, registered=True)], [
        EdgeDelta(subject, endpoint, "served_by")
    ]


def _batch(event: Mapping[str, Any], subject: NodeKey) -> _Parts:
    endpoint = event["attributes"].get("endpoint")
    if not endpoint:
        return [], []
    key = NodeKey("endpoint", endpoint)
    return [NodeDelta(key)], [EdgeDelta(key, subject, "scored_via")]


def _approval(event: Mapping[str, Any], subject: NodeKey) -> _Parts:
    a = event["attributes"]
    key = NodeKey("approval", event["id"])
    attrs = {
        "signer": a["signer"],
        "signer_name": a.get("signer_name"),
        "role": a["role"],
        "meaning": a["meaning"],
        "comment": a.get("comment"),
        "time": show_time(event["time"]),
        "model_version": subject.id,
    }
    attrs = {k: v for k, v in attrs.items() if v is not None}
    return [NodeDelta(key, None, attrs, registered=True)], [EdgeDelta(key, subject, "approved")]


def _override(event: Mapping[str, Any], subject: NodeKey) -> _Parts:
    a = event["attributes"]
    key = NodeKey("override", event["id"])
    attrs = {
        "signer": event["actor"]["id"],
        "role": a["role"],
        "rule": a["rule"],
        "justification": a["justification"],
        "expires_at": _jsonable(a.get("expires_at")),
        "time": show_time(event["time"]),
        "model_version": subject.id,
    }
    attrs = {k: v for k, v in attrs.items() if v is not None}
    return [NodeDelta(key, None, attrs, registered=True)], [EdgeDelta(key, subject, "overrides")]


_SPECIAL: Mapping[str, Callable[[Mapping[str, Any], NodeKey], _Parts]] = {
    "model.deployed": _deployed,
    "prediction.batch_completed": _batch,
    "approval.recorded": _approval,
    "override.recorded": _override,
}


def lineage_of(event: Mapping[str, Any]) -> LineageDelta:
    """The nodes and edges one validated event (`parse_event` output) adds to the graph.

    The subject is always a node (so an event about an unknown entity still records that it
    was seen). Nodes are listed once each, subject first; edges in a stable order.
    """
    spec = EVENT_TYPES[event["type"]]
    attributes: Mapping[str, Any] = event["attributes"]
    subject = NodeKey(spec.subject_kind, event["subject"]["id"])
    # Only events with a state effect restate the entity's fields; an access event's `region`
    # is where the data is processed, not where the dataset lives.
    shown = _shown(subject.kind, attributes) if spec.reducer is not None else {}
    name = shown.get("name") if isinstance(shown.get("name"), str) else None
    nodes: dict[NodeKey, NodeDelta] = {
        subject: NodeDelta(subject, name, shown, registered=event["type"] in DECLARING_EVENTS)
    }
    edges: list[EdgeDelta] = []

    def add(node: NodeDelta) -> None:
        if node.key not in nodes:
            nodes[node.key] = node

    for ref in ref_fields(spec.attributes):
        for value in _values_at(attributes, ref.path):
            if isinstance(value, str) and value:
                key = NodeKey(ref.kind, value)
                add(NodeDelta(key))
                edges.append(EdgeDelta(key, subject, ref.relation))
    for attr, (kind, relation) in _VALUE_NODES.items():
        value = attributes.get(attr)
        if isinstance(value, str) and value:
            key = NodeKey(kind, value)
            add(NodeDelta(key))
            edges.append(EdgeDelta(key, subject, relation))
    special = _SPECIAL.get(spec.name)
    if special is not None:
        extra_nodes, extra_edges = special(event, subject)
        for node in extra_nodes:
            nodes[node.key] = node  # a special case states the node's attributes
        edges.extend(extra_edges)
    unique = list(dict.fromkeys(edges))
    return LineageDelta(
        event_id=event["id"],
        event_type=spec.name,
        time=event["time"],
        nodes=tuple(nodes.values()),
        edges=tuple(unique),
    )
