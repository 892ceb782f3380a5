"""The type environment: static types of events and entities, derived from the
pydantic models in `policyengine.events`, so the schema has one source of truth."""

from __future__ import annotations

import types as pytypes
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from policyengine.compiler import types as T
from policyengine.events.catalog import ENTITY_KINDS, EVENT_TYPES
from policyengine.events.refs import Ref

# Envelope fields every event has; attribute names never collide with these.
ENVELOPE_FIELDS = ("id", "type", "time", "actor", "subject")


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    subject_kind: str
    record: T.Record  # `event` in a policy: envelope + attributes
    attribute_names: frozenset[str]


@dataclass(frozen=True, slots=True)
class TypeEnv:
    events: Mapping[str, EventType]
    entities: Mapping[str, T.Record]

    def entity_fields(self, kind: str) -> Mapping[str, T.Type]:
        rec = self.entities.get(kind)
        return rec.fields if rec is not None else {}


def annotation_type(ann: Any, metadata: tuple[Any, ...] = ()) -> T.Type:
    """Map a pydantic field annotation to a policy type."""
    for m in metadata:
        if isinstance(m, Ref):
            return T.Entity(m.kind)
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return annotation_type(args[0], tuple(args[1:]))
    if origin in (typing.Union, pytypes.UnionType):
        non_null = [a for a in args if a is not type(None)]
        inner = annotation_type(non_null[0]) if len(non_null) == 1 else T.ANY
        return T.Optional(inner) if len(non_null) < len(args) else inner
    if origin is typing.Literal:
        return T.STRING if all(isinstance(a, str) for a in args) else T.ANY
    if origin in (list, tuple):
        return T.ListOf(annotation_type(args[0]) if args else T.ANY)
    if origin in (set, frozenset):
        return T.SetOf(annotation_type(args[0]) if args else T.ANY)
    if origin is dict:
        return T.MapOf(annotation_type(args[1]) if len(args) == 2 else T.ANY)
    if ann is str:
        return T.STRING
    if ann is bool:
        return T.BOOL
    if ann is int:
        return T.INT
    if ann is float:
        return T.FLOAT
    if ann is datetime:
        return T.TIMESTAMP
    if ann is timedelta:
        return T.DURATION
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return model_record(ann)
    return T.ANY


def model_record(model: type[BaseModel], name: str | None = None) -> T.Record:
    fields: dict[str, T.Type] = {}
    for fname, info in model.model_fields.items():
        fields[fname] = annotation_type(info.annotation, tuple(info.metadata))
    return T.Record(name or model.__name__, MappingProxyType(fields))


ACTOR = T.Record(
    "actor",
    MappingProxyType({"id": T.STRING, "name": T.Optional(T.STRING), "roles": T.ListOf(T.STRING)}),
)


@cache
def default_env() -> TypeEnv:
    entities: dict[str, T.Record] = {}
    for kind, model in ENTITY_KINDS.items():
        rec = model_record(model, kind)
        fields = dict(rec.fields)
        fields["id"] = T.STRING
        entities[kind] = T.Record(kind, MappingProxyType(fields))
    events: dict[str, EventType] = {}
    for name, spec in EVENT_TYPES.items():
        attrs = model_record(spec.attributes)
        fields = {
            "id": T.STRING,
            "type": T.STRING,
            "time": T.TIMESTAMP,
            "actor": ACTOR,
            "subject": T.Entity(spec.subject_kind),
        }
        fields.update(attrs.fields)
        events[name] = EventType(
            name,
            spec.subject_kind,
            T.Record(f"event {name}", MappingProxyType(fields)),
            frozenset(attrs.fields),
        )
    return TypeEnv(MappingProxyType(events), MappingProxyType(entities))
