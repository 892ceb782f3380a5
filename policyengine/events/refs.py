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
