"""Markers that tell the compiler an attribute holds a reference to another entity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ref:
    """`Annotated[str, Ref("dataset")]`: the value is an entity id of that kind.

    The compiler types such a field as an entity, so a policy can follow it
    (`event.inputs` → each dataset's `classification`) through the state store.
    """

    kind: str


@dataclass(frozen=True, slots=True)
class Sensitive:
    """`Annotated[str, Sensitive("patient")]`: the value identifies a person (a patient id,
    an MRN). It is replaced by a keyed pseudonym before any event, decision or lineage
    record is stored or logged (`policyengine.events.pseudonym`)."""

    category: str
